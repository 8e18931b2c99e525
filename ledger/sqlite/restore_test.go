package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func TestMarksNewerThan(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 11, 27, h, 0, 0, 0, time.UTC) }
	backup := Marks{Migration: 9, LastTx: 100, LastTxAt: at(10), LastAudit: 5, LastAuditAt: at(9)}
	tests := []struct {
		name string
		live Marks
		want []string // each must start one reason, in order
	}{
		{"same", backup, nil},
		{"older live database", Marks{Migration: 9, LastTx: 40, LastTxAt: at(8), LastAudit: 2, LastAuditAt: at(8)}, nil},
		{"empty live database", Marks{}, nil},
		{"more transactions", Marks{Migration: 9, LastTx: 130, LastTxAt: at(11), LastAudit: 5, LastAuditAt: at(9)},
			[]string{"30 ledger transactions after the backup's last"}},
		// A live database rebuilt from scratch may have fewer ids but later work.
		{"later transaction, lower id", Marks{Migration: 9, LastTx: 3, LastTxAt: at(12), LastAudit: 5, LastAuditAt: at(9)},
			[]string{"1 ledger transaction after"}},
		{"audit entries only", Marks{Migration: 9, LastTx: 100, LastTxAt: at(10), LastAudit: 7, LastAuditAt: at(12)},
			[]string{"2 audit log entries after"}},
		{"later migration", Marks{Migration: 10, LastTx: 100, LastTxAt: at(10), LastAudit: 5, LastAuditAt: at(9)},
			[]string{"schema version 10, later than the backup's 9"}},
		{"everything", Marks{Migration: 10, LastTx: 101, LastTxAt: at(11), LastAudit: 6, LastAuditAt: at(10)},
			[]string{"1 ledger transaction ", "1 audit log", "schema version 10"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.live.NewerThan(backup)
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %d reason(s) %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("reason %d: %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}

func TestRestoreReplacesTheLiveDatabase(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	want, err := db.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	latest, _ := LatestMigration()
	if want.Migration != latest || want.LastTx != 2 {
		t.Fatalf("marks of the small ledger: %+v (latest migration %d)", want, latest)
	}
	sum, _ := os.ReadFile(backup)
	got, err := InspectBackup(ctx, backup)
	if err != nil || got != want {
		t.Fatalf("inspect: %+v %v, want %+v", got, err, want)
	}
	if after, _ := os.ReadFile(backup); !bytes.Equal(after, sum) {
		t.Fatal("inspecting a backup changed the file")
	}

	// Work after the backup, seen through a second handle as a running server would.
	if _, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "after", Email: people[1].Email, Model: "m",
		OccurredAt: testNow}, Credits: 50}}); err != nil {
		t.Fatal(err)
	}
	other, err := Open(ctx, db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if m, _ := other.Marks(ctx); len(m.NewerThan(want)) == 0 {
		t.Fatalf("live marks %+v should be newer than the backup's %+v", m, want)
	}

	if err := db.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	for name, h := range map[string]*DB{"restoring handle": db, "other handle": other} {
		m, err := h.Marks(ctx)
		if err != nil || m != want {
			t.Errorf("%s: marks after restore %+v %v, want %+v", name, m, err, want)
		}
		if _, err := h.UsageTxID(ctx, "after"); ledger.ErrorCode(err) != ledger.NotFound {
			t.Errorf("%s: the event posted after the backup survived the restore: %v", name, err)
		}
		if v, err := h.Verify(ctx); err != nil || len(v) != 0 {
			t.Errorf("%s: verify after restore: %v %v", name, v, err)
		}
	}
	// The restored database takes writes again.
	if _, err := other.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "again", Email: people[1].Email, Model: "m",
		OccurredAt: testNow}, Credits: 5}}); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreOlderSchema restores a backup made before the latest migration: the missing
// migration is applied after the copy.
func TestRestoreOlderSchema(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g-bo", PersonID: people[1].ID, Kind: ledger.GrantBaseline, Amount: 500,
		ExpiresAt: testNow.Add(72 * time.Hour), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "old.db")
	if err := db.Backup(ctx, backup); err != nil {
		t.Fatal(err)
	}
	latest, _ := LatestMigration()
	raw, err := sql.Open("sqlite3", backup)
	if err != nil {
		t.Fatal(err)
	}
	// Undo the latest migrations (019_connectors, 020_web, 130_email_key,
	// 131_quarantine_bounds, 180_people_staging, 181_usage_rollup, 182_rollup_fk_indexes,
	// 183_usage_day_index, 184_grants_person) by name; a new migration must update these lines.
	if _, err := raw.Exec(`DROP INDEX grants_person; DROP INDEX usage_day_person; DROP INDEX usage_reversed;
		CREATE INDEX usage_person_time ON usage_events(person_id, occurred_at);
		DROP TABLE connector_state; DROP TABLE connector_buckets; DROP TABLE connector_pending;
		DROP TABLE login_links; DROP TABLE web_sessions;
		DROP INDEX people_email_key; ALTER TABLE people DROP COLUMN email_key;
		DROP INDEX quarantine_key_open; DROP INDEX quarantine_age_open;
		ALTER TABLE quarantine DROP COLUMN api_key_id; DROP TABLE quarantine_replay; DROP TABLE people_staging;
		ALTER TABLE usage_events DROP COLUMN events; DROP TABLE usage_rollup;
		DROP INDEX grants_closed_tx; DROP INDEX usage_adjustments_tx;
		DELETE FROM schema_migrations WHERE version IN (19, 20, 130, 131, 180, 181, 182, 183, 184)`); err != nil {
		t.Fatal(err)
	}
	var previous int
	if err := raw.QueryRow(`SELECT max(version) FROM schema_migrations`).Scan(&previous); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	m, err := InspectBackup(ctx, backup)
	if err != nil || m.Migration != previous || previous >= latest {
		t.Fatalf("inspect old backup: %+v %v (want migration %d)", m, err, previous)
	}
	if err := db.Restore(ctx, backup); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("not ready after restoring an older schema: %v", err)
	}
	if _, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "after-restore", Email: "p1@example.com",
		Model: "m", OccurredAt: testNow}, Credits: 1, PeriodStart: testNow.Add(-time.Hour), PeriodEnd: testNow.Add(time.Hour)}}); err != nil {
		t.Fatalf("the restored database lacks the latest schema: %v", err)
	}
	// The migration carried what remained of each grant over.
	if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
		t.Errorf("verify after migrating the restored database: %v %v", v, err)
	}
	b, err := db.Balance(ctx, people[1].ID, testNow.Add(-time.Hour), testNow.Add(time.Hour))
	if err != nil || b.Available != 499 || b.Spent != 1 {
		t.Errorf("balance after migrating the restored database: %+v %v, want 499 available and 1 spent", b, err)
	}
}

func TestInspectBackupRefusesWhatIsNotATokenpayDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not sqlite "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "foreign.db")
	raw, err := sql.Open("sqlite3", foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`CREATE TABLE notes (body TEXT)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, tc := range []struct{ path, says string }{
		{garbage, "is not a readable SQLite database"},
		{foreign, "is not a tokenpay database"},
		{filepath.Join(dir, "missing.db"), "cannot read backup"},
	} {
		_, err := InspectBackup(ctx, tc.path)
		if ledger.ErrorCode(err) != ledger.Invalid || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want an Invalid error saying %q", filepath.Base(tc.path), err, tc.says)
		}
	}
}
