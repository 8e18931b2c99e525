package ledger

import "slices"

// Burn-down: which grants a usage event draws from, and what becomes overage. These are
// the ledger's rules, once; a store reads the grants, calls them inside its write
// transaction, and writes back the grants they touched. Instants are Unix milliseconds
// (UTC) and amounts credits throughout, as the store keeps them.

// BurnGrant is one grant as burn-down sees it. Burn, BurnWithClosed and the take-back
// rules read ID, Priority, Remaining, Effective and Expires only (what ingestion loads for
// every batch); SettleEarly also reads Kind and Amount, AtPeriodStart Amount.
type BurnGrant struct {
	ID        int64
	Kind      GrantKind
	Priority  int   // Kind.Priority() when the grant was made: lower burns first
	Amount    int64 // credits granted
	Remaining int64 // credits it still holds, 0..Amount
	Effective int64 // ms: in effect from this instant (inclusive) ...
	Expires   int64 // ms: ... until this one (exclusive)
	// Touched is set whenever a rule changes Remaining: the store writes back only those.
	Touched bool
}

// InEffect reports whether the grant may be spent by usage dated at (ms).
func (g *BurnGrant) InEffect(at int64) bool { return g.Effective <= at && at < g.Expires }

// take burns up to want credits of g for usage dated at and returns how many it took.
func (g *BurnGrant) take(at, want int64) int64 {
	if want <= 0 || g.Remaining <= 0 || !g.InEffect(at) {
		return 0
	}
	n := min(want, g.Remaining)
	g.Remaining -= n
	g.Touched = true
	return n
}

// CompareBurn orders grants for burn-down: lowest priority number first (rollover and
// baseline, then lessons and adjustments, then unlocks), then earliest expiry, then oldest
// (lowest id), the order OpenMeter uses. It is negative when a burns before b.
func CompareBurn(a, b *BurnGrant) int {
	switch {
	case a.Priority != b.Priority:
		return a.Priority - b.Priority
	case a.Expires != b.Expires:
		if a.Expires < b.Expires {
			return -1
		}
		return 1
	case a.ID < b.ID:
		return -1
	case a.ID > b.ID:
		return 1
	}
	return 0
}

// SortForBurn puts grants in burn order (CompareBurn). Stores read grants in that order
// already, which this checks in one pass.
func SortForBurn(gs []*BurnGrant) {
	if !slices.IsSortedFunc(gs, CompareBurn) {
		slices.SortFunc(gs, CompareBurn)
	}
}

// Burn spends credits (≥ 0) of usage dated at from the grants in effect then, in the
// order given (burn order, see SortForBurn), and returns what none of them covered: the
// event's overage. It never takes more from a grant than it holds, and
// credits = burned + overage.
func Burn(grants []*BurnGrant, at, credits int64) (overage int64) {
	left := credits
	for _, g := range grants {
		if left <= 0 {
			break
		}
		left -= g.take(at, left)
	}
	return left
}

// BurnWithClosed is Burn for a late event, dated in a period whose close already ran:
// the grants that close ended (closed, in burn order) take part with the open ones, in
// one burn order, as if the event had arrived in time. It returns the overage and how
// much came from closed grants.
func BurnWithClosed(open, closed []*BurnGrant, at, credits int64) (overage, fromClosed int64) {
	left := credits
	i, j := 0, 0
	for left > 0 && (i < len(open) || j < len(closed)) {
		if j < len(closed) && (i >= len(open) || CompareBurn(closed[j], open[i]) < 0) {
			n := closed[j].take(at, left)
			fromClosed += n
			left -= n
			j++
			continue
		}
		left -= open[i].take(at, left)
		i++
	}
	return left, fromClosed
}

// ArrivalOrderMatters reports whether a grant in effect over [effective, expires) may have
// made usage burn differently for arriving out of time order: it starts or ends after
// earliest, the earliest instant of the usage just booked, and no later than latest, the
// latest instant usage may be dated. Otherwise every event dated from earliest on sees the
// grant alike, and burn-down leaves the same grants and the same total overage in any
// order; the store burns a person's period again (Reburn) only when this holds for one of
// their grants.
func ArrivalOrderMatters(effective, expires, earliest, latest int64) bool {
	return (effective > earliest && effective <= latest) || (expires > earliest && expires <= latest)
}

