package idp_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/hostportal/idp/idp/idptest"
	"github.com/hostportal/idp/manage"
)

// Regression tests for the findings of the security review.

func TestCallbackIssuesTheCheckedLoginOnly(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	// The victim logs in; the attacker holds a login of their own.
	victim := env.NewBrowser()
	fv := r.start()
	p := victim.Get(fv.authURL)
	victimID := mustQuery(t, p.Location, "id")
	attacker := env.NewBrowser()
	fa := r.start()
	attackerID := mustQuery(t, attacker.Get(fa.authURL).Location, "id")
	login(t, env, victim, &flow{authURL: fv.authURL}, "alice", alicePassword) // victim now done (code taken by the victim)

	// A second victim login, finished but its callback not yet called.
	fv2 := r.start()
	p = victim.Follow(env.Issuer, victim.Get(fv2.authURL))
	if !strings.Contains(p.URL, "/authorize/callback") && !strings.Contains(p.Location, "code=") {
		t.Fatalf("unexpected page: %s", p)
	}
	_ = victimID

	// POST with a body id: refused outright.
	req, _ := http.NewRequest(http.MethodPost, env.Issuer+"/authorize/callback?id="+url.QueryEscape(attackerID),
		strings.NewReader(url.Values{"id": {victimID}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := attacker.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); strings.Contains(loc, "code=") || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST callback with a second id: %d %s", resp.StatusCode, loc)
	}
	// Two ids in the query: refused.
	p = attacker.Get(env.Issuer + "/authorize/callback?id=" + url.QueryEscape(attackerID) + "&id=" + url.QueryEscape(victimID))
	if strings.Contains(p.Location, "code=") {
		t.Fatalf("callback with two ids gave a code: %s", p)
	}
	// A login link opened in another browser than the one that started it is refused.
	if p := victim.Get(env.Issuer + "/login?id=" + url.QueryEscape(attackerID)); p.Status != http.StatusBadRequest {
		t.Fatalf("attacker's login link in the victim's browser: %s", p)
	}
}

func TestPKCEAndMethodsCannotBeBypassed(t *testing.T) {
	env, _ := setup(t, idptest.Backends[0])
	br := env.NewBrowser()
	base := url.Values{"client_id": {"portal"}, "redirect_uri": {portalRedirect}, "response_type": {"code"},
		"scope": {"openid"}, "code_challenge": {"abc"}}
	dup := env.Issuer + "/authorize?" + base.Encode() + "&code_challenge_method=S256&code_challenge_method=plain"
	if p := br.Get(dup); strings.Contains(p.Location, "/login") {
		t.Fatalf("repeated code_challenge_method reached the login: %s", p)
	}
	for _, path := range []string{"/authorize?" + base.Encode() + "&code_challenge_method=plain", "/end_session", "/.well-known/openid-configuration", "/authorize/callback?id=x"} {
		req, _ := http.NewRequest(http.MethodPut, env.Issuer+path, nil)
		resp, err := br.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("PUT %s: %d, want 405", path, resp.StatusCode)
		}
	}
	long := env.Issuer + "/authorize?" + base.Encode() + "&code_challenge_method=S256&state=" + strings.Repeat("x", 5000)
	if p := br.Get(long); p.Status != http.StatusBadRequest || p.Location != "" {
		t.Fatalf("an oversized state: %s", p)
	}
	if p := br.Get(env.Issuer + "/authorize?" + base.Encode() + "&code_challenge_method=S256&response_mode=form_post"); !strings.Contains(p.Location, "error=invalid_request") {
		t.Fatalf("form_post: %s", p)
	}
	if p := br.Get(env.Issuer + "/authorize?" + base.Encode() + "&code_challenge_method=S256&max_age=abc"); !strings.Contains(p.Location, "error=invalid_request") {
		t.Fatalf("max_age=abc: %s", p)
	}
}

func TestIDTokenHintOfAnotherUser(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	env.AddUser("bob", alicePassword)
	bobBrowser := env.NewBrowser()
	f := r.start()
	tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, bobBrowser, f, "bob", alicePassword)))
	bobHint, _ := tok.Extra("id_token").(string)

	aliceBrowser := env.NewBrowser()
	f = r.start()
	r.exchange(f, r.codeFrom(f, login(t, env, aliceBrowser, f, "alice", alicePassword)))
	f = r.start(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", bobHint))
	if p := aliceBrowser.Follow(env.Issuer, aliceBrowser.Get(f.authURL)); !strings.Contains(p.Location, "error=login_required") {
		t.Fatalf("prompt=none with another user's hint: %s", p)
	}
}

func TestDisabledDuringLoginAndRevokedFamily(t *testing.T) {
	env, r := setup(t, idptest.Backends[0])
	ctx := context.Background()
	br := env.NewBrowser()
	f := r.start()
	p := br.Follow(env.Issuer, br.Get(f.authURL))
	form := p.Form()
	form.Set("username", "alice")
	form.Set("password", alicePassword)
	p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/password", form)) // at consent
	if _, err := env.Manage.Disable(ctx, manage.Operator, "alice"); err != nil {
		t.Fatal(err)
	}
	form = p.Form()
	form.Set("decision", "allow")
	p = br.Follow(env.Issuer, br.Post(env.Issuer+"/login/consent", form))
	if strings.Contains(p.Location, "code=") {
		t.Fatalf("a user disabled during the login got a code: %s", p)
	}
	if _, err := env.Manage.Enable(ctx, manage.Operator, "alice"); err != nil {
		t.Fatal(err)
	}

	// Revoking a refresh token also revokes the access tokens of its login.
	f = r.start()
	tok, _, _ := r.exchange(f, r.codeFrom(f, login(t, env, env.NewBrowser(), f, "alice", alicePassword)))
	tok2, _ := refresh(t, r, tok.RefreshToken)
	revoke(t, env, "portal", r.conf.ClientSecret, tok2.RefreshToken)
	if _, err := r.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok2)); err == nil {
		t.Fatal("an access token of a revoked refresh-token family still works at userinfo")
	}
	if in := introspect(t, env, "portal", r.conf.ClientSecret, tok2.AccessToken); in["active"] == true {
		t.Fatal("an access token of a revoked family is active")
	}
}

func TestNativePublicClient(t *testing.T) {
	env, _ := setup(t, idptest.Backends[0])
	env.AddClient(manage.NewClient{ID: "app", Public: true, RedirectURIs: []string{"com.example.app:/cb", "http://127.0.0.1:7777/cb"}})
	br := env.NewBrowser()
	for _, ru := range []string{"com.example.app:/cb", "http://127.0.0.1:7777/cb"} {
		q := url.Values{"client_id": {"app"}, "redirect_uri": {ru}, "response_type": {"code"}, "scope": {"openid"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
		if p := br.Get(env.Issuer + "/authorize?" + q.Encode()); !strings.Contains(p.Location, "/login?id=") {
			t.Errorf("native redirect %s: %s", ru, p)
		}
	}
	// The exact match still holds for the loopback port.
	q := url.Values{"client_id": {"app"}, "redirect_uri": {"http://127.0.0.1:8888/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}
	if p := br.Get(env.Issuer + "/authorize?" + q.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
		t.Errorf("another loopback port: %s", p)
	}
}
