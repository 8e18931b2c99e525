package ledger

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestClosePeriod(t *testing.T) {
	lim := func(max, min int64) *RolloverLimits { return &RolloverLimits{Max: max, Min: min} }
	tests := []struct {
		name                              string
		ending                            []int64
		limits                            *RolloverLimits
		record                            bool
		unspent, carried, expired, minted int64
		postings                          []Posting
	}{
		{"no grants ending: nothing, even with a minimum", nil, lim(500, 100), false, 0, 0, 0, 0, nil},
		{"no rollover: all expires", []int64{300, 200}, nil, true, 500, 0, 500, 0,
			[]Posting{{"person:7:available", -500}, {AccountExpired, 500}, {AccountPool, 0}}},
		{"under the cap: all carried", []int64{300}, lim(500, 0), true, 300, 300, 0, 0,
			[]Posting{{"person:7:available", 0}}},
		{"over the cap: the rest expires", []int64{300, 400}, lim(500, 0), true, 700, 500, 200, 0,
			[]Posting{{"person:7:available", -200}, {AccountExpired, 200}, {AccountPool, 0}}},
		{"minimum mints from the pool", []int64{0, 20}, lim(500, 100), true, 20, 100, 0, 80,
			[]Posting{{"person:7:available", 80}, {AccountExpired, 0}, {AccountPool, -80}}},
		{"emptied grants still record a close", []int64{0}, nil, true, 0, 0, 0, 0,
			[]Posting{{"person:7:available", 0}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := ClosePeriod(7, tc.ending, tc.limits)
			if out.Record != tc.record || out.Unspent != tc.unspent || out.Carried != tc.carried || out.Expired != tc.expired || out.Minted != tc.minted {
				t.Fatalf("got %+v, want record=%v unspent=%d carried=%d expired=%d minted=%d", out, tc.record, tc.unspent, tc.carried, tc.expired, tc.minted)
			}
			if !slices.Equal(out.Postings, tc.postings) {
				t.Fatalf("postings %v, want %v", out.Postings, tc.postings)
			}
		})
	}
}

// TestClosePeriodProperties: a close never carries more than the cap, conserves credits
// (carried + expired = unspent + minted, one of expired and minted zero), mints only for
// a minimum above what was unspent, and its postings balance.
func TestClosePeriodProperties(t *testing.T) {
	for seed := range uint64(5000) {
		rng := rand.New(rand.NewPCG(seed, 41))
		ending := make([]int64, rng.IntN(4))
		for i := range ending {
			ending[i] = rng.Int64N(MaxAmount)
		}
		var limits *RolloverLimits
		if rng.IntN(4) != 0 {
			max := rng.Int64N(2000)
			limits = &RolloverLimits{Max: max, Min: rng.Int64N(max + 1)}
		}
		out := ClosePeriod(3, ending, limits)
		if limits != nil && out.Carried > limits.Max {
			t.Fatalf("seed %d: carried %d over the cap %d", seed, out.Carried, limits.Max)
		}
		if out.Carried+out.Expired != out.Unspent+out.Minted || out.Expired < 0 || out.Minted < 0 || (out.Expired > 0 && out.Minted > 0) {
			t.Fatalf("seed %d: %+v does not conserve credits", seed, out)
		}
		if out.Minted > 0 && (limits == nil || limits.Min <= out.Unspent) {
			t.Fatalf("seed %d: minted %d with limits %v and %d unspent", seed, out.Minted, limits, out.Unspent)
		}
		if (limits == nil || len(ending) == 0) && out.Carried != 0 {
			t.Fatalf("seed %d: carried %d with no rollover or no grant ending", seed, out.Carried)
		}
		if out.Record != (len(ending) > 0) {
			t.Fatalf("seed %d: record=%v with %d grants ending", seed, out.Record, len(ending))
		}
		if out.Record {
			if err := ValidatePostings(out.Postings); err != nil {
				t.Fatalf("seed %d: postings %v: %v", seed, out.Postings, err)
			}
			var avail int64
			for _, p := range out.Postings {
				if p.Account == AvailableAccount(3) {
					avail += p.Amount
				}
			}
			if avail != out.Carried-out.Unspent {
				t.Fatalf("seed %d: available moves by %d, want carried-unspent %d", seed, avail, out.Carried-out.Unspent)
			}
		}
	}
}

