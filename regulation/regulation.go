// Package regulation owns the brute-force limits. Every check of a factor
// (password, authenticator code, SMS code, recovery code, security key), in
// a login, a password reset or the account pages, goes through one
// Regulator: Begin before the check says whether it may run now, and Fail
// or Succeed after it records the answer.
//
// Failures are counted three ways: for an account's factor from the
// client's network (an IPv4 address or an IPv6 /64), for the account's
// factor from all networks together (a distributed attack), with a higher
// number of free failures, and for the network over every account and
// factor (a password spray). Past the free failures each further one
// imposes a delay that doubles (1 s, 2 s, 4 s, ... up to a cap) before the
// next check it concerns is even run. So an attacker on one network cannot
// keep the owner, elsewhere, out; and a browser that logged in to the
// account before is let through the all-networks delay. A correct answer
// clears the account's counts for that factor only, so a known password
// does not reset the count of wrong codes. The counts live in the
// pending-login store (Redis when several instances run, so they share
// them) and start again some time after their first failure: nothing is
// ever locked for good.
//
// Checks of one factor for one account run one at a time (a short lock in
// the same store), and so do checks from a network once it has used half
// its free failures, so that a burst of parallel guesses cannot all be
// checked before the failures that should stop them are counted.
package regulation

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hostportal/idp/storage/pending"
)

// Factor names what was checked.
type Factor string

// The factors that are counted. Each has its own count per account.
const (
	Password    Factor = "password"
	TOTP        Factor = "totp"
	SMS         Factor = "sms"
	Recovery    Factor = "recovery"
	SecurityKey Factor = "security_key"
)

// Factors lists every factor, for Unlock.
var Factors = []Factor{Password, TOTP, SMS, Recovery, SecurityKey}

// Config sets the limits. The zero value is not usable: see Defaults.
type Config struct {
	AccountFailures      int           // failures of one factor for one account from one network before delays start
	AccountTotalFailures int           // the same from all networks together (a browser that logged in to the account before is not delayed by it)
	NetworkFailures      int           // failures from one network (any account, any factor) before delays start
	BaseDelay            time.Duration // the first delay; each further failure doubles it
	MaxDelay             time.Duration // the longest delay
	ForgetAfter          time.Duration // a count starts again this long after its first failure
}

// Defaults are the limits the README defends.
func Defaults() Config {
	return Config{AccountFailures: 5, AccountTotalFailures: 20, NetworkFailures: 100, BaseDelay: time.Second,
		MaxDelay: 15 * time.Minute, ForgetAfter: 24 * time.Hour}
}

// Validate reports a limit that cannot work.
func (c Config) Validate() error {
	switch {
	case c.AccountFailures < 1:
		return errors.New("account_failures must be at least 1")
	case c.AccountTotalFailures < c.AccountFailures:
		return errors.New("account_total_failures must be at least account_failures")
	case c.NetworkFailures < 1:
		return errors.New("network_failures must be at least 1")
	case c.BaseDelay <= 0:
		return errors.New("base_delay must be positive")
	case c.MaxDelay < c.BaseDelay:
		return errors.New("max_delay must be at least base_delay")
	case c.ForgetAfter < c.MaxDelay:
		return errors.New("forget_after must be at least max_delay")
	}
	return nil
}

// Delay is the wait imposed after the failures-th failure when free
// failures are free: none before it, then BaseDelay doubling up to MaxDelay.
func (c Config) Delay(failures, free int) time.Duration {
	if failures < free {
		return 0
	}
	d := c.BaseDelay
	for i := free; i < failures; i++ {
		d *= 2
		if d >= c.MaxDelay || d <= 0 {
			return c.MaxDelay
		}
	}
	return min(d, c.MaxDelay)
}

// Subjects of a delay.
const (
	SubjectAccount = "account" // the account's factor, from the client's network
	// SubjectAccountEverywhere: the account's factor, from all networks
	// together (a distributed attack on one account).
	SubjectAccountEverywhere = "account_everywhere"
	SubjectNetwork           = "network"
	// SubjectBusy: another check of the same factor for the same account
	// is running; the wait is a moment.
	SubjectBusy = "busy"
)

// Throttled is the error of Begin while a delay runs: the check must not
// run before Until.
type Throttled struct {
	Subject string // SubjectAccount, SubjectAccountEverywhere, SubjectNetwork or SubjectBusy
	Until   time.Time
}

func (t *Throttled) Error() string {
	return fmt.Sprintf("regulation: too many failed attempts (%s); try again at %s", t.Subject, t.Until.Format(time.RFC3339))
}

