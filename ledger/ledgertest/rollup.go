package ledgertest

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// rollupLedger books 15 months of usage for three people from January 2025, one period
// reset per month (baseline 1,000, up to 100 carried), two models and two sources, so that
// most months end in overage; a late event after three of the closes (charged to the
// closed period: late charges and adjustments), and two reversed events, one in a month the
// roll-up takes and one in a month it keeps. It returns the store, its people and every
// month's start (16 instants: the last is the end of the 15th month).
func rollupLedger(t *testing.T, open Opener, seed uint64) (Store, []ledger.Person, []time.Time) {
	t.Helper()
	ctx := context.Background()
	db := open(t)
	first := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return first })
	people := seedPeople(t, db, 3)
	rng := rand.New(rand.NewPCG(seed, 18))
	var starts []time.Time
	for m := 0; m <= 15; m++ {
		starts = append(starts, first.AddDate(0, m, 0))
	}
	key := func(m int) string { return starts[m].Format("2006-01") }
	n := 0
	for m := 0; m < 15; m++ {
		ps, pe := starts[m], starts[m+1]
		db.SetNow(func() time.Time { return ps })
		var ins []ledger.ResetInput
		for _, p := range people {
			in := ledger.ResetInput{PersonID: p.ID, Boundary: ps, NewKey: key(m), NextEnd: pe, Baseline: 1000}
			if m > 0 {
				in.OldKey, in.Rollover = key(m-1), &ledger.RolloverLimits{Max: 100}
			}
			ins = append(ins, in)
		}
		if _, err := db.ResetPeriods(ctx, ins); err != nil {
			t.Fatal(err)
		}
		if m >= 1 && m <= 3 {
			// Late: dated in the period just closed, booked an hour after its close.
			db.SetNow(func() time.Time { return ps.Add(time.Hour) })
			n++
			use(t, db, fmt.Sprintf("late-%d", m), people[m%3].Email, 150, ps.Add(-2*time.Hour))
		}
		db.SetNow(func() time.Time { return ps.AddDate(0, 0, 27) })
		var batch []ledger.UsagePosting
		for _, p := range people {
			for range 4 + rng.IntN(4) {
				day := rng.IntN(27)
				for range 1 + rng.IntN(5) {
					n++
					credits := 10 + rng.Int64N(110)
					at := ps.AddDate(0, 0, day).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
					batch = append(batch, ledger.UsagePosting{Event: ledger.UsageEvent{EventID: fmt.Sprintf("e%d", n), Email: p.Email,
						Model: []string{"small", "large"}[rng.IntN(2)], Source: []string{"litellm", "otlp:openai"}[rng.IntN(2)],
						InputTokens: credits, OutputTokens: rng.Int64N(50), OccurredAt: at}, Credits: credits,
						PeriodStart: ps, PeriodEnd: pe})
				}
			}
		}
		res, err := db.PostUsage(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Status != ledger.UsageAccepted {
				t.Fatalf("month %d: %+v", m, r)
			}
		}
	}
	db.SetNow(func() time.Time { return starts[15].Add(-time.Hour) })
	for _, id := range []string{"e3", fmt.Sprintf("e%d", n-2)} {
		tx, err := db.UsageTxID(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Reverse(ctx, ledger.ReverseInput{TxID: tx, Reason: "test", Actor: "admin@example.com", RefundExpiresAt: starts[15]}); err != nil {
			t.Fatalf("reverse %s: %v", id, err)
		}
	}
	return db, people, starts
}

