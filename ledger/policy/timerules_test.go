package policy

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestTimeRuleHelpers(t *testing.T) {
	p, err := Parse(strings.NewReader("org: {time_zone: Europe/Paris}\n"))
	if err != nil {
		t.Fatal(err)
	}
	paris := p.Location()
	at := func(m time.Month, d, h, min int) time.Time { return time.Date(2026, m, d, h, min, 0, 0, paris) }
	// October 2026 in Paris has 31 days, one of them 25 hours long (clocks go back on the
	// 25th): days are counted on the calendar, so joining on the 25th leaves 7 of 31.
	prorate := []struct {
		joined time.Time
		want   int64
	}{
		{at(time.September, 30, 23, 0), 200_000},
		{at(time.October, 1, 0, 0), 200_000},
		{at(time.October, 25, 2, 30), 45_161}, // 200,000 × 7 / 31 = 45,161.3
		{at(time.October, 26, 0, 0), 38_710},  // × 6 / 31 = 38,709.7
		{at(time.October, 31, 23, 59), 6_452}, // × 1 / 31
	}
	for _, tt := range prorate {
		if got := p.ProratedBaseline(200_000, tt.joined, at(time.October, 31, 23, 59)); got != tt.want {
			t.Errorf("joined %s: %d, want %d", tt.joined, got, tt.want)
		}
	}
	if got := p.ProratedBaseline(5, at(time.October, 16, 0, 0), at(time.October, 20, 0, 0)); got != 3 {
		t.Errorf("small amounts round half up: %d, want 3 (5 × 16 / 31 = 2.58)", got)
	}
	if got := p.ProratedBaseline(1_000_000_000_000, at(time.October, 16, 0, 0), at(time.October, 20, 0, 0)); got != 516_129_032_258 {
		t.Errorf("large amounts stay exact: %d", got)
	}
	off := *p
	off.Baseline.ProrateJoiners = false
	if got := off.ProratedBaseline(200_000, at(time.October, 26, 0, 0), at(time.October, 27, 0, 0)); got != 200_000 {
		t.Errorf("proration off: %d", got)
	}

	// Unlocks last until the period's end or 30 days after approval, whichever is later.
	if got, want := p.UnlockExpiry(at(time.October, 1, 0, 30)), at(time.November, 1, 0, 0); !got.Equal(want) {
		t.Errorf("approved on the 1st: until %s, want %s", got, want)
	}
	if got, want := p.UnlockExpiry(at(time.October, 31, 18, 0)), at(time.October, 31, 18, 0).Add(30*24*time.Hour); !got.Equal(want) {
		t.Errorf("approved on the last day: until %s, want %s", got, want)
	}

	// October's usage is taken until 72h after it ends, at 00:00 on 4 November in Paris.
	if got, want := p.LateDeadline(at(time.October, 31, 23, 0)), at(time.November, 4, 0, 0); !got.Equal(want) {
		t.Errorf("late deadline %s, want %s", got, want)
	}
}

func TestTimeRuleLimits(t *testing.T) {
	for src, want := range map[string]string{
		"usage: {late_grace: 169h}\n":       "usage.late_grace",
		"usage: {late_grace: -1s}\n":        "usage.late_grace",
		"unlock: {min_validity: -1h}\n":     "unlock.min_validity",
		"unlock: {min_validity: 9000h}\n":   "unlock.min_validity",
		"usage: {retention_months: -1}\n":   "usage.retention_months",
		"usage: {retention_months: 1201}\n": "usage.retention_months",
	} {
		if _, err := Parse(strings.NewReader(src)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error about %s", src, err, want)
		}
	}
	p, err := Parse(strings.NewReader("usage: {late_grace: 168h}\nunlock: {min_validity: 0s}\nbaseline: {prorate_joiners: false}\n"))
	if err != nil || p.Usage.LateGrace != 168*time.Hour || p.Unlock.MinValidity != 0 || p.Baseline.ProrateJoiners {
		t.Errorf("%+v %v", p, err)
	}
}

