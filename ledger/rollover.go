package ledger

// Period close and rollover: what a reset does with the credits of the grants that end at
// a period's boundary, how a late event changes that close, and who counts as hoarding.
// Pure rules, once; a store reads their inputs and writes their outputs in its write
// transaction. Amounts are credits.

// CloseOutcome is what closing one person's period does.
type CloseOutcome struct {
	// Record is whether the close is recorded at all: only for a person who had grants
	// ending at the boundary. A minimum rollover must not mint credits "carried over" from
	// a period someone was not in.
	Record bool
	// Unspent is what the ending grants still held; all of it leaves them.
	Unspent int64
	// Carried is what the carry-over grant of the next period holds:
	// min(Max, max(Unspent, Min)) under Limits.
	Carried int64
	// Expired goes to AccountExpired (the reclaimable pool): Unspent - Carried when
	// positive. Minted comes from AccountPool when a minimum rollover carries more than was
	// unspent. Carried + Expired = Unspent + Minted, and one of Expired, Minted is 0.
	Expired, Minted int64
	// Limits are the rollover limits applied (zero when nothing is carried); they are
	// stored with the close so that a late event is taken back with the same ones.
	Limits RolloverLimits
	// Postings is the close's transaction: the three accounts ClosePostings names, or one
	// zero posting on the person's available account when nothing moves (the close is still
	// recorded).
	Postings []Posting
}

// ClosePeriod decides one person's period close. ending holds what each grant ending at
// the boundary still has (credits ≥ 0); limits nil carries nothing.
func ClosePeriod(personID int64, ending []int64, limits *RolloverLimits) CloseOutcome {
	out := CloseOutcome{Record: len(ending) > 0}
	for _, rem := range ending {
		out.Unspent = SatAdd(out.Unspent, rem)
	}
	if limits != nil && len(ending) > 0 {
		out.Limits = *limits
		out.Carried = limits.Carry(out.Unspent)
	}
	out.Expired = max(0, out.Unspent-out.Carried)
	out.Minted = max(0, out.Carried-out.Unspent)
	if !out.Record {
		return out
	}
	if out.Carried == out.Unspent {
		out.Postings = []Posting{{Account: AvailableAccount(personID), Amount: 0}}
	} else {
		out.Postings = ClosePostings(personID, out.Unspent, out.Carried)
	}
	return out
}

// ClosePostings are the postings of a period close that ends unspent credits and carries
// carried of them: the person's available account, AccountExpired and AccountPool (which
// mints what a minimum rollover adds), in that order, zeros included.
func ClosePostings(personID, unspent, carried int64) []Posting {
	return []Posting{
		{Account: AvailableAccount(personID), Amount: carried - unspent},
		{Account: AccountExpired, Amount: max(0, unspent-carried)},
		{Account: AccountPool, Amount: -max(0, carried-unspent)},
	}
}

// Recarry recomputes a close after late events burned credits of the grants it ended:
// unspent' = unspent - burned, carried' = limits.Carry(unspent'), and takeBack =
// carried - carried', what the next period must give back. Carry never decreases as
// unspent grows, so takeBack ≥ 0 for burned ≥ 0 (a stored carried is never below the
// formula's).
func Recarry(unspent, carried int64, limits RolloverLimits, burned int64) (unspent2, carried2, takeBack int64) {
	unspent2 = unspent - burned
	carried2 = limits.Carry(unspent2)
	return unspent2, carried2, carried - carried2
}

// TakeBackFromGrants takes up to amount credits back from a person's open grants for a
// close that carries less than it did: from the carry-over grant (rolloverID) first while
// it holds credits, then from the grants of the next period, [boundary, nextEnd) in ms,
// in burn order (open is in burn order). It returns what it could not take.
func TakeBackFromGrants(open []*BurnGrant, rolloverID, boundary, nextEnd, amount int64) (left int64) {
	left = amount
	take := func(g *BurnGrant) {
		n := min(left, g.Remaining)
		if n > 0 {
			g.Remaining -= n
			g.Touched = true
			left -= n
		}
	}
	for _, g := range open {
		if left > 0 && g.ID == rolloverID {
			take(g)
		}
	}
	for _, g := range open {
		if left > 0 && g.ID != rolloverID && g.Expires > boundary && g.Effective < nextEnd {
			take(g)
		}
	}
	return left
}

// TakeBackFromUsage turns the next period's latest spending back into overage, up to
// amount: lines are that period's usage in time order. It returns each line's increase
// of overage and what could not be taken (the carried credits went to usage since
// reversed): the close then keeps carrying that much more than the formula.
func TakeBackFromUsage(lines []UsageLine, amount int64) (deltas []int64, left int64) {
	deltas = make([]int64, len(lines))
	left = amount
	for i := len(lines) - 1; i >= 0 && left > 0; i-- {
		d := min(left, lines[i].Credits-lines[i].Overage)
		if d > 0 {
			deltas[i] = d
			left -= d
		}
	}
	return deltas, left
}

// LateUsagePostings are the postings that turn a close of (unspent, carried) into one of
// (unspent2, carried2), when meanwhile the overage of usage rose by overageUp credits
// (spending turned back into overage; negative: overage turned into spending): on the
// person's available and overage accounts, AccountExpired and AccountPool, in that order,
// zeros included. Credits already reallocated from the reclaimable pool cannot be taken
// back from it: what expiredHeld (AccountExpired's balance) does not cover comes from
// AccountPool instead.
func LateUsagePostings(personID, unspent, carried, unspent2, carried2, overageUp, expiredHeld int64) []Posting {
	before := ClosePostings(personID, unspent, carried)
	after := ClosePostings(personID, unspent2, carried2)
	avail := after[0].Amount - before[0].Amount + overageUp
	overage := -overageUp
	expired := after[1].Amount - before[1].Amount
	pool := after[2].Amount - before[2].Amount
	if expired < 0 {
		if short := -expired - max(0, expiredHeld); short > 0 {
			expired += short
			pool -= short
		}
	}
	return []Posting{
		{Account: AvailableAccount(personID), Amount: avail},
		{Account: OverageAccount(personID), Amount: overage},
		{Account: AccountExpired, Amount: expired},
		{Account: AccountPool, Amount: pool},
	}
}

// Hoarding reports whether a person whose period close expired credits, out of granted
// credits granted in that period, let more than ratio of them expire (the policy's
// segments.hoarding_balance_ratio).
func Hoarding(expired, granted int64, ratio float64) bool {
	return granted > 0 && float64(expired) > ratio*float64(granted)
}
