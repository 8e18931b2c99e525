package ledger

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

const hour = int64(3_600_000) // ms

func grantsString(gs []*BurnGrant) string {
	s := ""
	for _, g := range gs {
		s += fmt.Sprintf("#%d:%d ", g.ID, g.Remaining)
	}
	return s
}

func cloneGrants(gs []*BurnGrant) []*BurnGrant {
	out := make([]*BurnGrant, len(gs))
	for i, g := range gs {
		c := *g
		out[i] = &c
	}
	return out
}

func remainings(gs []*BurnGrant) []int64 {
	out := make([]int64, len(gs))
	for i, g := range gs {
		out[i] = g.Remaining
	}
	return out
}

func grant(id int64, kind GrantKind, amount, eff, exp int64) *BurnGrant {
	return &BurnGrant{ID: id, Kind: kind, Priority: kind.Priority(), Amount: amount, Remaining: amount, Effective: eff, Expires: exp}
}

func TestCompareBurnOrder(t *testing.T) {
	// Given out of order, the grants end up as the design says: priority, expiry, id.
	gs := []*BurnGrant{
		grant(7, GrantUnlock, 10, 0, 100*hour),
		grant(6, GrantLesson, 10, 0, 200*hour),
		grant(5, GrantAdjustment, 10, 0, 100*hour),
		grant(4, GrantBaseline, 10, 0, 100*hour),
		grant(3, GrantRollover, 10, 0, 100*hour),
		grant(2, GrantUnlock, 10, 0, 50*hour),
		grant(1, GrantLesson, 10, 0, 100*hour),
	}
	SortForBurn(gs)
	var ids []int64
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	if want := []int64{3, 4, 1, 5, 6, 2, 7}; !slices.Equal(ids, want) {
		t.Fatalf("burn order %v, want %v", ids, want)
	}
}

func TestBurn(t *testing.T) {
	day := 24 * hour
	tests := []struct {
		name    string
		grants  []*BurnGrant
		at      int64
		credits int64
		overage int64
		left    []int64
	}{
		{"baseline before unlock", []*BurnGrant{grant(1, GrantBaseline, 100, 0, 30*day), grant(2, GrantUnlock, 100, 0, 30*day)}, day, 150, 0, []int64{0, 50}},
		{"beyond every grant is overage", []*BurnGrant{grant(1, GrantBaseline, 100, 0, 30*day)}, day, 130, 30, []int64{0}},
		{"no grants: all overage", nil, day, 40, 40, []int64{}},
		{"zero credits burn nothing", []*BurnGrant{grant(1, GrantBaseline, 100, 0, 30*day)}, day, 0, 0, []int64{100}},
		{"unlock not yet in effect", []*BurnGrant{grant(1, GrantBaseline, 10, 0, 30*day), grant(2, GrantUnlock, 100, 2*day, 30*day)}, day, 50, 40, []int64{0, 100}},
		{"effective instant counts", []*BurnGrant{grant(2, GrantUnlock, 100, 2*day, 30*day)}, 2 * day, 50, 0, []int64{50}},
		{"expiry instant does not", []*BurnGrant{grant(1, GrantBaseline, 100, 0, 30*day)}, 30 * day, 50, 50, []int64{100}},
		{"empty grant skipped", []*BurnGrant{{ID: 1, Priority: 1, Amount: 10, Remaining: 0, Expires: 30 * day}, grant(2, GrantUnlock, 10, 0, 30*day)}, day, 5, 0, []int64{0, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			SortForBurn(tc.grants)
			before := remainings(tc.grants)
			if got := Burn(tc.grants, tc.at, tc.credits); got != tc.overage {
				t.Errorf("overage %d, want %d", got, tc.overage)
			}
			if got := remainings(tc.grants); !slices.Equal(got, tc.left) {
				t.Errorf("left %v, want %v", got, tc.left)
			}
			for i, g := range tc.grants {
				if g.Touched != (g.Remaining != before[i]) {
					t.Errorf("grant %d touched=%v, went from %d to %d", g.ID, g.Touched, before[i], g.Remaining)
				}
			}
		})
	}
}

