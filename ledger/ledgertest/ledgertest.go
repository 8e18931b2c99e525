// Package ledgertest gives tests a real ledger store (never a mock): a fresh SQLite file in
// a temp dir, or with TOKENPAY_TEST_DB=postgres a fresh database on a throwaway PostgreSQL
// cluster (ledger/postgres/pgtest), so any test that takes its store from here can run on
// both engines.
package ledgertest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/postgres"
	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// Store is a ledger store opened for a test, with the clock it reads.
type Store interface {
	ledger.Store
	// Now is the store's clock; SetNow replaces it (before the store is used, or between
	// steps of a test).
	Now() time.Time
	SetNow(now func() time.Time)
}

// Open returns a fresh, migrated store that is closed when the test ends: SQLite, or
// PostgreSQL when the environment variable TOKENPAY_TEST_DB is "postgres".
func Open(t testing.TB) Store {
	t.Helper()
	if os.Getenv("TOKENPAY_TEST_DB") == "postgres" {
		return OpenPostgres(t)
	}
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "ledger.db"))
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenFile opens (creating if needed) the SQLite ledger file at path, for tests that
// restart a process on the same database or keep a large fixture between runs. The caller
// closes it.
func OpenFile(ctx context.Context, path string) (Store, error) {
	return sqlite.Open(ctx, path)
}

// OpenPostgres returns a fresh, migrated store on a new database of the test cluster
// (pgtest.Start: it skips the test, or fails it under CI=true, when PostgreSQL is not
// installed), closed when the test ends.
func OpenPostgres(t testing.TB) Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), pgtest.Start(t))
	if err != nil {
		t.Fatalf("open ledger on PostgreSQL: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Directory imports n people (p<i>@example.com, "Person <i>") into db and opens the period
// holding now for each with pol's default baseline, as the period-reset job does; it
// returns them by id. Benchmarks start from it.
func Directory(tb testing.TB, db ledger.Store, pol *policy.Policy, n int, now time.Time) []ledger.Person {
	tb.Helper()
	ctx := context.Background()
	recs := make([]ledger.PersonRecord, n)
	for i := range recs {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@example.com", i), Name: fmt.Sprintf("Person %d", i)}
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		tb.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	resets := make([]ledger.ResetInput, len(people))
	for i, p := range people {
		resets[i] = ledger.ResetInput{PersonID: p.ID, Boundary: pol.PeriodStart(now), NewKey: pol.PeriodKey(now),
			NextEnd: pol.PeriodEnd(now), Baseline: pol.Baseline.Default}
	}
	if _, err := db.ResetPeriods(ctx, resets); err != nil {
		tb.Fatal(err)
	}
	return people
}

// Clients runs fn(0) … fn(n-1) at once, as n gateways posting together, and returns the
// wall time until the last is done; any error fails tb. The ingestion benchmarks time
// their rounds with it.
func Clients(tb testing.TB, n int, fn func(c int) error) time.Duration {
	tb.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for c := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[c] = fn(c)
		}()
	}
	wg.Wait()
	d := time.Since(start)
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return d
}
