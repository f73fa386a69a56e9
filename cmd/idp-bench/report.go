package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// stats are one virtual user's (or, merged, a run's) results: the latency
// of each successful operation by kind, and failures by kind and error.
type stats struct {
	latencies map[string][]time.Duration
	failed    map[string]int
	errors    map[string]int    // by stepError.key
	samples   map[string]string // one detail per error key
}

func newStats() *stats {
	return &stats{latencies: map[string][]time.Duration{}, failed: map[string]int{}, errors: map[string]int{}, samples: map[string]string{}}
}

func (s *stats) record(op string, d time.Duration, err error) {
	if err == nil {
		s.latencies[op] = append(s.latencies[op], d)
		return
	}
	s.failed[op]++
	key, detail := "other: "+err.Error(), ""
	var se *stepError
	if errors.As(err, &se) {
		key, detail = se.key(), se.detail
	}
	s.errors[key]++
	if _, ok := s.samples[key]; !ok && detail != "" {
		s.samples[key] = truncate(detail, 160)
	}
}

func (s *stats) merge(o *stats) {
	for op, l := range o.latencies {
		s.latencies[op] = append(s.latencies[op], l...)
	}
	for op, n := range o.failed {
		s.failed[op] += n
	}
	for k, n := range o.errors {
		s.errors[k] += n
	}
	for k, v := range o.samples {
		if _, ok := s.samples[k]; !ok {
			s.samples[k] = v
		}
	}
}

// okOf counts the successful operations of the kinds ops.
func (s *stats) okOf(ops ...string) int {
	n := 0
	for _, op := range ops {
		n += len(s.latencies[op])
	}
	return n
}

func (s *stats) failedTotal() int {
	n := 0
	for _, v := range s.failed {
		n += v
	}
	return n
}

func (s *stats) firstError() string {
	for _, k := range slices.Sorted(maps.Keys(s.errors)) {
		return k
	}
	return ""
}

// ops are the kinds seen, in the order of the flow.
func (s *stats) ops() []string {
	order := []string{"login", "refresh", "userinfo", "client_credentials", "discovery", "jwks", "login after a failed refresh"}
	seen := map[string]bool{}
	for op := range s.latencies {
		seen[op] = true
	}
	for op := range s.failed {
		seen[op] = true
	}
	var out []string
	for _, op := range order {
		if seen[op] {
			out = append(out, op)
			delete(seen, op)
		}
	}
	return append(out, slices.Sorted(maps.Keys(seen))...)
}

// percentile is the nearest-rank percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// report is a run's outcome.
type report struct {
	Mode              string
	Issuer            string
	Concurrency       int
	Refresh, Userinfo bool
	Elapsed           time.Duration
	Stopped           string
	Stats             *stats
	Waits             int           // times a virtual user waited for a new TOTP step
	Waited            time.Duration // summed over virtual users
	ServerPID         int
	ServerCPU         time.Duration // the server's CPU time during the measured phase
	ClientCPU         time.Duration // this process's
	MachineCPU        time.Duration // every process's (0: not measured)
	References        []*reference  // before and after the load
	Reference         *reference    // the faster of them, which the targets use
}

// primary are the operations the mode's throughput counts, and their name.
func (r *report) primary() ([]string, string) {
	switch r.Mode {
	case modeLogin:
		return []string{"login"}, "logins"
	case modeRefresh:
		return []string{"refresh"}, "refreshes"
	case modeClientCredentials:
		return []string{"client_credentials"}, "tokens"
	}
	return []string{"discovery", "jwks"}, "requests"
}

// OK is the count of successful primary operations.
func (r *report) OK() int {
	ops, _ := r.primary()
	return r.Stats.okOf(ops...)
}

// Failed counts every failed operation, of any kind.
func (r *report) Failed() int { return r.Stats.failedTotal() }

// Throughput is successful primary operations per second.
func (r *report) Throughput() float64 { return float64(r.OK()) / r.Elapsed.Seconds() }