func TestBurnWithClosed(t *testing.T) {
	// A late event burns the closed baseline before the open unlock (priority), and the
	// closed rollover before the open baseline that expires later (expiry).
	open := []*BurnGrant{grant(4, GrantBaseline, 100, 10*hour, 20*hour), grant(5, GrantUnlock, 100, 0, 20*hour)}
	closed := []*BurnGrant{grant(1, GrantRollover, 30, 0, 10*hour), grant(2, GrantBaseline, 50, 0, 10*hour)}
	over, fromClosed := BurnWithClosed(open, closed, 5*hour, 120)
	if over != 0 || fromClosed != 80 {
		t.Fatalf("overage %d from closed %d, want 0 and 80", over, fromClosed)
	}
	if got := remainings(append(slices.Clone(closed), open...)); !slices.Equal(got, []int64{0, 0, 100, 60}) {
		t.Fatalf("grants left %v, want closed 0 0, open baseline untouched (not in effect) 100, unlock 60", got)
	}
}

// randomGrants makes up to 6 grants of random kinds, amounts and lifetimes within
// [0, 100h), some empty, in burn order.
func randomGrants(rng *rand.Rand, firstID int64) []*BurnGrant {
	kinds := []GrantKind{GrantBaseline, GrantRollover, GrantLesson, GrantAdjustment, GrantUnlock}
	n := rng.IntN(7)
	gs := make([]*BurnGrant, n)
	for i := range gs {
		eff := rng.Int64N(60) * hour
		g := grant(firstID+int64(i), kinds[rng.IntN(len(kinds))], 1+rng.Int64N(500), eff, eff+(1+rng.Int64N(60))*hour)
		g.Remaining = rng.Int64N(g.Amount + 1)
		gs[i] = g
	}
	SortForBurn(gs)
	return gs
}

// TestBurnProperties: over random grants and events, Burn conserves credits (burned +
// overage = usage), never takes more than a grant holds nor from a grant not in effect,
// marks what it changed, and is greedy in burn order: a grant is drawn on only when every
// grant before it that was in effect is empty.
func TestBurnProperties(t *testing.T) {
	for seed := range uint64(3000) {
		rng := rand.New(rand.NewPCG(seed, 17))
		gs := randomGrants(rng, 1)
		before := cloneGrants(gs)
		at := rng.Int64N(120) * hour
		credits := rng.Int64N(1500)
		over := Burn(gs, at, credits)
		var burned int64
		drew := -1
		for i, g := range gs {
			b := before[i]
			took := b.Remaining - g.Remaining
			if took < 0 || g.Remaining < 0 {
				t.Fatalf("seed %d: grant %d went from %d to %d", seed, g.ID, b.Remaining, g.Remaining)
			}
			if took > 0 && !b.InEffect(at) {
				t.Fatalf("seed %d: grant %d not in effect at %d was burned", seed, g.ID, at)
			}
			if g.Touched != (took > 0) {
				t.Fatalf("seed %d: grant %d touched=%v after taking %d", seed, g.ID, g.Touched, took)
			}
			if took > 0 {
				drew = i
			}
			burned += took
		}
		if burned+over != credits || over < 0 {
			t.Fatalf("seed %d: burned %d + overage %d != usage %d", seed, burned, over, credits)
		}
		for i := 0; i < drew; i++ {
			if before[i].InEffect(at) && gs[i].Remaining != 0 {
				t.Fatalf("seed %d: grant %d was drawn on while grant %d before it in burn order still holds %d (%s)", seed, gs[drew].ID, gs[i].ID, gs[i].Remaining, grantsString(gs))
			}
		}
		if over > 0 {
			for _, g := range gs {
				if g.InEffect(at) && g.Remaining != 0 {
					t.Fatalf("seed %d: overage %d while grant %d still holds %d", seed, over, g.ID, g.Remaining)
				}
			}
		}
	}
}

// TestBurnWithClosedIsOneBurnOrder: burning a late event from open and closed grants is
// Burn over both in one burn order; what comes from closed grants is what they lost.
func TestBurnWithClosedIsOneBurnOrder(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 23))
		open, closed := randomGrants(rng, 1), randomGrants(rng, 100)
		all := append(cloneGrants(open), cloneGrants(closed)...)
		SortForBurn(all)
		at, credits := rng.Int64N(120)*hour, rng.Int64N(1500)
		var closedBefore int64
		for _, g := range closed {
			closedBefore += g.Remaining
		}
		over, fromClosed := BurnWithClosed(open, closed, at, credits)
		if want := Burn(all, at, credits); over != want {
			t.Fatalf("seed %d: overage %d, one burn order gives %d", seed, over, want)
		}
		byID := map[int64]int64{}
		for _, g := range all {
			byID[g.ID] = g.Remaining
		}
		var closedAfter int64
		for _, g := range append(slices.Clone(open), closed...) {
			if g.Remaining != byID[g.ID] {
				t.Fatalf("seed %d: grant %d holds %d, one burn order leaves %d", seed, g.ID, g.Remaining, byID[g.ID])
			}
		}
		for _, g := range closed {
			closedAfter += g.Remaining
		}
		if fromClosed != closedBefore-closedAfter {
			t.Fatalf("seed %d: fromClosed %d, closed grants lost %d", seed, fromClosed, closedBefore-closedAfter)
		}
	}
}

