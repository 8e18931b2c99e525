package ledgertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

var (
	octStart = time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	novStart = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	decStart = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func grantFor(t *testing.T, db Store, key string, person int64, amount int64, from, to time.Time) {
	t.Helper()
	if _, err := db.Grant(context.Background(), ledger.GrantInput{Key: key, PersonID: person, Kind: ledger.GrantBaseline, Amount: amount,
		EffectiveAt: from, ExpiresAt: to, Reason: "test"}); err != nil {
		t.Fatal(err)
	}
}

func use(t *testing.T, db Store, id string, email string, credits int64, at time.Time) {
	t.Helper()
	res, err := db.PostUsage(context.Background(), []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: id, Email: email, Model: "m",
		InputTokens: credits, OccurredAt: at}, Credits: credits}})
	if err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("usage %s: %+v %v", id, res, err)
	}
}

func testActivity(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return at })
	people := seedPeople(t, db, 3)
	a, b := people[0], people[1]
	grantFor(t, db, "a-nov", a.ID, 1000, novStart, decStart)
	use(t, db, "a-oct", a.Email, 50, octStart.Add(time.Hour))       // before the period: only LastUse sees nothing newer
	use(t, db, "a-early", a.Email, 300, novStart.Add(48*time.Hour)) // in the period, before the window
	use(t, db, "a-late", a.Email, 900, at.Add(-24*time.Hour))       // in the window; 200 of it is overage
	use(t, db, "a-future", a.Email, 10, at.Add(time.Hour))          // after at: not counted
	db.SetNow(func() time.Time { return at.Add(-time.Hour) })
	if _, err := db.LogImpact(ctx, a.ID, "shipped", 90, ""); err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return novStart.Add(24 * time.Hour) })
	if _, err := db.LogImpact(ctx, a.ID, "early win", 30, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := db.EnqueueNudges(ctx, nil, []ledger.NudgeRecord{{PersonID: b.ID, RunKey: "r1", At: at.Add(-72 * time.Hour), Segment: "dormant"},
		{PersonID: b.ID, RunKey: "r2", At: at.Add(time.Hour), Segment: "dormant"}}); err != nil {
		t.Fatal(err)
	}

	acts, err := db.Activity(ctx, ledger.ActivityWindow{At: at, PeriodStart: novStart, WindowStart: at.Add(-14 * 24 * time.Hour)})
	if err != nil || len(acts) != 3 {
		t.Fatalf("activity: %v %v", acts, err)
	}
	got := acts[0]
	want := ledger.PersonActivity{PersonID: a.ID, SpentPeriod: 1200, OveragePeriod: 200, SpentWindow: 900, LastUse: at.Add(-24 * time.Hour),
		Available: 0, ImpactsWindow: 1, ImpactsPeriod: 2, MinutesPeriod: 120}
	if got != want {
		t.Errorf("person a:\n got %+v\nwant %+v", got, want)
	}
	if got.Allowance() != 1000 {
		t.Errorf("allowance %d, want 1000", got.Allowance())
	}
	if acts[1].LastNudge != at.Add(-72*time.Hour) || acts[1].SpentPeriod != 0 || !acts[1].LastUse.IsZero() {
		t.Errorf("person b: %+v", acts[1])
	}
	// A page of the directory reads the same rows as the whole: by limit, and by id range.
	for _, tc := range []struct {
		after, through int64
		limit          int
		want           []ledger.PersonActivity
	}{
		{0, 0, 2, acts[:2]}, {acts[0].PersonID, 0, 2, acts[1:3]}, {acts[2].PersonID, 0, 2, nil},
		{acts[0].PersonID, acts[1].PersonID, 0, acts[1:2]}, {0, acts[2].PersonID, 5, acts},
	} {
		page, err := db.Activity(ctx, ledger.ActivityWindow{At: at, PeriodStart: novStart, WindowStart: at.Add(-14 * 24 * time.Hour),
			AfterID: tc.after, ThroughID: tc.through, Limit: tc.limit})
		if err != nil || !slices.Equal(page, tc.want) {
			t.Errorf("activity after %d through %d limit %d: %+v %v, want %+v", tc.after, tc.through, tc.limit, page, err, tc.want)
		}
	}
}

