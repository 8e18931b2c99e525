package nudges

import (
	"math"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger"
)

func TestGini(t *testing.T) {
	team := func(people int, granted int64) ledger.TeamStat {
		return ledger.TeamStat{People: people, Granted: granted}
	}
	tests := []struct {
		name  string
		teams []ledger.TeamStat
		want  float64
	}{
		{"no teams", nil, 0},
		{"one team", []ledger.TeamStat{team(5, 1000)}, 0},
		{"equal per head, different sizes", []ledger.TeamStat{team(2, 200), team(8, 800)}, 0},
		{"nothing granted", []ledger.TeamStat{team(2, 0), team(3, 0)}, 0},
		// Two equal teams, one with everything: half the people hold all the access.
		{"one of two equal teams has all", []ledger.TeamStat{team(5, 0), team(5, 1000)}, 0.5},
		// Per head 100 and 300, equal sizes: sum |xi-xj| = 2*5*5*200, / (2 * 10^2 * 200).
		{"per head 100 and 300", []ledger.TeamStat{team(5, 500), team(5, 1500)}, 0.25},
		// Weighted by headcount: 1 person with 1,000 per head and 9 with none.
		{"a tiny team holds everything", []ledger.TeamStat{team(1, 1000), team(9, 0)}, 0.9},
		{"teams without people are ignored", []ledger.TeamStat{team(0, 5000), team(5, 500), team(5, 1500)}, 0.25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Gini(tt.teams); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Gini = %.4f, want %.4f", got, tt.want)
			}
		})
	}
}

func TestComputeLift(t *testing.T) {
	tests := []struct {
		name           string
		counts         ledger.LiftCounts
		enough         bool
		diff, low, hig float64
		text           string
	}{
		{name: "no data", counts: ledger.LiftCounts{}, text: "Not enough data yet: 0 nudged and 0 held out"},
		{name: "too few held out", counts: ledger.LiftCounts{Nudged: 400, NudgedActive: 200, HeldOut: 29, HeldOutActive: 5},
			text: "400 nudged and 29 held out this period; 30 in each group"},
		// p1 = 0.5, p0 = 0.3: se = sqrt(.25/100 + .21/100) = 0.06782, ±1.96se = 0.13293.
		{name: "a clear lift", counts: ledger.LiftCounts{Nudged: 100, NudgedActive: 50, HeldOut: 100, HeldOutActive: 30},
			enough: true, diff: 0.2, low: 0.2 - 0.132933, hig: 0.2 + 0.132933,
			text: "+20 points (95% interval +7 to +33): 50% of 100 nudged were active within a week, against 30% of 100 held out."},
		// Equal rates: the interval straddles zero.
		{name: "no lift", counts: ledger.LiftCounts{Nudged: 30, NudgedActive: 15, HeldOut: 30, HeldOutActive: 15},
			enough: true, diff: 0, low: -0.253035, hig: 0.253035, text: "+0 points (95% interval -25 to +25)"},
		// Everyone active in both groups: the standard error is 0.
		{name: "all active", counts: ledger.LiftCounts{Nudged: 30, NudgedActive: 30, HeldOut: 40, HeldOutActive: 40},
			enough: true, diff: 0, low: 0, hig: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := ComputeLift(tt.counts)
			if l.Enough != tt.enough || math.Abs(l.Diff-tt.diff) > 1e-6 || math.Abs(l.Low-tt.low) > 1e-6 || math.Abs(l.High-tt.hig) > 1e-6 {
				t.Errorf("lift %+v, want enough %v diff %.6f [%.6f, %.6f]", l, tt.enough, tt.diff, tt.low, tt.hig)
			}
			if !strings.Contains(l.Text(), tt.text) {
				t.Errorf("text %q lacks %q", l.Text(), tt.text)
			}
		})
	}
}