// UsageLine is one booked usage event as the re-burning rules see it.
type UsageLine struct {
	At      int64 // ms, when it happened
	Credits int64
	// Overage is its overage as booked so far (its row plus later adjustments).
	Overage int64
}

// burnedBy is what lines took from grants: credits less overage.
func burnedBy(lines []UsageLine) int64 {
	var n int64
	for _, l := range lines {
		n += l.Credits - l.Overage
	}
	return n
}

// AtPeriodStart sets each grant's Remaining to what it held when its period started, for
// Reburn: its amount, or for the carry-over grant (rolloverID; 0: none) what its close
// carried (less what late usage took back since).
func AtPeriodStart(grants []*BurnGrant, rolloverID, carried int64) {
	for _, g := range grants {
		g.Remaining = g.Amount
		if rolloverID != 0 && g.ID == rolloverID {
			g.Remaining = carried
		}
	}
}

// Reburn burns lines (in time order) again from grants (burn order) whose Remaining is
// their state at from, the start of the lines' period (a grant's amount; the carry-over
// grant's what its close carried), as if every event had arrived when it happened. held
// is what the grants hold now. It returns each line's change of overage (new minus
// booked; most are 0). ok is false, and nothing is to be changed (the first allocation
// stands), when that starting state is not known exactly: a grant took effect before from
// (an unlock lasting into the period, partly spent before it), or the grants' starting
// state less what they hold is not what the lines burned (grants and usage do not tell
// one story: an older correction).
func Reburn(grants []*BurnGrant, from, held int64, lines []UsageLine) (deltas []int64, ok bool) {
	var start int64
	for _, g := range grants {
		if g.Effective < from {
			return nil, false
		}
		start += g.Remaining
	}
	if start-held != burnedBy(lines) {
		return nil, false
	}
	deltas = make([]int64, len(lines))
	for i, l := range lines {
		deltas[i] = Burn(grants, l.At, l.Credits) - l.Overage
	}
	return deltas, true
}

// SettleEarly books a person's usage dated in a new period (lines, in time order, from
// the period's start instant from) as if the grants the reset makes at from (baseline and
// carry-over, effective exactly at from) had existed when it arrived. grants are the
// person's open grants in burn order, the new ones included. Usage that arrived first is
// overage, or burned a grant lasting across the boundary that in time order would have
// been spent after the new ones: what the lines burned is given back to the older grants,
// latest in burn order first, and every line is burned again in time order. When that
// cannot all be given back (something else burned those grants), what was burned stands
// and only the lines' overage is burned from what is left. It returns each line's change
// of overage; grants are left as they are to be stored (Touched).
func SettleEarly(grants []*BurnGrant, from int64, lines []UsageLine) (deltas []int64) {
	isNew := func(g *BurnGrant) bool {
		return g.Effective == from && (g.Kind == GrantBaseline || g.Kind == GrantRollover)
	}
	type state struct {
		remaining int64
		touched   bool
	}
	before := make([]state, len(grants))
	for i, g := range grants {
		before[i] = state{g.Remaining, g.Touched}
	}
	restore := burnedBy(lines)
	for i := len(grants) - 1; i >= 0 && restore > 0; i-- {
		g := grants[i]
		if isNew(g) {
			continue
		}
		if back := min(restore, g.Amount-g.Remaining); back > 0 {
			g.Remaining += back
			g.Touched = true
			restore -= back
		}
	}
	rebook := restore == 0
	if !rebook {
		for i, g := range grants {
			g.Remaining, g.Touched = before[i].remaining, before[i].touched
		}
	}
	deltas = make([]int64, len(lines))
	for i, l := range lines {
		need := l.Overage
		if rebook {
			need = l.Credits
		}
		deltas[i] = Burn(grants, l.At, need) - l.Overage
	}
	return deltas
}
