// Package manage owns the operations operators and portals perform on users
// and relying parties — validation, hashing, auditing — shared by the `idp`
// commands and the admin API.
//
// Every write validates its input first (a bad value is an *InvalidError,
// its message a sentence naming what to fix), then writes, then appends an
// audit event naming the Actor. A duplicate username or client id is an
// error that wraps storage.ErrConflict, an unknown one wraps
// storage.ErrNotFound; the messages of these three kinds are safe to show to
// the caller. Secrets (passwords, client secrets) are hashed here and never
// reach an audit event or a log line.
package manage
