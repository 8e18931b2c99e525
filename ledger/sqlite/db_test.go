package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/mattn/go-sqlite3"
)

// TestExecBoundRunsAndReportsErrors pins the driver behaviour execBound relies on: a write
// sent as a query has run when the call returns, without reading any row, and its
// constraint errors come back from the call, typed as the driver's errors.
func TestExecBoundRunsAndReportsErrors(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	people := seedPeople(t, db, 1)
	insert := `INSERT INTO transactions(idem_key, input_hash, kind, person_id, created_at) VALUES (?, 'h', 'grant', ?, 0), (?, 'h', 'grant', ?, 0)`

	if err := db.inTx(ctx, func(tx *sql.Tx) error {
		return execBound(ctx, tx, insert, "k1", people[0].ID, "k2", people[0].ID)
	}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if n := count(t, db, "transactions WHERE idem_key IN ('k1', 'k2')"); n != 2 {
		t.Fatalf("rows after insert: %d, want 2", n)
	}

	tests := []struct {
		name string
		args []any
		code sqlite3.ErrNoExtended
	}{
		{"unique", []any{"k3", people[0].ID, "k1", people[0].ID}, sqlite3.ErrConstraintUnique},
		{"foreign key", []any{"k4", people[0].ID, "k5", people[0].ID + 100}, sqlite3.ErrConstraintForeignKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.inTx(ctx, func(tx *sql.Tx) error { return execBound(ctx, tx, insert, tt.args...) })
			var se sqlite3.Error
			if !errors.As(err, &se) || se.ExtendedCode != tt.code {
				t.Fatalf("error %v, want extended code %d", err, tt.code)
			}
			if n := count(t, db, "transactions"); n != 2 {
				t.Errorf("rows after the failed insert: %d, want 2 (the transaction rolled back)", n)
			}
		})
	}
}
