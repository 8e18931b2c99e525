package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/tokenpay/tokenpay/ledger"
)

// Marks are the newest entries a database holds. Restore compares a backup's marks with
// the live database's so that a restore never silently discards newer work.
type Marks struct {
	Migration   int   // highest migration applied
	LastTx      int64 // last ledger transaction id, 0 when none
	LastTxAt    time.Time
	LastAudit   int64 // last audit log entry id, 0 when none
	LastAuditAt time.Time
}

// NewerThan lists, one sentence each, what m holds that backup b does not: transactions or
// audit entries after b's last ones, or a later migration. Empty means restoring b over m
// loses no ledger work.
func (m Marks) NewerThan(b Marks) []string {
	var out []string
	if m.LastTx > b.LastTx || m.LastTxAt.After(b.LastTxAt) {
		n := max(m.LastTx-b.LastTx, 1)
		out = append(out, fmt.Sprintf("%s %s after the backup's last (the live database's last is #%d of %s)",
			ledger.FormatCredits(n), map[bool]string{true: "ledger transaction", false: "ledger transactions"}[n == 1], m.LastTx, m.LastTxAt.UTC().Format(time.RFC3339)))
	}
	if m.LastAudit > b.LastAudit || m.LastAuditAt.After(b.LastAuditAt) {
		n := max(m.LastAudit-b.LastAudit, 1)
		out = append(out, fmt.Sprintf("%s %s after the backup's last (the live database's last is #%d of %s)",
			ledger.FormatCredits(n), map[bool]string{true: "audit log entry", false: "audit log entries"}[n == 1], m.LastAudit, m.LastAuditAt.UTC().Format(time.RFC3339)))
	}
	if m.Migration > b.Migration {
		out = append(out, fmt.Sprintf("schema version %d, later than the backup's %d", m.Migration, b.Migration))
	}
	return out
}

// LatestMigration is the highest migration this build knows.
func LatestMigration() (int, error) {
	ms, err := loadMigrations()
	if err != nil {
		return 0, err
	}
	if len(ms) == 0 {
		return 0, nil
	}
	return ms[len(ms)-1].Version, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readMarks(ctx context.Context, q queryRower) (Marks, error) {
	var m Marks
	var txAt, auditAt int64
	err := q.QueryRowContext(ctx, `SELECT
		COALESCE((SELECT MAX(version) FROM schema_migrations), 0),
		COALESCE((SELECT MAX(id) FROM transactions), 0), COALESCE((SELECT MAX(created_at) FROM transactions), 0),
		COALESCE((SELECT MAX(id) FROM audit_log), 0), COALESCE((SELECT MAX(at) FROM audit_log), 0)`).
		Scan(&m.Migration, &m.LastTx, &txAt, &m.LastAudit, &auditAt)
	m.LastTxAt, m.LastAuditAt = fromMs(txAt), fromMs(auditAt)
	return m, err
}

// Marks returns the newest entries of the live database.
func (db *DB) Marks(ctx context.Context) (Marks, error) {
	m, err := readMarks(ctx, db.read)
	if err != nil {
		return m, fmt.Errorf("read marks of %s: %w", db.Path, err)
	}
	return m, nil
}

// openBackup opens a backup file read-only; the file is never changed.
func openBackup(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, ledger.Errorf(ledger.Invalid, "cannot read backup %s: %v", path, err)
	}
	q := url.Values{}
	q.Set("mode", "ro")
	q.Set("_busy_timeout", "10000")
	src, err := sql.Open("sqlite3", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open backup %s: %w", path, err)
	}
	src.SetMaxOpenConns(1)
	return src, nil
}

// InspectBackup checks that path is an intact tokenpay database and returns its marks,
// without changing the file.
func InspectBackup(ctx context.Context, path string) (Marks, error) {
	src, err := openBackup(path)
	if err != nil {
		return Marks{}, err
	}
	defer src.Close()
	var check string
	if err := src.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return Marks{}, ledger.Errorf(ledger.Invalid, "%s is not a readable SQLite database: %v", path, err)
	}
	if check != "ok" {
		return Marks{}, ledger.Errorf(ledger.Invalid, "%s is damaged: %s", path, check)
	}
	m, err := readMarks(ctx, src)
	if err != nil {
		return Marks{}, ledger.Errorf(ledger.Invalid, "%s is not a tokenpay database: %v", path, err)
	}
	return m, nil
}

// Restore replaces the whole content of the live database with the backup at path, then
// applies any migration the backup lacks. The copy is one write transaction through
// SQLite's backup API, so other connections see the old database or the new one, never a
// mix, and a crash mid-way leaves the old one. Callers check InspectBackup and the marks first.
func (db *DB) Restore(ctx context.Context, path string) error {
	if err := db.copyFrom(ctx, path); err != nil {
		return fmt.Errorf("restore from %s: %w", path, err)
	}
	return db.migrate(ctx)
}

// copyFrom holds the single writer connection while it copies; it is back in the pool
// when copyFrom returns, for migrate.
func (db *DB) copyFrom(ctx context.Context, path string) error {
	src, err := openBackup(path)
	if err != nil {
		return err
	}
	defer src.Close()
	srcConn, err := src.Conn(ctx)
	if err != nil {
		return err
	}
	defer srcConn.Close()
	dstConn, err := db.write.Conn(ctx)
	if err != nil {
		return err
	}
	defer dstConn.Close()
	return dstConn.Raw(func(d any) error {
		return srcConn.Raw(func(s any) error {
			dst, ok1 := d.(*sqlite3.SQLiteConn)
			from, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("restore needs mattn/go-sqlite3 connections")
			}
			return copyDatabase(ctx, dst, from)
		})
	})
}

// copyDatabase copies every page in one step; a busy destination (a writer in another
// process) is retried until ctx ends.
func copyDatabase(ctx context.Context, dst, src *sqlite3.SQLiteConn) error {
	b, err := dst.Backup("main", src, "main")
	if err != nil {
		return err
	}
	for {
		done, err := b.Step(-1)
		if err != nil {
			b.Close()
			return err
		}
		if done {
			return b.Close()
		}
		select {
		case <-ctx.Done():
			b.Close()
			return fmt.Errorf("database stayed busy: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
