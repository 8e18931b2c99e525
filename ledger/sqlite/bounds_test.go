package sqlite

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

// TestWideSumIsExactAndNeverFails sums sets of values near the int64 limits with wideSum
// and compares with exact arithmetic: exact whenever the total fits, clamped (never an
// error) when it does not.
func TestWideSumIsExactAndNeverFails(t *testing.T) {
	db := newTestDB(t)
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
			conn, err := db.read.Conn(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(context.Background(), `CREATE TEMP TABLE IF NOT EXISTS nums (v INTEGER); DELETE FROM nums`); err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.values {
				if _, err := conn.ExecContext(context.Background(), `INSERT INTO nums VALUES (?)`, v); err != nil {
					t.Fatal(err)
				}
			}
			var got int64
			if err := conn.QueryRowContext(context.Background(), `SELECT `+sqlstore.WideSum("v")+` FROM nums`).Scan(sqlstore.Sat(&got)); err != nil {
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
func insertAbsurdUsage(t *testing.T, db *DB, personID int64, n int) {
	t.Helper()
	for i := range n {
		key := "usage:absurd-" + string(rune('a'+i))
		res, err := db.write.Exec(`INSERT INTO transactions(idem_key, input_hash, kind, person_id, created_at) VALUES (?, 'x', 'usage', ?, ?)`,
			key, personID, testNow.UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := db.write.Exec(`INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at)
			VALUES (?, ?, ?, 'huge', 1000000000000, 1000000000000, 2000000000000000000, 2000000000000000000, ?, '', ?)`,
			id, strings.TrimPrefix(key, "usage:"), personID, testNow.UnixMilli(), testNow.UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSumsSurviveAbsurdUsage: five rows of 2e18 credits (what the gateway got
// accepted) no longer break the balance, activity, team stats, closing or verify, for that
// person or anyone else.
func TestSumsSurviveAbsurdUsage(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
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
	if a := acts[1].Allowance(); a != 0 {
		t.Errorf("allowance of the absurd spender: %d, want 0 (all of it overage)", a)
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

// TestPeriodBound: one person's usage in one period stops at ledger.MaxPeriodCredits; the
// event that would pass it is rejected and the others of its batch are kept; the next
// period starts afresh; another person is not affected.
func TestPeriodBound(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
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
	if _, err := db.write.Exec(`DELETE FROM usage_totals`); err != nil {
		t.Fatal(err)
	}
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
	b, err := db.Balance(ctx, people[0].ID, nov, dec)
	if err != nil || b.Spent != ledger.MaxPeriodCredits {
		t.Errorf("balance: %+v %v", b, err)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
		t.Errorf("verify: %v %v", v, err)
	}
}
