// Package ledgertest gives tests a real ledger store (never a mock): a fresh SQLite file in
// a temp dir, and holds every driver to one behaviour with the conformance suite (Run).
package ledgertest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
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

// Open returns a fresh, migrated store that is closed when the test ends.
func Open(t testing.TB) Store {
	t.Helper()
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
