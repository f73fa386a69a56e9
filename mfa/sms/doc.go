// Package sms owns sending text messages (login and phone-verification
// codes) through a provider, one file per provider: Twilio for production,
// Console for development. Callers depend only on Sender; a provider's
// refusal or failure comes back as an *Error the operator can act on.
package sms
