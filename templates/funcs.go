package templates

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/png"
	"net/url"
	"strings"
	"unicode"
)

// funcs returns the functions every template may call. The ones that return
// template.URL are the only way a page gets a data: or otpauth: URL past
// html/template's URL filter, so each of them checks what it vouches for.
func funcs(versions map[string]string) template.FuncMap {
	return template.FuncMap{
		"static":       staticURL(versions),
		"scripts":      pageScripts,
		"pngDataURI":   pngDataURI,
		"otpauthURL":   otpauthURL,
		"codesDataURI": codesDataURI,
	}
}

// pngDataURI returns b as a data:image/png;base64 URL for an <img src>.
// Bytes that are not a PNG image are an error (the page then fails to
// render) rather than an image of some other, possibly active, type.
func pngDataURI(b []byte) (template.URL, error) {
	if _, err := png.DecodeConfig(bytes.NewReader(b)); err != nil {
		return "", fmt.Errorf("pngDataURI: not a PNG image: %w", err)
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b)), nil
}

// otpauthURL vouches for an otpauth:// URL (the link that adds the account
// to an authenticator app on the same phone). Anything else becomes "#".
func otpauthURL(s string) template.URL {
	const scheme = "otpauth://"
	if len(s) <= len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) ||
		strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "#"
	}
	return template.URL(s)
}

// codesDataURI returns the recovery codes as a plain-text file, one code a
// line, in a data: URL for the "Download" link. Every code is
// percent-encoded, so none can end the URL or start a fragment.
func codesDataURI(codes []string) template.URL {
	var b strings.Builder
	for _, c := range codes {
		b.WriteString(c)
		b.WriteString("\n")
	}
	return template.URL("data:text/plain;charset=utf-8," + url.PathEscape(b.String()))
}

// scriptedPage is a page that needs JavaScript files from static/. Pages are
// script-free by default; the layout loads only these files, each with
// <script src defer>, so no page can carry inline script through it.
type scriptedPage interface {
	scripts() []string
}

// pageScripts is the template function "scripts": the static files page
// asks for, none for most pages.
func pageScripts(page any) []string {
	if p, ok := page.(scriptedPage); ok {
		return p.scripts()
	}
	return nil
}

// The copy button of the recovery codes page; without the script the button
// stays hidden and the codes can still be downloaded or written down.
func (RecoveryCodesPage) scripts() []string { return []string{"copy.js"} }

// The WebAuthn buttons ship hidden; webauthn.js shows them when the browser
// can use them, and says so when it cannot.
func (SecurityKeyPage) scripts() []string { return []string{"webauthn.js"} }
func (AddKeyPage) scripts() []string      { return []string{"webauthn.js"} }
func (p LoginPage) scripts() []string {
	if p.PasskeyAction == "" {
		return nil
	}
	return []string{"webauthn.js"}
}
