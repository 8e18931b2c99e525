package period_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// world is an organisation in Europe/Paris with the default policy (200,000 baseline, up to
// 50,000 carried over, 72h of grace), its ledger and its usage path, on a clock the test
// moves.
type world struct {
	t     *testing.T
	db    ledgertest.Store
	pol   *policy.Policy
	ing   *usage.Ingestor
	clock time.Time
	ids   map[string]int64
	n     int
}

var paris = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return loc
}()

func parisTime(month time.Month, day, hour, minute int) time.Time {
	return time.Date(2026, month, day, hour, minute, 0, 0, paris)
}

func newWorld(t *testing.T, emails ...string) *world {
	t.Helper()
	ctx := context.Background()
	pol, err := policy.Parse(strings.NewReader("org: {time_zone: Europe/Paris}\n"))
	if err != nil {
		t.Fatal(err)
	}
	db := ledgertest.Open(t)
	w := &world{t: t, db: db, pol: pol, clock: parisTime(time.September, 20, 12, 0), ids: map[string]int64{}}
	db.SetNow(func() time.Time { return w.clock })
	w.ing = &usage.Ingestor{Store: db, Policy: pol, Now: func() time.Time { return w.clock },
		Credits: func(_ string, in, out int64) (int64, error) { return in + out, nil }}
	var recs []ledger.PersonRecord
	for i, e := range emails {
		recs = append(recs, ledger.PersonRecord{Line: i + 2, Email: e, Name: e})
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, e := range emails {
		p, err := db.PersonByEmail(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		w.ids[e] = p.ID
	}
	return w
}

// reset runs the period-reset job at the given time.
func (w *world) reset(at time.Time) {
	w.t.Helper()
	w.clock = at
	if _, err := period.Reset(context.Background(), w.db, w.pol, at); err != nil {
		w.t.Fatal(err)
	}
	w.verify()
}

// use posts one event of credits dated at that arrives at arrives, and returns its result.
func (w *world) use(email string, credits int64, at, arrives time.Time) ledger.UsageResult {
	w.t.Helper()
	w.clock = arrives
	w.n++
	res, err := w.ing.Ingest(context.Background(), []usage.Item{{Event: ledger.UsageEvent{EventID: fmt.Sprintf("ev%d", w.n), Email: email,
		Model: "m", InputTokens: credits, OccurredAt: at.UTC()}}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.verify()
	return res[0]
}

func (w *world) mustUse(email string, credits int64, at, arrives time.Time) {
	w.t.Helper()
	if r := w.use(email, credits, at, arrives); r.Status != ledger.UsageAccepted {
		w.t.Fatalf("event at %s arriving %s: %+v", at, arrives, r)
	}
}

func (w *world) verify() {
	w.t.Helper()
	if v, err := w.db.Verify(context.Background()); err != nil || len(v) > 0 {
		w.t.Fatalf("ledger verify at %s: %v %v", w.clock, err, v)
	}
}

// balance reads available now (at the clock) with spent and overage of the period
// holding periodAt, as "available A, spent S, overage O".
func (w *world) balance(email string, now, periodAt time.Time) string {
	w.t.Helper()
	w.clock = now
	b, err := w.db.Balance(context.Background(), w.ids[email], w.pol.PeriodStart(periodAt), w.pol.PeriodEnd(periodAt))
	if err != nil {
		w.t.Fatal(err)
	}
	return fmt.Sprintf("available %d, spent %d, overage %d", b.Available, b.Spent, b.Overage)
}

func (w *world) account(name string) int64 {
	w.t.Helper()
	b, err := w.db.AccountBalance(context.Background(), name)
	if err != nil {
		w.t.Fatal(err)
	}
	return b
}

// october opens October for everyone and has each spend 150,000 of it in mid-month, so
// each carries the most, 50,000, into November.
func (w *world) october(emails ...string) {
	w.reset(parisTime(time.October, 1, 0, 5))
	for _, e := range emails {
		w.mustUse(e, 150_000, parisTime(time.October, 15, 10, 0), parisTime(time.October, 15, 10, 0))
	}
}

func hasActivity(t *testing.T, db ledgertest.Store, id int64, kind, reason string) bool {
	t.Helper()
	acts, err := db.History(context.Background(), id, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acts {
		if a.Kind == kind && strings.Contains(a.Reason, reason) {
			return true
		}
	}
	return false
}

// The first case: usage at 00:01 on the 1st, before the reset job at 00:05, counts
// against the new period's grants exactly like the same usage arriving after the job.
func TestUsageBeforeTheResetJobCountsInTheNewPeriod(t *testing.T) {
	w := newWorld(t, "early@example.com", "after@example.com")
	w.october("early@example.com", "after@example.com")
	at := parisTime(time.November, 1, 0, 1)
	w.mustUse("early@example.com", 1000, at, at) // before the job
	w.reset(parisTime(time.November, 1, 0, 5))
	w.mustUse("after@example.com", 1000, at, parisTime(time.November, 1, 0, 6)) // after it
	now := parisTime(time.November, 1, 0, 10)
	want := "available 249000, spent 1000, overage 0"
	for _, e := range []string{"early@example.com", "after@example.com"} {
		if got := w.balance(e, now, now); got != want {
			t.Errorf("%s: %s, want %s", e, got, want)
		}
	}
	// The overage turned into spending is on the record, with its reason.
	if !hasActivity(t, w.db, w.ids["early@example.com"], ledger.TxSettle, "booked before its grants existed") {
		t.Error("no settle transaction in the history of the early event's person")
	}
	if hasActivity(t, w.db, w.ids["after@example.com"], ledger.TxSettle, "") {
		t.Error("a settle transaction for usage that arrived after the reset")
	}
}

// The second case: usage at 23:00 on the 30th that arrives after the reset is
// charged to November, where 200,000 credits were open, and leaves December exactly as if
// it had arrived in time.
func TestLateUsageIsChargedToThePeriodItHappenedIn(t *testing.T) {
	w := newWorld(t, "late@example.com", "ontime@example.com")
	w.reset(parisTime(time.November, 1, 0, 5))
	at := parisTime(time.November, 30, 23, 0)
	w.mustUse("ontime@example.com", 1000, at, at)
	w.reset(parisTime(time.December, 1, 0, 5))
	expiredBefore := w.account(ledger.AccountExpired)
	// A gateway batches and retries: the event arrives in the morning.
	w.mustUse("late@example.com", 1000, at, parisTime(time.December, 1, 9, 0))
	now := parisTime(time.December, 1, 9, 30)
	for _, e := range []string{"late@example.com", "ontime@example.com"} {
		if got, want := w.balance(e, now, at), "available 250000, spent 1000, overage 0"; got != want {
			t.Errorf("%s in November: %s, want %s", e, got, want)
		}
		if got, want := w.balance(e, now, now), "available 250000, spent 0, overage 0"; got != want {
			t.Errorf("%s in December: %s, want %s", e, got, want)
		}
	}
	// 199,000 were left in November; 50,000 carried, so 149,000 expired, not 150,000.
	if got := w.account(ledger.AccountExpired); got != 2*149_000 || expiredBefore != 149_000+150_000 {
		t.Errorf("expired %d (before the late event %d), want %d (%d)", got, expiredBefore, 2*149_000, 149_000+150_000)
	}
	if !hasActivity(t, w.db, w.ids["late@example.com"], ledger.TxLateUsage, "charged to 2026-11") {
		t.Error("no late-usage transaction in the history")
	}
}

// A late event that makes the close carry less takes the difference back from the carried
// credits; when December already spent them, from the baseline, and when that is gone too,
// December's spending beyond it becomes overage, as it would have been.
func TestLateUsageTakesBackWhatWasCarried(t *testing.T) {
	w := newWorld(t, "late@example.com", "ontime@example.com")
	w.october("late@example.com", "ontime@example.com")
	w.reset(parisTime(time.November, 1, 0, 5))
	// November: 250,000 with 50,000 carried in. 200,000 spent mid-month leaves 50,000
	// (all carried); the 30,000 of the 30th leaves 20,000, so only 20,000 are carried.
	nov15, nov30 := parisTime(time.November, 15, 12, 0), parisTime(time.November, 30, 20, 0)
	for _, e := range []string{"late@example.com", "ontime@example.com"} {
		w.mustUse(e, 200_000, nov15, nov15)
	}
	w.mustUse("ontime@example.com", 30_000, nov30, nov30)
	w.reset(parisTime(time.December, 1, 0, 5))
	// Both spend all of December's credits and more before the late event arrives.
	dec1 := parisTime(time.December, 1, 8, 0)
	for _, e := range []string{"late@example.com", "ontime@example.com"} {
		w.mustUse(e, 260_000, dec1, dec1)
	}
	w.mustUse("late@example.com", 30_000, nov30, parisTime(time.December, 2, 8, 0))
	now := parisTime(time.December, 2, 9, 0)
	for _, e := range []string{"late@example.com", "ontime@example.com"} {
		if got, want := w.balance(e, now, nov30), "available 0, spent 230000, overage 0"; got != want {
			t.Errorf("%s in November: %s, want %s", e, got, want)
		}
		// December: 220,000 to spend, 260,000 spent.
		if got, want := w.balance(e, now, now), "available 0, spent 260000, overage 40000"; got != want {
			t.Errorf("%s in December: %s, want %s", e, got, want)
		}
	}
}

// An event at the boundary instant belongs to the new period; one a millisecond before it
// to the old one, whatever the order the job and the events come in.
func TestEventAtTheBoundaryInstant(t *testing.T) {
	w := newWorld(t, "ana@example.com")
	w.reset(parisTime(time.November, 1, 0, 5))
	boundary := parisTime(time.December, 1, 0, 0)
	w.mustUse("ana@example.com", 1000, boundary, boundary)
	w.reset(parisTime(time.December, 1, 0, 5))
	w.mustUse("ana@example.com", 500, boundary.Add(-time.Millisecond), parisTime(time.December, 1, 0, 6))
	now := parisTime(time.December, 1, 1, 0)
	if got, want := w.balance("ana@example.com", now, boundary), "available 249000, spent 1000, overage 0"; got != want {
		t.Errorf("December: %s, want %s", got, want)
	}
	if got, want := w.balance("ana@example.com", now, boundary.Add(-time.Millisecond)), "available 249000, spent 500, overage 0"; got != want {
		t.Errorf("November: %s, want %s", got, want)
	}
}

// November in Paris ends on 1 December 00:00 CET; with 72h of grace its usage is taken
// until 4 December 00:00 CET, and rejected as too_late from then on, changing nothing.
func TestGraceWindowEdges(t *testing.T) {
	at := parisTime(time.November, 30, 23, 0)
	deadline := parisTime(time.December, 4, 0, 0)
	tests := []struct {
		name    string
		arrives time.Time
		status  string
		code    string
		nov     string
	}{
		{"just inside", deadline.Add(-time.Millisecond), ledger.UsageAccepted, "", "available 250000, spent 1000, overage 0"},
		{"just outside", deadline, ledger.UsageRejected, ledger.UsageTooLate, "available 250000, spent 0, overage 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "ana@example.com")
			w.reset(parisTime(time.November, 1, 0, 5))
			w.reset(parisTime(time.December, 1, 0, 5))
			r := w.use("ana@example.com", 1000, at, tc.arrives)
			if r.Status != tc.status || r.Code != tc.code {
				t.Fatalf("result %+v, want %s %q", r, tc.status, tc.code)
			}
			if got := w.balance("ana@example.com", tc.arrives, at); got != tc.nov {
				t.Errorf("November: %s, want %s", got, tc.nov)
			}
			if got, want := w.balance("ana@example.com", tc.arrives, tc.arrives), "available 250000, spent 0, overage 0"; got != want {
				t.Errorf("December: %s, want %s", got, want)
			}
		})
	}
}

// A gateway whose clock is ahead must not spend next month: more than 5 minutes ahead is
// rejected as occurred_at_in_future and changes nothing.
func TestFutureDatedUsage(t *testing.T) {
	w := newWorld(t, "ana@example.com")
	w.reset(parisTime(time.November, 1, 0, 5))
	now := parisTime(time.November, 30, 23, 58)
	r := w.use("ana@example.com", 1000, now.Add(5*time.Minute+time.Millisecond), now)
	if r.Status != ledger.UsageRejected || r.Code != ledger.UsageFuture {
		t.Fatalf("%+v, want rejected %s", r, ledger.UsageFuture)
	}
	// At the limit it is taken, and counts in December, the period it is dated in.
	w.mustUse("ana@example.com", 1000, now.Add(5*time.Minute), now)
	w.reset(parisTime(time.December, 1, 0, 5))
	dec := parisTime(time.December, 1, 1, 0)
	if got, want := w.balance("ana@example.com", dec, dec), "available 249000, spent 1000, overage 0"; got != want {
		t.Errorf("December: %s, want %s", got, want)
	}
}

// Someone who joins mid-period gets the baseline for the days left, counting the day they
// join, rounded to whole credits; the organisation's first period opens in full.
func TestMidPeriodJoiner(t *testing.T) {
	tests := []struct {
		name   string
		joined time.Time
		want   int64
	}{
		{"the 16th of 30 days: 15 left", parisTime(time.November, 16, 10, 0), 100_000},
		{"the 1st, late in the day: all 30", parisTime(time.November, 1, 23, 0), 200_000},
		{"the last day: 1 of 30", parisTime(time.November, 30, 23, 59), 6_667},
		{"the 2nd: 29 of 30", parisTime(time.November, 2, 0, 0), 193_333},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, "old@example.com")
			w.reset(parisTime(time.October, 1, 0, 5))
			w.reset(parisTime(time.November, 1, 0, 5))
			w.clock = tt.joined
			if _, err := w.db.ImportPeople(context.Background(), []ledger.PersonRecord{{Line: 2, Email: "new@example.com", Name: "New"}}); err != nil {
				t.Fatal(err)
			}
			p, err := w.db.PersonByEmail(context.Background(), "new@example.com")
			if err != nil {
				t.Fatal(err)
			}
			w.ids["new@example.com"] = p.ID
			// What `people import` does after the directory changes.
			w.reset(tt.joined)
			if got, want := w.balance("new@example.com", tt.joined, tt.joined), fmt.Sprintf("available %d, spent 0, overage 0", tt.want); got != want {
				t.Errorf("joiner: %s, want %s", got, want)
			}
			if got, want := w.balance("old@example.com", tt.joined, tt.joined), "available 250000, spent 0, overage 0"; got != want { // 50,000 carried from October
				t.Errorf("someone already there: %s, want %s", got, want)
			}
			// December opens in full for them.
			dec := parisTime(time.December, 1, 0, 5)
			w.reset(dec)
			if got := w.balance("new@example.com", dec, dec); !strings.HasPrefix(got, "available "+fmt.Sprint(200_000+min(50_000, tt.want))) {
				t.Errorf("joiner in December: %s, want the full baseline and what they carried", got)
			}
		})
	}
	// With proration off, a joiner gets the whole baseline.
	w := newWorld(t, "old@example.com")
	w.pol.Baseline.ProrateJoiners = false
	w.reset(parisTime(time.October, 1, 0, 5))
	w.clock = parisTime(time.October, 20, 9, 0)
	if _, err := w.db.ImportPeople(context.Background(), []ledger.PersonRecord{{Line: 2, Email: "new@example.com", Name: "New"}}); err != nil {
		t.Fatal(err)
	}
	p, _ := w.db.PersonByEmail(context.Background(), "new@example.com")
	w.ids["new@example.com"] = p.ID
	w.reset(w.clock)
	if got, want := w.balance("new@example.com", w.clock, w.clock), "available 200000, spent 0, overage 0"; got != want {
		t.Errorf("proration off: %s, want %s", got, want)
	}
	// The first period of an organisation is not prorated for anyone.
	first := newWorld(t)
	first.clock = parisTime(time.November, 16, 10, 0)
	if _, err := first.db.ImportPeople(context.Background(), []ledger.PersonRecord{{Line: 2, Email: "new@example.com", Name: "New"}}); err != nil {
		t.Fatal(err)
	}
	p, _ = first.db.PersonByEmail(context.Background(), "new@example.com")
	first.ids["new@example.com"] = p.ID
	first.reset(first.clock)
	if got, want := first.balance("new@example.com", first.clock, first.clock), "available 200000, spent 0, overage 0"; got != want {
		t.Errorf("first period: %s, want %s", got, want)
	}
}

// An unlock approved on the last day lasts into the next period (unlock.min_validity).
// Usage of the 1st that arrives before the reset can only burn that unlock; once the reset
// creates the baseline, it is booked as in time order: baseline first, the unlock kept.
func TestEarlyUsageBurnsTheNewBaselineBeforeALastingUnlock(t *testing.T) {
	for _, early := range []bool{true, false} {
		w := newWorld(t, "ana@example.com")
		w.reset(parisTime(time.November, 1, 0, 5))
		approved := parisTime(time.November, 30, 18, 0)
		w.clock = approved
		if _, err := w.db.Grant(context.Background(), ledger.GrantInput{Key: "unlock", PersonID: w.ids["ana@example.com"], Kind: ledger.GrantUnlock,
			Amount: 40_000, EffectiveAt: approved, ExpiresAt: w.pol.UnlockExpiry(approved), Reason: "unlock"}); err != nil {
			t.Fatal(err)
		}
		at := parisTime(time.December, 1, 0, 1)
		if early {
			w.mustUse("ana@example.com", 30_000, at, at)
			w.reset(parisTime(time.December, 1, 0, 5))
		} else {
			w.reset(parisTime(time.December, 1, 0, 0))
			w.mustUse("ana@example.com", 30_000, at, at)
		}
		now := parisTime(time.December, 1, 1, 0)
		// 200,000 baseline + 50,000 carried + 40,000 unlock - 30,000.
		if got, want := w.balance("ana@example.com", now, now), "available 260000, spent 30000, overage 0"; got != want {
			t.Errorf("early %v: %s, want %s", early, got, want)
		}
		gs, err := w.db.Grants(context.Background(), w.ids["ana@example.com"], 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range gs {
			if g.Kind == ledger.GrantUnlock && g.Remaining != 40_000 {
				t.Errorf("early %v: the unlock holds %d, want all 40,000 (spent after the baseline)", early, g.Remaining)
			}
		}
	}
}

// Usage dated before an unlock took effect cannot use it, however late it arrives; usage
// dated after it, booked first, took the baseline the earlier usage needed. Booked again in
// time order, the earlier usage has the baseline and the later one the unlock, in an open
// period and in one that closed since.
func TestUsageHeldBackAcrossAnUnlock(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("closed %v", closed), func(t *testing.T) {
			w := newWorld(t, "late@example.com", "ontime@example.com")
			w.reset(parisTime(time.November, 1, 0, 5))
			unlockAt := parisTime(time.November, 20, 12, 0)
			before, after := parisTime(time.November, 20, 11, 0), parisTime(time.November, 21, 9, 0)
			for _, e := range []string{"late@example.com", "ontime@example.com"} {
				w.clock = unlockAt
				if _, err := w.db.Grant(context.Background(), ledger.GrantInput{Key: "unlock-" + e, PersonID: w.ids[e], Kind: ledger.GrantUnlock,
					Amount: 100_000, EffectiveAt: unlockAt, ExpiresAt: w.pol.PeriodEnd(unlockAt), Reason: "unlock"}); err != nil {
					t.Fatal(err)
				}
			}
			// In time: 150,000 before the unlock, 150,000 after it.
			w.mustUse("ontime@example.com", 150_000, before, before)
			w.mustUse("ontime@example.com", 150_000, after, after)
			// Held back: the later event first, the earlier one after it (and after the
			// close, in the second case).
			w.mustUse("late@example.com", 150_000, after, after)
			arrives := parisTime(time.November, 22, 9, 0)
			if closed {
				w.reset(parisTime(time.December, 1, 0, 5))
				arrives = parisTime(time.December, 2, 9, 0)
			}
			w.mustUse("late@example.com", 150_000, before, arrives)
			now := arrives.Add(time.Hour)
			want := "available 0, spent 300000, overage 0"
			if closed {
				want = "available 200000, spent 300000, overage 0" // December's baseline, nothing carried
			}
			for _, e := range []string{"late@example.com", "ontime@example.com"} {
				if got := w.balance(e, now, before); got != want {
					t.Errorf("%s: %s, want %s", e, got, want)
				}
			}
		})
	}
}
