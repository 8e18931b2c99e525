package ledgertest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

// testVerifyFindsCorruption damages the ledger behind its back, one invariant at a time,
// and expects verify to name exactly that invariant.
func testVerifyFindsCorruption(t *testing.T, open Opener) {
	tests := []struct {
		name string
		sql  string
		// byEngine replaces sql on the engine it names (Dialect.Name()), where the damage
		// needs a constraint turned off first and no SQL does that on every engine.
		byEngine map[string]string
		report   []string // each must start one violation line
	}{
		{"clean ledger", "", nil, nil},
		{"posting amount changed", `UPDATE postings SET amount = amount + 5 WHERE id = (SELECT min(id) FROM postings)`, nil,
			[]string{"transaction postings do not sum to zero: transaction 1: 5", "account balance differs from its postings: org:pool"}},
		{"stored balance changed", `UPDATE accounts SET balance = balance + 7 WHERE name = 'org:pool'`, nil,
			[]string{"account balance differs from its postings: org:pool: stored -993, postings -1000"}},
		// A usage row carries its own postings: a broken one is an unbalanced transaction.
		{"usage row unbalanced", "", map[string]string{
			"sqlite":   `PRAGMA ignore_check_constraints = ON; UPDATE usage_events SET overage = credits + 1`,
			"postgres": `ALTER TABLE usage_events DROP CONSTRAINT usage_events_check; UPDATE usage_events SET overage = credits + 1`},
			[]string{"transaction postings do not sum to zero: transaction 2: usage of 1200 with 1201 overage"}},
		{"usage credits changed", `UPDATE usage_events SET credits = credits + 7`, nil,
			[]string{"available balance differs from open grants: person 1: available -7, grants 0"}},
		// What remains of a grant lives in its own table, so no constraint ties it to the
		// grant's amount: verify must catch it.
		{"grant over-spent", `UPDATE grant_remaining SET remaining = (SELECT amount + 1 FROM grants WHERE id = grant_id)`, nil,
			[]string{"grant over-spent or inconsistent: grant 1: remaining 1001 of 1000", "available balance differs from open grants: person 1"}},
		{"closed grant with credits", `UPDATE grants SET closed_tx_id = 1; UPDATE grant_remaining SET remaining = 3`, nil,
			[]string{"grant over-spent or inconsistent: grant 1: remaining 3 of 1000", "available balance differs from open grants: person 1: available 0, grants 3"}},
		{"grant remaining lost", `DELETE FROM grant_remaining`, nil,
			[]string{"grant over-spent or inconsistent: grant 1: remaining unrecorded of 1000"}},
		{"remaining for no grant", "", map[string]string{
			"sqlite":   `PRAGMA foreign_keys = OFF; INSERT INTO grant_remaining(grant_id, remaining) VALUES (99, 5)`,
			"postgres": `ALTER TABLE grant_remaining DROP CONSTRAINT grant_remaining_grant_id_fkey; INSERT INTO grant_remaining(grant_id, remaining) VALUES (99, 5)`},
			[]string{"grant over-spent or inconsistent: remaining 5 recorded for grant 99, which does not exist"}},
		{"usage row lost", `DELETE FROM usage_events`, nil,
			[]string{"usage transaction and row do not match: transaction 2", "available balance differs from open grants: person 1: available 1000, grants 0"}},
		{"reclaimed credits negative", `INSERT INTO accounts(name, balance) VALUES ('expired', -3), ('org:pool', 3) ON CONFLICT(name) DO UPDATE SET balance = accounts.balance + excluded.balance`, nil,
			[]string{"account balance differs from its postings: expired", "reclaimed credits are negative: expired: -3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := smallLedger(t, open)
			query := tc.sql
			if tc.byEngine != nil {
				engine := rawSQL(t, db).Dialect
				if query = tc.byEngine[engine]; query == "" {
					t.Fatalf("no statement for engine %q: add one to this test", engine)
				}
			}
			if query != "" {
				execSQL(t, db, query)
			}
			got, err := db.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.report {
				found := false
				for _, v := range got {
					found = found || strings.HasPrefix(v, want)
				}
				if !found {
					t.Errorf("no violation starting %q in %q", want, got)
				}
			}
			if len(tc.report) == 0 && len(got) > 0 {
				t.Errorf("clean ledger reported %q", got)
			}
		})
	}
}

