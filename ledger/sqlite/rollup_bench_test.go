package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// BenchmarkUsageRollup gives the figures of the roll-up (README: "History: old usage is
// rolled up") on a ledger of 36 months of usage for 100 people (8 events on each of 15 days
// a month, two models): usage rows and transactions, pages in use, and how long verify and a
// batch of 1,000 new events take, before and after rolling up at the default retention (13
// months), and how long the roll-up took. It runs once whatever -benchtime says:
//
//	go test ./ledger/sqlite -run '^$' -bench UsageRollup -benchtime 1x
func BenchmarkUsageRollup(b *testing.B) {
	ctx := context.Background()
	db := newTestDB(b)
	people := seedPeople(b, db, 100)
	rng := rand.New(rand.NewPCG(18, 36))
	first := time.Date(2023, 11, 1, 0, 0, 0, 0, time.UTC)
	const months = 36
	n := 0
	for m := 0; m < months; m++ {
		ps, pe := first.AddDate(0, m, 0), first.AddDate(0, m+1, 0)
		db.SetNow(func() time.Time { return ps })
		var ins []ledger.ResetInput
		for _, p := range people {
			ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: ps, NewKey: ps.Format("2006-01"), NextEnd: pe, Baseline: 100_000})
		}
		if _, err := db.ResetPeriods(ctx, ins); err != nil {
			b.Fatal(err)
		}
		db.SetNow(func() time.Time { return pe.Add(-time.Hour) })
		var batch []ledger.UsagePosting
		for _, p := range people {
			for d := 0; d < 15; d++ {
				for range 8 {
					n++
					at := ps.AddDate(0, 0, 2*d).Add(time.Duration(rng.IntN(24*60)) * time.Minute)
					batch = append(batch, ledger.UsagePosting{Event: ledger.UsageEvent{EventID: fmt.Sprintf("e%d", n), Email: p.Email,
						Model: []string{"small", "large"}[rng.IntN(2)], InputTokens: 100, OccurredAt: at}, Credits: 10 + rng.Int64N(500), PeriodStart: ps, PeriodEnd: pe})
				}
			}
			if len(batch) >= 1000 {
				if _, err := db.PostUsage(ctx, batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if _, err := db.PostUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	now := first.AddDate(0, months, 14)
	db.SetNow(func() time.Time { return now })
	figures := func(when string) {
		var rows, txs, pages, free int64
		r := db.RawSQL()
		if err := r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM usage_events), (SELECT count(*) FROM transactions)`).Scan(&rows, &txs); err != nil {
			b.Fatal(err)
		}
		if err := r.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
			b.Fatal(err)
		}
		if err := r.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
			b.Fatalf("verify %s: %v %v", when, v, err)
		}
		verify := time.Since(start)
		// The median of five batches: one batch's time follows the shared machine's noise.
		var took []time.Duration
		for range 5 {
			var batch []ledger.UsagePosting
			for i := range 1000 {
				n++
				batch = append(batch, ledger.UsagePosting{Event: ledger.UsageEvent{EventID: fmt.Sprintf("e%d", n), Email: people[i%len(people)].Email,
					Model: "small", InputTokens: 100, OccurredAt: now.Add(-time.Duration(n) * time.Millisecond)}, Credits: 10})
			}
			start := time.Now()
			if _, err := db.PostUsage(ctx, batch); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(start))
		}
		slices.Sort(took)
		post := took[2]
		b.Logf("%s: %d usage rows, %d transactions, %d pages in use (4 KiB), verify %s, a batch of 1,000 new events %s (median of 5)",
			when, rows, txs, pages-free, verify.Round(time.Millisecond), post.Round(time.Millisecond))
	}
	figures("before")
	before := first.AddDate(0, months-13, 0)
	start := time.Now()
	res, err := db.RollUpUsage(ctx, ledger.RollupInput{Before: before, Zone: time.UTC, Actor: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("roll-up before %s: %d rows (%d events) into %d in %s", before.Format("2006-01-02"), res.Rows, res.Events, res.Summaries, time.Since(start).Round(time.Millisecond))
	figures("after")
}
