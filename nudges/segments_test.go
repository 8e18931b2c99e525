package nudges

import (
	"fmt"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// holdoutEmail returns an email that is (in true) or is not in the default 10% holdout.
func holdoutEmail(t testing.TB, in bool) string {
	t.Helper()
	for i := range 1000 {
		e := fmt.Sprintf("person%d@example.com", i)
		if InHoldout(e, 10) == in {
			return e
		}
	}
	t.Fatal("no such email")
	return ""
}

func TestClassifyAndDecide(t *testing.T) {
	utc := func(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }
	// November 2026 is 30 days; an allowance of 300,000 is a pace of 10,000 a day.
	var (
		start   = utc(11, 1, 6)  // 6 hours in: a steady pace is 2,500
		middle  = utc(11, 16, 0) // 15 days in: 150,000; the 14-day window 140,000
		end     = utc(11, 28, 0) // 27 days in: 270,000; 3 days left
		veteran = utc(9, 1, 0)
		joined  = utc(11, 14, 0) // a joiner: their allowance spread over the 17 days left
		nudgee  = holdoutEmail(t, false)
		heldOut = holdoutEmail(t, true)
	)
	const allowance = 300_000
	act := func(spentPeriod, spentWindow int64, lastUse time.Time, impacts int) ledger.PersonActivity {
		return ledger.PersonActivity{SpentPeriod: spentPeriod, SpentWindow: spentWindow, LastUse: lastUse,
			Available: allowance - spentPeriod, ImpactsWindow: impacts, ImpactsPeriod: impacts}
	}
	tests := []struct {
		name     string
		at       time.Time
		joined   time.Time
		email    string
		off      bool
		nudged   time.Time // last nudge record
		act      ledger.PersonActivity
		disabled bool
		segment  Segment
		hoarding bool
		expected int64
		decision Decision
	}{
		{name: "start: steady user of last month is not flagged on the 1st", at: start, act: act(0, 40_000, utc(10, 30, 12), 0),
			segment: Steady, expected: 2_500, decision: NoNudge},
		{name: "start: no use for 20 days", at: start, act: act(0, 0, utc(10, 12, 0), 0), segment: Dormant, expected: 2_500, decision: SendNudge},
		{name: "start: never used", at: start, act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 2_500, decision: SendNudge},
		{name: "start: a trickle", at: start, act: act(0, 100, utc(10, 22, 0), 0), segment: Underuser, expected: 2_500, decision: SendNudge},
		{name: "middle: under a quarter of the pace", at: middle, act: act(30_000, 30_000, utc(11, 14, 0), 0), segment: Underuser, expected: 150_000, decision: SendNudge},
		{name: "middle: over a quarter of the pace", at: middle, act: act(40_000, 30_000, utc(11, 14, 0), 0), segment: Steady, expected: 150_000, decision: NoNudge},
		{name: "middle: heavy without logged impact", at: middle, act: act(120_000, 80_000, utc(11, 15, 0), 0), segment: HeavyNoGains, expected: 150_000, decision: SendNudge},
		{name: "middle: heavy with impact is engaged", at: middle, act: act(120_000, 80_000, utc(11, 15, 0), 2), segment: Engaged, expected: 150_000, decision: NoNudge},
		{name: "middle: steady with an outcome is engaged", at: middle, act: act(60_000, 30_000, utc(11, 15, 0), 1), segment: Engaged, expected: 150_000, decision: NoNudge},
		{name: "end: underuser with most credits left is a hoarding risk", at: end, act: act(60_000, 20_000, utc(11, 27, 0), 0),
			segment: Underuser, hoarding: true, expected: 270_000, decision: SendNudge},
		{name: "end: steady user under the hoarding share", at: end, act: act(100_000, 40_000, utc(11, 27, 0), 0), segment: Steady, expected: 270_000, decision: NoNudge},
		{name: "middle: no hoarding with a week and more left", at: middle, act: act(0, 1_000, utc(11, 10, 0), 0), segment: Underuser, expected: 150_000, decision: SendNudge},
		{name: "joiner: on pace since joining", at: middle, joined: joined, act: act(10_000, 10_000, utc(11, 15, 0), 0), segment: Steady, expected: 35_294, decision: NoNudge},
		{name: "joiner: no use yet is getting started, not dormant", at: middle, joined: joined, act: act(0, 0, time.Time{}, 0), segment: Underuser, expected: 35_294, decision: SendNudge},
		{name: "joiner: joined this moment", at: end, joined: end, act: act(0, 0, time.Time{}, 0), segment: Steady, expected: 0, decision: NoNudge},
		{name: "opt-out", at: middle, off: true, act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: OptedOut},
		{name: "holdout", at: middle, email: heldOut, act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: HeldOut},
		{name: "holdout applies to quality tips too", at: middle, email: heldOut, act: act(120_000, 80_000, utc(11, 15, 0), 0), segment: HeavyNoGains, expected: 150_000, decision: HeldOut},
		{name: "nudged 3 days ago", at: middle, nudged: middle.Add(-3 * day), act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: TooSoon},
		{name: "held out 3 days ago: same cadence", at: middle, email: heldOut, nudged: middle.Add(-3 * day), act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: TooSoon},
		{name: "nudged 7 days ago", at: middle, nudged: middle.Add(-7 * day), act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: SendNudge},
		{name: "nudges disabled", at: middle, disabled: true, act: act(0, 0, time.Time{}, 0), segment: Dormant, expected: 150_000, decision: Disabled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := policy.Default()
			pol.Nudges.Enabled = !tt.disabled
			p := ledger.Person{ID: 1, Email: nudgee, Name: "Eve Analyst", JoinedAt: veteran, NudgesOff: tt.off}
			if !tt.joined.IsZero() {
				p.JoinedAt = tt.joined
			}
			if tt.email != "" {
				p.Email = tt.email
			}
			a := tt.act
			a.PersonID, a.LastNudge = 1, tt.nudged
			m := NewClassifier(pol, tt.at, 50_000).Classify(p, a)
			if m.Segment != tt.segment || m.Hoarding != tt.hoarding || m.Expected != tt.expected {
				t.Errorf("segment %s, hoarding %v, expected %d; want %s, %v, %d", m.Segment, m.Hoarding, m.Expected, tt.segment, tt.hoarding, tt.expected)
			}
			if d := Decide(pol, m, tt.at); d != tt.decision {
				t.Errorf("decision %s, want %s", d, tt.decision)
			}
		})
	}
}

