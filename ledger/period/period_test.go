package period_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// testPolicy resets monthly in Paris: Sales gets 3,000, managers 2,000, everyone else
// 1,000; between 100 and 500 credits roll over.
const testPolicy = `
org: {time_zone: Europe/Paris}
baseline:
  default: 1000
  rules:
    - {team: Sales, amount: 3000}
    - {role: manager, amount: 2000}
rollover: {max: 500, min: 100}
`

func setup(t *testing.T, src string) (ledgertest.Store, *policy.Policy, map[string]int64) {
	t.Helper()
	ctx := context.Background()
	pol, err := policy.Parse(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	db := ledgertest.Open(t)
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "ana@example.com", Name: "Ana", Team: "Platform", Role: "engineer"},
		{Line: 3, Email: "bo@example.com", Name: "Bo", Team: "Sales", Role: "engineer"},
		{Line: 4, Email: "cy@example.com", Name: "Cy", Team: "Platform", Role: "manager"},
	}); err != nil {
		t.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int64{}
	for _, p := range people {
		ids[p.Email] = p.ID
	}
	return db, pol, ids
}

func available(t *testing.T, db ledgertest.Store, pol *policy.Policy, id int64, at time.Time) int64 {
	t.Helper()
	db.SetNow(func() time.Time { return at })
	b, err := db.Balance(context.Background(), id, pol.PeriodStart(at), pol.PeriodEnd(at))
	if err != nil {
		t.Fatal(err)
	}
	return b.Available
}

func TestResetOpensPeriodOnce(t *testing.T) {
	ctx := context.Background()
	db, pol, ids := setup(t, testPolicy)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return at })
	sum, err := period.Reset(ctx, db, pol, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := (period.Summary{Period: "2026-11", People: 3, Baseline: 6000}); sum != want {
		t.Fatalf("first reset: %+v, want %+v", sum, want)
	}
	for email, want := range map[string]int64{"ana@example.com": 1000, "bo@example.com": 3000, "cy@example.com": 2000} {
		if got := available(t, db, pol, ids[email], at); got != want {
			t.Errorf("%s: available %d, want %d", email, got, want)
		}
	}
	// The baseline runs until the period ends in Paris: 1 December 00:00 CET.
	gs, err := db.Grants(ctx, ids["ana@example.com"], 10)
	if err != nil || len(gs) != 1 {
		t.Fatalf("grants: %+v, %v", gs, err)
	}
	if want := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC); !gs[0].ExpiresAt.Equal(want) || gs[0].Kind != ledger.GrantBaseline {
		t.Errorf("baseline grant %+v, want a baseline expiring %v", gs[0], want)
	}

	// Running again in the same period (a restart, a late joiner's import) grants nothing twice.
	sum, err = period.Reset(ctx, db, pol, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if want := (period.Summary{Period: "2026-11", People: 3}); sum != want {
		t.Fatalf("second reset: %+v, want %+v", sum, want)
	}
	if got := available(t, db, pol, ids["bo@example.com"], at); got != 3000 {
		t.Errorf("bo after a second reset: available %d, want 3000", got)
	}
}

func TestResetRollsOver(t *testing.T) {
	ctx := context.Background()
	db, pol, ids := setup(t, testPolicy)
	nov := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return nov })
	if _, err := period.Reset(ctx, db, pol, nov); err != nil {
		t.Fatal(err)
	}
	spend := []ledger.UsagePosting{
		{Event: ledger.UsageEvent{EventID: "a", Email: "ana@example.com", Model: "m", OccurredAt: nov}, Credits: 300},
		{Event: ledger.UsageEvent{EventID: "b", Email: "bo@example.com", Model: "m", OccurredAt: nov}, Credits: 3200},
	}
	if res, err := db.PostUsage(ctx, spend); err != nil || res[0].Status != ledger.UsageAccepted || res[1].Status != ledger.UsageAccepted {
		t.Fatalf("usage: %+v, %v", res, err)
	}

	// 30 November 23:30 UTC is already December in Paris.
	dec := time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return dec })
	sum, err := period.Reset(ctx, db, pol, dec)
	if err != nil {
		t.Fatal(err)
	}
	// Unspent: ana 700, bo 0, cy 2000. Carried: min(500, max(unspent, 100)).
	if want := (period.Summary{Period: "2026-12", People: 3, Expired: 2700, Carried: 500 + 100 + 500, Baseline: 6000}); sum != want {
		t.Fatalf("December reset: %+v, want %+v", sum, want)
	}
	for email, want := range map[string]int64{"ana@example.com": 500 + 1000, "bo@example.com": 100 + 3000, "cy@example.com": 500 + 2000} {
		if got := available(t, db, pol, ids[email], dec); got != want {
			t.Errorf("%s: available %d in December, want %d", email, got, want)
		}
	}
	// What was not carried is reclaimable: ana's 200 and cy's 1,500. Bo's minimum
	// rollover came from the pool, not from the reclaimed credits.
	if got, err := db.AccountBalance(ctx, ledger.AccountExpired); err != nil || got != 1700 {
		t.Errorf("expired account %d, %v; want 1700", got, err)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", err, v)
	}
	// A repeated December run changes nothing.
	if sum, err := period.Reset(ctx, db, pol, dec.Add(time.Minute)); err != nil || sum != (period.Summary{Period: "2026-12", People: 3}) {
		t.Errorf("repeated December reset: %+v, %v", sum, err)
	}
}

func TestResetWeekly(t *testing.T) {
	db, pol, _ := setup(t, "period: weekly\nbaseline: {default: 50}\n")
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) // a Friday of ISO week 48
	db.SetNow(func() time.Time { return at })
	sum, err := period.Reset(context.Background(), db, pol, at)
	if err != nil {
		t.Fatal(err)
	}
	if want := (period.Summary{Period: "2026-W48", People: 3, Baseline: 150}); sum != want {
		t.Fatalf("%+v, want %+v", sum, want)
	}
}

func TestBounds(t *testing.T) {
	pol, err := policy.Parse(strings.NewReader(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	start, end := period.Bounds(pol, time.Date(2026, 11, 30, 23, 30, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC); !start.Equal(want) {
		t.Errorf("start %v, want %v (1 December in Paris)", start, want)
	}
	if want := time.Date(2026, 12, 31, 23, 0, 0, 0, time.UTC); !end.Equal(want) {
		t.Errorf("end %v, want %v", end, want)
	}
}

// TestResetGrantsNothingToForgottenPeople: after `people forget`, a period reset expires
// what the pseudonym had left and grants no new baseline.
func TestResetGrantsNothingToForgottenPeople(t *testing.T) {
	ctx := context.Background()
	db, pol, ids := setup(t, testPolicy)
	at := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return at })
	if _, err := period.Reset(ctx, db, pol, at); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Forget(ctx, "cy@example.com", "test"); err != nil {
		t.Fatal(err)
	}
	next := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return next })
	sum, err := period.Reset(ctx, db, pol, next)
	if err != nil {
		t.Fatal(err)
	}
	if got := available(t, db, pol, ids["cy@example.com"], next); got != 0 {
		t.Errorf("forgotten person: available %d after the reset, want 0", got)
	}
	if sum.Baseline != 1000+3000 {
		t.Errorf("baselines granted %d, want only the two remaining people's 4000", sum.Baseline)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", v, err)
	}
}
