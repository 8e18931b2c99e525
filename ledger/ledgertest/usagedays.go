package ledgertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// testUsageReadsAcrossDays: every per-person read of usage finds it by day
// (usage_day_person: one seek per UTC day, a lookback past 92 days first narrowed to the
// days that hold usage, one past 4,000 days read as a range). Two people use credits on
// days spread over 17 years, both sides of midnight, so that every read crosses each of
// those paths; each figure must equal the sum of the events themselves.
func testUsageReadsAcrossDays(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return at })
	people := seedPeople(t, db, 2)
	a, b := people[0], people[1]
	type event struct {
		id      string
		at      time.Time
		credits int64
	}
	var mine []event
	post := func(p ledger.Person, id string, when time.Time, credits int64) {
		use(t, db, id, p.Email, credits, when)
		if p.ID == a.ID {
			mine = append(mine, event{id, when, credits})
		}
	}
	post(a, "a-2009", time.Date(2009, 3, 1, 8, 0, 0, 0, time.UTC), 7) // 17 years back: a range of days
	for i := range 60 {
		// Every 13 days back from at, alternately just before and just after a UTC midnight.
		day := at.AddDate(0, 0, -13*i).Truncate(24 * time.Hour)
		when := day.Add(time.Duration(i%2)*(24*time.Hour-time.Millisecond) + time.Duration(i%3)*time.Millisecond)
		post(a, fmt.Sprintf("a-%02d", i), when, int64(10+i))
		post(b, fmt.Sprintf("b-%02d", i), when.Add(time.Hour), 1000) // the same days, another person
	}
	post(a, "a-future", at.Add(time.Hour), 5) // after at: no figure as of at counts it

	sum := func(from, to time.Time) (n int64) {
		for _, e := range mine {
			if !e.at.Before(from) && e.at.Before(to) {
				n += e.credits
			}
		}
		return n
	}
	// Balance over a period, a quarter and the whole history.
	for _, r := range [][2]time.Time{{novStart, decStart}, {at.AddDate(0, -3, 0), at}, {time.Unix(0, 0), decStart}} {
		bal, err := db.Balance(ctx, a.ID, r[0], r[1])
		if want := sum(r[0], r[1]); err != nil || bal.Spent != want {
			t.Errorf("balance %v to %v: spent %d %v, want %d", r[0], r[1], bal.Spent, err, want)
		}
	}
	// History, newest first, in pages that cross its 32-day reads.
	slices.SortFunc(mine, func(x, y event) int { return y.at.Compare(x.at) })
	for _, limit := range []int{1, 3, 7, 40, 100} {
		hist, err := db.History(ctx, a.ID, limit)
		if err != nil {
			t.Fatal(err)
		}
		want := mine[:min(limit, len(mine))]
		if len(hist) != len(want) {
			t.Fatalf("history of %d: %d entries, want %d", limit, len(hist), len(want))
		}
		for i, h := range hist {
			if !h.At.Equal(want[i].at) || h.Amount != -want[i].credits {
				t.Errorf("history of %d, entry %d: %v %d, want %v %d", limit, i, h.At, h.Amount, want[i].at, -want[i].credits)
			}
		}
	}
	// Activity: the period and window sums, and LastUse with and without a lookback.
	last := mine[1].at // mine[0] is after at
	for _, tc := range []struct {
		quiet time.Time
		want  time.Time
	}{{time.Time{}, last}, {at.Add(-at.Sub(last) - time.Millisecond), last}, {last.Add(time.Millisecond), time.Time{}}} {
		acts, err := db.Activity(ctx, ledger.ActivityWindow{At: at, PeriodStart: novStart, WindowStart: at.AddDate(0, 0, -14),
			QuietSince: tc.quiet, Limit: 1})
		if err != nil || len(acts) != 1 {
			t.Fatalf("activity: %v %v", acts, err)
		}
		if g := acts[0]; g.SpentPeriod != sum(novStart, at) || g.SpentWindow != sum(at.AddDate(0, 0, -14), at) || !g.LastUse.Equal(tc.want) {
			t.Errorf("activity looking back to %v: %+v, want period %d, window %d, last use %v", tc.quiet, g,
				sum(novStart, at), sum(at.AddDate(0, 0, -14), at), tc.want)
		}
	}
	// Per-person and per-team figures of a range.
	from, to := at.AddDate(0, -5, 0), at
	stats, err := db.PeriodStats(ctx, "any", from, to, a.ID)
	if err != nil || len(stats) != 1 || stats[0].Spent != sum(from, to) {
		t.Errorf("period stats: %+v %v, want spent %d", stats, err, sum(from, to))
	}
	teams, err := db.TeamStats(ctx, from, to)
	var inRange int64
	for _, e := range mine {
		if !e.at.Before(from) && e.at.Before(to) {
			inRange++
		}
	}
	if want := sum(from, to) + 1000*inRange; err != nil || len(teams) != 1 || teams[0].Spent != want {
		t.Errorf("team stats: %+v %v, want spent %d", teams, err, want)
	}
	// The export holds every event, oldest first.
	d, err := db.ExportPerson(ctx, a.Email, "cli:test")
	if err != nil || len(d.Usage) != len(mine) {
		t.Fatalf("export: %d events %v, want %d", len(d.Usage), err, len(mine))
	}
	for i, u := range d.Usage {
		if w := mine[len(mine)-1-i]; u.EventID != w.id || !u.OccurredAt.Equal(w.at) {
			t.Errorf("export event %d: %s %v, want %s %v", i, u.EventID, u.OccurredAt, w.id, w.at)
		}
	}
}
