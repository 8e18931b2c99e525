package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func newTestDB(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func seedPeople(t testing.TB, db *DB, n int) []ledger.Person {
	t.Helper()
	recs := make([]ledger.PersonRecord, n)
	for i := range recs {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@example.com", i), Name: fmt.Sprintf("Person %d", i), Team: "T", Role: "engineer"}
	}
	if _, err := db.ImportPeople(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	ps, err := db.People(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ps
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

// TestLedgerAgainstModel drives 10,000 random operations through the SQLite ledger and the
// reference model and checks, after every batch, that balances agree and verify passes.
func TestLedgerAgainstModel(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
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
			if _, err := db.Grant(ctx, in); err != nil {
				t.Fatalf("op %d grant: %v", i, err)
			}
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
				txID := txIDByKey(t, db, key)
				_, err := db.Reverse(ctx, ledger.ReverseInput{TxID: txID, Reason: "test", RefundExpiresAt: periodEnd(now)})
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
				txID := txIDByKey(t, db, key)
				_, err := db.Reverse(ctx, ledger.ReverseInput{TxID: txID, Reason: "test"})
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

func compareWithModel(t *testing.T, db *DB, m *model, people []ledger.Person, now time.Time, op int) {
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

func txIDByKey(t *testing.T, db *DB, key string) int64 {
	t.Helper()
	var id int64
	if err := db.read.QueryRow(`SELECT id FROM transactions WHERE idem_key = ?`, key).Scan(&id); err != nil {
		t.Fatalf("tx %s: %v", key, err)
	}
	return id
}
