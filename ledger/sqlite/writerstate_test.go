package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// The usage writer keeps its people's open grants and period totals between batches
// (sqlstore's writer state). These tests show it never posts against a stale copy:
// whatever else writes the ledger (another process, another call of this store, a usage
// transaction that failed), the next batch burns what the database holds.

var stateNow = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func openStateLedger(t *testing.T, path string, people int) (*sqlite.DB, []ledger.Person, *policy.Policy) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	db.SetNow(func() time.Time { return stateNow })
	pol := policy.Default()
	return db, ledgertest.Directory(t, db, pol, people, stateNow), pol
}

func usageFor(pol *policy.Policy, id string, p ledger.Person, at time.Time, credits int64) ledger.UsagePosting {
	return ledger.UsagePosting{Event: ledger.UsageEvent{EventID: id, Email: p.Email, Model: "m", InputTokens: credits, OccurredAt: at, Source: "test"},
		Credits: credits, PeriodStart: pol.PeriodStart(at), PeriodEnd: pol.PeriodEnd(at)}
}

func TestWriterStateFollowsEveryWriter(t *testing.T) {
	// 10 people: the writer reads each batch's people; 300: a batch naming 256 or more
	// it does not know makes it read every open grant and period total at once.
	for _, n := range []int{10, 300} {
		t.Run(fmt.Sprintf("%d people", n), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "ledger.db")
			db, people, pol := openStateLedger(t, path, n)
			baseline := pol.Baseline.Default
			post := func(batch ...ledger.UsagePosting) []ledger.UsageResult {
				t.Helper()
				res, err := db.PostUsage(ctx, batch)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			overage := func(p ledger.Person) int64 {
				t.Helper()
				b, err := db.Balance(ctx, p.ID, pol.PeriodStart(stateNow), pol.PeriodEnd(stateNow))
				if err != nil {
					t.Fatal(err)
				}
				return b.Overage
			}
			// Everyone uses 1 credit: the writer now holds everyone's grants and totals.
			var warm []ledger.UsagePosting
			for i, p := range people {
				warm = append(warm, usageFor(pol, fmt.Sprintf("warm-%d", i), p, stateNow.Add(-time.Hour), 1))
			}
			post(warm...)

			// Another process grants people[0] 500 credits (data_version moves).
			other, err := sqlite.Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			other.SetNow(func() time.Time { return stateNow })
			grant := func(s *sqlite.DB, p ledger.Person, key string) {
				t.Helper()
				if _, err := s.Grant(ctx, ledger.GrantInput{Key: key, PersonID: p.ID, Kind: ledger.GrantAdjustment, Amount: 500,
					EffectiveAt: pol.PeriodStart(stateNow), ExpiresAt: pol.PeriodEnd(stateNow), Reason: "test", Actor: "cli:test"}); err != nil {
					t.Fatal(err)
				}
			}
			grant(other, people[0], "other-process")
			if err := other.Close(); err != nil {
				t.Fatal(err)
			}
			post(usageFor(pol, "a", people[0], stateNow, baseline+100))
			if got := overage(people[0]); got != 0 {
				t.Errorf("after another process's grant: overage %d, want 0 (the grant covers it)", got)
			}

			// This store grants people[1] 500 credits (a write on the writer's own connection).
			grant(db, people[1], "same-process")
			post(usageFor(pol, "b", people[1], stateNow, baseline+100))
			if got := overage(people[1]); got != 0 {
				t.Errorf("after this store's grant: overage %d, want 0", got)
			}

			// A usage transaction that burns people[2]'s grant and then fails leaves nothing
			// behind: once at a statement, once at its commit (a deferred foreign key that a
			// trigger breaks). Both are made on the writer's own connection: DDL changes no row.
			raw := db.RawSQL()
			for _, fault := range []struct{ name, create, drop string }{
				{"an insert", `CREATE TRIGGER boom BEFORE INSERT ON usage_events WHEN NEW.event_id = 'boom'
					BEGIN SELECT RAISE(ABORT, 'boom'); END`, `DROP TRIGGER boom`},
				{"the commit", `CREATE TABLE boom_parent (id INTEGER PRIMARY KEY);
					CREATE TABLE boom_child (parent INTEGER REFERENCES boom_parent(id) DEFERRABLE INITIALLY DEFERRED);
					CREATE TRIGGER boom AFTER INSERT ON usage_events WHEN NEW.event_id = 'boom'
					BEGIN INSERT INTO boom_child VALUES (42); END`, `DROP TRIGGER boom; DROP TABLE boom_child; DROP TABLE boom_parent`},
			} {
				if _, err := raw.ExecContext(ctx, fault.create); err != nil {
					t.Fatal(err)
				}
				p := people[2]
				if _, err := db.PostUsage(ctx, []ledger.UsagePosting{usageFor(pol, "c", p, stateNow, baseline-1),
					usageFor(pol, "boom", p, stateNow, 1)}); err == nil {
					t.Fatalf("the batch whose %s fails was posted", fault.name)
				}
				if _, err := raw.ExecContext(ctx, fault.drop); err != nil {
					t.Fatal(err)
				}
				if b, err := db.Balance(ctx, p.ID, pol.PeriodStart(stateNow), pol.PeriodEnd(stateNow)); err != nil || b.Spent != 1 {
					t.Fatalf("after %s failed: %+v %v", fault.name, b, err)
				}
			}
			post(usageFor(pol, "c", people[2], stateNow, baseline-1))
			if got := overage(people[2]); got != 0 {
				t.Errorf("after failed usage transactions: overage %d, want 0 (their burns were rolled back)", got)
			}

			// Reversing people[3]'s usage gives its credits back; so does the writer.
			post(usageFor(pol, "d", people[3], stateNow.Add(-time.Minute), baseline-1))
			txID, err := db.UsageTxID(ctx, "d")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Reverse(ctx, ledger.ReverseInput{TxID: txID, Reason: "test", Actor: "cli:test", RefundExpiresAt: pol.PeriodEnd(stateNow)}); err != nil {
				t.Fatal(err)
			}
			post(usageFor(pol, "e", people[3], stateNow, baseline-1))
			if got := overage(people[3]); got != 0 {
				t.Errorf("after a reversal: overage %d, want 0", got)
			}
			if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
				t.Errorf("verify: %v %v", v, err)
			}
		})
	}
}