// ledgerView is everything people and reports read of a ledger, as the roll-up must keep it:
// exact for whatever is not old usage, and for old usage the sums per person, model and day.
type ledgerView struct {
	Balances   []ledger.Balance
	Periods    [][]ledger.PersonPeriod
	Teams      [][]ledger.TeamStat
	Activity   [][]ledger.PersonActivity
	Closings   []ledger.Closing
	Other      []ledger.Activity   // History without usage
	UsageDays  map[string][2]int64 // History's usage per person, day (UTC) and model: sum, rows
	Accounts   map[string]int64    // ExportPostings summed per account
	NotUsage   []string            // ExportPostings' lines of other kinds
	PersonData []ledger.PersonData // ExportPerson without usage
	UsageJSON  map[string][4]int64 // ExportPerson's usage per person, day, model: credits, overage, tokens, events
	Recent     []ledger.UsageJSON  // ExportPerson's usage dated from `before` on, as is
	Connectors []ledger.ConnectorStats
	Events     int64 // usage events the rows stand for
	Verify     []string
}

func viewOf(t *testing.T, db Store, people []ledger.Person, starts []time.Time, before time.Time) ledgerView {
	t.Helper()
	ctx := context.Background()
	v := ledgerView{UsageDays: map[string][2]int64{}, Accounts: map[string]int64{}, UsageJSON: map[string][4]int64{}}
	for m := 0; m+1 < len(starts); m++ {
		ps, pe := starts[m], starts[m+1]
		for _, p := range people {
			b, err := db.Balance(ctx, p.ID, ps, pe)
			if err != nil {
				t.Fatal(err)
			}
			b.Available = 0 // what is left now, the same for every period
			v.Balances = append(v.Balances, b)
		}
		stats, err := db.PeriodStats(ctx, ps.Format("2006-01"), ps, pe)
		if err != nil {
			t.Fatal(err)
		}
		v.Periods = append(v.Periods, stats)
		teams, err := db.TeamStats(ctx, ps, pe)
		if err != nil {
			t.Fatal(err)
		}
		v.Teams = append(v.Teams, teams)
		act, err := db.Activity(ctx, ledger.ActivityWindow{At: pe, PeriodStart: ps, WindowStart: pe.AddDate(0, 0, -14)})
		if err != nil {
			t.Fatal(err)
		}
		v.Activity = append(v.Activity, act)
		c, err := db.PeriodClosing(ctx, ps.Format("2006-01"), ps, pe, 0.7)
		if err != nil {
			t.Fatal(err)
		}
		v.Closings = append(v.Closings, c)
	}
	for _, p := range people {
		hist, err := db.History(ctx, p.ID, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range hist {
			if a.Kind != ledger.TxUsage {
				v.Other = append(v.Other, a)
				continue
			}
			k := fmt.Sprintf("%d %s %s", p.ID, a.At.UTC().Format("2006-01-02"), a.Reason)
			d := v.UsageDays[k]
			v.UsageDays[k] = [2]int64{d[0] + a.Amount, d[1] + 1}
		}
		data, err := db.ExportPerson(ctx, p.Email, "admin@example.com")
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range data.Usage {
			if !u.OccurredAt.Before(before) {
				v.Recent = append(v.Recent, u)
				continue
			}
			if u.Reversed {
				v.Recent = append(v.Recent, u) // reversed rows are never rolled up
				continue
			}
			k := fmt.Sprintf("%d %s %s %s", p.ID, u.OccurredAt.UTC().Format("2006-01-02"), u.Model, u.Source)
			d := v.UsageJSON[k]
			v.UsageJSON[k] = [4]int64{d[0] + u.Credits, d[1] + u.Overage, d[2] + u.InputTokens + u.OutputTokens, d[3] + u.Events}
		}
		for _, u := range data.Usage {
			v.Events += u.Events
		}
		data.Usage, data.ExportedAt = nil, time.Time{}
		v.PersonData = append(v.PersonData, data)
	}
	// History's usage rows are counted above; only their sums must survive.
	for k, d := range v.UsageDays {
		v.UsageDays[k] = [2]int64{d[0], 0}
	}
	var buf bytes.Buffer
	if err := db.ExportPostings(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	lines, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines[1:] {
		amount, err := strconv.ParseInt(l[6], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		v.Accounts[l[5]] += amount
		if l[3] != ledger.TxUsage {
			v.NotUsage = append(v.NotUsage, fmt.Sprint(l))
		}
	}
	// Within a transaction ExportPostings' order is the engine's (PostgreSQL's differs run to run).
	sort.Strings(v.NotUsage)
	for _, c := range []string{"litellm", "otlp"} {
		s, err := db.ConnectorStats(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		v.Connectors = append(v.Connectors, s)
	}
	var err2 error
	v.Verify, err2 = db.Verify(ctx)
	if err2 != nil {
		t.Fatal(err2)
	}
	return v
}

// testUsageRollup: rolling up 15 months of usage at a retention of 13 months replaces the
// rows of the first two months by one per person, model, source and day, and changes nothing
// anyone reads: balances and figures of every period, activity, closings, history and both
// exports (exact except old usage, which keeps its sums per person, model and day), the
// connectors' counts, and verify stays clean. Usage from the retention on is untouched; a dry
// run counts the same and writes nothing; a second run does nothing.
func testUsageRollup(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people, starts := rollupLedger(t, open, 1)
	now := starts[15].AddDate(0, 0, 14)
	db.SetNow(func() time.Time { return now })
	pol := policy.Default()
	before := pol.RollupBefore(now)
	if want := starts[2]; !before.Equal(want) {
		t.Fatalf("RollupBefore(%s) = %s, want %s (13 months before the current period)", now, before, want)
	}
	was := viewOf(t, db, people, starts, before)
	if len(was.Verify) != 0 {
		t.Fatalf("verify before the roll-up: %v", was.Verify)
	}
	if n := count(t, db, "usage_adjustments"); n == 0 {
		t.Fatal("the fixture has no usage adjustments; the roll-up must be shown to carry them")
	}
	rows := count(t, db, "usage_events")
	txs := count(t, db, "transactions")
	in := ledger.RollupInput{Before: before, Zone: pol.Location(), Actor: "admin@example.com", DryRun: true}
	dry, err := db.RollUpUsage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if dry.Rows == 0 || dry.Summaries == 0 || dry.Rows <= dry.Summaries || !dry.DryRun {
		t.Fatalf("dry run: %+v, want rows to roll up", dry)
	}
	if count(t, db, "usage_events") != rows || count(t, db, "transactions") != txs {
		t.Fatal("a dry run changed the ledger")
	}
	in.DryRun = false
	res, err := db.RollUpUsage(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rows != dry.Rows || res.Summaries != dry.Summaries || res.Events != dry.Events || !res.Before.Equal(before) || !res.From.IsZero() {
		t.Fatalf("roll-up %+v, dry run %+v", res, dry)
	}
	if got, want := count(t, db, "usage_events"), rows-int(res.Rows-res.Summaries); got != want {
		t.Errorf("usage rows after the roll-up: %d, want %d", got, want)
	}
	if got, want := count(t, db, "transactions"), txs-int(res.Rows-res.Summaries); got != want {
		t.Errorf("transactions after the roll-up: %d, want %d", got, want)
	}
	now2 := viewOf(t, db, people, starts, before)
	if len(now2.Verify) != 0 {
		t.Errorf("verify after the roll-up: %v", now2.Verify)
	}
	wv, nv := reflect.ValueOf(was), reflect.ValueOf(now2)
	for i := range wv.NumField() {
		if !reflect.DeepEqual(wv.Field(i).Interface(), nv.Field(i).Interface()) {
			t.Errorf("%s changed with the roll-up:\n was %+v\n now %+v", wv.Type().Field(i).Name, wv.Field(i).Interface(), nv.Field(i).Interface())
		}
	}
	// Old usage is one row per person, model, source and day; each is its own transaction.
	var dupes int
	if err := rawSQL(t, db).QueryRowContext(ctx, `SELECT count(*) FROM (SELECT person_id, model, source, occurred_at / 86400000
		FROM usage_events WHERE occurred_at < ? AND reversed = 0 GROUP BY person_id, model, source, occurred_at / 86400000 HAVING count(*) > 1) d`,
		before.UnixMilli()).Scan(&dupes); err != nil {
		t.Fatal(err)
	}
	if dupes != 0 {
		t.Errorf("%d person-model-source-days before %s still have several rows", dupes, before)
	}
	if n := count(t, db, "usage_events WHERE occurred_at < "+strconv.FormatInt(before.UnixMilli(), 10)+" AND events > 1"); n == 0 {
		t.Error("no rolled-up row stands for several events")
	}
	// The recent events keep their keys: a retry is a duplicate, as before.
	recent, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "late-3", Email: people[0].Email, Model: "m",
		InputTokens: 150, OccurredAt: starts[3].Add(-2 * time.Hour)}, Credits: 150}})
	if err != nil || recent[0].Status != ledger.UsageDuplicate {
		t.Errorf("retrying an event kept in full: %+v %v, want a duplicate", recent, err)
	}
	// An event whose key the roll-up forgot is too late for the time rules.
	if d := pol.LateDeadline(starts[2].Add(-time.Millisecond)); now.Before(d) {
		t.Errorf("usage rolled up at %s is still accepted until %s", now, d)
	}

	again, err := db.RollUpUsage(ctx, in)
	if err != nil || again.Rows != 0 || again.Summaries != 0 || !again.From.Equal(before) {
		t.Errorf("second roll-up: %+v %v, want nothing from %s", again, err, before)
	}
	if v := viewOf(t, db, people, starts, before); !reflect.DeepEqual(v, now2) {
		t.Error("a second roll-up changed what the ledger shows")
	}
	log, err := db.AuditLog(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var audited int
	for _, e := range log {
		if e.Action == "usage.rollup" && e.Actor == "admin@example.com" {
			audited++
		}
	}
	if audited != 1 {
		t.Errorf("the roll-up is in the audit log %d times, want once (the second run did nothing): %+v", audited, log)
	}
	// A later retention rolls up the next month, from where the last run stopped.
	in.Before = starts[3]
	next, err := db.RollUpUsage(ctx, in)
	if err != nil || next.Rows == 0 || !next.From.Equal(before) {
		t.Fatalf("next month's roll-up: %+v %v", next, err)
	}
	later := viewOf(t, db, people, starts, starts[3])
	if len(later.Verify) != 0 {
		t.Errorf("verify after the next roll-up: %v", later.Verify)
	}
	if !reflect.DeepEqual(later.Balances, was.Balances) || !reflect.DeepEqual(later.Periods, was.Periods) || !reflect.DeepEqual(later.Accounts, was.Accounts) {
		t.Error("the next month's roll-up changed balances, period figures or account sums")
	}
}

// testUsageRollupKeepsSums is the property: for random histories (other seeds, other
// retentions, a zone that is not UTC), every account's postings, every person's balance in
// every period, and verify are the same after the roll-up as before.
func testUsageRollupKeepsSums(t *testing.T, open Opener) {
	ctx := context.Background()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(2); seed < 5; seed++ {
		db, people, starts := rollupLedger(t, open, seed)
		before := starts[1+int(seed)%10]
		was := viewOf(t, db, people, starts, before)
		res, err := db.RollUpUsage(ctx, ledger.RollupInput{Before: before, Zone: paris, Actor: "scheduler"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Rows == 0 {
			t.Fatalf("seed %d: nothing rolled up before %s", seed, before)
		}
		now := viewOf(t, db, people, starts, before)
		if len(now.Verify) != 0 {
			t.Errorf("seed %d: verify: %v", seed, now.Verify)
		}
		if !reflect.DeepEqual(was.Accounts, now.Accounts) || !reflect.DeepEqual(was.Balances, now.Balances) ||
			!reflect.DeepEqual(was.Periods, now.Periods) || !reflect.DeepEqual(was.Teams, now.Teams) ||
			!reflect.DeepEqual(was.Recent, now.Recent) || was.Events != now.Events {
			t.Errorf("seed %d, rolled up before %s (%+v): sums changed", seed, before, res)
		}
	}
}
