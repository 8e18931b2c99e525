package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// The store's behaviour is tested by the conformance suite (ledger/ledgertest, run by
// conformance_test.go); the tests of this package are SQLite's own: connection settings,
// the writer gate, WAL bounds, backup and restore, migrations, the file after erasure.

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

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

// smallLedger holds two people; p0 has a 1,000-credit grant and spent 1,200 of it (200
// overage), p1 has nothing.
func smallLedger(t *testing.T) (*DB, []ledger.Person) {
	t.Helper()
	ctx := context.Background()
	db := newTestDB(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g1", PersonID: people[0].ID, Kind: ledger.GrantBaseline, Amount: 1000,
		ExpiresAt: testNow.Add(72 * time.Hour), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: people[0].Email, Model: "m",
		OccurredAt: testNow}, Credits: 1200}})
	if err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("usage: %+v, %v", res, err)
	}
	return db, people
}

func count(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