func testNudgeLift(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return novStart })
	people := seedPeople(t, db, 6)
	run := novStart.Add(5 * 24 * time.Hour)
	var recs []ledger.NudgeRecord
	for i, p := range people {
		recs = append(recs, ledger.NudgeRecord{PersonID: p.ID, RunKey: "r1", At: run, Segment: "underuser", HeldOut: i >= 4})
		// A second record later in the month does not count twice.
		recs = append(recs, ledger.NudgeRecord{PersonID: p.ID, RunKey: "r2", At: run.Add(48 * time.Hour), Segment: "underuser", HeldOut: i >= 4})
		grantFor(t, db, fmt.Sprint("g", i), p.ID, 1000, novStart, decStart)
	}
	// Heavy users are nudged too, but are not part of the lift.
	recs = append(recs, ledger.NudgeRecord{PersonID: people[0].ID, RunKey: "r0", At: run.Add(-time.Hour), Segment: "heavy-without-gains"})
	if _, err := db.EnqueueNudges(ctx, nil, recs); err != nil {
		t.Fatal(err)
	}
	use(t, db, "n0", people[0].Email, 5, run.Add(time.Hour))      // nudged, active within the week
	use(t, db, "n1", people[1].Email, 5, run.Add(8*24*time.Hour)) // nudged, active too late
	use(t, db, "n2", people[2].Email, 5, run.Add(-time.Hour))     // nudged, active only before
	use(t, db, "h4", people[4].Email, 5, run.Add(7*24*time.Hour)) // held out, active on the last moment of the week
	got, err := db.NudgeLift(ctx, novStart, decStart, run.Add(8*24*time.Hour), 7*24*time.Hour, "dormant", "underuser")
	want := ledger.LiftCounts{Nudged: 4, NudgedActive: 1, HeldOut: 2, HeldOutActive: 1}
	if err != nil || got != want {
		t.Fatalf("lift: %+v %v, want %+v", got, err, want)
	}
	// Records whose week is not over yet are left out.
	if got, _ := db.NudgeLift(ctx, novStart, decStart, run.Add(6*24*time.Hour), 7*24*time.Hour, "underuser"); got != (ledger.LiftCounts{}) {
		t.Fatalf("lift before the week is over: %+v", got)
	}
}

func testPeriodClosing(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return octStart })
	people := seedPeople(t, db, 3)
	rollover := &ledger.RolloverLimits{Max: 100}
	var ins []ledger.ResetInput
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: octStart, NewKey: "2026-10", NextEnd: novStart, Baseline: 1000})
	}
	if _, err := db.ResetPeriods(ctx, ins); err != nil {
		t.Fatal(err)
	}
	use(t, db, "u0", people[0].Email, 950, octStart.Add(time.Hour)) // spends nearly all: 50 expire
	use(t, db, "u1", people[1].Email, 500, octStart.Add(time.Hour)) // 500 unspent: 100 carried, 400 expire
	// people[2] spends nothing: 900 expire, 100 carried; a hoarder at ratio 0.7.
	db.SetNow(func() time.Time { return novStart })
	ins = ins[:0]
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: novStart, OldKey: "2026-10", NewKey: "2026-11", NextEnd: decStart, Baseline: 1000, Rollover: rollover})
	}
	if _, err := db.ResetPeriods(ctx, ins); err != nil {
		t.Fatal(err)
	}
	c, err := db.PeriodClosing(ctx, "2026-10", octStart, novStart, 0.7)
	want := ledger.Closing{Expired: 0 + 400 + 900, Carried: 50 + 100 + 100, Hoarders: 1, Hoarded: 900}
	if err != nil || c != want {
		t.Fatalf("closing: %+v %v, want %+v", c, err, want)
	}
	if c, _ := db.PeriodClosing(ctx, "2026-09", octStart.AddDate(0, -1, 0), octStart, 0.7); c != (ledger.Closing{}) {
		t.Fatalf("a period nobody closed: %+v", c)
	}
}