// RetryAfter is the wait from now, at least one second.
func (t *Throttled) RetryAfter(now time.Time) time.Duration {
	d := t.Until.Sub(now)
	return max((d+time.Second-1)/time.Second*time.Second, time.Second) // whole seconds, rounded up
}

// Ban is a delay that a failure imposed, for the audit log.
type Ban struct {
	Subject  string // SubjectAccount, SubjectAccountEverywhere or SubjectNetwork
	Factor   Factor // the factor that failed
	Network  string // for SubjectNetwork and SubjectAccount
	Failures int    // the count, this failure included
	Delay    time.Duration
	Until    time.Time
}

// Regulator counts failures in a pending store. It is safe for concurrent use.
type Regulator struct {
	store pending.Store
	cfg   Config
	now   func() time.Time

	// UnlockedSince, when set, is asked (at most every unlockCheckEvery per
	// account) whether an operator unlocked the account after since; the
	// server answers from the audit log, so that `idp user unlock` works
	// without reaching the pending store (an in-process one lives inside
	// the server). A yes clears the account's counts.
	UnlockedSince func(ctx context.Context, account string, since time.Time) (bool, error)
}

// New returns a Regulator. now is the clock (time.Now in production).
func New(store pending.Store, cfg Config, now func() time.Time) (*Regulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("regulation: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Regulator{store: store, cfg: cfg, now: now}, nil
}

// Config returns the limits in force.
func (r *Regulator) Config() Config { return r.cfg }

const (
	// busyTTL bounds how long a crashed check can hold its lock.
	busyTTL = 30 * time.Second
	// busyWait is how long Begin waits for another check of the same
	// factor and account to finish before it gives up with SubjectBusy.
	busyWait = 3 * time.Second
	busyPoll = 20 * time.Millisecond
	// unlockCheckEvery bounds the audit-log reads of a throttled account.
	unlockCheckEvery = 10 * time.Second
)

// Attempt is what is about to be checked.
type Attempt struct {
	// Account is the username the attempt is for, as typed (it is
	// normalised); empty when no account is known yet (a passkey). An
	// unknown username is counted like a known one, so that the answers
	// never tell whether an account exists.
	Account string
	Factor  Factor
	// Network is the client's network (IPv4 address or IPv6 /64); empty
	// skips the network's count (the account's counts then file it under
	// an unknown network).
	Network string
	// Waive skips the account's delay from all networks together (not the
	// counting, and not the delays of this network or of the account from
	// this network): the browser proved an earlier full login to this
	// account, so failures from elsewhere cannot keep its owner out.
	Waive bool
}

// Check is an attempt allowed to run. Exactly one of Fail or Succeed
// should follow, and Done (which may be deferred) after it.
type Check struct {
	r       *Regulator
	a       Attempt
	account string // hashed account key part; "" when no account
	gen     string // the account's generation for the factor (see genKey)
	locks   []string
	done    bool
}

// Begin returns a Check when the attempt may be checked now, and a
// *Throttled error when it must wait. Other errors are the store's.
//
// Checks of one factor for one account run one at a time. Checks from a
// network run one at a time too once it has used half its free failures,
// so that a burst of parallel guesses from it (a password spray) cannot all
// be checked before the failures that should stop them are counted.
func (r *Regulator) Begin(ctx context.Context, a Attempt) (*Check, error) {
	c := &Check{r: r, a: a}
	ok := false
	defer func() {
		if !ok {
			c.Done(ctx)
		}
	}()
	if a.Network != "" {
		hot, err := r.checkNetwork(ctx, a.Network, true)
		if err != nil {
			return nil, err
		}
		if hot {
			if err := c.lock(ctx, "reg:netbusy:"+a.Network); err != nil {
				return nil, err
			}
			if _, err := r.checkNetwork(ctx, a.Network, false); err != nil {
				return nil, err
			}
		}
	}
	if acct := normalize(a.Account); acct != "" {
		c.account = accountKeyPart(acct)
		gen, err := r.generation(ctx, a.Factor, c.account)
		if err != nil {
			return nil, err
		}
		c.gen = gen
		// Refuse at once while a delay runs; then take the lock and look
		// again, since a check that held it may just have failed.
		if err := r.checkAccount(ctx, c, acct); err != nil {
			return nil, err
		}
		if err := c.lock(ctx, busyKey(a.Factor, c.account)); err != nil {
			return nil, err
		}
		if err := r.checkAccount(ctx, c, acct); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

// checkNetwork returns a *Throttled error while the network's delay runs,
// and whether the network is hot (half its free failures used).
func (r *Regulator) checkNetwork(ctx context.Context, network string, withCount bool) (hot bool, err error) {
	st, err := r.load(ctx, networkKey(network), withCount)
	if err != nil {
		return false, err
	}
	if r.now().Before(st.until) {
		return false, &Throttled{Subject: SubjectNetwork, Until: st.until}
	}
	return st.n >= (r.cfg.NetworkFailures+1)/2, nil
}

// checkAccount returns a *Throttled error while a delay of the account's
// factor runs: from this network, or (unless waived) from all of them.
func (r *Regulator) checkAccount(ctx context.Context, c *Check, acct string) error {
	now := r.now()
	keys := []string{c.accountKey(false)}
	subjects := []string{SubjectAccount}
	if !c.a.Waive {
		keys, subjects = append(keys, c.accountKey(true)), append(subjects, SubjectAccountEverywhere)
	}
	for i, key := range keys {
		st, err := r.load(ctx, key, false)
		if err != nil {
			return err
		}
		if !now.Before(st.until) {
			continue
		}
		unlocked, err := r.checkUnlocked(ctx, acct, c.account, st)
		if err != nil {
			return err
		}
		if unlocked {
			// The counts moved to a new generation: count under it.
			c.gen, err = r.generation(ctx, c.a.Factor, c.account)
			return err
		}
		return &Throttled{Subject: subjects[i], Until: st.until}
	}
	return nil
}

// lock takes a one-at-a-time lock, waiting a little for a check in
// progress, and remembers it for Done.
func (c *Check) lock(ctx context.Context, key string) error {
	deadline := time.Now().Add(busyWait) // real time: this is about waiting, not the injected clock
	for {
		ok, err := c.r.store.SetNX(ctx, key, []byte("1"), busyTTL)
		if err != nil {
			return fmt.Errorf("regulation: lock: %w", err)
		}
		if ok {
			c.locks = append(c.locks, key)
			return nil
		}
		if time.Now().After(deadline) {
			return &Throttled{Subject: SubjectBusy, Until: c.r.now().Add(time.Second)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(busyPoll):
		}
	}
}

// checkUnlocked asks UnlockedSince, at most every unlockCheckEvery for an
// account, and clears the account's counts when an operator unlocked it
// after its last failure.
func (r *Regulator) checkUnlocked(ctx context.Context, account, part string, st state) (bool, error) {
	if r.UnlockedSince == nil {
		return false, nil
	}
	first, err := r.store.SetNX(ctx, "reg:unlock-check:"+part, []byte("1"), unlockCheckEvery)
	if err != nil || !first {
		return false, err
	}
	unlocked, err := r.UnlockedSince(ctx, account, st.last)
	if err != nil || !unlocked {
		return false, err
	}
	return true, r.clear(ctx, part)
}

// Fail counts a failed check for the account's factor (from this network
// and from all networks together) and for the network, and returns the
// delays it imposed (none while failures are free).
func (c *Check) Fail(ctx context.Context) ([]Ban, error) {
	defer c.Done(ctx)
	return c.r.record(ctx, c)
}

// Record counts a failure as Fail would, without a check: for failures
// the caller learnt of otherwise, and for tests.
func (r *Regulator) Record(ctx context.Context, a Attempt) ([]Ban, error) {
	c := &Check{r: r, a: a}
	if acct := normalize(a.Account); acct != "" {
		c.account = accountKeyPart(acct)
		gen, err := r.generation(ctx, a.Factor, c.account)
		if err != nil {
			return nil, err
		}
		c.gen = gen
	}
	return r.record(ctx, c)
}

func (r *Regulator) record(ctx context.Context, c *Check) ([]Ban, error) {
	now := r.now()
	var bans []Ban
	type count struct {
		key, subject, network string
		free                  int
	}
	var counts []count
	if c.account != "" {
		counts = append(counts,
			count{c.accountKey(false), SubjectAccount, c.a.Network, r.cfg.AccountFailures},
			count{c.accountKey(true), SubjectAccountEverywhere, "", r.cfg.AccountTotalFailures})
	}
	if c.a.Network != "" {
		counts = append(counts, count{networkKey(c.a.Network), SubjectNetwork, c.a.Network, r.cfg.NetworkFailures})
	}
	for _, k := range counts {
		st, err := r.bump(ctx, k.key, k.free, now)
		if err != nil {
			return bans, err
		}
		if d := st.until.Sub(now); d > 0 {
			bans = append(bans, Ban{Subject: k.subject, Factor: c.a.Factor, Network: k.network, Failures: st.n, Delay: d, Until: st.until})
		}
	}
	return bans, nil
}

// Succeed clears the account's counts for this factor, from this network
// and from all of them (not the other factors', and not the network's).
// Unlike Fail it keeps the locks until Done, so that a second check of the
// same answer (a double submit) waits until the caller has acted on this
// one.
func (c *Check) Succeed(ctx context.Context) error {
	if c.account == "" {
		return nil
	}
	for _, key := range []string{c.accountKey(false), c.accountKey(true)} {
		if err := c.r.drop(ctx, key); err != nil {
			return fmt.Errorf("regulation: reset: %w", err)
		}
	}
	return nil
}

// Done releases the locks; calling it again does nothing.
func (c *Check) Done(ctx context.Context) {
	if c == nil || c.done {
		return
	}
	c.done = true
	for _, key := range c.locks {
		// A lock left behind expires after busyTTL; context.WithoutCancel
		// releases it even when the request was cancelled.
		_ = c.r.store.Delete(context.WithoutCancel(ctx), key)
	}
}

// accountKey is the key of the check's account and factor from its
// network (an unknown network is "-"), or from all networks together when
// everywhere.
func (c *Check) accountKey(everywhere bool) string {
	k := "reg:acct:" + string(c.a.Factor) + ":" + c.account + ":" + c.gen
	if everywhere {
		return k
	}
	return k + ":" + cmp.Or(c.a.Network, "-")
}

// Failures returns an account's count for a factor from all networks
// together and the end of its delay (zero when none runs).
func (r *Regulator) Failures(ctx context.Context, account string, f Factor) (int, time.Time, error) {
	acct := normalize(account)
	if acct == "" {
		return 0, time.Time{}, nil
	}
	c := &Check{r: r, a: Attempt{Factor: f}, account: accountKeyPart(acct)}
	gen, err := r.generation(ctx, f, c.account)
	if err != nil {
		return 0, time.Time{}, err
	}
	c.gen = gen
	st, err := r.load(ctx, c.accountKey(true), true)
	return st.n, st.until, err
}

// Reset forgets an account's counts for one factor, from every network,
// as a correct answer does (a new password makes the wrong guesses at the
// old one moot).
func (r *Regulator) Reset(ctx context.Context, account string, f Factor) error {
	acct := normalize(account)
	if acct == "" {
		return nil
	}
	return r.nextGeneration(ctx, f, accountKeyPart(acct))
}

// Unlock forgets every count of an account, so that it may try again at
// once. The network counts stay.
func (r *Regulator) Unlock(ctx context.Context, account string) error {
	acct := normalize(account)
	if acct == "" {
		return errors.New("regulation: unlock: no account")
	}
	return r.clear(ctx, accountKeyPart(acct))
}

// Unlock clears an account's counts in store without a Regulator (the
// CLI, which has no limits of its own to apply).
func Unlock(ctx context.Context, store pending.Store, account string) error {
	r := &Regulator{store: store, cfg: Defaults(), now: time.Now}
	return r.Unlock(ctx, account)
}

func (r *Regulator) clear(ctx context.Context, part string) error {
	for _, f := range Factors {
		if err := r.nextGeneration(ctx, f, part); err != nil {
			return fmt.Errorf("regulation: unlock: %w", err)
		}
	}
	return nil
}

// knownFor is how long a browser that completed a login to an account is
// let through the account's delay from all networks.
const knownFor = 30 * 24 * time.Hour

// Know records that browser (a stable, secret-derived id of the browser)
// completed a login to account, every factor included.
func (r *Regulator) Know(ctx context.Context, account, browser string) error {
	acct := normalize(account)
	if acct == "" || browser == "" {
		return nil
	}
	if err := r.store.Set(ctx, knownKey(accountKeyPart(acct), browser), []byte("1"), knownFor); err != nil {
		return fmt.Errorf("regulation: know browser: %w", err)
	}
	return nil
}

// Known reports whether browser completed a login to account within the
// last 30 days (Attempt.Waive).
func (r *Regulator) Known(ctx context.Context, account, browser string) bool {
	acct := normalize(account)
	if acct == "" || browser == "" {
		return false
	}
	_, err := r.store.Get(ctx, knownKey(accountKeyPart(acct), browser))
	return err == nil
}

func knownKey(part, browser string) string {
	sum := sha256.Sum256([]byte(browser))
	return "reg:known:" + part + ":" + hex.EncodeToString(sum[:16])
}

// genKey holds the generation of an account's counts for a factor: the
// counts of every network are under keys that name it, so moving it on
// forgets them all at once (the store cannot list keys). It lives as long
// as a count, so that no count outlives its generation.
func genKey(f Factor, part string) string { return "reg:gen:" + string(f) + ":" + part }

func (r *Regulator) generation(ctx context.Context, f Factor, part string) (string, error) {
	b, err := r.store.Get(ctx, genKey(f, part))
	if errors.Is(err, pending.ErrNotFound) {
		return "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("regulation: read generation: %w", err)
	}
	return string(b), nil
}

func (r *Regulator) nextGeneration(ctx context.Context, f Factor, part string) error {
	if _, err := r.store.Incr(ctx, genKey(f, part), r.cfg.ForgetAfter); err != nil {
		return fmt.Errorf("regulation: forget: %w", err)
	}
	return nil
}

// state is a count and its delay. The count is a counter of the store
// (Incr: atomic however many instances fail at once, and a password spray
// makes hundreds of concurrent failures on one network), which starts at
// the first failure and lives forget_after from then; the delay is a key
// beside it, "until-ms last-ms", that lives as long as the delay.
type state struct {
	n           int
	last, until time.Time
}

func untilKey(key string) string { return key + ":until" }

func encodeUntil(until, last time.Time) []byte {
	return []byte(strconv.FormatInt(until.UnixMilli(), 10) + " " + strconv.FormatInt(last.UnixMilli(), 10))
}

func decodeUntil(b []byte) (until, last time.Time, err error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return time.Time{}, time.Time{}, fmt.Errorf("regulation: malformed delay %q", b)
	}
	u, err1 := strconv.ParseInt(f[0], 10, 64)
	l, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("regulation: malformed delay %q", b)
	}
	return time.UnixMilli(u), time.UnixMilli(l), nil
}

// load reads the delay at key (withCount: and the count). A value this
// package did not write is dropped rather than trusted or left to block.
func (r *Regulator) load(ctx context.Context, key string, withCount bool) (state, error) {
	var st state
	b, err := r.store.Get(ctx, untilKey(key))
	switch {
	case errors.Is(err, pending.ErrNotFound):
	case err != nil:
		return state{}, fmt.Errorf("regulation: read delay: %w", err)
	default:
		if st.until, st.last, err = decodeUntil(b); err != nil {
			return state{}, r.store.Delete(ctx, untilKey(key))
		}
	}
	if !withCount {
		return st, nil
	}
	b, err = r.store.Get(ctx, key)
	switch {
	case errors.Is(err, pending.ErrNotFound):
	case err != nil:
		return state{}, fmt.Errorf("regulation: read count: %w", err)
	default:
		if st.n, err = strconv.Atoi(string(b)); err != nil || st.n < 0 {
			return state{}, r.store.Delete(ctx, key)
		}
	}
	return st, nil
}

// bump counts a failure at key and, past free failures, sets its delay.
func (r *Regulator) bump(ctx context.Context, key string, free int, now time.Time) (state, error) {
	n, err := r.store.Incr(ctx, key, r.cfg.ForgetAfter)
	if err != nil {
		// A value that is not a counter (not written here): start again.
		if _, rerr := r.store.Get(ctx, key); rerr == nil {
			if derr := r.store.Delete(ctx, key); derr == nil {
				n, err = r.store.Incr(ctx, key, r.cfg.ForgetAfter)
			}
		}
		if err != nil {
			return state{}, fmt.Errorf("regulation: count: %w", err)
		}
	}
	st := state{n: int(n), last: now}
	if d := r.cfg.Delay(st.n, free); d > 0 {
		st.until = now.Add(d)
		if err := r.store.Set(ctx, untilKey(key), encodeUntil(st.until, now), d); err != nil {
			return state{}, fmt.Errorf("regulation: delay: %w", err)
		}
	}
	return st, nil
}

// drop forgets the count and the delay at key.
func (r *Regulator) drop(ctx context.Context, key string) error {
	if err := r.store.Delete(ctx, key); err != nil {
		return err
	}
	return r.store.Delete(ctx, untilKey(key))
}

// normalize is how usernames are compared at login.
func normalize(account string) string { return strings.ToLower(strings.TrimSpace(account)) }

// accountKeyPart keeps usernames out of the store's keys and bounds their
// length.
func accountKeyPart(account string) string {
	sum := sha256.Sum256([]byte(account))
	return hex.EncodeToString(sum[:16])
}

func busyKey(f Factor, part string) string { return "reg:busy:" + string(f) + ":" + part }
func networkKey(network string) string     { return "reg:net:" + network }
