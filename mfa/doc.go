// Package mfa owns the second factors' logic: TOTP codes and their replay
// guard, recovery codes, and remembered-device tokens. It stores nothing
// itself; the storage package keeps what it produces.
package mfa
