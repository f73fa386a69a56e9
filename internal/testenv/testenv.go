// Package testenv finds the real services tests run against (PostgreSQL,
// Redis, Chromium) and gives each test its own isolated piece of them: a
// fresh database, a fresh key prefix. A service that cannot be reached makes
// the test skip on a developer's machine and fail in CI (CI=true), so a
// missing service is never a silent pass there.
package testenv

import (
	"os"
	"testing"
)

// InCI reports whether the tests run in CI, where a missing service is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable stops the test because service cannot be reached: a failure in
// CI, a skip elsewhere.
func Unavailable(t testing.TB, service string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI but not reachable: %v", service, err)
	}
	t.Skipf("%s not reachable (%v); skipping (CI=true makes this a failure)", service, err)
}
