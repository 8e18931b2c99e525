// Package sqlite is the SQLite implementation of tokenpay's ledger: one file in WAL mode,
// a single writer connection and a small pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/tokenpay/tokenpay/ledger"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// readerDriver and writerDriver are mattn/go-sqlite3 with tokenpay's per-connection
// settings; a hook, unlike a PRAGMA run once after Open, also applies to connections the
// pool opens later.
const (
	readerDriver = "sqlite3_tokenpay"
	writerDriver = "sqlite3_tokenpay_writer"
)

func init() {
	sql.Register(readerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if err := noAutoCheckpoint(c); err != nil {
			return err
		}
		return registerFunctions(c)
	}})
	sql.Register(writerDriver, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		if err := noAutoCheckpoint(c); err != nil {
			return err
		}
		if err := registerFunctions(c); err != nil {
			return err
		}
		// A statement that writes many rows keeps the old content of every page it changes
		// in a statement journal, so that it can fail alone. SQLite moves that journal to a
		// temp file once it passes 64 KiB, and a usage batch's insert changes hundreds of
		// pages: in memory, a third of the insert's time goes away. The journal holds at
		// most the pages one statement changes, and only the writer gets this.
		if _, err := c.Exec(`PRAGMA temp_store = MEMORY`, nil); err != nil {
			return fmt.Errorf("set temp_store: %w", err)
		}
		return nil
	}})
}

// registerFunctions makes ledger.NormalizeEmail available to SQL as tokenpay_email_key,
// so that a migration can fill the key of rows written before it existed.
func registerFunctions(c *sqlite3.SQLiteConn) error {
	if err := c.RegisterFunc("tokenpay_email_key", ledger.NormalizeEmail, true); err != nil {
		return fmt.Errorf("register tokenpay_email_key: %w", err)
	}
	return nil
}

// noAutoCheckpoint keeps checkpoints out of a writer's commit: checkpointLoop copies the WAL
// back in the background, so a usage batch never waits for database-file writes and fsyncs.
// journal_size_limit makes SQLite cut the WAL file back to that size whenever it starts
// the log over, instead of keeping it at its largest.
func noAutoCheckpoint(c *sqlite3.SQLiteConn) error {
	if _, err := c.Exec(`PRAGMA wal_autocheckpoint = 0`, nil); err != nil {
		return fmt.Errorf("set wal_autocheckpoint: %w", err)
	}
	if _, err := c.Exec(fmt.Sprintf(`PRAGMA journal_size_limit = %d`, DefaultWALLimit), nil); err != nil {
		return fmt.Errorf("set journal_size_limit: %w", err)
	}
	return nil
}

// DefaultWALLimit is the size in bytes past which the checkpoint loop starts the WAL over
// (a TRUNCATE checkpoint in a gap between write transactions): 64 MiB.
const DefaultWALLimit = 64 << 20

// DB is the ledger store. Writes go through one connection (SQLite has one writer anyway,
// and BEGIN IMMEDIATE on a single connection never deadlocks); reads use a pool.
type DB struct {
	Path string
	// Now is the clock every timestamp and period decision uses; tests and TOKENPAY_NOW
	// replace it.
	Now func() time.Time

	write *sql.DB
	read  *sql.DB

	identities identityCache

	// opened is the database file as Open found it, for FilesIntact.
	opened os.FileInfo

	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
	gate            writeGate
	walLimit        atomic.Int64 // bytes; see SetWALLimit
	walResets       atomic.Int64 // TRUNCATE checkpoints that started the WAL over
}

// Open opens (creating if needed) the database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open ledger: no database path given (set TOKENPAY_DB or pass --db)")
	}
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "30000")
	q.Set("_synchronous", "NORMAL")
	// Reuse prepared statements: ingestion repeats the same few large statements.
	q.Set("_stmt_cache_size", "64")
	readDSN := "file:" + path + "?" + q.Encode()
	// The writer keeps what every batch touches (running balances, open grants, the
	// per-person indexes) in memory instead of reading it back from the WAL: 64 MiB.
	q.Set("_cache_size", "-65536")
	writeDSN := "file:" + path + "?" + q.Encode() + "&_txlock=immediate"

	db := &DB{Path: path, Now: time.Now}
	db.walLimit.Store(DefaultWALLimit)
	var err error
	if db.write, err = sql.Open(writerDriver, writeDSN); err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetConnMaxIdleTime(0)
	if db.read, err = sql.Open(readerDriver, readDSN); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	db.read.SetMaxOpenConns(8)
	db.read.SetMaxIdleConns(8)
	if err := db.migrate(ctx); err != nil {
		db.Close()
		if IsCorrupt(err) {
			return nil, ledger.Errorf(ledger.Invalid, "the database %s is damaged (%v); %s", path, err, RestoreAdvice)
		}
		return nil, err
	}
	if db.opened, err = os.Stat(path); err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger %s: %w", path, err)
	}
	db.stopCheckpoints = make(chan struct{})
	db.checkpointsDone = make(chan struct{})
	go db.checkpointLoop()
	return db, nil
}

// Close releases both connection pools.
func (db *DB) Close() error {
	if db.stopCheckpoints != nil {
		close(db.stopCheckpoints)
		<-db.checkpointsDone
		db.stopCheckpoints = nil
	}
	return errors.Join(db.read.Close(), db.write.Close())
}