func TestWallInstant(t *testing.T) {
	paris, newYork := zone(t, "Europe/Paris"), zone(t, "America/New_York")
	wall := func(m time.Month, d, h, min int) time.Time { return time.Date(2026, m, d, h, min, 0, 0, time.UTC) }
	tests := []struct {
		name string
		wall time.Time
		loc  *time.Location
		want string
	}{
		{"ordinary", wall(time.March, 28, 2, 30), paris, "2026-03-28T01:30:00Z"},
		{"skipped: the jump", wall(time.March, 29, 2, 30), paris, "2026-03-29T01:00:00Z"},
		{"repeated: the first time", wall(time.October, 25, 2, 30), paris, "2026-10-25T00:30:00Z"},
		{"after the repeated hour", wall(time.October, 25, 3, 0), paris, "2026-10-25T02:00:00Z"},
		{"New York skipped", wall(time.March, 8, 2, 30), newYork, "2026-03-08T07:00:00Z"},
		{"New York repeated", wall(time.November, 1, 1, 30), newYork, "2026-11-01T05:30:00Z"},
		{"New York after the repeated hour", wall(time.November, 1, 2, 30), newYork, "2026-11-01T07:30:00Z"},
	}
	for _, tt := range tests {
		if got := WallInstant(tt.wall, tt.loc).UTC().Format(time.RFC3339); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestRollupBefore(t *testing.T) {
	p, err := Parse(strings.NewReader("org: {time_zone: Europe/Paris}\n"))
	if err != nil {
		t.Fatal(err)
	}
	paris := p.Location()
	now := time.Date(2026, time.November, 30, 10, 0, 0, 0, paris)
	// 13 months before November 2026 is October 2025: whole periods before it are rolled up.
	if got, want := p.RollupBefore(now), time.Date(2025, time.October, 1, 0, 0, 0, 0, paris); !got.Equal(want) {
		t.Errorf("RollupBefore = %s, want %s", got, want)
	}
	p.Usage.RetentionMonths = 0
	if got := p.RollupBefore(now); !got.IsZero() {
		t.Errorf("retention off: RollupBefore = %s, want zero", got)
	}
}

// TestRolledUpUsageIsTooLate is the invariant the roll-up's idempotency rests on: at any
// instant, for any retention and grace the policy allows, monthly or weekly periods, in any
// zone, usage dated before RollupBefore is too late (LateDeadline passed), so an event id
// the roll-up forgot can never be booked again.
func TestRolledUpUsageIsTooLate(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 13))
	zones := []string{"UTC", "Europe/Paris", "America/New_York", "Pacific/Auckland", "Asia/Kolkata"}
	for i := 0; i < 3000; i++ {
		src := "org: {time_zone: " + zones[rng.IntN(len(zones))] + "}\nperiod: " + []string{PeriodMonthly, PeriodWeekly}[rng.IntN(2)] + "\n"
		p, err := Parse(strings.NewReader(src))
		if err != nil {
			t.Fatal(err)
		}
		p.Usage.LateGrace = time.Duration(rng.Int64N(int64(MaxLateGrace) + 1))
		p.Usage.RetentionMonths = 1 + rng.IntN(30)
		now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(10 * 365 * 24 * time.Hour))))
		before := p.RollupBefore(now)
		if !before.Before(now) {
			t.Fatalf("%s retention %d at %s: RollupBefore %s is not in the past", src, p.Usage.RetentionMonths, now, before)
		}
		at := before.Add(-time.Duration(1 + rng.Int64N(int64(400*24*time.Hour))))
		if rng.IntN(4) == 0 {
			at = before.Add(-time.Millisecond)
		}
		if deadline := p.LateDeadline(at); now.Before(deadline) {
			t.Fatalf("%s grace %s retention %d at %s: usage dated %s (rolled up before %s) is still accepted until %s",
				src, p.Usage.LateGrace, p.Usage.RetentionMonths, now, at, before, deadline)
		}
	}
}
