package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/mattn/go-sqlite3"
)

// queryThenClose is what the store's execBound does with a bound write.
func queryThenClose(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return rows.Close()
}

// TestExecBoundRunsAndReportsErrors pins the driver behaviour execBound relies on: a write
// sent as a query has run when the call returns, without reading any row, and its
// constraint errors come back from the call, typed as the driver's errors.
func TestExecBoundRunsAndReportsErrors(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	people := seedPeople(t, db, 1)
	insert := `INSERT INTO transactions(idem_key, input_hash, kind, person_id, created_at) VALUES (?, 'h', 'grant', ?, 0), (?, 'h', 'grant', ?, 0)`

	if err := db.writeTx(ctx, func(tx *sql.Tx) error {
		return queryThenClose(ctx, tx, insert, "k1", people[0].ID, "k2", people[0].ID)
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
			err := db.writeTx(ctx, func(tx *sql.Tx) error { return queryThenClose(ctx, tx, insert, tt.args...) })
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

// TestConnectionSettings: the writer keeps statement journals in memory (a usage batch's
// insert would otherwise spill them to a temp file); readers keep SQLite's default, so the
// temp tables of a large verify go to disk, not memory; nobody checkpoints inside a commit.
func TestConnectionSettings(t *testing.T) {
	db := newTestDB(t)
	for _, tc := range []struct {
		name   string
		conn   *sql.DB
		pragma string
		want   int
	}{
		{"writer temp_store", db.write, "temp_store", 2},
		{"reader temp_store", db.read, "temp_store", 0},
		{"writer wal_autocheckpoint", db.write, "wal_autocheckpoint", 0},
		{"reader wal_autocheckpoint", db.read, "wal_autocheckpoint", 0},
	} {
		var got int
		if err := tc.conn.QueryRow(`PRAGMA ` + tc.pragma).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s = %d, want %d", tc.name, got, tc.want)
		}
	}
}
