package main

import (
	"context"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/postgres"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// The ledger's engine is chosen here and nowhere else: TOKENPAY_DB (or --db) holding a
// postgres:// or postgresql:// URL opens ledger/postgres, anything else is the path of a
// SQLite file (ledger/sqlite), as it always was. Commands hold a ledger.Store;
// what only a SQLite file can do (a quick check of its pages, its write-ahead log's
// figures, a file backup, restore and compaction) is asked of the store through the
// small interfaces below, and on another engine each such command says in one sentence
// what to do instead.

// fileChecks is a ledger kept in files this process can examine (SQLite): serve refuses
// a damaged file at start, and /readyz reports a file replaced or deleted under it.
type fileChecks interface {
	QuickCheck(ctx context.Context) error
	FilesIntact() error
}

// walFigures is a ledger with a write-ahead log file of its own to report (SQLite):
// its size in bytes and how many times it was started over.
type walFigures interface {
	WALSize() int64
	WALResets() int64
}

// compacter rewrites the database file so no freed page keeps erased data (SQLite VACUUM).
type compacter interface {
	Compact(ctx context.Context) error
}

// dbName is the database as logs and messages name it: the SQLite path, or the
// PostgreSQL URL with its password (in the user part or a password parameter) replaced
// by xxxxx.
func (a *app) dbName() string {
	if !isPostgresDSN(a.dbPath) {
		return a.dbPath
	}
	u, err := url.Parse(a.dbPath)
	if err != nil {
		return "the PostgreSQL database of TOKENPAY_DB"
	}
	// libpq also takes the password as a parameter: ?password=….
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// isPostgresDSN reports whether TOKENPAY_DB (or --db) names a PostgreSQL database, a
// postgres:// or postgresql:// URL (libpq's two schemes), rather than a SQLite file.
func isPostgresDSN(s string) bool {
	lower := strings.ToLower(s)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// onPostgres reports whether the ledger is a PostgreSQL database.
func (a *app) onPostgres() bool { return isPostgresDSN(a.dbPath) }

// open opens the ledger named by TOKENPAY_DB (or --db) with the app's clock.
func (a *app) open(ctx context.Context) (ledger.Store, error) {
	if a.onPostgres() {
		db, err := postgres.Open(ctx, a.dbPath)
		if err != nil {
			return nil, err
		}
		db.SetNow(a.now)
		return db, nil
	}
	return a.openSQLite(ctx)
}

// What to do instead, on PostgreSQL, of the commands that work on a SQLite file. Each is
// one sentence; the command exits 1 without connecting.
const (
	pgBackupAdvice = "use pg_dump (and pg_restore) on PostgreSQL: `tokenpay backup` copies a SQLite file; back this database up with " +
		"pg_dump --format=custom --file=tokenpay.dump \"$TOKENPAY_DB\" (safe while serving), or with your provider's snapshots"
	pgRestoreAdvice = "use pg_restore on PostgreSQL: `tokenpay restore` replaces a SQLite file; stop every `tokenpay serve`, then run " +
		"pg_restore --clean --if-exists --dbname=\"$TOKENPAY_DB\" tokenpay.dump (a pg_dump archive) and `tokenpay ledger verify`"
	pgCompactAdvice = "--compact rewrites a SQLite file; on PostgreSQL autovacuum reclaims the erased rows' space and VACUUM FULL " +
		"(in psql) rewrites the tables at once, so run the command again without --compact"
)

// openSQLite opens the SQLite file at the app's path, refusing an empty one unless --init.
func (a *app) openSQLite(ctx context.Context) (*sqlite.DB, error) {
	// A database file that exists but is empty was truncated or made by hand; a missing
	// file is a new installation and is created.
	if fi, err := os.Stat(a.dbPath); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 && !a.initDB {
		return nil, ledger.Errorf(ledger.Invalid, "the database %s is an empty file (0 bytes), not a ledger: if it was truncated, %s; "+
			"to start a new, empty ledger in it, run the command again with --init", a.dbPath, sqlite.RestoreAdvice)
	}
	db, err := sqlite.Open(ctx, a.dbPath)
	if err != nil {
		return nil, err
	}
	db.SetNow(a.now)
	return db, nil
}

// withDB runs fn with the database open, closing it after.
func (a *app) withDB(cmd *cobra.Command, fn func(db ledger.Store) error) error {
	db, err := a.open(cmd.Context())
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(db)
}
