package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// ChromiumTimeout bounds a whole browser test: when it runs out, the browser
// stops and every pending action fails.
const ChromiumTimeout = 60 * time.Second

// Phone-sized window: the hosted pages are tried at the width of a phone.
const (
	ChromiumWidth  = 390
	ChromiumHeight = 900
)

// chromiumNames are tried on PATH, in order, when IDP_TEST_CHROMIUM is unset.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome"}

// findChromium returns the browser named by IDP_TEST_CHROMIUM (a path or a
// name on PATH), else the first of chromiumNames found on PATH.
func findChromium() (string, error) {
	if name := os.Getenv("IDP_TEST_CHROMIUM"); name != "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return "", fmt.Errorf("IDP_TEST_CHROMIUM=%s: %w", name, err)
		}
		return p, nil
	}
	var errs []error
	for _, name := range chromiumNames {
		p, err := exec.LookPath(name)
		if err == nil {
			return p, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("no browser on PATH (set IDP_TEST_CHROMIUM): %w", errors.Join(errs...))
}

// Chromium starts a headless Chromium for t, with a fresh profile and a
// phone-sized window (ChromiumWidth x ChromiumHeight), and returns the
// chromedp context of its first tab. The browser is already running, so
//
//	tab, cancel := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
//
// opens a tab with its own cookies (a fresh "incognito" profile) without
// starting another browser, and chromedp.NewContext(ctx) a tab that shares
// the first tab's cookies.
//
// The browser is IDP_TEST_CHROMIUM when set, else chromium, chromium-browser
// or google-chrome on PATH; none found makes t skip (fail in CI, see
// Unavailable). The whole test is bounded by ChromiumTimeout (or t's own
// deadline, when sooner). The browser stops and its profile is removed when
// t ends.
func Chromium(t testing.TB) (ctx context.Context) {
	t.Helper()
	path, err := findChromium()
	if err != nil {
		Unavailable(t, "Chromium", err)
	}

	// Not t.TempDir: Chromium's helper processes can still write to the
	// profile for a moment after the browser exits, and t.TempDir's removal
	// would then fail the test with "directory not empty". Removed with
	// retries below instead.
	profile, err := os.MkdirTemp("", "idp-chromium-")
	if err != nil {
		t.Fatalf("testenv: Chromium profile directory: %v", err)
	}
	t.Cleanup(func() { removeAllRetry(t, profile) })

	deadline := time.Now().Add(ChromiumTimeout)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if td, ok := d.Deadline(); ok && td.Before(deadline) {
			deadline = td.Add(-time.Second) // leave time to report
		}
	}
	timeoutCtx, cancelTimeout := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancelTimeout)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root (containers, CI)
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(ChromiumWidth, ChromiumHeight),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)

	// chromedp reports protocol errors through a logger; it must not call
	// t.Logf once t has ended.
	var mu sync.Mutex
	ended := false
	logf := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if !ended {
			t.Logf("chromium: "+format, args...)
		}
	}
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logf))
	t.Cleanup(func() {
		cancelBrowser() // waits for the browser to stop
		cancelAlloc()
		mu.Lock()
		ended = true
		mu.Unlock()
	})

	// Start the browser now, with no timeout of its own: a timeout on the
	// first Run would stop the whole browser when it ran out.
	start := time.Now()
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("testenv: starting %s: %v", path, err)
	}
	t.Logf("testenv: %s started in %v", path, time.Since(start).Round(time.Millisecond))
	return browserCtx
}

// ArtifactsDir returns the folder where browser tests save screenshots:
// IDP_TEST_ARTIFACTS when set, else test-artifacts/<sub> at the root of the
// module (git-ignored). It creates the folder.
func ArtifactsDir(t testing.TB, sub string) string {
	t.Helper()
	dir := os.Getenv("IDP_TEST_ARTIFACTS")
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		dir = filepath.Join(root, "test-artifacts", sub)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: artifacts folder: %v", err)
	}
	return dir
}

// moduleRoot is the nearest folder above the working directory (the test's
// package) that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// removeAllRetry removes dir, trying again while Chromium's helper processes
// finish writing to it.
func removeAllRetry(t testing.TB, dir string) {
	var err error
	for range 50 {
		if err = os.RemoveAll(dir); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("testenv: removing the Chromium profile %s: %v", dir, err)
}