func TestHeavyThreshold(t *testing.T) {
	acts := func(spends ...int64) []ledger.PersonActivity {
		out := make([]ledger.PersonActivity, len(spends))
		for i, s := range spends {
			out[i].SpentWindow = s
		}
		return out
	}
	tests := []struct {
		name    string
		acts    []ledger.PersonActivity
		percent int
		want    int64
	}{
		{"nobody", nil, 10, 0},
		{"top 10% of 10 is the largest", acts(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 10, 10},
		{"top 10% of 11 rounds up to 2", acts(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 10, 10},
		{"people who used nothing are never heavy", acts(0, 0, 0, 0, 5), 50, 5},
		{"nobody used anything", acts(0, 0, 0), 10, 0},
		{"0 percent", acts(5, 6), 0, 0},
		{"100 percent is everyone who used some", acts(0, 5, 6), 100, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HeavyThreshold(tt.acts, tt.percent); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestHoldoutIsStableAndFair(t *testing.T) {
	in := 0
	const n = 20_000
	for i := range n {
		e := fmt.Sprintf("user%d@example.org", i)
		h := InHoldout(e, 10)
		if h != InHoldout(e, 10) || h != InHoldout(" USER"+e[4:]+" ", 10) {
			t.Fatalf("%s: holdout changes between calls or with case and spaces", e)
		}
		if h {
			in++
		}
	}
	if share := float64(in) / n; share < 0.09 || share > 0.11 {
		t.Errorf("holdout share %.3f, want about 0.10", share)
	}
	if InHoldout("a@b.c", 0) {
		t.Error("a 0% holdout holds someone out")
	}
}

func TestHoldUntilQuietHours(t *testing.T) {
	z := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		name       string
		zone       string
		quiet      [2]string // start, end; default 19:00-08:00
		at         string
		want       string
		wantReason bool
	}{
		{name: "Paris evening before the window", zone: "Europe/Paris", at: "2026-11-24T17:30:00Z", want: "2026-11-24T17:30:00Z"},
		{name: "Paris evening in the window", zone: "Europe/Paris", at: "2026-11-24T18:30:00Z", want: "2026-11-25T07:00:00Z", wantReason: true},
		{name: "the same instant is morning in Los Angeles", zone: "America/Los_Angeles", at: "2026-11-24T17:30:00Z", want: "2026-11-24T17:30:00Z"},
		{name: "half-hour zone before dawn", zone: "Asia/Kolkata", at: "2026-11-24T02:00:00Z", want: "2026-11-24T02:30:00Z", wantReason: true},
		{name: "no zone of their own: the org's (UTC)", at: "2026-11-24T20:00:00Z", want: "2026-11-25T08:00:00Z", wantReason: true},
		{name: "unknown zone: the org's", zone: "Mars/Olympus_Mons", at: "2026-11-24T07:59:00Z", want: "2026-11-24T08:00:00Z", wantReason: true},
		{name: "at the end of the window it may go", zone: "UTC", at: "2026-11-24T08:00:00Z", want: "2026-11-24T08:00:00Z"},
		{name: "New York spring forward: 08:00 EDT comes an hour sooner in UTC", zone: "America/New_York", at: "2026-03-08T06:00:00Z", want: "2026-03-08T12:00:00Z", wantReason: true},
		{name: "New York the night before: 08:00 EST", zone: "America/New_York", at: "2026-03-07T06:00:00Z", want: "2026-03-07T13:00:00Z", wantReason: true},
		{name: "London fall back: 08:00 GMT", zone: "Europe/London", at: "2026-10-24T22:00:00Z", want: "2026-10-25T08:00:00Z", wantReason: true},
		{name: "Sydney spring forward (southern DST)", zone: "Australia/Sydney", at: "2026-10-03T20:00:00Z", want: "2026-10-03T21:00:00Z", wantReason: true},
		{name: "window ending in the hour New York skips ends at the jump", zone: "America/New_York", quiet: [2]string{"22:00", "02:30"},
			at: "2026-03-08T05:00:00Z", want: "2026-03-08T07:00:00Z", wantReason: true},
		{name: "no quiet hours", zone: "Europe/Paris", quiet: [2]string{"00:00", "00:00"}, at: "2026-11-24T23:00:00Z", want: "2026-11-24T23:00:00Z"},
		{name: "a daytime window", zone: "Europe/Paris", quiet: [2]string{"12:00", "14:00"}, at: "2026-11-24T11:30:00Z", want: "2026-11-24T13:00:00Z", wantReason: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := policy.Default()
			if tt.quiet[0] != "" {
				var err error
				if pol.Nudges.QuietHours.Start, err = policy.ParseClock(tt.quiet[0]); err != nil {
					t.Fatal(err)
				}
				if pol.Nudges.QuietHours.End, err = policy.ParseClock(tt.quiet[1]); err != nil {
					t.Fatal(err)
				}
			}
			got, reason := HoldUntil(pol, ledger.Person{TimeZone: tt.zone}, z(tt.at))
			if !got.Equal(z(tt.want)) || (reason != "") != tt.wantReason {
				t.Errorf("HoldUntil = %s (%q), want %s (reason: %v)", got.UTC().Format(time.RFC3339), reason, tt.want, tt.wantReason)
			}
		})
	}
}
