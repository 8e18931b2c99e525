package bot

import (
	"context"
	"math"
	"sync"
	"time"
)

// Budget paces messages to one platform-wide limit that the platform does not publish:
// Slack's per-workspace ceiling on chat.postMessage, Teams' per-app per-tenant rate
// (../shared/spec/platform-limits.md). It learns the ceiling from 429s, like TCP:
//
//   - slow start: from Start sends a second the rate doubles every second until the first
//     429;
//   - additive increase: after that it grows every second by Step times the rate the
//     platform accepted when it last refused (the peak), and ten times more slowly from
//     95% to 102% of that peak, so that it probes just under the ceiling for a long time
//     (about fourteen seconds, whatever its size); past 102% without a refusal the
//     ceiling has moved, and it doubles every second again;
//   - multiplicative decrease: a 429 pauses every send for the Retry-After the platform
//     asked for and sets the rate to Decrease times what the platform accepted in the
//     second before (one decrease per burst of refusals).
//
// Sends that must not wait (approvals, replies to a person) Take a slot without waiting,
// so bulk sends (digests, nudges) yield to them. Max, when set, is a fixed ceiling on top.
// Budget is safe for concurrent use; times are wall clock.
type Budget struct {
	mu     sync.Mutex
	cfg    BudgetConfig
	rate   float64     // sends a second now
	peak   float64     // sends a second the platform accepted when it last refused; 0 before
	next   time.Time   // earliest start of the next bulk send
	paused time.Time   // no send before this (Retry-After)
	cut    time.Time   // sends started before this were already answered by a decrease
	recent []time.Time // accepted sends of the last second, oldest first
}

// BudgetConfig tunes a Budget; zero fields take the defaults given.
type BudgetConfig struct {
	Start    float64 // sends a second at first (default 4)
	Min      float64 // floor after decreases (default 1)
	Max      float64 // fixed ceiling; 0: none, only what the platform accepts
	Step     float64 // additive increase per second, as a share of the peak (default 0.05)
	Decrease float64 // multiplicative decrease, in (0,1) (default 0.9)
}

// NewBudget returns a budget at cfg.Start sends a second.
func NewBudget(cfg BudgetConfig) *Budget {
	if cfg.Start <= 0 {
		cfg.Start = 4
	}
	if cfg.Min <= 0 {
		cfg.Min = 1
	}
	if cfg.Step <= 0 {
		cfg.Step = 0.05
	}
	if cfg.Decrease <= 0 || cfg.Decrease >= 1 {
		cfg.Decrease = 0.9
	}
	if cfg.Max > 0 {
		cfg.Start = min(cfg.Start, cfg.Max)
		cfg.Min = min(cfg.Min, cfg.Max)
	}
	return &Budget{cfg: cfg, rate: cfg.Start}
}

// Rate is the current pace in sends a second.
func (b *Budget) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}

func (b *Budget) interval() time.Duration {
	return time.Duration(float64(time.Second) / b.rate)
}

// Reserve books the next bulk slot and returns when that send may start (now or later).
func (b *Budget) Reserve(now time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := now
	if b.next.After(t) {
		t = b.next
	}
	if b.paused.After(t) {
		t = b.paused
	}
	b.next = t.Add(b.interval())
	return t
}

// Wait blocks until a bulk send may start, or ctx ends. A 429 heard while waiting
// (another send's) holds this one too, for as long as the platform asked.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		d := time.Until(b.Reserve(time.Now()))
		if d > 0 {
			timer := time.NewTimer(d)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-timer.C:
			}
		}
		b.mu.Lock()
		paused := b.paused
		b.mu.Unlock()
		if !time.Now().Before(paused) {
			return ctx.Err()
		}
	}
}

// Take books a slot for a send that goes now without waiting (an approval, a reply):
// the bulk sends not yet booked move back by one slot.
func (b *Budget) Take(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent = append(b.recent, now)
	b.trim(now)
	if b.next.Before(now) {
		b.next = now
	}
	b.next = b.next.Add(b.interval())
}

// Accepted records that a send started at start was accepted at now, and raises the
// rate while the budget is what holds sends back (a quiet outbox proves nothing).
func (b *Budget) Accepted(start, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent = append(b.recent, now)
	b.trim(now)
	if b.rate > 2*float64(len(b.recent))+b.cfg.Start {
		return
	}
	// Each accepted send adds x/rate: x a second at full pace.
	switch {
	case b.peak == 0 || b.rate >= 1.02*b.peak:
		// Slow start, or past the last peak without a refusal: the ceiling has moved, or
		// the peak was measured while little was sent (a stray 429 at the start).
		b.rate += math.Ln2 // doubles a second
	case b.rate < 0.95*b.peak:
		b.rate += b.cfg.Step * b.peak / b.rate
	default:
		b.rate += b.cfg.Step * b.peak / (10 * b.rate)
	}
	if b.cfg.Max > 0 && b.rate > b.cfg.Max {
		b.rate = b.cfg.Max
	}
}

// Throttled records a refusal (429) of a send started at start, with the wait the
// platform asked for (Retry-After): every send pauses until now+after, and the rate
// drops once per burst of refusals.
func (b *Budget) Throttled(start, now time.Time, after time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if until := now.Add(after); until.After(b.paused) {
		b.paused = until
	}
	if b.next.Before(b.paused) {
		b.next = b.paused
	}
	if start.Before(b.cut) {
		return
	}
	b.trim(now)
	accepted := float64(len(b.recent))
	if accepted < b.rate/2 {
		// The budget was not what held sends back (a first send refused, a quiet moment,
		// a 429 about one channel): this says nothing about the ceiling, and only the
		// pause applies.
		return
	}
	b.cut = now
	accepted = min(accepted, b.rate)
	b.peak = accepted
	b.rate = max(b.cfg.Min, b.cfg.Decrease*accepted)
}

func (b *Budget) trim(now time.Time) {
	i := 0
	for i < len(b.recent) && now.Sub(b.recent[i]) > time.Second {
		i++
	}
	b.recent = append(b.recent[:0], b.recent[i:]...)
}

type bulkKey struct{}

// WithBulk marks ctx as carrying a bulk send (the outbox): a platform then reports a
// 429 at once as a RetryAfterError instead of waiting and retrying itself, so that the
// outbox's Budget hears of it.
func WithBulk(ctx context.Context) context.Context { return context.WithValue(ctx, bulkKey{}, true) }

// IsBulk tells whether ctx carries a bulk send.
func IsBulk(ctx context.Context) bool { v, _ := ctx.Value(bulkKey{}).(bool); return v }