// ServerCPUPer is the server's CPU time per successful primary operation.
func (r *report) ServerCPUPer() time.Duration {
	if r.ServerPID == 0 || r.OK() == 0 {
		return 0
	}
	return r.ServerCPU / time.Duration(r.OK())
}

// verdict is one of the targets, met or missed.
type verdict struct {
	what  string
	value float64
	op    string // ">=" or "<"
	want  float64
	how   string // how value was computed
}

func (v verdict) met() bool {
	if v.op == "<" {
		return v.value < v.want
	}
	return v.value >= v.want
}

// Verdicts are the targets this run can judge.
func (r *report) Verdicts() []verdict {
	var out []verdict
	ref := r.Reference
	tp := r.Throughput()
	switch r.Mode {
	case modeLogin:
		if r.Refresh || r.Userinfo {
			return nil // each login carries more work than the targets are for
		}
		if ref != nil && ref.count > 0 {
			out = append(out, verdict{what: "full login rate / argon2id-only rate", value: tp / ref.rate(), op: ">=", want: 0.9,
				how: fmt.Sprintf("%.2f/s / %.2f/s", tp, ref.rate())})
			if per := r.ServerCPUPer(); per > 0 {
				out = append(out, verdict{what: "server CPU per login / CPU per hash", value: float64(per) / float64(ref.cpuPer()), op: "<", want: 1.15,
					how: fmt.Sprintf("%s / %s", ms(per), ms(ref.cpuPer()))})
			}
		}
	case modeRefresh:
		if ref != nil && ref.count > 0 {
			out = append(out, verdict{what: "refresh rate / raw RS256 signing rate", value: tp / ref.rate(), op: ">=", want: 0.75,
				how: fmt.Sprintf("%.1f/s / %.1f/s", tp, ref.rate())})
		}
	case modeClientCredentials:
		out = append(out, verdict{what: "client credentials rate (per second)", value: tp, op: ">=", want: 5000, how: fmt.Sprintf("%.1f/s", tp)})
	case modeDiscovery:
		if ref != nil && ref.count > 0 {
			out = append(out, verdict{what: "discovery/JWKS rate / static file rate", value: tp / ref.rate(), op: ">=", want: 0.7,
				how: fmt.Sprintf("%.1f/s / %.1f/s", tp, ref.rate())})
		}
	}
	return out
}