// TestLateChargeMatchesCloseInTime: a late event that burned b of the grants a close
// ended turns the close of u into the close of u-b: the close's postings plus the late
// postings are, account by account, the postings of the close computed with the event
// in time (when nothing was reallocated), and the reclaimable pool never goes negative
// when something was.
func TestLateChargeMatchesCloseInTime(t *testing.T) {
	for seed := range uint64(5000) {
		rng := rand.New(rand.NewPCG(seed, 43))
		max := rng.Int64N(1000)
		limits := RolloverLimits{Max: max, Min: rng.Int64N(max + 1)}
		if rng.IntN(2) == 0 {
			limits.Min = 0
		}
		unspent := rng.Int64N(2000)
		carried := limits.Carry(unspent)
		burned := rng.Int64N(unspent + 1)
		u2, c2, takeBack := Recarry(unspent, carried, limits, burned)
		if u2 != unspent-burned || c2 != limits.Carry(u2) || takeBack != carried-c2 || takeBack < 0 || takeBack > burned {
			t.Fatalf("seed %d: Recarry(%d, %d, %v, %d) = %d, %d, %d", seed, unspent, carried, limits, burned, u2, c2, takeBack)
		}
		first := ClosePostings(9, unspent, carried)
		late := LateUsagePostings(9, unspent, carried, u2, c2, 0, 1<<40)
		if err := ValidatePostings(late); err != nil {
			t.Fatalf("seed %d: late postings %v: %v", seed, late, err)
		}
		sum := map[string]int64{}
		for _, p := range append(slices.Clone(first), late...) {
			sum[p.Account] += p.Amount
		}
		for _, p := range ClosePostings(9, u2, c2) {
			if sum[p.Account] != p.Amount {
				t.Fatalf("seed %d: %s ends at %d, the close in time posts %d", seed, p.Account, sum[p.Account], p.Amount)
			}
			delete(sum, p.Account)
		}
		for acc, v := range sum {
			if v != 0 {
				t.Fatalf("seed %d: %s moved by %d, the close in time does not touch it", seed, acc, v)
			}
		}
		held := rng.Int64N(first[1].Amount + 1)
		late = LateUsagePostings(9, unspent, carried, u2, c2, rng.Int64N(100)-50, held)
		if err := ValidatePostings(late); err != nil {
			t.Fatalf("seed %d: late postings %v: %v", seed, late, err)
		}
		if held+late[2].Amount < 0 {
			t.Fatalf("seed %d: the reclaimable pool holding %d is charged %d", seed, held, late[2].Amount)
		}
	}
}

func TestTakeBack(t *testing.T) {
	// Carry-over grant 3 first (though last in burn order here), then the grants of the
	// next period in burn order; the old unlock 1 ended before the boundary and is left.
	open := []*BurnGrant{
		grant(1, GrantUnlock, 100, 0, 10*hour),
		grant(2, GrantBaseline, 100, 10*hour, 20*hour),
		grant(4, GrantUnlock, 100, 12*hour, 20*hour),
		grant(3, GrantRollover, 30, 10*hour, 20*hour),
	}
	left := TakeBackFromGrants(open, 3, 10*hour, 20*hour, 150)
	if left != 0 || !slices.Equal(remainings(open), []int64{100, 0, 80, 0}) {
		t.Fatalf("left %d, grants %s; want 0 and #1:100 #2:0 #4:80 #3:0", left, grantsString(open))
	}
	lines := []UsageLine{{At: 1, Credits: 50, Overage: 0}, {At: 2, Credits: 40, Overage: 30}, {At: 3, Credits: 20, Overage: 0}}
	deltas, left := TakeBackFromUsage(lines, 35)
	if left != 0 || !slices.Equal(deltas, []int64{5, 10, 20}) {
		t.Fatalf("deltas %v left %d; want the latest spending first: [5 10 20] 0", deltas, left)
	}
	deltas, left = TakeBackFromUsage(lines, 100)
	if left != 20 || !slices.Equal(deltas, []int64{50, 10, 20}) {
		t.Fatalf("deltas %v left %d; want all spending [50 10 20] and 20 left", deltas, left)
	}
}

// TestTakeBackConserves: what is taken from grants and usage plus what is left is the
// amount asked, no grant goes below zero, and no line's overage above its credits.
func TestTakeBackConserves(t *testing.T) {
	for seed := range uint64(2000) {
		rng := rand.New(rand.NewPCG(seed, 47))
		open := randomGrants(rng, 1)
		amount := rng.Int64N(2000)
		var rollover int64
		if len(open) > 0 {
			rollover = open[rng.IntN(len(open))].ID
		}
		before := cloneGrants(open)
		left := TakeBackFromGrants(open, rollover, 30*hour, 60*hour, amount)
		var took int64
		for i, g := range open {
			d := before[i].Remaining - g.Remaining
			if d < 0 || g.Remaining < 0 {
				t.Fatalf("seed %d: grant %d from %d to %d", seed, g.ID, before[i].Remaining, g.Remaining)
			}
			if d > 0 && g.ID != rollover && !(g.Expires > 30*hour && g.Effective < 60*hour) {
				t.Fatalf("seed %d: took from grant %d outside the next period", seed, g.ID)
			}
			took += d
		}
		if took+left != amount || left < 0 {
			t.Fatalf("seed %d: took %d, left %d, asked %d", seed, took, left, amount)
		}
		lines := randomLines(rng, rng.IntN(6))
		for i := range lines {
			lines[i].Overage = rng.Int64N(lines[i].Credits + 1)
		}
		deltas, rest := TakeBackFromUsage(lines, left)
		var moved int64
		for i, d := range deltas {
			if d < 0 || lines[i].Overage+d > lines[i].Credits {
				t.Fatalf("seed %d: line %d overage %d + %d over its credits %d", seed, i, lines[i].Overage, d, lines[i].Credits)
			}
			moved += d
		}
		if moved+rest != left || rest < 0 {
			t.Fatalf("seed %d: moved %d, rest %d, asked %d", seed, moved, rest, left)
		}
	}
}

func TestHoarding(t *testing.T) {
	tests := []struct {
		expired, granted int64
		ratio            float64
		want             bool
	}{
		{600, 1000, 0.5, true},
		{500, 1000, 0.5, false}, // exactly the share is not hoarding
		{0, 1000, 0, false},
		{1, 1000, 0, true},
		{100, 0, 0.5, false}, // nothing granted in the period (carried only): not counted
	}
	for _, tc := range tests {
		if got := Hoarding(tc.expired, tc.granted, tc.ratio); got != tc.want {
			t.Errorf("Hoarding(%d, %d, %v) = %v, want %v", tc.expired, tc.granted, tc.ratio, got, tc.want)
		}
	}
}
