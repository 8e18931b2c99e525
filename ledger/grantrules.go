package ledger

import "time"

// Rules of granting and reversing, once; a store applies them in its write transaction
// and writes what they return.

// PrepareGrant checks a grant request as given, before its idempotency key is looked up,
// and fills its default source (From empty: AccountPool). It refuses (Invalid) an amount
// that is not positive or above MaxAmount, an unknown kind, a missing key, and a source
// other than the pool or the reclaimed credits (AccountExpired).
func PrepareGrant(in GrantInput) (GrantInput, error) {
	if in.From == "" {
		in.From = AccountPool
	}
	if err := CheckAmount(in.Amount); err != nil {
		return in, err
	}
	if !in.Kind.Valid() {
		return in, Errorf(Invalid, "unknown grant kind %q", in.Kind)
	}
	if in.Key == "" {
		return in, Errorf(Invalid, "a grant needs an idempotency key")
	}
	if in.From != AccountPool && in.From != AccountExpired {
		return in, Errorf(Invalid, "credits can only come from the pool or the reclaimed credits")
	}
	return in, nil
}

// GrantStarts is when a new grant takes effect: in.EffectiveAt, or now when it is zero.
// A grant must expire after it takes effect (Invalid). It is checked once the key is
// known to be new, so that a retry of a grant made "now" stays the same request later.
func GrantStarts(in GrantInput, now time.Time) (time.Time, error) {
	eff := in.EffectiveAt
	if eff.IsZero() {
		eff = now
	}
	if !in.ExpiresAt.After(eff) {
		return eff, Errorf(Invalid, "a grant must expire after it takes effect")
	}
	return eff, nil
}

// CheckReallocation refuses (Invalid) to reallocate more reclaimed credits than
// AccountExpired holds (reclaimable).
func CheckReallocation(amount, reclaimable int64) error {
	if reclaimable < amount {
		return Errorf(Invalid, "only %d reclaimed credits are available to reallocate", reclaimable)
	}
	return nil
}

// CheckReversible decides whether transaction txID of kind may be reversed: once only
// (Conflict when reversed already), and only grants, reallocations and usage (Invalid:
// other corrections are adjustments).
func CheckReversible(txID int64, kind string, reversed bool) error {
	if reversed {
		return Errorf(Conflict, "transaction %d is already reversed", txID)
	}
	switch kind {
	case TxGrant, TxReallocate, TxUsage:
		return nil
	}
	return Errorf(Invalid, "%s transactions cannot be reversed; grant an adjustment instead", kind)
}

// CheckGrantReversible refuses (Conflict) to reverse a grant that is closed or partly
// spent: its credits are no longer all there to take back.
func CheckGrantReversible(g Grant) error {
	if g.Closed || g.Remaining != g.Amount {
		return Errorf(Conflict, "grant %d is already partly spent or closed; grant a negative adjustment is not possible, so reverse the usage or wait for the period to close", g.ID)
	}
	return nil
}

// ReversalPostings negate every posting of a transaction.
func ReversalPostings(ps []Posting) []Posting {
	out := make([]Posting, len(ps))
	for i, p := range ps {
		out[i] = Posting{Account: p.Account, Amount: -p.Amount}
	}
	return out
}

// UsageRefund is what reversing a person's usage gives back to them, from its reversal
// postings: the credits it burned, returned to their available account, as a new
// adjustment grant effective now until expires (a reversal never resurrects an expired
// grant). 0 when it burned nothing (all overage). A refund needs expires after now
// (Invalid).
func UsageRefund(personID int64, reversal []Posting, expires, now time.Time) (int64, error) {
	var refund int64
	for _, p := range reversal {
		if p.Account == AvailableAccount(personID) {
			refund += p.Amount
		}
	}
	if refund <= 0 {
		return 0, nil
	}
	if !expires.After(now) {
		return 0, Errorf(Invalid, "a usage reversal needs a refund expiry in the future")
	}
	return refund, nil
}
