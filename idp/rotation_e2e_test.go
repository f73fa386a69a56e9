package idp_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/regulation"
)

// TestLoginIDRotatesAfterEachFactor: the pending login's id changes after
// the password and again after the second factor; an id seen before (in a
// URL, a log, a Referer) leads nowhere, and a form posted with it is
// refused.
func TestLoginIDRotatesAfterEachFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))

		lb := env.NewBrowser()
		f := r.start()
		p := lb.Follow(env.Issuer, lb.Get(f.authURL))
		form := p.Form()
		first := form.Get("id")
		form.Set("username", "alice")
		form.Set("password", alicePassword)
		p = lb.Follow(env.Issuer, lb.Post(env.Issuer+"/login/password", form))
		codeForm := p.Form()
		second := codeForm.Get("id")
		if second == "" || second == first {
			t.Fatalf("the login id did not change after the password: %q then %q", first, second)
		}
		if old := lb.Get(env.Issuer + "/login?id=" + url.QueryEscape(first)); old.Status != http.StatusConflict || !old.Contains("This login was continued in another window.") {
			t.Fatalf("the id from before the password still leads to the login: %s", old)
		}
		// The code page's form, replayed with the old id, is refused.
		stale := codeForm
		stale.Set("id", first)
		stale.Set("code", app.code(t, 0))
		if p := lb.Post(env.Issuer+"/login/mfa", stale); p.Status < 400 {
			t.Fatalf("a form with the old id was accepted: %s", p)
		}
		codeForm.Set("id", second)
		p = lb.Post(env.Issuer+"/login/mfa", codeForm)
		if p.Status != http.StatusSeeOther {
			t.Fatalf("the code: %s\n%s", p, p.Body)
		}
		third, err := url.Parse(p.Header.Get("Location"))
		if err != nil || third.Query().Get("id") == "" || third.Query().Get("id") == second {
			t.Fatalf("the login id did not change after the second factor: %q", p.Header.Get("Location"))
		}
		if old := lb.Get(env.Issuer + "/login?id=" + url.QueryEscape(second)); old.Status != http.StatusConflict {
			t.Fatalf("the id from before the code still leads to the login: %s", old)
		}
		r.codeFrom(f, consentIfAsked(t, env, lb, lb.Follow(env.Issuer, p)))
	})
}

// TestConcurrentPasswordPosts: two posts of the same password form at
// once move the login on once; the other is told the login changed.
func TestConcurrentPasswordPosts(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	lb := env.NewBrowser()
	f := r.start()
	p := lb.Follow(env.Issuer, lb.Get(f.authURL))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	var wg sync.WaitGroup
	pages := make([]*idptest.Page, 2)
	for i := range pages {
		wg.Go(func() { pages[i] = lb.Post(env.Issuer+"/login/password", form) })
	}
	wg.Wait()
	moved := 0
	for _, p := range pages {
		if loc := p.Header.Get("Location"); p.Status == http.StatusSeeOther && loc != "" {
			if u, err := url.Parse(loc); err == nil && u.Query().Get("id") != "" && u.Query().Get("id") != form.Get("id") {
				moved++
			}
		}
	}
	if moved != 1 {
		t.Fatalf("%d of 2 concurrent posts moved the login on: %s, %s", moved, pages[0], pages[1])
	}
}

// TestLogoutEndsTheSessionEverywhere: after logout the session is gone
// from the store, not only from this browser: its cookie, copied before
// the logout into another browser (a stolen cookie), logs nobody in.
func TestLogoutEndsTheSessionEverywhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		f := r.start()
		r.codeFrom(f, login(t, env, br, f, "alice", alicePassword))
		issuer, err := url.Parse(env.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		stolen := br.Client.Jar.Cookies(issuer)
		thief := env.NewBrowser()
		thief.Client.Jar.SetCookies(issuer, stolen)
		f = r.start()
		if p := thief.Follow(env.Issuer, thief.Get(f.authURL)); p.Contains(`name="password"`) {
			t.Fatal("the copied cookies did not carry the session (the test proves nothing)")
		}

		p := br.Get(env.Issuer + "/account")
		if lo := br.Post(env.Issuer+"/account/logout", p.Form()); lo.Status >= 400 {
			t.Fatalf("logout: %s", lo)
		}
		thief = env.NewBrowser()
		thief.Client.Jar.SetCookies(issuer, stolen)
		f = r.start()
		if p := thief.Follow(env.Issuer, thief.Get(f.authURL)); !p.Contains(`name="password"`) {
			t.Fatalf("a cookie from before the logout still logs in: %s", p)
		}
	})
}

// TestDoubleSubmittedCode: the same right code posted twice at once (a
// double click) logs in once; the other post is told the login moved on,
// and no failure is counted.
func TestDoubleSubmittedCode(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b idptest.Backend) {
		env, r := setup(t, b)
		br := env.NewBrowser()
		app, _ := enrol(t, env, br, loginToAccount(t, env, br, "alice", alicePassword, nil))
		lb := env.NewBrowser()
		f := r.start()
		form := login(t, env, lb, f, "alice", alicePassword).Form()
		form.Set("code", app.code(t, 0))
		var wg sync.WaitGroup
		pages := make([]*idptest.Page, 2)
		for i := range pages {
			wg.Go(func() { pages[i] = lb.Post(env.Issuer+"/login/mfa", form) })
		}
		wg.Wait()
		var moved, told int
		for _, p := range pages {
			switch {
			case p.Status == http.StatusSeeOther:
				moved++
			case p.Status == http.StatusConflict && p.Contains("continued in another window"):
				told++
			default:
				t.Errorf("a double-submitted code: %s\n%s", p, p.Body)
			}
		}
		if moved != 1 || told != 1 {
			t.Fatalf("%d moved on, %d told, want 1 and 1", moved, told)
		}
		if n, _, _ := failures(t, env, regulation.TOTP, 0).Failures(context.Background(), "alice", regulation.TOTP); n != 0 {
			t.Errorf("a double submit counted %d failures", n)
		}
	})
}
