package pending

import "time"

// SetSweepInterval changes how often m sweeps; call it before the first use of m.
func SetSweepInterval(m *Memory, d time.Duration) { m.sweepEvery = d }

// StoredEntries counts the entries m holds, expired ones not yet swept included.
func StoredEntries(m *Memory) int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
