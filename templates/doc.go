// Package templates owns the hosted pages and their static assets, embedded in the binary.
//
// Each page has one data struct (LoginPage, ConsentPage, SecondFactorPage,
// AccountPage, ...) that embeds Base and implements Page; the server fills
// the struct and calls Pages.Render. Load parses every page at start-up and
// fails, naming the page, when a template is missing or broken, so a server
// never starts without a page it may need. The pages use no inline script,
// no event handler attributes and no inline styles, so they work under
// Content-Security-Policy "default-src 'self'; img-src 'self' data:"; the
// only other resources are the files Static serves under /static/. One page
// loads a script file (RecoveryCodesPage: static/copy.js for its Copy
// button), and works without it.
//
// URLs that html/template would otherwise refuse go through template
// functions that check what they vouch for: pngDataURI (PNG bytes only, for
// the QR code), otpauthURL (otpauth:// only, else "#") and codesDataURI (the
// recovery codes as a text/plain download).
//
// The visible texts of labels and buttons ("Username", "Password",
// "Log In", "Allow", "Deny", "Log Out", "Authentication Code",
// "Remember this device for 30 days", "Try another method",
// "Recovery code", "Continue", "2-Factor Auth", "OFF", "Trouble Scanning?",
// "Update", "Generate new recovery codes", "Forget all devices") are a
// stable contract: browser tests find fields by them.
package templates
