package postgres

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

var _ ledger.Store = (*DB)(nil)

// DB is the ledger store on PostgreSQL: the shared SQL store over one pgx connection pool,
// reads and writes alike; write transactions are serialized across every process on the
// database by the advisory lock WriteLockKey (Dialect.BeginWrite).
type DB struct {
	*sqlstore.Store
	pool *sql.DB
}

// Open connects to the PostgreSQL database named by dsn (postgres://user:password@host:5432/db,
// or libpq's key=value form; pool_max_conns sizes the pool, DefaultMaxConns otherwise) and
// applies pending migrations; several replicas may open one database at once.
func Open(ctx context.Context, dsn string) (*DB, error) {
	pool, err := OpenPool(ctx, dsn)
	if err != nil {
		return nil, err
	}
	return &DB{Store: sqlstore.New(pool, pool, NewDialect(pool)), pool: pool}, nil
}

// Close closes the connection pool.
func (db *DB) Close() error { return db.pool.Close() }

// Ready reports whether the database answers and holds exactly the migrations this
// build knows: a missing one means the schema is older, an extra one that a newer
// release (another replica) migrated it.
func (db *DB) Ready(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	var n, latest int
	if err := db.pool.QueryRowContext(ctx, `SELECT count(*), COALESCE(max(version), 0) FROM schema_migrations`).Scan(&n, &latest); err != nil {
		return fmt.Errorf("ledger not reachable: %w", err)
	}
	if known := ms[len(ms)-1].Version; latest > known {
		return fmt.Errorf("the ledger's schema is at migration %d, newer than this tokenpay knows (%d): upgrade this replica", latest, known)
	}
	if n != len(ms) {
		return fmt.Errorf("ledger has %d of %d migrations applied", n, len(ms))
	}
	return nil
}