// singular names one of unit.
func singular(unit string) string {
	switch unit {
	case "hashes":
		return "hash"
	case "refreshes":
		return "refresh"
	}
	return strings.TrimSuffix(unit, "s")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func msShort(d time.Duration) string {
	if d < 10*time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// busyElsewhere reports whether other processes took a noticeable share of
// the machine (a fifth of a core) while the load or the reference used ran.
func (r *report) busyElsewhere() bool {
	const noticeable = 0.2
	if r.MachineCPU > 0 && r.ServerPID != 0 && (r.MachineCPU-r.ClientCPU-r.ServerCPU).Seconds()/r.Elapsed.Seconds() > noticeable {
		return true
	}
	ref := r.Reference
	return ref != nil && ref.machine > 0 && (ref.machine-ref.cpu).Seconds()/ref.elapsed.Seconds() > noticeable
}

// print writes the report for people: one line per fact, the table of
// operations, the errors by kind, the reference and the targets.
func (r *report) print(w io.Writer) {
	_, unit := r.primary()
	extra := ""
	if r.Refresh {
		extra += " --refresh"
	}
	if r.Userinfo {
		extra += " --userinfo"
	}
	fmt.Fprintf(w, "mode: %s%s against %s, %d virtual users\n", r.Mode, extra, r.Issuer, r.Concurrency)
	fmt.Fprintf(w, "elapsed: %.2fs (stopped by %s)\n", r.Elapsed.Seconds(), r.Stopped)
	fmt.Fprintf(w, "throughput: %.2f %s/s (%d ok, %d operations failed)\n", r.Throughput(), unit, r.OK(), r.Failed())

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tok\tfailed\trate/s\tp50\tp95\tp99\tmax\t")
	for _, op := range r.Stats.ops() {
		l := slices.Clone(r.Stats.latencies[op])
		slices.Sort(l)
		var top time.Duration
		if len(l) > 0 {
			top = l[len(l)-1]
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%s\t%s\t%s\t\n", op, len(l), r.Stats.failed[op], float64(len(l))/r.Elapsed.Seconds(),
			msShort(percentile(l, 50)), msShort(percentile(l, 95)), msShort(percentile(l, 99)), msShort(top))
	}
	tw.Flush()

	if len(r.Stats.errors) == 0 {
		fmt.Fprintln(w, "errors: none")
	} else {
		fmt.Fprintln(w, "errors by kind:")
		keys := slices.SortedFunc(maps.Keys(r.Stats.errors), func(a, b string) int { return r.Stats.errors[b] - r.Stats.errors[a] })
		for _, k := range keys {
			fmt.Fprintf(w, "  %6d  %s", r.Stats.errors[k], k)
			if s := r.Stats.samples[k]; s != "" {
				fmt.Fprintf(w, "  e.g. %q", s)
			}
			fmt.Fprintln(w)
		}
	}
	if r.Mode == modeLogin || r.Mode == modeRefresh {
		if r.Waits == 0 {
			fmt.Fprintln(w, "TOTP: no waits for a new 30 s time step")
		} else {
			fmt.Fprintf(w, "TOTP: %d waits for a new 30 s time step (%.1fs in all): seed more users (about rate x 30 s) to measure the provider, not the users\n",
				r.Waits, r.Waited.Seconds())
		}
	}
	ok := max(r.OK(), 1)
	if r.ServerPID != 0 {
		fmt.Fprintf(w, "server CPU: %s per %s (PID %d: %.2fs over %.2fs, %.2f cores)\n", ms(r.ServerCPU/time.Duration(ok)), singular(unit),
			r.ServerPID, r.ServerCPU.Seconds(), r.Elapsed.Seconds(), r.ServerCPU.Seconds()/r.Elapsed.Seconds())
	} else {
		fmt.Fprintln(w, "server CPU: not measured (give --server-pid)")
	}
	fmt.Fprintf(w, "client CPU: %s per %s (this process: %.2fs, %.2f cores)\n", ms(r.ClientCPU/time.Duration(ok)), singular(unit),
		r.ClientCPU.Seconds(), r.ClientCPU.Seconds()/r.Elapsed.Seconds())
	if r.MachineCPU > 0 {
		fmt.Fprintf(w, "other processes (a database or Redis on this machine, anything else): %.2f cores (the machine was busy %.2f of its %d cores)\n",
			max(r.MachineCPU-r.ClientCPU-r.ServerCPU, 0).Seconds()/r.Elapsed.Seconds(), r.MachineCPU.Seconds()/r.Elapsed.Seconds(), runtime.NumCPU())
	}
	for _, ref := range r.References {
		used := ""
		if ref == r.Reference && len(r.References) > 1 {
			used = ", used"
		}
		fmt.Fprintf(w, "reference %s: %s: %.2f %s/s, %s CPU per %s (%d in %.2fs, this process",
			ref.when, ref.what, ref.rate(), ref.unit, ms(ref.cpuPer()), singular(ref.unit), ref.count, ref.elapsed.Seconds())
		if ref.machine > 0 {
			fmt.Fprintf(w, "; other processes %.2f cores", max(ref.machine-ref.cpu, 0).Seconds()/ref.elapsed.Seconds())
		}
		fmt.Fprintf(w, "%s)\n", used)
	}
	if r.busyElsewhere() {
		fmt.Fprintln(w, "warning: other processes took more than 0.2 cores during the load or the reference used (a database or Redis on this machine counts too): the ratios below are less reliable")
	}
	if r.Mode == modeLogin && (r.Refresh || r.Userinfo) {
		fmt.Fprintln(w, "target: not judged: --refresh and --userinfo add work to each login; measure without them")
	}
	for _, v := range r.Verdicts() {
		state := "met"
		if !v.met() {
			state = "MISSED"
		}
		fmt.Fprintf(w, "target: %s = %.3f (%s), want %s %.2f: %s\n", v.what, v.value, v.how, v.op, v.want, state)
	}
}
