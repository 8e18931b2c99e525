// Package sqlite is the SQLite implementation of tokenpay's ledger (the ports of package
// ledger): one file in WAL mode, a single writer connection and a small pool of readers.
// The SQL shared with ledger/postgres is ledger/internal/sqlstore, which DB embeds; this
// package adds what only a SQLite file has: the writer's two lanes, WAL checkpoints and
// their bound, backup, restore, quick check, compaction and its migrations.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
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
	*sqlstore.Store
	Path string

	write *sql.DB
	read  *sql.DB

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

	db := &DB{Path: path}
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
	db.Store = sqlstore.New(db.read, db.write, dialect{db})
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

func loadMigrations() ([]sqlstore.Migration, error) { return sqlstore.Migrations(migrationFiles) }

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
		err := db.writeTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, db.Now().UnixMilli())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
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

// dialect is SQLite's side of sqlstore.Dialect.
type dialect struct{ db *DB }

func (dialect) Name() string { return "sqlite" }

// Rebind keeps the query: SQLite takes ? placeholders.
func (dialect) Rebind(query string) string { return query }

// BeginWrite takes the writer connection in its lane of the writeGate, then BEGIN
// IMMEDIATE (the DSN's _txlock): one writer, and a transaction that never deadlocks.
func (d dialect) BeginWrite(ctx context.Context, bulk bool) (*sql.Tx, func(), error) {
	if err := d.db.gate.acquire(ctx, bulk); err != nil {
		return nil, nil, err
	}
	tx, err := d.db.write.BeginTx(ctx, nil)
	if err != nil {
		d.db.gate.release()
		return nil, nil, err
	}
	return tx, d.db.gate.release, nil
}

var _ sqlstore.GroupWriter = dialect{}

// GroupWrites: usage batches waiting for the writer share one write transaction and one
// commit (sqlstore.GroupWriter). With 4 gateways posting batches of 1,000 at once it took
// ingestion into a ledger of 10M events from 17,300 to 19,300 events/s, and into an empty
// one from 31,900 to 32,700 (medians of 5 alternating runs, BENCHMARKS.md, issue 18); a
// group holds the writer for at most 8,000 events.
func (dialect) GroupWrites() {}

// WriteStamp (sqlstore.OneWriter): every write of the process runs on the writer
// connection, so its total_changes() counts them all; data_version moves with every
// commit of another connection, another process's included.
func (dialect) WriteStamp() string {
	return `total_changes(), (SELECT data_version FROM pragma_data_version())`
}

// SmallWriteWaiting (sqlstore.OneWriter): a write of the priority lane waits.
func (d dialect) SmallWriteWaiting() bool { return d.db.gate.priorityWaiting() }

// IsUnique: SQLite reports the columns, not the constraint name, so callers pass the
// table.column list the constraint covers; the driver's extended code decides, never the
// text alone.
func (dialect) IsUnique(err error, columns string) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) || se.ExtendedCode != sqlite3.ErrConstraintUnique {
		return false
	}
	return strings.Contains(se.Error(), columns)
}

// Forgetting zeroes what the erasing transaction frees inside pages (secure_delete), and
// afterwards copies the write-ahead log, which still holds the pages as they were, back
// into the file and empties it.
func (d dialect) Forgetting(ctx context.Context, tx *sql.Tx) (func(context.Context) (bool, error), error) {
	if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return nil, err
	}
	return func(ctx context.Context) (bool, error) {
		if _, err := d.db.write.ExecContext(ctx, `PRAGMA secure_delete = OFF`); err != nil {
			return false, err
		}
		var busy, logged, copied int
		if err := d.db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied); err != nil {
			return false, err
		}
		return busy == 0, nil
	}, nil
}

var _ sqlstore.LargeWriter = dialect{}

// LargeWrite makes the writer journal statements to a temporary file until done: the
// writer keeps them in memory (see the writer's ConnectHook), which for the upsert of a
// whole directory would be hundreds of MB. temp_store cannot change inside a
// transaction, so it is set on the writer's one connection before the transaction.
func (d dialect) LargeWrite(ctx context.Context) (func(), error) {
	if _, err := d.db.write.ExecContext(ctx, `PRAGMA temp_store = FILE`); err != nil {
		return nil, fmt.Errorf("journal to a temporary file: %w", err)
	}
	return func() { _, _ = d.db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA temp_store = MEMORY`) }, nil
}

// writeTx runs fn in a write transaction of its own, for migrations.
func (db *DB) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, release, err := dialect{db}.BeginWrite(ctx, false)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer release()
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func fromMs(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Compact rewrites the whole database file (VACUUM) and empties the write-ahead log. After
// Forget, it removes older copies of the erased text that earlier updates left in free
// space inside pages. Writers wait while it runs: minutes on a large ledger.
func (db *DB) Compact(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("compact %s: %w", db.Path, err)
	}
	var busy, logged, copied int
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &copied); err != nil {
		return fmt.Errorf("compact %s: checkpoint: %w", db.Path, err)
	}
	if busy != 0 {
		return fmt.Errorf("compact %s: the write-ahead log is in use by another connection; run it again when the service is quiet", db.Path)
	}
	return nil
}

// Backup writes a consistent copy of the live database to path (VACUUM INTO reads one
// snapshot, so writers may keep going).
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := db.read.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}

var _ ledger.Store = (*DB)(nil)
