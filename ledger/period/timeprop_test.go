package period_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// regressionSeeds failed once; they run every time, before the random ones. 1007, 1010
// and 1032 sent a batch before one of its events happened (the harness); 1005 caught usage
// held back across an unlock in an open period, 1029 the same in a closed one.
var regressionSeeds = []uint64{1005, 1007, 1010, 1029, 1032}

// TestBalancesDoNotDependOnArrival is the ledger's time principle as a property: random
// people, usage, arrival orders within the grace window and reset-job times, over three
// periods in Europe/Paris (two boundaries, one across the end of summer time), end with
// exactly the balances of the same usage processed in time order with every reset at its
// boundary: per person available, and spent and overage per period; expired; the pool.
// `ledger verify` passes after every step of both runs.
func TestBalancesDoNotDependOnArrival(t *testing.T) {
	seeds := slices.Clone(regressionSeeds)
	n := 40
	if testing.Short() {
		n = 10
	}
	for i := range n {
		seeds = append(seeds, uint64(2000+i))
	}
	var settles, lates int
	for _, seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			sc := newScenario(seed)
			want := sc.run(t, true)
			got := sc.run(t, false)
			if diff := want.diff(got); diff != "" {
				t.Fatalf("seed %d (%s): out of order differs from in time order:\n%s\nevents: %s", seed, sc.describe(), diff, sc.eventList())
			}
			if want.settles+want.lates > 0 {
				t.Fatalf("in time order, %d settlements and %d late charges happened; want none", want.settles, want.lates)
			}
			settles += got.settles
			lates += got.lates
		})
	}
	// The random runs must exercise both corrections, or they prove nothing.
	if settles == 0 || lates == 0 {
		t.Errorf("over all seeds, %d settlements of early usage and %d late charges; want both", settles, lates)
	}
	t.Logf("%d seeds: %d settlements of early usage, %d late charges", len(seeds), settles, lates)
}

type propEvent struct {
	id      string
	person  int
	at      time.Time
	credits int64
	arrives time.Time
}

// propUnlock is credits unlocked for a person at an instant, until the period's end. It
// happens when it happens in both runs: only usage arrives out of order.
type propUnlock struct {
	person int
	at     time.Time
	amount int64
}

type scenario struct {
	pol      *policy.Policy
	people   int
	events   []propEvent
	unlocks  []propUnlock
	resetAt  []time.Time // when the reset job runs for each period start, out of order run
	starts   []time.Time // Oct, Nov, Dec
	final    time.Time
	batching *rand.Rand
}

func newScenario(seed uint64) *scenario {
	rng := rand.New(rand.NewPCG(seed, 12))
	maxRoll := rng.Int64N(800)
	minRoll := rng.Int64N(maxRoll + 1)
	if rng.IntN(2) == 0 {
		minRoll = 0
	}
	pol, err := policy.Parse(strings.NewReader(fmt.Sprintf("org: {time_zone: Europe/Paris}\nbaseline: {default: 1000}\nrollover: {max: %d, min: %d}\n", maxRoll, minRoll)))
	if err != nil {
		panic(err)
	}
	paris := pol.Location()
	sc := &scenario{pol: pol, people: 1 + rng.IntN(4), batching: rand.New(rand.NewPCG(seed, 99))}
	for m := time.October; m <= time.December; m++ {
		sc.starts = append(sc.starts, time.Date(2026, m, 1, 0, 0, 0, 0, paris))
	}
	end := time.Date(2026, 12, 10, 0, 0, 0, 0, paris)
	for i, s := range sc.starts {
		// Mostly a few minutes late, sometimes days (downtime), never before the boundary.
		delay := time.Duration(rng.Int64N(int64(10 * time.Minute)))
		if rng.IntN(3) == 0 {
			delay = time.Duration(rng.Int64N(int64(80 * time.Hour)))
		}
		if i == 0 && rng.IntN(2) == 0 {
			delay = 0
		}
		sc.resetAt = append(sc.resetAt, s.Add(delay))
	}
	nEvents := 5 + rng.IntN(40)
	for i := range nEvents {
		var at time.Time
		if rng.IntN(2) == 0 {
			// Near a boundary, on either side, the boundary instant itself included.
			b := sc.starts[1+rng.IntN(2)]
			at = b.Add(time.Duration(rng.Int64N(int64(6*time.Hour))) - 3*time.Hour)
			if rng.IntN(8) == 0 {
				at = b
			}
		} else {
			at = sc.starts[0].Add(time.Duration(rng.Int64N(int64(end.Sub(sc.starts[0])))))
		}
		at = at.Truncate(time.Millisecond)
		deadline := pol.LateDeadline(at)
		arrives := at.Add(time.Duration(rng.Int64N(int64(2 * time.Minute))))
		switch rng.IntN(4) {
		case 0: // batched or retried: anywhere up to the end of the grace window
			arrives = at.Add(time.Duration(rng.Int64N(int64(deadline.Sub(at)))))
		case 1: // a little ahead of the ledger's clock, within the allowed skew
			arrives = at.Add(-time.Duration(rng.Int64N(int64(ledger.MaxUsageFuture))))
		}
		arrives = arrives.Truncate(time.Millisecond)
		if !arrives.Before(deadline) {
			arrives = deadline.Add(-time.Millisecond)
		}
		sc.events = append(sc.events, propEvent{id: fmt.Sprintf("e%d", i), person: rng.IntN(sc.people), at: at,
			credits: 1 + rng.Int64N(700), arrives: arrives})
	}
	for range 2 + rng.IntN(6) {
		at := sc.starts[0].Add(time.Duration(rng.Int64N(int64(end.Sub(sc.starts[0]))))).Truncate(time.Millisecond)
		sc.unlocks = append(sc.unlocks, propUnlock{person: rng.IntN(sc.people), at: at, amount: 50 + rng.Int64N(800)})
	}
	sc.final = end.Add(96 * time.Hour)
	return sc
}