func testGrantIdempotency(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	p := seedPeople(t, db, 1)[0]
	in := ledger.GrantInput{Key: "k", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 500, ExpiresAt: testNow.Add(time.Hour), Reason: "r"}
	first, err := db.Grant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return testNow.Add(time.Minute) }) // a retry a minute later
	again, err := db.Grant(ctx, in)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry: %+v, %v; want grant %d again", again, err, first.ID)
	}
	in.Amount = 600
	if _, err := db.Grant(ctx, in); ledger.ErrorCode(err) != ledger.Conflict {
		t.Errorf("same key, other amount: %v, want Conflict", err)
	}
	if n := count(t, db, "grants"); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	bad := []ledger.GrantInput{
		{Key: "a", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 0, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "b", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: ledger.MaxAmount + 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "c", PersonID: p.ID, Kind: "bonus", Amount: 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "d", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(-time.Hour)},
		{Key: "e", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour), From: "person:9:available"},
		{Key: "f", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour), From: ledger.AccountExpired},
	}
	for _, in := range bad {
		if _, err := db.Grant(ctx, in); ledger.ErrorCode(err) != ledger.Invalid {
			t.Errorf("grant %+v: %v, want Invalid", in, err)
		}
	}
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g", PersonID: 999, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour)}); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("grant to nobody: %v, want NotFound", err)
	}
	if n := count(t, db, "transactions"); n != 1 {
		t.Errorf("%d transactions after refused grants, want 1", n)
	}
}

// testResetNewcomerCarriesNothing: a minimum rollover is for people who had a period; it
// must not mint "carried over" credits for someone who had no grant ending at the boundary.
func testResetNewcomerCarriesNothing(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	minRollover := &ledger.RolloverLimits{Max: 500, Min: 100}
	// Only the first person had November credits.
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "nov", PersonID: people[0].ID, Kind: ledger.GrantBaseline, Amount: 1000,
		EffectiveAt: nov, ExpiresAt: dec}); err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return dec.Add(time.Minute) })
	var ins []ledger.ResetInput
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: dec, OldKey: "2026-11", NewKey: "2026-12",
			NextEnd: dec.AddDate(0, 1, 0), Baseline: 10, Rollover: minRollover})
	}
	res, err := db.ResetPeriods(ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.ResetResult{{PersonID: people[0].ID, Expired: 1000, Carried: 500, Baseline: 10}, {PersonID: people[1].ID, Baseline: 10}}
	if len(res) != 2 || res[0] != want[0] || res[1] != want[1] {
		t.Fatalf("reset: %+v, want %+v", res, want)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", err, v)
	}
}

// modelGrant and modelPerson are the reference model: the ledger rules written the
// simplest way, with no SQL.
type modelGrant struct {
	seq, amount, remaining int64
	priority               int
	effective, expires     time.Time
	closed                 bool
	txKey                  string
}

type modelPerson struct {
	grants         []*modelGrant
	spent, overage int64 // all time
}

type model struct {
	people  map[int64]*modelPerson
	expired int64
	seq     int64
	usage   map[string]usageRecord // key -> what to undo on reversal
}

type usageRecord struct {
	person          int64
	credits, burned int64
	over            int64
}

func (m *model) available(pid int64, at time.Time) int64 {
	var s int64
	for _, g := range m.people[pid].grants {
		if !g.closed && !g.effective.After(at) && g.expires.After(at) {
			s += g.remaining
		}
	}
	return s
}

func (m *model) addGrant(pid int64, kind ledger.GrantKind, amount int64, eff, exp time.Time, key string) {
	m.seq++
	m.people[pid].grants = append(m.people[pid].grants, &modelGrant{seq: m.seq, amount: amount, remaining: amount,
		priority: kind.Priority(), effective: eff, expires: exp, txKey: key})
}

