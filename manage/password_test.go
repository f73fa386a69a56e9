package manage_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hostportal/idp/manage"
	"github.com/hostportal/idp/storage"
)

func TestCheckPassword(t *testing.T) {
	alice := &storage.User{Username: "alice.liddell", Email: "Wonder.Land@example.com", Name: "Alice Liddell"}
	tests := []struct {
		name string
		min  int // Service.MinPasswordLength
		pw   string
		user *storage.User
		msg  string // empty: accepted
	}{
		{name: "passphrase", pw: "correct horse battery"},
		{name: "passphrase of common words", pw: "monkey dragon summer", user: alice},
		{name: "no composition rules", pw: "tangerine submarine"},
		{name: "spaces and symbols", pw: "  ☂ under the rain ☂  "},

		{name: "default minimum: 11", pw: "plum orbit7", msg: "at least 12 characters; a passphrase of a few words"},
		{name: "default minimum: 12", pw: "plum orbit 7"},
		{name: "configured minimum: 15", min: 16, pw: "plum orbit 7 xq", msg: "at least 16 characters"},
		{name: "configured minimum: 16", min: 16, pw: "plum orbit 7 xqz"},
		{name: "configured minimum of 8", min: 8, pw: "plum 7xq"},
		{name: "a minimum below 8 is 8", min: 3, pw: "plum 7x", msg: "at least 8 characters"},
		{name: "a minimum above 1024 is 1024", min: 5000, pw: strings.Repeat("plum orbit canyon ", 57)[:1023], msg: "at least 1024 characters"},
		{name: "characters, not bytes", pw: "äöüßéèêëïîô", msg: "at least 12"},
		{name: "1024", pw: strings.Repeat("plum orbit canyon ", 57)[:1024]},
		{name: "1025", pw: strings.Repeat("plum orbit canyon ", 57)[:1025], msg: "too long: use at most 1024 bytes"},
		// The login reads 1024 bytes: a longer one could never be used.
		{name: "600 characters, 1800 bytes", pw: strings.Repeat("日本語", 200), msg: "too long: use at most 1024 bytes"},
		{name: "twelve spaces", pw: strings.Repeat(" ", 12), msg: "mostly spaces"},
		{name: "two letters and spaces", pw: "ab" + strings.Repeat(" ", 10), msg: "mostly spaces"},
		{name: "a letter and tabs", pw: "a" + strings.Repeat("\t", 11), msg: "mostly spaces"},
		{name: "not UTF-8", pw: "plum orbit \xff\xfe canyon", msg: "not valid UTF-8"},

		{name: "top password, 12 characters", pw: "password1234", msg: "too common: it is on a list of passwords people use often"},
		{name: "top password, any case", pw: "PassWord1234", msg: "too common"},
		{name: "listed with symbols", pw: "trustno1!!!!", msg: "too common"},
		{name: "keys in order with digits", pw: "qwertyuiop123", msg: "too easy to guess"}, // listed too: the pattern says more
		{name: "keys in order with symbols", pw: "qwertyuiop!!", msg: "too easy to guess"},
		{name: "listed, with spaces", pw: "i love you 2024", msg: "too common"},
		{name: "listed long word", pw: "unbelievable", msg: "too common"},
		{name: "one character repeated", pw: "aaaaaaaaaaaa", msg: "too easy to guess: one character or a short piece repeated"},
		{name: "digits in order", pw: "123456789012", msg: "too easy to guess"},
		{name: "letters in order", pw: "abcdefghijkl", msg: "too easy to guess"},
		{name: "a short piece repeated", pw: "abcabcabcabc", msg: "too easy to guess"},

		{name: "the username", pw: "Alice.Liddell", user: alice, msg: "your username, e-mail address or name"},
		{name: "the username with digits", pw: "alice.liddell1865", user: alice, msg: "your username"},
		{name: "the e-mail address", pw: "wonder.land@example.com", user: alice, msg: "your username"},
		{name: "the e-mail's local part with symbols", pw: "wonder.land!!!", user: alice, msg: "your username"},
		{name: "the name", pw: "Alice Liddell 1865", user: alice, msg: "your username"},
		{name: "the username of another", pw: "alice.liddell1865"},
		{name: "containing the name", pw: "alice liddell fell down the hole", user: alice},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &manage.Service{MinPasswordLength: tt.min}
			err := svc.CheckPassword(tt.pw, tt.user)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("CheckPassword: %v", err)
				}
				return
			}
			wantInvalid(t, err, "password", tt.msg)
			// (A password of one or two visible characters is in any sentence.)
			if m, trimmed := err.Error(), strings.TrimSpace(tt.pw); strings.Contains(m, tt.pw) ||
				len(trimmed) > 2 && strings.Contains(strings.ToLower(m), strings.ToLower(trimmed)) {
				t.Errorf("the message %q repeats the password", m)
			}
		})
	}
}