func (sc *scenario) describe() string {
	return fmt.Sprintf("%d people, rollover %+v, resets at %v, unlocks %+v", sc.people, sc.pol.RolloverLimits, sc.resetAt, sc.unlocks)
}

func (sc *scenario) eventList() string {
	var b strings.Builder
	for _, e := range sc.events {
		fmt.Fprintf(&b, "\n  %s person %d at %s credits %d arrives %s", e.id, e.person, e.at.Format(time.RFC3339Nano), e.credits, e.arrives.Format(time.RFC3339Nano))
	}
	return b.String()
}

// propBalances are the balances compared at the end.
type propBalances struct {
	available      []int64
	spent, overage [][]int64 // [person][period]
	expired, pool  int64
	settles, lates int // settle and late-usage transactions (not compared)
}

func (a propBalances) diff(b propBalances) string {
	var out []string
	for p := range a.available {
		if a.available[p] != b.available[p] {
			out = append(out, fmt.Sprintf("person %d available: in time %d, out of order %d", p, a.available[p], b.available[p]))
		}
		for k := range a.spent[p] {
			if a.spent[p][k] != b.spent[p][k] || a.overage[p][k] != b.overage[p][k] {
				out = append(out, fmt.Sprintf("person %d period %d spent/overage: in time %d/%d, out of order %d/%d", p, k,
					a.spent[p][k], a.overage[p][k], b.spent[p][k], b.overage[p][k]))
			}
		}
	}
	if a.expired != b.expired || a.pool != b.pool {
		out = append(out, fmt.Sprintf("expired/pool: in time %d/%d, out of order %d/%d", a.expired, a.pool, b.expired, b.pool))
	}
	return strings.Join(out, "\n")
}

// step is one thing that happens to the ledger: a reset job run, an unlock or a batch
// arriving.
type step struct {
	at     time.Time
	reset  time.Time // the boundary, for a reset
	unlock *propUnlock
	events []propEvent
}

// order sorts steps at one instant: the period opens, then credits unlocked then take
// effect, then usage dated then is burned.
func (s step) order() int {
	switch {
	case s.unlock != nil:
		return 1
	case s.events != nil:
		return 2
	}
	return 0
}

