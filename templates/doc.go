// Package templates owns the hosted pages and their static assets, embedded in the binary.
//
// Each page has one data struct (LoginPage, ConsentPage, ...) that embeds
// Base and implements Page; the server fills the struct and calls
// Pages.Render. Load parses every page at start-up and fails, naming the
// page, when a template is missing or broken, so a server never starts
// without a page it may need. The pages use no JavaScript and no inline
// styles, so they work under Content-Security-Policy "default-src 'self'";
// the only other resources are the files Static serves under /static/.
//
// The visible texts of labels and buttons ("Username", "Password",
// "Log In", "Allow", "Deny", "Log Out") are a stable contract: browser
// tests find fields by them.
package templates
