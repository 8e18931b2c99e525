package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// The balance fixture: 100,000 people and 10,000,000 usage events over three monthly
// periods, written by the real ingestion path (resets, then PostUsage in big batches).
const (
	fixtureVersion = "balance-v2"
	fixturePeople  = 100_000
	fixtureBatch   = 10_000
)

var (
	// fixtureNow is late in the fixture's last period, when the lookups happen.
	fixtureNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// fixtureEventsPerPerson per month, September to November: 10,000,000 in all.
	fixtureEventsPerPerson = []int{34, 33, 33}
)

// balanceFixture returns the path of the fixture database, building it on first use. It
// lives in os.TempDir under a name keyed by fixtureVersion and the migrations, so later
// runs reuse it and a schema change gets a fresh one.
func balanceFixture(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("skipped with -short: the balance fixture holds 10,000,000 usage events (minutes to build the first time, about 5 GB in os.TempDir)")
	}
	h := sha256.New()
	h.Write([]byte(fixtureVersion))
	if err := fs.WalkDir(migrationFiles, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := migrationFiles.ReadFile(path)
		h.Write([]byte(path))
		h.Write(body)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tokenpay-bench-%s-%s.db", fixtureVersion, hex.EncodeToString(h.Sum(nil))[:12]))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	b.Logf("building %s (once)", path)
	start := time.Now()
	// Build under a private name and rename when complete, so an interrupted build is
	// never mistaken for a fixture.
	tmp := fmt.Sprintf("%s.building-%d", path, os.Getpid())
	if err := buildBalanceFixture(tmp); err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
		b.Fatalf("build balance fixture: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	return path
}

func buildBalanceFixture(path string) error {
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	pol := policy.Default()
	teams := []string{"Platform", "Sales", "Support", "Research", "Finance", "Legal", "Design", "Data"}
	recs := make([]ledger.PersonRecord, fixturePeople)
	for i := range recs {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%06d@example.com", i), Name: fmt.Sprintf("Person %d", i),
			Team: teams[i%len(teams)], Role: "engineer"}
	}
	months := []time.Time{
		time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
	}
	db.SetNow(func() time.Time { return months[0] })
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		return err
	}
	people, err := db.People(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	seq := 0
	for m, start := range months {
		db.SetNow(func() time.Time { return start.Add(5 * time.Minute) })
		resets := make([]ledger.ResetInput, len(people))
		for i, p := range people {
			resets[i] = ledger.ResetInput{PersonID: p.ID, Boundary: start, OldKey: pol.PeriodKey(start.Add(-time.Nanosecond)),
				NewKey: pol.PeriodKey(start), NextEnd: pol.PeriodEnd(start), Baseline: pol.BaselineFor(p.Team, p.Role), Rollover: &ledger.RolloverLimits{Max: pol.RolloverLimits.Max, Min: pol.RolloverLimits.Min}}
		}
		if _, err := db.ResetPeriods(ctx, resets); err != nil {
			return err
		}
		end := pol.PeriodEnd(start)
		if m == len(months)-1 {
			end = fixtureNow
		}
		db.SetNow(func() time.Time { return end })
		batch := make([]ledger.UsagePosting, 0, fixtureBatch+100)
		// Events are posted person by person, as a gateway's nightly file would be; each
		// is stamped at a random moment of the month.
		for _, p := range people {
			heavy := int64(1)
			if p.ID%10 == 0 {
				heavy = 12 // one in ten spends past the baseline, so overage is exercised
			}
			for range fixtureEventsPerPerson[m] {
				seq++
				in, out := rng.Int64N(2000)*heavy, rng.Int64N(500)*heavy
				credits, err := pol.WeightFor("gpt-4o").Credits(in, out)
				if err != nil {
					return err
				}
				at := start.Add(time.Duration(rng.Int64N(int64(end.Sub(start)))))
				// With the period, as the ingestor posts it: the store keeps each
				// person-period's total, as a ledger written through the API has them.
				batch = append(batch, ledger.UsagePosting{Credits: credits, PeriodStart: start, PeriodEnd: pol.PeriodEnd(start), Event: ledger.UsageEvent{
					EventID: fmt.Sprintf("fx-%08d", seq), Email: p.Email, Model: "gpt-4o",
					InputTokens: in, OutputTokens: out, OccurredAt: at.Truncate(time.Millisecond), Source: "fixture"}})
			}
			if len(batch) >= fixtureBatch {
				if err := postFixtureBatch(ctx, db, batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if err := postFixtureBatch(ctx, db, batch); err != nil {
			return err
		}
	}
	violations, err := db.Verify(ctx)
	if err != nil {
		return err
	}
	if len(violations) > 0 {
		return fmt.Errorf("fixture fails verify: %v", violations[:min(5, len(violations))])
	}
	_, err = db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

func postFixtureBatch(ctx context.Context, db *DB, batch []ledger.UsagePosting) error {
	if len(batch) == 0 {
		return nil
	}
	res, err := db.PostUsage(ctx, batch)
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Status != ledger.UsageAccepted {
			return fmt.Errorf("fixture event %s: %s %s", r.EventID, r.Status, r.Reason)
		}
	}
	return nil
}

// BenchmarkBalanceLookup looks up random people's balances the way the HTTP API does (person
// by email, then the period's balance) in the 10,000,000-event fixture. Each op is one
// lookup followed by a bare SELECT 1 on the same reader pool, the baseline; the metrics are
// latency percentiles of each.
func BenchmarkBalanceLookup(b *testing.B) {
	path := balanceFixture(b)
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetNow(func() time.Time { return fixtureNow })
	pol := policy.Default()
	start, end := pol.PeriodStart(fixtureNow), pol.PeriodEnd(fixtureNow)
	var people int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM people`).Scan(&people); err != nil || people != fixturePeople {
		b.Fatalf("fixture has %d people, want %d: %v", people, fixturePeople, err)
	}
	rng := rand.New(rand.NewPCG(3, 5))
	lookup := func() (ledger.Balance, error) {
		p, err := db.PersonByEmail(ctx, fmt.Sprintf("p%06d@example.com", rng.IntN(fixturePeople)))
		if err != nil {
			return ledger.Balance{}, err
		}
		return db.Balance(ctx, p.ID, start, end)
	}
	selectOne := func() error {
		var one int
		return db.read.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	}
	for range 2000 { // warm the pool's connections and statement caches
		if _, err := lookup(); err != nil {
			b.Fatal(err)
		}
		if err := selectOne(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	base := make([]time.Duration, 0, b.N)
	var spent int64
	b.ResetTimer()
	for range b.N {
		t := time.Now()
		bal, err := lookup()
		lat = append(lat, time.Since(t))
		if err != nil {
			b.Fatal(err)
		}
		spent += bal.Spent
		t = time.Now()
		if err := selectOne(); err != nil {
			b.Fatal(err)
		}
		base = append(base, time.Since(t))
	}
	b.StopTimer()
	if spent == 0 {
		b.Fatal("every looked-up balance spent nothing: the fixture has no usage in the period")
	}
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
	b.ReportMetric(percentile(base, 50), "select1-p50-ms")
	b.ReportMetric(percentile(base, 99), "select1-p99-ms")
	b.ReportMetric(0, "ns/op") // one op mixes both; the percentiles are the figures
}

// percentile returns the p-th percentile of ds in milliseconds (nearest rank).
func percentile(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100 // nearest rank: ceil(p/100 * n)
	return float64(s[max(0, i-1)]) / float64(time.Millisecond)
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	tests := []struct {
		ds   []time.Duration
		p    int
		want float64
	}{
		{nil, 50, 0},
		{ms(7), 99, 7},
		{ms(3, 1, 2), 50, 2},
		{ms(hundred...), 50, 50},
		{ms(hundred...), 99, 99},
		{ms(hundred...), 100, 100},
	}
	for _, tc := range tests {
		if got := percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("percentile(%v, %d) = %v, want %v", tc.ds, tc.p, got, tc.want)
		}
	}
}