func (m *model) spend(pid int64, credits int64, at time.Time) usageRecord {
	gs := slices.Clone(m.people[pid].grants)
	slices.SortStableFunc(gs, func(a, b *modelGrant) int {
		if a.priority != b.priority {
			return a.priority - b.priority
		}
		if c := a.expires.Compare(b.expires); c != 0 {
			return c
		}
		return int(a.seq - b.seq)
	})
	left := credits
	for _, g := range gs {
		if g.closed || g.effective.After(at) || !g.expires.After(at) {
			continue
		}
		take := min(left, g.remaining)
		g.remaining -= take
		left -= take
	}
	p := m.people[pid]
	p.spent += credits
	p.overage += left
	return usageRecord{person: pid, credits: credits, burned: credits - left, over: left}
}

// testLedgerAgainstModel drives 10,000 random operations through the store and the
// reference model and checks, after every batch, that balances agree and verify passes.
func testLedgerAgainstModel(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	people := seedPeople(t, db, 12)
	periodEnd := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, time.UTC) }
	periodKey := func(t time.Time) string { return t.Format("2006-01") }
	limits := &ledger.RolloverLimits{Max: 500}
	rollover := limits.Carry

	m := &model{people: map[int64]*modelPerson{}, usage: map[string]usageRecord{}}
	for _, p := range people {
		m.people[p.ID] = &modelPerson{}
	}
	rng := rand.New(rand.NewPCG(42, 7))
	type done struct {
		key   string
		apply func() error
	}
	var history []done // operations that succeeded, for duplicate replays
	var grantTxs, usageTxs []string
	txIDs := map[string]int64{} // transaction key -> id, as the store answered
	reversed := map[string]bool{}
	const ops, batch = 10_000, 250
	for i := 0; i < ops; i++ {
		p := people[rng.IntN(len(people))]
		switch r := rng.IntN(100); {
		case r < 30: // grant
			amount := rng.Int64N(5000) + 1
			kind := []ledger.GrantKind{ledger.GrantUnlock, ledger.GrantAdjustment, ledger.GrantLesson}[rng.IntN(3)]
			key := fmt.Sprintf("g%d", i)
			in := ledger.GrantInput{Key: key, PersonID: p.ID, Kind: kind, Amount: amount, ExpiresAt: periodEnd(now), Reason: "test"}
			g, err := db.Grant(ctx, in)
			if err != nil {
				t.Fatalf("op %d grant: %v", i, err)
			}
			txIDs[key] = g.TxID
			m.addGrant(p.ID, kind, amount, now, periodEnd(now), key)
			grantTxs = append(grantTxs, key)
			history = append(history, done{key, func() error { _, err := db.Grant(ctx, in); return err }})
		case r < 75: // usage
			credits := rng.Int64N(3000)
			id := fmt.Sprintf("e%d", i)
			ev := ledger.UsagePosting{Event: ledger.UsageEvent{EventID: id, Email: p.Email, Model: "m", InputTokens: credits, OccurredAt: now, Source: "test"}, Credits: credits}
			res, err := db.PostUsage(ctx, []ledger.UsagePosting{ev})
			if err != nil || res[0].Status != ledger.UsageAccepted {
				t.Fatalf("op %d usage: %v %+v", i, err, res)
			}
			txID, err := db.UsageTxID(ctx, id)
			if err != nil {
				t.Fatalf("op %d: transaction of usage %s: %v", i, id, err)
			}
			txIDs["usage:"+id] = txID
			m.usage["usage:"+id] = m.spend(p.ID, credits, now)
			usageTxs = append(usageTxs, "usage:"+id)
			history = append(history, done{id, func() error {
				res, err := db.PostUsage(ctx, []ledger.UsagePosting{ev})
				if err == nil && res[0].Status != ledger.UsageDuplicate {
					err = fmt.Errorf("replayed event answered %s", res[0].Status)
				}
				return err
			}})
		case r < 85: // reversal of a grant or a usage
			if rng.IntN(2) == 0 && len(usageTxs) > 0 {
				key := usageTxs[rng.IntN(len(usageTxs))]
				_, err := db.Reverse(ctx, ledger.ReverseInput{TxID: txIDs[key], Reason: "test", RefundExpiresAt: periodEnd(now)})
				rec := m.usage[key]
				switch {
				case reversed[key]:
					if err != nil {
						t.Fatalf("op %d: repeated reversal of %s: %v", i, key, err)
					}
				case err != nil:
					t.Fatalf("op %d reverse usage: %v", i, err)
				default:
					reversed[key] = true
					mp := m.people[rec.person]
					mp.spent -= rec.credits
					mp.overage -= rec.over
					if rec.burned > 0 {
						m.addGrant(rec.person, ledger.GrantAdjustment, rec.burned, now, periodEnd(now), "refund")
					}
				}
			} else if len(grantTxs) > 0 {
				key := grantTxs[rng.IntN(len(grantTxs))]
				_, err := db.Reverse(ctx, ledger.ReverseInput{TxID: txIDs[key], Reason: "test"})
				var g *modelGrant
				for _, mp := range m.people {
					for _, mg := range mp.grants {
						if mg.txKey == key {
							g = mg
						}
					}
				}
				if reversed[key] {
					// Same key, same input: the first reversal is returned, nothing changes.
					if err != nil {
						t.Fatalf("op %d: repeated reversal of %s: %v", i, key, err)
					}
					break
				}
				untouched := !g.closed && g.remaining == g.amount
				if untouched != (err == nil) {
					t.Fatalf("op %d reverse grant %s: model says reversible=%v, ledger said %v", i, key, untouched, err)
				}
				if err == nil {
					reversed[key] = true
					g.closed, g.remaining = true, 0
				}
			}
		case r < 90: // duplicate of an earlier operation: changes nothing
			if len(history) > 0 {
				h := history[rng.IntN(len(history))]
				if err := h.apply(); err != nil {
					t.Fatalf("op %d replay %s: %v", i, h.key, err)
				}
			}
		case r < 92: // period reset for everyone
			boundary := periodEnd(now)
			oldKey, newKey := periodKey(now), periodKey(boundary)
			now = boundary.Add(time.Hour)
			for _, pp := range people {
				res, err := db.ResetPeriod(ctx, ledger.ResetInput{PersonID: pp.ID, Boundary: boundary, OldKey: oldKey, NewKey: newKey,
					NextEnd: periodEnd(boundary), Baseline: 1000, Rollover: limits})
				if err != nil {
					t.Fatalf("op %d reset: %v", i, err)
				}
				var unspent int64
				mp := m.people[pp.ID]
				for _, g := range mp.grants {
					if !g.closed && !g.expires.After(boundary) {
						unspent += g.remaining
						g.closed, g.remaining = true, 0
					}
				}
				carried := rollover(unspent)
				if res.Expired != unspent || res.Carried != carried {
					t.Fatalf("op %d reset person %d: ledger expired %d carried %d, model %d %d", i, pp.ID, res.Expired, res.Carried, unspent, carried)
				}
				m.expired += max(0, unspent-carried)
				if carried > 0 {
					m.addGrant(pp.ID, ledger.GrantRollover, carried, boundary, periodEnd(boundary), "rollover")
				}
				m.addGrant(pp.ID, ledger.GrantBaseline, 1000, boundary, periodEnd(boundary), "baseline")
			}
		default: // a bad operation that must change nothing
			if _, err := db.Grant(ctx, ledger.GrantInput{Key: fmt.Sprintf("bad%d", i), PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: -rng.Int64N(100), ExpiresAt: periodEnd(now)}); ledger.ErrorCode(err) != ledger.Invalid {
				t.Fatalf("op %d: negative grant answered %v", i, err)
			}
		}
		if (i+1)%batch == 0 {
			compareWithModel(t, db, m, people, now, i)
		}
	}
	compareWithModel(t, db, m, people, now, ops)
}