// checkpointLoop copies committed WAL pages back into the database file every 200 ms.
// PASSIVE never blocks writers or readers, but it never starts the WAL over either while
// writes and reads go on without a pause: under continuous ingestion the file grew without
// bound (6 GB at 3.3M events). So once the WAL passes its limit the loop also runs a
// TRUNCATE checkpoint on the writer's connection, which it gets in a gap between two
// write transactions; closing the last connection checkpoints the rest.
func (db *DB) checkpointLoop() {
	defer close(db.checkpointsDone)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for tick := 0; ; tick++ {
		select {
		case <-db.stopCheckpoints:
			return
		case <-t.C:
			if tick%4 == 0 {
				_, _ = db.read.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			}
			// The size is checked more often than the copy runs: at full speed the WAL
			// grows by about 10 MiB a second.
			if db.WALSize() > db.walLimit.Load() {
				if db.restartWAL() {
					db.walResets.Add(1)
				}
			}
		}
	}
}

// restartWAL copies the whole WAL into the database file and truncates it, holding the
// writer's connection (so no write waits on a lock it cannot get) and waiting at most
// 250 ms for readers of older snapshots; it reports whether the WAL was started over.
func (db *DB) restartWAL() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.gate.acquire(ctx, true); err != nil {
		return false
	}
	defer db.gate.release()
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return false
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA busy_timeout = 250`); err != nil {
		return false
	}
	var busy, frames, done int
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done)
	if _, rerr := conn.ExecContext(context.Background(), `PRAGMA busy_timeout = 30000`); rerr != nil {
		// A writer that gives up on a lock after 250 ms is worse than a large WAL: drop
		// the connection, the pool opens a fresh one with the DSN's timeout.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		return false
	}
	return err == nil && busy == 0
}

// WALSize is the size in bytes of the database's write-ahead log file now (0 when none).
func (db *DB) WALSize() int64 {
	fi, err := os.Stat(db.Path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// WALResets counts the TRUNCATE checkpoints that started the WAL over since Open.
func (db *DB) WALResets() int64 { return db.walResets.Load() }

// SetWALLimit sets the WAL size in bytes past which the checkpoint loop starts it over
// (default DefaultWALLimit; tests use less).
func (db *DB) SetWALLimit(bytes int64) { db.walLimit.Store(bytes) }

func (db *DB) now() time.Time { return db.Now().UTC() }

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var ms []migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		v, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number", base)
		}
		body, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(body)})
	}
	return ms, nil
}

// migrate applies every migration not yet recorded, each in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range ms {
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, db.now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.name, err)
		}
	}
	return nil
}

// Ready reports whether the database answers, every migration is applied, and the
// database file and its WAL are still the ones this process opened (FilesIntact).
func (db *DB) Ready(ctx context.Context) error {
	if err := db.FilesIntact(); err != nil {
		return err
	}
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var n int
	if err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		return fmt.Errorf("ledger not reachable: %w", err)
	}
	if n != len(ms) {
		return fmt.Errorf("ledger has %d of %d migrations applied", n, len(ms))
	}
	return nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE), committing on nil.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writeTx(ctx, false, fn)
}

// inBulkTx is inTx in the bulk lane of the writer (writeGate): for large writes, which
// let the small ones people wait for go first.
func (db *DB) inBulkTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return db.writeTx(ctx, true, fn)
}

func (db *DB) writeTx(ctx context.Context, bulk bool, fn func(tx *sql.Tx) error) error {
	if err := db.gate.acquire(ctx, bulk); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer db.gate.release()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// execAffected runs one write statement in its own transaction and returns how many rows
// it changed: the answer to "did this click, claim or delivery change anything".
func (db *DB) execAffected(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// isUnique reports whether err is a UNIQUE violation of the named constraint or index.
// SQLite reports the columns, not the constraint name, so callers pass the table.column
// list the constraint covers; the driver's extended code decides, never the text alone.
func isUnique(err error, columns string) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintUnique {
		return false
	}
	return strings.Contains(se.Error(), columns)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func nullMs(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// placeholders returns "(?,?),(?,?)" for rows x cols.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// maxRowsPerInsert keeps multi-row statements under SQLite's variable limit.
func maxRowsPerInsert(cols int) int { return 30000 / cols }

// insertRows runs "INSERT ... VALUES" for rows in as few statements as the variable limit
// allows; multi-row inserts cut the per-row cgo cost that dominates ingestion.
func insertRows(ctx context.Context, tx *sql.Tx, prefix string, cols int, rows [][]any) error {
	return insertRowsIgnore(ctx, tx, prefix, cols, rows, "")
}

// insertRowsIgnore is insertRows with a conflict clause appended to each statement.
func insertRowsIgnore(ctx context.Context, tx *sql.Tx, prefix string, cols int, rows [][]any, suffix string) error {
	step := maxRowsPerInsert(cols)
	for start := 0; start < len(rows); start += step {
		end := min(start+step, len(rows))
		args := make([]any, 0, (end-start)*cols)
		for _, r := range rows[start:end] {
			args = append(args, r...)
		}
		if err := execBound(ctx, tx, prefix+" VALUES "+placeholders(end-start, cols)+" "+suffix, args...); err != nil {
			return err
		}
	}
	return nil
}

// execBound runs a write statement that binds many arguments, such as a 500-row insert.
// mattn/go-sqlite3 binds an Exec's arguments with one cgo call each but a Query's in a
// single call, and it takes a query's first step inside QueryContext, so the statement
// has run, and any error (a UNIQUE or CHECK violation) is returned, before this returns.
// For the ingestion statements that is about 5% of a batch (BENCHMARKS.md).
func execBound(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	return rows.Close()
}

var errNoRows = sql.ErrNoRows

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, errNoRows) {
		return ledger.Errorf(ledger.NotFound, format, args...)
	}
	return err
}
