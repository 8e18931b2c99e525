package ledger

import "time"

// GrantInput asks for credits to be granted to one person.
type GrantInput struct {
	Key         string // idempotency key; the same key and input return the first grant
	PersonID    int64
	Kind        GrantKind
	Amount      int64
	EffectiveAt time.Time // zero: now
	ExpiresAt   time.Time
	Reason      string
	Actor       string
	// From is the source account: the pool by default, AccountExpired to reallocate
	// reclaimed credits (limited to what it holds).
	From string
}

// ReverseInput asks for a correction of one transaction.
type ReverseInput struct {
	TxID   int64
	Key    string // default "reverse:<id>"
	Reason string
	Actor  string
	// RefundExpiresAt is when credits given back by reversing usage expire (the end of the
	// current period); a reversal never resurrects an expired grant.
	RefundExpiresAt time.Time
}

// ResetInput closes one person's period and opens the next.
type ResetInput struct {
	PersonID int64
	Boundary time.Time // the instant the old period ends and the new one starts
	OldKey   string    // period keys, e.g. "2026-10" and "2026-11"
	NewKey   string
	NextEnd  time.Time // when the new period ends
	Baseline int64     // 0: no baseline grant
	// Rollover bounds what is carried: min(max, max(unspent, min)); nil carries nothing.
	// The limits are stored with the close, so a late event is taken back with the same.
	Rollover *RolloverLimits
}

// ResetResult says what one reset did.
type ResetResult struct {
	PersonID int64
	Expired  int64
	Carried  int64
	Baseline int64
	// Settled is overage of usage dated in the new period, booked before its grants
	// existed, that the new grants now cover.
	Settled int64
}
