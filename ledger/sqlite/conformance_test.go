package sqlite_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// store is a SQLite ledger in a test's temp dir; Reopen opens the same file again, as a
// second process would.
type store struct{ *sqlite.DB }

func open(t *testing.T, path string) store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return store{db}
}

func (s store) Reopen(t *testing.T) ledgertest.Store { return open(t, s.Path) }

// TestConformance holds the SQLite store to the ledger's behaviour (ledger/ledgertest).
func TestConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledgertest.Store {
		return open(t, filepath.Join(t.TempDir(), "ledger.db"))
	})
}

// TestForgetLeavesNothingInTheFile: what the conformance suite cannot see, because it is
// below the rows. Forget also empties SQLite's write-ahead log (WALCleared); older copies
// of the erased text may linger in free space inside pages until the file is compacted,
// and after that no byte of them is left in the file or its log.
func TestForgetLeavesNothingInTheFile(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "ledger.db"))
	ledgertest.PrivacyLedger(t, db)
	res, err := db.Forget(ctx, "eve@corp.example", "cli:ops")
	if err != nil {
		t.Fatal(err)
	}
	if !res.WALCleared {
		t.Errorf("forget left the write-ahead log in place: %+v", res)
	}
	if err := db.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db.Path + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	if len(raw) == 0 {
		t.Fatal("read nothing of the database file")
	}
	for _, s := range ledgertest.EveSecrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is still in the database file after forget and compact", s)
		}
	}
}
