package mfa

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/hostportal/idp/secret"
)

// DeviceTokenSize is the number of random bytes of a remembered-device token.
const DeviceTokenSize = 32

// NewDeviceToken returns a new remembered-device token (32 random bytes,
// base64url without padding) for the browser's cookie. Only its
// HashDeviceToken is stored.
func NewDeviceToken() string {
	return secret.RandomToken(DeviceTokenSize)
}

// HashDeviceToken returns the stored form of a device token: its SHA-256 in
// hex. The token is 256 random bits, so an unkeyed fast hash suffices.
// A device found by this hash must still belong to the user logging in.
func HashDeviceToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// maxDeviceDescription caps DescribeUserAgent's result, in characters.
const maxDeviceDescription = 60

// uaBrowsers and uaSystems are checked in order, first match wins: Edge,
// Opera and Samsung Internet also say "Chrome/", Chrome also says
// "Safari/", and iPhones ("like Mac OS X") and Android ("Linux") also name
// another system.
var uaBrowsers = []struct{ token, name string }{
	{"Edg/", "Edge"}, {"EdgA/", "Edge"}, {"EdgiOS/", "Edge"}, {"Edge/", "Edge"},
	{"OPR/", "Opera"}, {"OPT/", "Opera"},
	{"SamsungBrowser/", "Samsung Internet"},
	{"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
	{"CriOS/", "Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
	{"Safari/", "Safari"},
}

var uaSystems = []struct{ token, name string }{
	{"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Android", "Android"},
	{"Windows", "Windows"}, {"CrOS", "ChromeOS"},
	{"Macintosh", "macOS"}, {"Mac OS X", "macOS"},
	{"Linux", "Linux"}, {"X11", "Linux"},
}

// DescribeUserAgent returns a short description of a browser for the list
// of remembered devices, such as "Chrome on Windows" or "Safari on iPhone",
// "Unknown browser" when the User-Agent names no browser it knows. The
// result is at most 60 characters.
func DescribeUserAgent(ua string) string {
	browser, system := "", ""
	for _, b := range uaBrowsers {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, s := range uaSystems {
		if strings.Contains(ua, s.token) {
			system = s.name
			break
		}
	}
	var d string
	switch {
	case browser == "":
		d = "Unknown browser"
		if system != "" {
			d += " on " + system
		}
	case system == "":
		d = browser
	default:
		d = browser + " on " + system
	}
	return truncateRunes(d, maxDeviceDescription)
}

func truncateRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
