// Package idp owns the HTTP server: the OpenID Connect provider (built on
// zitadel/oidc's op package, with this package as its storage), the hosted
// login flow as explicit steps bound to the browser, the provider's own
// browser session, RP-initiated logout, and the health endpoints.
//
// The login flow: /authorize (the library) stores a pending login and sends
// the browser to /login?id=ID. GET /login is the dispatcher: it binds the
// pending login to the browser's cookie on first sight and decides the next
// step (password, then the second factor, then consent) from the login's
// state. Each step's form posts to its own URL, which checks the CSRF token
// and that the login is at that step, records the result, and sends the
// browser back to the dispatcher. Steps never call one another. When the
// login is done the dispatcher redirects to /authorize/callback, where the
// library issues the code.
package idp