func compareWithModel(t *testing.T, db Store, m *model, people []ledger.Person, now time.Time, op int) {
	t.Helper()
	ctx := context.Background()
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("after op %d verify: %v %v", op, err, v)
	}
	for _, p := range people {
		b, err := db.Balance(ctx, p.ID, time.Time{}, now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		mp := m.people[p.ID]
		if want := m.available(p.ID, now); b.Available != want || b.Spent != mp.spent || b.Overage != mp.overage {
			t.Fatalf("after op %d person %d: ledger available %d spent %d overage %d; model %d %d %d",
				op, p.ID, b.Available, b.Spent, b.Overage, want, mp.spent, mp.overage)
		}
	}
	if exp, _ := db.AccountBalance(ctx, ledger.AccountExpired); exp != m.expired {
		t.Fatalf("after op %d expired: ledger %d model %d", op, exp, m.expired)
	}
}

// testWideSumIsExactAndNeverFails sums sets of values near the int64 limits with the
// store's WideSum on the engine itself and compares with exact arithmetic: exact whenever
// the total fits, clamped (never an error) when it does not.
func testWideSumIsExactAndNeverFails(t *testing.T, open Opener) {
	db := open(t)
	tests := []struct {
		name   string
		values []int64
		want   int64
	}{
		{"empty", nil, 0},
		{"small", []int64{1, 2, 3}, 6},
		{"negative", []int64{-5, 3}, -2},
		{"max alone", []int64{math.MaxInt64}, math.MaxInt64},
		{"min alone", []int64{math.MinInt64}, math.MinInt64},
		{"max then back", []int64{math.MaxInt64, 1, -1}, math.MaxInt64},
		{"min and max", []int64{math.MinInt64, math.MaxInt64}, -1},
		{"overflows up", []int64{math.MaxInt64, 1}, math.MaxInt64},
		{"overflows down", []int64{math.MinInt64, -1}, math.MinInt64},
		// The example: five events of 2e18 credits each.
		{"five of 2e18", []int64{2e18, 2e18, 2e18, 2e18, 2e18}, math.MaxInt64},
		{"passes the limit and comes back", []int64{2e18, 2e18, 2e18, 2e18, 2e18, -4e18, -4e18}, 2e18},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			// One connection: the temporary table lives on it.
			conn, err := rawSQL(t, db).Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS nums (v BIGINT); DELETE FROM nums`); err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.values {
				if _, err := conn.ExecContext(ctx, `INSERT INTO nums VALUES (?)`, v); err != nil {
					t.Fatal(err)
				}
			}
			var got int64
			if err := conn.QueryRowContext(ctx, `SELECT `+sqlstore.WideSum("v")+` FROM nums`).Scan(sqlstore.Sat(&got)); err != nil {
				t.Fatalf("wideSum failed: %v", err)
			}
			if got != tc.want {
				t.Errorf("wideSum = %d, want %d", got, tc.want)
			}
		})
	}
}

// insertAbsurdUsage writes usage rows as an older version accepted them (2e18 credits each,
// the example), bypassing every bound.
func insertAbsurdUsage(t *testing.T, db Store, personID int64, n int) {
	t.Helper()
	ctx := context.Background()
	raw := rawSQL(t, db)
	for i := range n {
		key := "usage:absurd-" + string(rune('a'+i))
		// The store numbers transactions itself, so the id is given as it would: the next
		// after the largest on SQLite, the sequence's next on PostgreSQL (which has no
		// default for transactions.id).
		next := `SELECT COALESCE(MAX(id), 0) + 1 FROM transactions`
		if raw.Dialect == "postgres" {
			next = `SELECT nextval('transactions_id_seq')`
		}
		var id int64
		if err := raw.QueryRowContext(ctx, next).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, created_at) VALUES (?, ?, 'x', 'usage', ?, ?)`,
			id, key, personID, testNow.UnixMilli()); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.ExecContext(ctx, `INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at)
			VALUES (?, ?, ?, 'huge', 1000000000000, 1000000000000, 2000000000000000000, 2000000000000000000, ?, '', ?)`,
			id, strings.TrimPrefix(key, "usage:"), personID, testNow.UnixMilli(), testNow.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

// testSumsSurviveAbsurdUsage: five rows of 2e18 credits (what the gateway got
// accepted) no longer break the balance, activity, team stats, closing or verify, for that
// person or anyone else.
func testSumsSurviveAbsurdUsage(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people := smallLedger(t, open)
	insertAbsurdUsage(t, db, people[1].ID, 5)
	start, end := testNow.Add(-24*time.Hour), testNow.Add(24*time.Hour)
	b, err := db.Balance(ctx, people[1].ID, start, end)
	if err != nil || b.Spent != math.MaxInt64 || b.Overage != math.MaxInt64 || b.Available != 0 {
		t.Errorf("balance of the absurd spender: %+v %v, want spent and overage clamped to the int64 limit", b, err)
	}
	if r := b.UsedRatio(); r != 1 {
		t.Errorf("used ratio %v, want 1", r)
	}
	if b, err := db.Balance(ctx, people[0].ID, start, end); err != nil || b.Spent != 1200 {
		t.Errorf("balance of someone else: %+v %v", b, err)
	}
	acts, err := db.Activity(ctx, ledger.ActivityWindow{At: end, PeriodStart: start, WindowStart: start})
	if err != nil || len(acts) != 2 || acts[1].SpentPeriod != math.MaxInt64 || acts[0].SpentPeriod != 1200 {
		t.Errorf("activity: %+v %v", acts, err)
	}
	if len(acts) == 2 {
		if a := acts[1].Allowance(); a != 0 {
			t.Errorf("allowance of the absurd spender: %d, want 0 (all of it overage)", a)
		}
	}
	stats, err := db.TeamStats(ctx, start, end)
	if err != nil || len(stats) == 0 {
		t.Errorf("team stats: %+v %v", stats, err)
	}
	if _, err := db.PeriodClosing(ctx, "2026-11", start, end, 0.7); err != nil {
		t.Errorf("period closing: %v", err)
	}
	hist, err := db.History(ctx, people[1].ID, 10)
	if err != nil || len(hist) != 5 || hist[0].Amount != -2e18 {
		t.Errorf("history: %+v %v", hist, err)
	}
	// The rows balance (each is credits spent, all of it overage), so verify is clean.
	if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
		t.Errorf("verify: %v %v", v, err)
	}
	// The absurd person-period is full: a further event is refused, not summed past the limit.
	res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "after", Email: people[1].Email, Model: "m",
		OccurredAt: testNow}, Credits: 1, PeriodStart: start, PeriodEnd: end}})
	if err != nil || res[0].Status != ledger.UsageRejected || !strings.Contains(res[0].Reason, "the most one person may use in a period") {
		t.Errorf("event after the absurd ones: %+v %v", res, err)
	}
}

