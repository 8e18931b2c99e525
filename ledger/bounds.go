package ledger

import (
	"math"
	"time"
)

// Bounds on what outside input may carry, so that one bad gateway or one bad model weight
// can never make a sum overflow and take the organisation's balances, digests and reports
// down with it. With these, one person's usage in a period is at most MaxPeriodCredits
// (1e13), and the organisation's usage over 10,000 people and 90,000 periods still fits
// an int64; sums in SQL are overflow-proof as well (ledger/sqlite's wideSum).
const (
	// MaxEventTokens is the most input tokens, and the most output tokens, one usage event
	// may report: a billion, a thousand times the largest context window in use.
	MaxEventTokens int64 = 1_000_000_000
	// MaxEventCredits is the most one usage event may cost after the model's weight: the
	// same bound as any grant or request (MaxAmount, 1e12 credits).
	MaxEventCredits = MaxAmount
	// MaxPeriodCredits is the most one person's usage may cost in one allowance period
	// (1e13 credits); an event that would pass it is rejected, the earlier ones stay.
	MaxPeriodCredits int64 = 10_000_000_000_000
	// MaxQuarantinePerKey is how many events one API key may have waiting in quarantine
	// for people not in the directory; beyond it they are rejected, so a gateway sending
	// unknown identities cannot fill the disk.
	MaxQuarantinePerKey = 10_000
	// MaxQuarantineAge is how long a quarantined event waits for its person before it is
	// given up (it could no longer be posted anyway: usage older than the ingestion age
	// limit is corrected with an adjustment grant).
	MaxQuarantineAge = 30 * 24 * time.Hour
)

// SatAdd adds two int64 values, stopping at the int64 limits instead of wrapping: for
// figures people read (balances, reports), where a clamped value is better than a
// wrapped one or an error.
func SatAdd(a, b int64) int64 {
	if s, ok := AddChecked(a, b); ok {
		return s
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// SatFloat converts a float figure (a share, a mean, a prorated allowance) to int64,
// stopping at the int64 limits: Go leaves converting an out-of-range float undefined (on
// amd64 it gives math.MinInt64, a negative figure). NaN gives 0.
func SatFloat(f float64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f >= math.MaxInt64: // float64(MaxInt64) is 2^63, already out of range
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

// SatSub is a - b, stopping at the int64 limits.
func SatSub(a, b int64) int64 {
	if b == math.MinInt64 {
		if a >= 0 {
			return math.MaxInt64
		}
		return a - b
	}
	return SatAdd(a, -b)
}

// EventCreditsProblem says why an event costing credits cannot be recorded, or "" when
// it can.
func EventCreditsProblem(credits int64) string {
	if credits < 0 {
		return "the event's cost in credits is negative; check the token counts"
	}
	if credits > MaxEventCredits {
		return "the event costs " + FormatCredits(credits) + " credits, more than the " + FormatCredits(MaxEventCredits) +
			" one event may; check the token counts and the model's weight in the policy"
	}
	return ""
}