// TestBurnOrderIndependentWithinStableGrants is why only arrivals across a grant's start
// or end need burning again (outOfOrderPeople): when every grant is in effect for every
// event, any arrival order leaves the same grants and the same total overage.
func TestBurnOrderIndependentWithinStableGrants(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 29))
		gs := randomGrants(rng, 1)
		for _, g := range gs {
			g.Effective, g.Expires = 0, 100*hour
		}
		events := make([]int64, 1+rng.IntN(8))
		for i := range events {
			events[i] = rng.Int64N(400)
		}
		a, b := cloneGrants(gs), cloneGrants(gs)
		var overA, overB int64
		for _, c := range events {
			overA += Burn(a, 50*hour, c)
		}
		for _, i := range rng.Perm(len(events)) {
			overB += Burn(b, 10*hour, events[i])
		}
		if overA != overB || !slices.Equal(remainings(a), remainings(b)) {
			t.Fatalf("seed %d: order changed the outcome: overage %d vs %d, grants %s vs %s", seed, overA, overB, grantsString(a), grantsString(b))
		}
	}
}

func minEffective(gs []*BurnGrant) int64 {
	m := gs[0].Effective
	for _, g := range gs {
		m = min(m, g.Effective)
	}
	return m
}

// TestArrivalOrderMattersOnlyAtGrantEdges: over random grants (any lifetimes) and usage
// dated in [earliest, latest], when ArrivalOrderMatters holds for no grant, burning the
// usage in any arrival order leaves the same grants and the same total overage as burning
// it in time order. The random cases must include some where it holds, and some where it
// holds and the order did change the outcome, or the rule would be vacuous.
func TestArrivalOrderMattersOnlyAtGrantEdges(t *testing.T) {
	var quiet, mattered int
	for seed := range uint64(4000) {
		rng := rand.New(rand.NewPCG(seed, 59))
		gs := randomGrants(rng, 1)
		earliest := rng.Int64N(80) * hour
		latest := earliest + rng.Int64N(40)*hour
		lines := make([]UsageLine, 1+rng.IntN(8))
		for i := range lines {
			lines[i] = UsageLine{At: earliest + rng.Int64N((latest-earliest)/hour+1)*hour, Credits: rng.Int64N(300)}
		}
		slices.SortStableFunc(lines, func(a, b UsageLine) int { return int(a.At - b.At) })
		matters := false
		for _, g := range gs {
			matters = matters || ArrivalOrderMatters(g.Effective, g.Expires, earliest, latest)
		}
		inTime, arrived := cloneGrants(gs), cloneGrants(gs)
		var overTime, overArrived int64
		for _, l := range lines {
			overTime += Burn(inTime, l.At, l.Credits)
		}
		for _, i := range rng.Perm(len(lines)) {
			overArrived += Burn(arrived, lines[i].At, lines[i].Credits)
		}
		same := overTime == overArrived && slices.Equal(remainings(inTime), remainings(arrived))
		if !matters {
			quiet++
			if !same {
				t.Fatalf("seed %d: no grant starts or ends in (%d, %d], yet arrival order changed the outcome: overage %d vs %d, grants %s vs %s",
					seed, earliest, latest, overTime, overArrived, grantsString(inTime), grantsString(arrived))
			}
		} else if !same {
			mattered++
		}
	}
	if quiet == 0 || mattered == 0 {
		t.Fatalf("%d cases without grant edges, %d where the order changed the outcome; want both", quiet, mattered)
	}
}

// randomLines makes usage lines dated in [0, 100h), in time order.
func randomLines(rng *rand.Rand, n int) []UsageLine {
	lines := make([]UsageLine, n)
	for i := range lines {
		lines[i] = UsageLine{At: rng.Int64N(100) * hour, Credits: rng.Int64N(300)}
	}
	slices.SortStableFunc(lines, func(a, b UsageLine) int { return int(a.At - b.At) })
	return lines
}