// testPeriodBound: one person's usage in one period stops at ledger.MaxPeriodCredits; the
// event that would pass it is rejected and the others of its batch are kept; the next
// period starts afresh; another person is not affected.
func testPeriodBound(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	nov, dec := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	jan := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := func(id string, p ledger.Person, at time.Time, credits int64) ledger.UsagePosting {
		start, end := nov, dec
		if !at.Before(dec) {
			start, end = dec, jan
		}
		return ledger.UsagePosting{Event: ledger.UsageEvent{EventID: id, Email: p.Email, Model: "m", OccurredAt: at}, Credits: credits,
			PeriodStart: start, PeriodEnd: end}
	}
	// Half the bound before the totals table knows the period: it is read from the rows.
	first := ledger.MaxPeriodCredits / 2
	if res, err := db.PostUsage(ctx, []ledger.UsagePosting{ev("a", people[0], testNow, first)}); err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("%+v %v", res, err)
	}
	execSQL(t, db, `DELETE FROM usage_totals`)
	batch := []ledger.UsagePosting{
		ev("b", people[0], testNow, ledger.MaxPeriodCredits-first), // exactly at the bound
		ev("c", people[0], testNow, 1),                             // one past it
		ev("d", people[1], testNow, 5),                             // someone else
		ev("e", people[0], dec.Add(time.Hour), ledger.MaxEventCredits),
	}
	res, err := db.PostUsage(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ledger.UsageAccepted, ledger.UsageRejected, ledger.UsageAccepted, ledger.UsageAccepted}
	for i, r := range res {
		if r.Status != want[i] {
			t.Errorf("event %s: %+v, want %s", r.EventID, r, want[i])
		}
	}
	if !strings.Contains(res[1].Reason, "past 10,000,000,000,000 credits") {
		t.Errorf("reason: %q", res[1].Reason)
	}
	// A rejected event's id is free: a corrected resend is not a conflict.
	if _, err := db.UsageTxID(ctx, "c"); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("the rejected event was stored: %v", err)
	}
	// The period's total is the bound exactly, not what the rejected event would have
	// made it: an event of no credits still fits.
	if res, err := db.PostUsage(ctx, []ledger.UsagePosting{ev("f", people[0], testNow, 0)}); err != nil || res[0].Status != ledger.UsageAccepted {
		t.Errorf("an event of 0 credits at the bound: %+v %v", res, err)
	}
	b, err := db.Balance(ctx, people[0].ID, nov, dec)
	if err != nil || b.Spent != ledger.MaxPeriodCredits {
		t.Errorf("balance: %+v %v", b, err)
	}
	// The reset opens December's total for people[1] with what is dated in it already (here
	// rows the totals table does not know): the bound holds from the first batch after it.
	near := ev("g", people[1], dec.Add(2*time.Hour), ledger.MaxPeriodCredits-3)
	if res, err := db.PostUsage(ctx, []ledger.UsagePosting{near}); err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("%+v %v", res, err)
	}
	execSQL(t, db, `DELETE FROM usage_totals`)
	if _, err := db.ResetPeriods(ctx, []ledger.ResetInput{{PersonID: people[1].ID, Boundary: dec, OldKey: "2026-11", NewKey: "2026-12", NextEnd: jan}}); err != nil {
		t.Fatal(err)
	}
	res, err = db.PostUsage(ctx, []ledger.UsagePosting{ev("h", people[1], dec.Add(3*time.Hour), 4), ev("i", people[1], dec.Add(3*time.Hour), 3)})
	if err != nil || res[0].Status != ledger.UsageRejected || res[1].Status != ledger.UsageAccepted {
		t.Errorf("after the reset opened the period: %+v %v", res, err)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
		t.Errorf("verify: %v %v", v, err)
	}
}

// testVerifyIsCleanUnderConcurrentWrites runs verify again and again while grants and usage
// are written: every check must read the same moment of the ledger (writes from this
// process or another replica land between its queries), so a clean ledger stays clean.
func testVerifyIsCleanUnderConcurrentWrites(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people := smallLedger(t, open)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := people[i%len(people)]
			if _, err := db.Grant(ctx, ledger.GrantInput{Key: fmt.Sprint("busy-", i), PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 10,
				ExpiresAt: testNow.Add(72 * time.Hour), Reason: "busy"}); err != nil {
				done <- err
				return
			}
			if res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: fmt.Sprint("busy-", i), Email: p.Email, Model: "m",
				OccurredAt: testNow}, Credits: 7}}); err != nil || res[0].Status != ledger.UsageAccepted {
				done <- fmt.Errorf("usage: %+v %v", res, err)
				return
			}
		}
	}()
	for i := 0; i < 40; i++ {
		v, err := db.Verify(ctx)
		if err != nil || len(v) > 0 {
			close(stop)
			<-done
			t.Fatalf("verify %d while writing: %q %v", i, v, err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
