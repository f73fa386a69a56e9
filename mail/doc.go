// Package mail owns sending e-mail: the messages the provider sends
// (password reset links, e-mail confirmation, security notifications),
// rendered from embedded templates, and the providers that deliver them:
// SMTP for production, Console for development. Callers depend only on
// Sender.
package mail
