package bot

import (
	"testing"
	"time"
)

// ceilingServer is a platform that accepts at most limit sends in any second (sliding
// window) and refuses the rest with a Retry-After of one second, as Slack's workspace
// ceiling does.
type ceilingServer struct {
	limit    int
	refuse   int // refuse this many first sends whatever the rate (a transient 429)
	accepted []time.Time
}

func (s *ceilingServer) send(at time.Time) bool {
	if s.refuse > 0 {
		s.refuse--
		return false
	}
	i := 0
	for i < len(s.accepted) && at.Sub(s.accepted[i]) >= time.Second {
		i++
	}
	s.accepted = s.accepted[i:]
	if len(s.accepted) >= s.limit {
		return false
	}
	s.accepted = append(s.accepted, at)
	return true
}

// simulate delivers n messages through b to a server with the given ceiling, each
// answer arriving latency after its send (so several sends are in flight when a 429
// comes back), on a simulated clock. It returns the time taken and the refusals.
func simulate(b *Budget, ceiling, n int, latency time.Duration, early int) (time.Duration, int) {
	srv := &ceilingServer{limit: ceiling, refuse: early}
	type answer struct {
		start, at time.Time
		ok        bool
	}
	var inflight []answer
	t0 := time.Unix(1_700_000_000, 0)
	clock := t0
	delivered, refused := 0, 0
	apply := func(until time.Time) {
		for len(inflight) > 0 && !inflight[0].at.After(until) {
			a := inflight[0]
			inflight = inflight[1:]
			if a.ok {
				delivered++
				b.Accepted(a.start, a.at)
			} else {
				refused++
				b.Throttled(a.start, a.at, time.Second)
			}
		}
	}
	for delivered < n {
		if n-delivered-len(inflight) <= 0 {
			// everything left is in flight: wait for the next answer
			clock = inflight[0].at
			apply(clock)
			continue
		}
		t := b.Reserve(clock)
		apply(t)
		clock = t
		inflight = append(inflight, answer{start: t, at: t.Add(latency), ok: srv.send(t)})
	}
	return clock.Sub(t0), refused
}

func TestBudgetRunsCloseToAnUnknownCeiling(t *testing.T) {
	for _, tt := range []struct {
		ceiling int
		latency time.Duration
		early   int // refusals at the start, whatever the rate
	}{
		{20, 30 * time.Millisecond, 0}, {20, 200 * time.Millisecond, 0}, {5, 50 * time.Millisecond, 0}, {100, 50 * time.Millisecond, 0},
		{20, 30 * time.Millisecond, 1}, {100, 30 * time.Millisecond, 3},
	} {
		n := 50 * tt.ceiling
		took, refused := simulate(NewBudget(BudgetConfig{}), tt.ceiling, n, tt.latency, tt.early)
		ideal := time.Duration(n/tt.ceiling) * time.Second
		if took > ideal*13/10 {
			t.Errorf("ceiling %d/s, latency %s: %d messages took %s, more than 1.3x the %s the ceiling allows (%d refusals)",
				tt.ceiling, tt.latency, n, took, ideal, refused)
		}
		if refused > n/50+tt.early {
			t.Errorf("ceiling %d/s: %d refusals for %d messages", tt.ceiling, refused, n)
		}
		t.Logf("ceiling %d/s, latency %s: %s (ideal %s), %d refusals", tt.ceiling, tt.latency, took, ideal, refused)
	}
}

func TestBudgetKeepsAFixedCeilingAndYieldsToPrioritySends(t *testing.T) {
	b := NewBudget(BudgetConfig{Start: 50, Max: 10})
	now := time.Unix(1_700_000_000, 0)
	for range 100 {
		b.Accepted(now, now)
	}
	if r := b.Rate(); r != 10 {
		t.Fatalf("rate %v over a fixed ceiling of 10", r)
	}
	first := b.Reserve(now)
	b.Take(now) // an approval goes now
	second := b.Reserve(now)
	if got := second.Sub(first); got != 200*time.Millisecond {
		t.Errorf("after a priority send the next bulk send waits %s, want two slots (200ms)", got)
	}
	b.Throttled(now, now, 3*time.Second)
	if at := b.Reserve(now); at.Before(now.Add(3 * time.Second)) {
		t.Errorf("a bulk send at %s, inside the 3 s the platform asked for", at.Sub(now))
	}
	if r := b.Rate(); r >= 10 || r < 1 {
		t.Errorf("rate %v after a 429", r)
	}
}

func TestBudgetQuietSendsDoNotInflateTheRate(t *testing.T) {
	b := NewBudget(BudgetConfig{})
	now := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		at := now.Add(time.Duration(i) * 10 * time.Second) // one message every 10 s
		b.Accepted(at, at)
	}
	if r := b.Rate(); r > 10 {
		t.Errorf("rate grew to %v on one message every 10 s: nothing showed the platform accepts that", r)
	}
}
