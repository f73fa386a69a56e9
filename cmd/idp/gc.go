package main

import (
	"runtime/debug"
)

// serveGCPercent is the garbage collector's target for idp serve when the
// environment does not set GOGC. Every password check allocates the
// argon2id memory (19 MiB with OWASP's parameters) and drops it a few tens
// of milliseconds later, so with Go's default of 100 the collector ran
// every two or three logins, and the pages it handed back to the kernel
// were faulted in again by the next hash: 3-4% of a login's CPU. At 400 it
// runs a quarter as often; the heap may grow to five times what is live
// (measured: 336 MB peak RSS under a login load on 2 cores, OWASP
// parameters). GOGC and GOMEMLIMIT in the environment still win.
const serveGCPercent = 400

// tuneGC applies serveGCPercent unless GOGC is set.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}