func (sc *scenario) run(t *testing.T, inTime bool) propBalances {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	defer db.Close()
	clock := sc.starts[0].Add(-24 * time.Hour)
	db.SetNow(func() time.Time { return clock })
	var recs []ledger.PersonRecord
	for i := range sc.people {
		recs = append(recs, ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@example.com", i), Name: fmt.Sprint("P", i)})
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	ing := &usage.Ingestor{Store: db, Policy: sc.pol, Now: func() time.Time { return clock },
		Credits: func(_ string, in, out int64) (int64, error) { return in + out, nil }}

	var steps []step
	for i, s := range sc.starts {
		st := step{at: s, reset: s}
		if !inTime {
			st.at = sc.resetAt[i]
		}
		steps = append(steps, st)
	}
	for i := range sc.unlocks {
		steps = append(steps, step{at: sc.unlocks[i].at, unlock: &sc.unlocks[i]})
	}
	evs := slices.Clone(sc.events)
	if inTime {
		slices.SortStableFunc(evs, func(a, b propEvent) int { return a.at.Compare(b.at) })
		for _, e := range evs {
			steps = append(steps, step{at: e.at, events: []propEvent{e}})
		}
	} else {
		slices.SortStableFunc(evs, func(a, b propEvent) int { return a.arrives.Compare(b.arrives) })
		// Consecutive arrivals sometimes travel in one batch, sent when the last is ready,
		// as long as that is still in time for all of them.
		for i := 0; i < len(evs); {
			j := i + 1
			deadline := sc.pol.LateDeadline(evs[i].at)
			for j < len(evs) && sc.batching.IntN(3) == 0 && evs[j].arrives.Before(deadline) && evs[j].arrives.Before(sc.pol.LateDeadline(evs[j].at)) {
				if d := sc.pol.LateDeadline(evs[j].at); d.Before(deadline) {
					deadline = d
				}
				j++
			}
			steps = append(steps, step{at: evs[j-1].arrives, events: evs[i:j]})
			i = j
		}
	}
	// Resets sort before events at the same instant: in time, the period opens at its
	// first instant, before usage dated then.
	slices.SortStableFunc(steps, func(a, b step) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.order() - b.order()
	})
	for n, st := range steps {
		clock = st.at
		if u := st.unlock; u != nil {
			p, err := db.PersonByEmail(ctx, fmt.Sprintf("p%d@example.com", u.person))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Grant(ctx, ledger.GrantInput{Key: fmt.Sprintf("unlock-%d-%d", u.person, u.at.UnixMilli()), PersonID: p.ID,
				Kind: ledger.GrantUnlock, Amount: u.amount, ExpiresAt: sc.pol.PeriodEnd(u.at), Reason: "unlock"}); err != nil {
				t.Fatalf("step %d unlock: %v", n, err)
			}
		} else if st.events == nil {
			if _, err := period.Reset(ctx, db, sc.pol, st.reset); err != nil {
				t.Fatalf("step %d reset %s at %s: %v", n, st.reset, st.at, err)
			}
		} else {
			items := make([]usage.Item, len(st.events))
			for i, e := range st.events {
				items[i] = usage.Item{Event: ledger.UsageEvent{EventID: e.id, Email: fmt.Sprintf("p%d@example.com", e.person), Model: "m",
					InputTokens: e.credits, OccurredAt: e.at.UTC()}}
			}
			res, err := ing.Ingest(ctx, items)
			if err != nil {
				t.Fatalf("step %d ingest at %s: %v", n, st.at, err)
			}
			for i, r := range res {
				if r.Status != ledger.UsageAccepted {
					t.Fatalf("step %d: event %s (at %s, arriving %s) was %s: %s", n, st.events[i].id, st.events[i].at, st.at, r.Status, r.Reason)
				}
			}
		}
		if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
			t.Fatalf("in time %v, after step %d at %s: verify: %v %v", inTime, n, st.at, err, v)
		}
	}
	clock = sc.final
	out := propBalances{available: make([]int64, sc.people), spent: make([][]int64, sc.people), overage: make([][]int64, sc.people)}
	people, err := db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range people {
		for k, s := range sc.starts {
			b, err := db.Balance(ctx, p.ID, s, sc.pol.PeriodEnd(s))
			if err != nil {
				t.Fatal(err)
			}
			out.available[i] = b.Available
			out.spent[i] = append(out.spent[i], b.Spent)
			out.overage[i] = append(out.overage[i], b.Overage)
			_ = k
		}
	}
	if out.expired, err = db.AccountBalance(ctx, ledger.AccountExpired); err != nil {
		t.Fatal(err)
	}
	if out.pool, err = db.AccountBalance(ctx, ledger.AccountPool); err != nil {
		t.Fatal(err)
	}
	if out.settles, err = countTx(ctx, db, ledger.TxSettle); err != nil {
		t.Fatal(err)
	}
	if out.lates, err = countTx(ctx, db, ledger.TxLateUsage); err != nil {
		t.Fatal(err)
	}
	return out
}

// countTx counts the transactions of one kind, through the export every auditor reads.
func countTx(ctx context.Context, db ledgertest.Store, kind string) (int, error) {
	var buf strings.Builder
	if err := db.ExportPostings(ctx, &buf); err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(buf.String(), "\n")[1:] {
		f := strings.Split(line, ",")
		if len(f) > 3 && f[3] == kind {
			seen[f[0]] = true
		}
	}
	return len(seen), nil
}