// testPeriodAndTeamFigures reads a closed period's figures per person (PeriodStats) and per
// team (TeamStats, ordered by the team's bytes whatever the database's collation), a
// person's history, and a connector's figures with one event waiting in quarantine and
// another given up after waiting too long.
func testPeriodAndTeamFigures(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return octStart })
	var recs []ledger.PersonRecord
	for i, team := range []string{"beta", "Alpha", "_ops", "beta"} {
		recs = append(recs, ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@example.com", i), Name: fmt.Sprintf("Person %d", i), Team: team, Role: "engineer"})
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil || len(people) != 4 {
		t.Fatalf("people: %v %v", people, err)
	}
	var ins []ledger.ResetInput
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: octStart, NewKey: "2026-10", NextEnd: novStart, Baseline: 1000})
	}
	if _, err := db.ResetPeriods(ctx, ins); err != nil {
		t.Fatal(err)
	}
	grantFor(t, db, "p1-extra", people[1].ID, 250, octStart.Add(24*time.Hour), novStart)
	use(t, db, "p0-a", people[0].Email, 600, octStart.Add(time.Hour))
	use(t, db, "p0-b", people[0].Email, 700, octStart.Add(2*time.Hour)) // 300 of it is overage
	use(t, db, "p1-a", people[1].Email, 100, octStart.Add(3*time.Hour))
	use(t, db, "p3-sep", people[3].Email, 40, octStart.Add(-time.Hour)) // September: not in October's figures
	db.SetNow(func() time.Time { return octStart.Add(5 * 24 * time.Hour) })
	im, err := db.LogImpact(ctx, people[1].ID, "shipped", 45, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.LogImpact(ctx, people[1].ID, "fixed", 15, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.ValidateImpact(ctx, im.ID, people[0].ID); err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return novStart })
	ins = ins[:0]
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: novStart, OldKey: "2026-10", NewKey: "2026-11", NextEnd: decStart, Baseline: 1000})
	}
	if _, err := db.ResetPeriods(ctx, ins); err != nil {
		t.Fatal(err)
	}

	stats, err := db.PeriodStats(ctx, "2026-10", octStart, novStart)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.PersonPeriod{
		{PersonID: people[0].ID, Granted: 1000, Spent: 1300, Expired: 0},
		{PersonID: people[1].ID, Granted: 1250, Spent: 100, Expired: 1150, Logged: 2, Validated: 1, Minutes: 60},
		{PersonID: people[2].ID, Granted: 1000, Expired: 1000},
		{PersonID: people[3].ID, Granted: 1000, Expired: 1000},
	}
	if fmt.Sprint(stats) != fmt.Sprint(want) {
		t.Errorf("period stats:\n got %+v\nwant %+v", stats, want)
	}
	if some, err := db.PeriodStats(ctx, "2026-10", octStart, novStart, people[1].ID); err != nil || len(some) != 1 || some[0] != want[1] {
		t.Errorf("period stats of one person: %+v %v", some, err)
	}
	teams, err := db.TeamStats(ctx, octStart, novStart)
	if err != nil {
		t.Fatal(err)
	}
	wantTeams := []ledger.TeamStat{
		{Team: "Alpha", People: 1, Granted: 1250, Spent: 100},
		{Team: "_ops", People: 1, Granted: 1000},
		{Team: "beta", People: 2, Granted: 2000, Spent: 1300},
	}
	if fmt.Sprint(teams) != fmt.Sprint(wantTeams) {
		t.Errorf("team stats:\n got %+v\nwant %+v", teams, wantTeams)
	}
	hist, err := db.History(ctx, people[0].ID, 3)
	if err != nil || len(hist) != 3 {
		t.Fatalf("history: %+v %v", hist, err)
	}
	// Newest first: November's baseline, October's close (nothing left to expire, so the
	// close posts nothing of p0's), then the usage.
	if h := hist[0]; h.Kind != ledger.TxGrant || h.Amount != 1000 {
		t.Errorf("history[0] = %+v, want November's baseline of 1000", h)
	}
	if h := hist[len(hist)-1]; h.Kind != ledger.TxUsage || h.Amount != -700 {
		t.Errorf("history[last] = %+v, want the usage of 700", h)
	}

	// One event for someone unknown waits; an older one is given up.
	db.SetNow(func() time.Time { return novStart.Add(time.Hour) })
	res, err := db.PostUsage(ctx, []ledger.UsagePosting{
		{Event: ledger.UsageEvent{EventID: "old", Email: "nobody@example.com", Model: "m", OccurredAt: novStart, Source: "otlp:anthropic"}, Credits: 1},
	})
	if err != nil || res[0].Status != ledger.UsageQuarantined {
		t.Fatalf("quarantine: %+v %v", res, err)
	}
	db.SetNow(func() time.Time { return novStart.Add(2 * time.Hour) })
	res, err = db.PostUsage(ctx, []ledger.UsagePosting{
		{Event: ledger.UsageEvent{EventID: "new", SlackUserID: "U404", Model: "m", OccurredAt: novStart, Source: "otlp"}, Credits: 1},
		{Event: ledger.UsageEvent{EventID: "other", SlackUserID: "U405", Model: "m", OccurredAt: novStart, Source: "otlpx"}, Credits: 1},
		{Event: ledger.UsageEvent{EventID: "mine", Email: people[2].Email, Model: "m", OccurredAt: novStart.Add(time.Minute), Source: "otlp:openai"}, Credits: 7},
	})
	if err != nil || res[0].Status != ledger.UsageQuarantined || res[2].Status != ledger.UsageAccepted {
		t.Fatalf("usage: %+v %v", res, err)
	}
	cs, err := db.ConnectorStats(ctx, "otlp")
	if err != nil || cs.Events != 1 || cs.Credits != 7 || cs.Quarantined != 2 || !cs.LastEventAt.Equal(novStart.Add(2*time.Hour)) {
		t.Errorf("connector stats: %+v %v, want 1 event of 7 credits and 2 waiting", cs, err)
	}
	expired, err := db.ExpireQuarantine(ctx, novStart.Add(90*time.Minute))
	if err != nil || len(expired) != 1 || expired[0] != 1 {
		t.Errorf("expire quarantine: %v %v, want the one event without a key", expired, err)
	}
	if cs, err := db.ConnectorStats(ctx, "otlp"); err != nil || cs.Quarantined != 1 {
		t.Errorf("connector stats after expiry: %+v %v, want 1 waiting", cs, err)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Errorf("verify: %v %v", v, err)
	}
}
