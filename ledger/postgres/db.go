// Package postgres is the PostgreSQL implementation of tokenpay's ledger, for
// organisations that run several replicas on one database: pgx/v5 through database/sql
// (github.com/jackc/pgx/v5/stdlib), so the shared SQL store serves both engines; its own
// migrations (migrations/*.sql, the same schema as ledger/sqlite's); its Dialect. Writes
// are serialized across replicas by an advisory lock (WriteLockKey).
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// DefaultMaxConns is the size of the connection pool unless the DSN says otherwise with
// pool_max_conns (pgxpool's parameter, e.g. postgres://host/db?pool_max_conns=40). Writes
// hold one connection each while they wait for the write lock, so the pool is larger than
// the writers: reads (dashboards, chat) go on meanwhile. Several replicas multiply it; the
// server's max_connections (100 by default) bounds the sum.
const DefaultMaxConns = 16

// StalledWriterTimeout is how long PostgreSQL lets a tokenpay session sit idle inside a
// transaction before it ends the session (idle_in_transaction_session_timeout, unless the
// DSN sets its own). A replica that stalls mid-transaction (a paused VM, a frozen process,
// a network partition that leaves the connection open) would otherwise hold the write lock
// and stall every replica's writes until it came back; a killed replica's connection
// closes and releases it at once. Its own transaction then fails and is retried like any
// failed write. It matches the heartbeat's takeover delay (nudges.StaleAfter).
const StalledWriterTimeout = 30 * time.Second

// OpenPool connects to the PostgreSQL database named by dsn (a postgres:// URL or
// key=value settings, as libpq reads them) and applies pending migrations. The pool
// closes a connection after 30 minutes, so that a failover or a load balancer's move is
// followed, and after 5 idle minutes.
func OpenPool(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's message may quote the DSN with its password; say what to fix instead.
		return nil, fmt.Errorf("open ledger: the PostgreSQL address is not valid (expected postgres://user:password@host:5432/database): %v", redact(err))
	}
	conf := cfg.ConnConfig
	if _, ok := conf.RuntimeParams["application_name"]; !ok {
		conf.RuntimeParams["application_name"] = "tokenpay"
	}
	if _, ok := conf.RuntimeParams["idle_in_transaction_session_timeout"]; !ok {
		conf.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(StalledWriterTimeout.Milliseconds(), 10)
	}
	db := stdlib.OpenDB(*conf, stdlib.OptionAfterConnect(registerTypes))
	maxConns := DefaultMaxConns
	if strings.Contains(dsn, "pool_max_conns") {
		maxConns = int(cfg.MaxConns)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxLifetime(30 * time.Minute)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open ledger: connect to PostgreSQL at %s:%d: %w", conf.Host, conf.Port, err)
	}
	if err := migrate(ctx, db, time.Now); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// redact keeps a parse error's message without the DSN it may quote.
func redact(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) && pe.Unwrap() != nil {
		return pe.Unwrap().Error()
	}
	if errors.As(err, &pe) {
		return "the address could not be read"
	}
	return err.Error()
}

func loadMigrations() ([]sqlstore.Migration, error) { return sqlstore.Migrations(migrationFiles) }

// migrate applies every migration not yet recorded in schema_migrations, each in its own
// transaction under the write lock (WriteLockKey): replicas that start together apply
// each migration once (the others find it recorded once the lock is theirs), and no write
// of a running replica interleaves with a schema change.
func migrate(ctx context.Context, db *sql.DB, now func() time.Time) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Without the lock first: a replica starting on an up-to-date schema waits for no one.
	applied, err := appliedVersions(ctx, db)
	if err != nil {
		return err
	}
	d := NewDialect(db)
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if err := migrateOne(ctx, d, m, now); err != nil {
			return fmt.Errorf("migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// appliedVersions reads schema_migrations; none when it does not exist yet.
func appliedVersions(ctx context.Context, db *sql.DB) (map[int]bool, error) {
	var exists bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	if !exists {
		return applied, nil
	}
	rows, err := db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

func migrateOne(ctx context.Context, d *Dialect, m sqlstore.Migration, now func() time.Time) error {
	tx, release, err := d.BeginWrite(ctx, true)
	if err != nil {
		return err
	}
	defer release()
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// Created under the lock: two concurrent CREATE TABLE IF NOT EXISTS can both decide
	// to create it, and the second then fails.
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var done bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done); err != nil {
		return err
	}
	if done {
		return nil
	}
	// Without arguments pgx sends the file in the simple protocol, which runs several
	// statements in one call.
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES ($1, $2, $3)`,
		m.Version, m.Name, now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