// TestReburnEqualsTimeOrder: usage burned in any arrival order, then burned again by
// Reburn, ends as burning it in time order would have: the same grants, and each line's
// booked overage plus its delta is its in-time overage. A story that does not add up
// (held off by a credit), or a grant in effect before the period, changes nothing.
func TestReburnEqualsTimeOrder(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 31))
		start := randomGrants(rng, 1)
		lines := randomLines(rng, rng.IntN(10))
		inTime := cloneGrants(start)
		want := make([]int64, len(lines))
		for i, l := range lines {
			want[i] = Burn(inTime, l.At, l.Credits)
		}
		arrived := cloneGrants(start)
		booked := slices.Clone(lines)
		for _, i := range rng.Perm(len(lines)) {
			booked[i].Overage = Burn(arrived, lines[i].At, lines[i].Credits)
		}
		var held int64
		for _, g := range arrived {
			held += g.Remaining
		}
		if _, ok := Reburn(cloneGrants(start), 0, held+1, booked); ok && len(lines) > 0 {
			t.Fatalf("seed %d: Reburn accepted grants and usage that do not add up", seed)
		}
		again := cloneGrants(start)
		deltas, ok := Reburn(again, 0, held, booked)
		if len(start) > 0 {
			if _, ok := Reburn(cloneGrants(start), minEffective(start)+1, held, booked); ok {
				t.Fatalf("seed %d: Reburn accepted a grant in effect before the period", seed)
			}
		}
		if !ok {
			t.Fatalf("seed %d: Reburn refused a consistent story", seed)
		}
		for i := range lines {
			if booked[i].Overage+deltas[i] != want[i] {
				t.Fatalf("seed %d: line %d overage %d+%d, in time order %d", seed, i, booked[i].Overage, deltas[i], want[i])
			}
		}
		if !slices.Equal(remainings(again), remainings(inTime)) {
			t.Fatalf("seed %d: grants %s, in time order %s", seed, grantsString(again), grantsString(inTime))
		}
	}
}

// TestSettleEarlyEqualsGrantsAtBoundary: usage dated in a new period that arrived before
// the reset made its baseline and carry-over (burning an unlock lasting across the
// boundary, or overage), settled once they exist, ends as if they had existed at the
// boundary.
func TestSettleEarlyEqualsGrantsAtBoundary(t *testing.T) {
	from := 10 * hour
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 37))
		var old []*BurnGrant
		for i := range rng.IntN(3) {
			// Unlocks or adjustments from before the boundary lasting into the period,
			// untouched until it.
			k := []GrantKind{GrantUnlock, GrantAdjustment}[rng.IntN(2)]
			old = append(old, grant(int64(1+i), k, 1+rng.Int64N(400), rng.Int64N(10)*hour, from+(1+rng.Int64N(90))*hour))
		}
		end := from + 100*hour
		fresh := []*BurnGrant{grant(10, GrantBaseline, 1+rng.Int64N(500), from, end)}
		if rng.IntN(2) == 0 {
			fresh = append(fresh, grant(11, GrantRollover, 1+rng.Int64N(200), from, end))
		}
		lines := make([]UsageLine, rng.IntN(8))
		for i := range lines {
			lines[i] = UsageLine{At: from + rng.Int64N(90)*hour, Credits: rng.Int64N(300)}
		}
		slices.SortStableFunc(lines, func(a, b UsageLine) int { return int(a.At - b.At) })

		all := append(cloneGrants(old), cloneGrants(fresh)...)
		SortForBurn(all)
		want := make([]int64, len(lines))
		for i, l := range lines {
			want[i] = Burn(all, l.At, l.Credits)
		}

		early := cloneGrants(old)
		SortForBurn(early)
		for _, i := range rng.Perm(len(lines)) {
			lines[i].Overage = Burn(early, lines[i].At, lines[i].Credits)
		}
		got := append(early, cloneGrants(fresh)...)
		SortForBurn(got)
		deltas := SettleEarly(got, from, lines)
		for i := range lines {
			if lines[i].Overage+deltas[i] != want[i] {
				t.Fatalf("seed %d: line %d overage %d+%d, with the grants at the boundary %d", seed, i, lines[i].Overage, deltas[i], want[i])
			}
		}
		if !slices.Equal(remainings(got), remainings(all)) {
			t.Fatalf("seed %d: grants %s, with the grants at the boundary %s", seed, grantsString(got), grantsString(all))
		}
	}
}