// TestWriterStateChangesNothing posts the same random history (batches of every size,
// out-of-order dates, duplicates, people not in the directory, grants that start and end
// inside the period, reversals, a period reset and late usage for the closed period) to
// two ledgers: one whose writer keeps its state, one whose writer finds it stale before
// every batch (a row written on its connection). Every result and every stored amount must
// be the same.
func TestWriterStateChangesNothing(t *testing.T) {
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			ctx := context.Background()
			kept, people, pol := openStateLedger(t, filepath.Join(t.TempDir(), "kept.db"), 300)
			cold, _, _ := openStateLedger(t, filepath.Join(t.TempDir(), "cold.db"), 300)
			if _, err := cold.RawSQL().ExecContext(ctx, `CREATE TABLE stale (n INTEGER)`); err != nil {
				t.Fatal(err)
			}
			now, step := stateNow, 0
			both := func(f func(db *sqlite.DB) any) {
				t.Helper()
				a, b := f(kept), f(cold)
				if x, y := fmt.Sprint(a), fmt.Sprint(b); x != y {
					i := 0
					for i < min(len(x), len(y)) && x[i] == y[i] {
						i++
					}
					t.Fatalf("step %d: the ledgers differ at %q (kept state) / %q (read afresh)", step, x[max(i-60, 0):min(i+60, len(x))], y[max(i-60, 0):min(i+60, len(y))])
				}
			}
			rng := rand.New(rand.NewPCG(seed, 7))
			seq := 0
			var posted []string
			for ; step < 60; step++ {
				if step == 40 { // the period ends; usage keeps coming for the old one
					next := pol.PeriodEnd(now)
					now = next.Add(36 * time.Hour)
					resets := make([]ledger.ResetInput, len(people))
					for i, p := range people {
						resets[i] = ledger.ResetInput{PersonID: p.ID, Boundary: next, OldKey: pol.PeriodKey(next.Add(-time.Hour)),
							NewKey: pol.PeriodKey(next), NextEnd: pol.PeriodEnd(next), Baseline: pol.Baseline.Default,
							Rollover: &ledger.RolloverLimits{Max: pol.Baseline.Default / 2}}
					}
					both(func(db *sqlite.DB) any {
						db.SetNow(func() time.Time { return now })
						_, err := db.ResetPeriods(ctx, resets)
						return err
					})
				}
				start := pol.PeriodStart(now)
				switch op := rng.IntN(10); {
				case op < 7:
					size := []int{1, 3, 40, 400, 1000}[rng.IntN(5)]
					batch := make([]ledger.UsagePosting, size)
					for i := range batch {
						p := people[rng.IntN(len(people))]
						at := start.Add(time.Duration(rng.Int64N(int64(now.Sub(start)))))
						if step >= 40 && rng.IntN(4) == 0 {
							at = start.Add(-time.Duration(1 + rng.Int64N(int64(72*time.Hour)))) // late, for the closed period
						}
						seq++
						id := fmt.Sprintf("u%d", seq)
						if len(posted) > 0 && rng.IntN(20) == 0 {
							id = posted[rng.IntN(len(posted))] // a resend
						}
						batch[i] = usageFor(pol, id, p, at, rng.Int64N(pol.Baseline.Default/4))
						if rng.IntN(50) == 0 {
							batch[i].Event.Email = fmt.Sprintf("nobody%d@example.com", seq)
						}
						posted = append(posted, id)
					}
					both(func(db *sqlite.DB) any {
						if db == cold {
							if _, err := db.RawSQL().ExecContext(ctx, `INSERT INTO stale VALUES (1)`); err != nil {
								return err
							}
						}
						res, err := db.PostUsage(ctx, batch)
						return fmt.Sprint(res, err)
					})
				case op < 9:
					p := people[rng.IntN(len(people))]
					in := ledger.GrantInput{Key: fmt.Sprintf("g%d", step), PersonID: p.ID, Kind: ledger.GrantAdjustment, Amount: 1 + rng.Int64N(2000),
						EffectiveAt: start.Add(time.Duration(rng.Int64N(int64(now.Sub(start) + time.Hour)))), ExpiresAt: pol.PeriodEnd(now),
						Reason: "test", Actor: "cli:test"}
					if rng.IntN(3) == 0 {
						in.ExpiresAt = in.EffectiveAt.Add(time.Duration(1+rng.IntN(48)) * time.Hour)
					}
					both(func(db *sqlite.DB) any { _, err := db.Grant(ctx, in); return err })
				default:
					if len(posted) == 0 {
						continue
					}
					id := posted[rng.IntN(len(posted))]
					both(func(db *sqlite.DB) any {
						txID, err := db.UsageTxID(ctx, id)
						if err != nil {
							return ledger.ErrorCode(err)
						}
						_, err = db.Reverse(ctx, ledger.ReverseInput{TxID: txID, Reason: "test", Actor: "cli:test", RefundExpiresAt: pol.PeriodEnd(now)})
						return ledger.ErrorCode(err)
					})
				}
			}
			// What is stored: every grant's remaining credits, every period total, every
			// event's overage, and the ledger's own checks.
			for _, q := range []string{
				`SELECT g.id, g.person_id, r.remaining FROM grants g JOIN grant_remaining r ON r.grant_id = g.id ORDER BY g.id`,
				`SELECT person_id, period_start, credits FROM usage_totals ORDER BY person_id, period_start`,
				`SELECT event_id, person_id, credits, overage, reversed FROM usage_events ORDER BY event_id`,
			} {
				both(func(db *sqlite.DB) any { return dump(t, db, q) })
			}
			both(func(db *sqlite.DB) any { v, err := db.Verify(ctx); return fmt.Sprint(v, err) })
			if v, err := kept.Verify(ctx); err != nil || len(v) != 0 {
				t.Errorf("verify: %v %v", v, err)
			}
		})
	}
}

// dump reads every row of q as text.
func dump(t *testing.T, db *sqlite.DB, q string) []string {
	t.Helper()
	rows, err := db.RawSQL().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprint(vals...))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no rows", q)
	}
	return slices.Clip(out)
}