// TestPasswordMessagesAreSafe checks every message CheckPassword gives: a
// sentence, without the password or its length.
func TestPasswordMessagesAreSafe(t *testing.T) {
	user := &storage.User{Username: "bob.example", Email: "bob@example.com"}
	svc := &manage.Service{}
	seen := map[string]bool{}
	for _, pw := range []string{"plum orbit", strings.Repeat("plum orbit canyon ", 60), "plum orbit \xff canyon",
		"password1234", "aaaaaaaaaaaa", "bob.example1234"} {
		err := svc.CheckPassword(pw, user)
		var inv *manage.InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("CheckPassword(%q) = %v, want an *InvalidError", pw, err)
		}
		m := inv.Message
		seen[m] = true
		if strings.Contains(m, strings.TrimSpace(pw)) || strings.Contains(m, "1234") {
			t.Errorf("message %q repeats the password", m)
		}
		if n := len([]rune(pw)); strings.Contains(m, " "+strconv.Itoa(n)+" ") {
			t.Errorf("message %q gives the password's length %d", m, n)
		}
		if !strings.HasPrefix(m, "That password ") || !strings.HasSuffix(m, ".") {
			t.Errorf("message %q is not a sentence about the password", m)
		}
	}
	if len(seen) != 6 {
		t.Errorf("%d distinct messages, want one for each of 6 rules", len(seen))
	}
}

func TestValidatePasswordKeepsWorking(t *testing.T) {
	if err := manage.ValidatePassword(goodPassword); err != nil {
		t.Errorf("ValidatePassword(good) = %v", err)
	}
	wantInvalid(t, manage.ValidatePassword("short"), "password", "at least 12")
	wantInvalid(t, manage.ValidatePassword("iloveyou1234"), "password", "too common")
}

func TestPasswordRules(t *testing.T) {
	for _, tc := range []struct {
		min   int
		first string
	}{
		{0, "At least 12 characters."},
		{16, "At least 16 characters."},
		{8, "At least 8 characters."},
		{4, "At least 8 characters."},
	} {
		rules := manage.PasswordRules(tc.min)
		if len(rules) < 3 || rules[0] != tc.first {
			t.Errorf("PasswordRules(%d) = %q, want it to start with %q", tc.min, rules, tc.first)
		}
		if got := (&manage.Service{MinPasswordLength: tc.min}).PasswordRules(); !slices.Equal(got, rules) {
			t.Errorf("Service{MinPasswordLength: %d}.PasswordRules() = %q, want %q", tc.min, got, rules)
		}
	}
	rules := strings.Join(manage.PasswordRules(0), "\n")
	for _, want := range []string{"common password", "known from breaches", "username", "spaces included: no other rules."} {
		if !strings.Contains(rules, want) {
			t.Errorf("the rules do not mention %q:\n%s", want, rules)
		}
	}
}

func TestCreateUserChecksThePassword(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	svc.MinPasswordLength = 16
	_, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "alice@example.com", Password: "plum orbit 7"})
	wantInvalid(t, err, "password", "at least 16")

	// A username the rules refuse is still compared with the password, and
	// both problems are reported.
	_, err = svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "Alice Liddell", Email: "alice@example.com", Password: "alice liddell 1865"})
	var fields []string
	for _, p := range manage.Problems(err) {
		fields = append(fields, p.Field)
	}
	if !slices.Equal(fields, []string{"username", "password"}) {
		t.Errorf("problems on %q, want username and password (error %v)", fields, err)
	}
	if got := eventTypes(t, svc); len(got) != 0 {
		t.Errorf("events after refused creates = %v", got)
	}
}

func TestSetPasswordChecksThePassword(t *testing.T) {
	ctx := context.Background()
	svc := newService(t)
	if _, err := svc.CreateUser(ctx, manage.Operator, manage.NewUser{Username: "alice", Email: "wonder.land@example.com", Name: "Alice", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	before, err := svc.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", "iloveyou2024"), "password", "too common")
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", "123456789012"), "password", "too easy to guess")
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", "Wonder.Land@Example.com"), "password", "your username")
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", "wonder.land2024"), "password", "your username")
	// A bad password is the answer whether or not the user exists.
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "nobody", "password1234"), "password", "too common")
	svc.MinPasswordLength = 24
	wantInvalid(t, svc.SetPassword(ctx, manage.Operator, "alice", goodPassword), "password", "at least 24")

	after, err := svc.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if after.PasswordHash != before.PasswordHash {
		t.Error("a refused password replaced the hash")
	}
	if got := eventTypes(t, svc); !slices.Equal(got, []string{"user.created"}) {
		t.Errorf("events = %v, want only user.created", got)
	}
	if err := svc.SetPassword(ctx, manage.Operator, "alice", "twenty four characters ok"); err != nil {
		t.Errorf("SetPassword with 25 characters and a minimum of 24: %v", err)
	}
}
