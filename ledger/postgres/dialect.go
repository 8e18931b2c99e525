package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
)

var _ sqlstore.Dialect = (*Dialect)(nil)

// WriteLockKey is the key of the PostgreSQL advisory lock that serializes tokenpay's write
// transactions, and its migrations, across every process on one database: the ASCII bytes
// of "tokenpay" read as a big-endian int64. An operator sees holders and waiters in
// pg_locks (locktype 'advisory', objid 1701670000 and classid 1953459045 are its low and
// high halves).
const WriteLockKey int64 = 0x746f6b656e706179

// Dialect is what the shared SQL store (ledger/internal/sqlstore) needs to know about
// PostgreSQL: placeholders, write serialization and unique violations.
type Dialect struct {
	db *sql.DB
}

// NewDialect is the PostgreSQL dialect over a pool opened by OpenPool.
func NewDialect(db *sql.DB) *Dialect { return &Dialect{db: db} }

// Name is "postgres".
func (*Dialect) Name() string { return "postgres" }

// Rebind rewrites the ? placeholders of query into $1, $2, ... in order, and SQLite's
// numbered ?NNN into $NNN (a bare ? after ?3 is $4, as SQLite counts). A ? inside a
// '...' string literal (a quote inside one is written twice), a "..." quoted identifier, a -- comment (to the
// end of the line) or a /* ... */ comment is kept. The SQL the store writes is portable,
// so PostgreSQL-only lexical forms (E'...' escapes, $$ quoting, the jsonb ? operator) are
// not recognised. An unterminated literal or comment runs to the end of the query.
func (*Dialect) Rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); {
		switch c := query[i]; {
		case c == '?':
			// ?NNN is parameter NNN; a bare ? is one more than the largest number so far,
			// as SQLite numbers them.
			j := i + 1
			for j < len(query) && query[j] >= '0' && query[j] <= '9' {
				j++
			}
			b.WriteByte('$')
			if j > i+1 {
				if v, err := strconv.Atoi(query[i+1 : j]); err == nil {
					n = max(n, v)
				}
				b.WriteString(query[i+1 : j])
			} else {
				n++
				b.WriteString(strconv.Itoa(n))
			}
			i = j
		case c == '\'' || c == '"':
			// '' inside a literal ends it and starts the next one at once: same bytes.
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				end = len(query)
			} else {
				end += i + 2
			}
			b.WriteString(query[i:end])
			i = end
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				end = len(query)
			} else {
				end += i + 1
			}
			b.WriteString(query[i:end])
			i = end
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				end = len(query)
			} else {
				end += i + 4
			}
			b.WriteString(query[i:end])
			i = end
		default:
			// Copy up to the next byte that may start something.
			j := i + 1
			for j < len(query) && !mayStart(query[j]) {
				j++
			}
			b.WriteString(query[i:j])
			i = j
		}
	}
	return b.String()
}

// BeginWrite starts a READ COMMITTED transaction and takes the transaction-level advisory
// lock WriteLockKey in it, so write transactions run one at a time across every replica;
// the lock goes with Commit or Rollback, so release does nothing. Each statement after the
// lock sees every transaction committed before it was granted (READ COMMITTED takes a
// snapshot per statement; a REPEATABLE READ snapshot would date from the lock request).
// bulk is for SQLite's writer lanes; PostgreSQL has none.
func (d *Dialect) BeginWrite(ctx context.Context, bulk bool) (*sql.Tx, func(), error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, nil, fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, WriteLockKey); err != nil {
		_ = tx.Rollback()
		return nil, nil, fmt.Errorf("begin: take the write lock: %w", err)
	}
	return tx, func() {}, nil
}

var _ sqlstore.Partitioner = (*Dialect)(nil)

// UsagePartitions is how many partitions of people usage batches are written in at once
// (sqlstore.Partitioner): person id modulo 2. A partition's write holds WriteLockKey shared
// and its own key, WriteLockKey+1+partition, exclusive. Every replica must split the same
// way, so it changes only in a release whose upgrade stops them all. Two, because more
// partitions make smaller transactions whose fixed costs (lock, round trips, commit) then
// outweigh what they add at once: 4 clients of 1,000 events against PostgreSQL on 2 cores
// went 0.37 / 0.52 / 0.51 / 0.46 / 0.42 of the raw insert of the same rows with 1 / 2 / 3 /
// 4 / 8 partitions (BENCHMARKS.md, issue 17).
const UsagePartitions = 2

// UsagePartitions is the constant of the same name.
func (*Dialect) UsagePartitions() int { return UsagePartitions }

// BeginUsageWrite starts a READ COMMITTED transaction holding WriteLockKey shared, so no
// BeginWrite runs beside it, and partition part's key exclusive, so no other usage write
// of its people does; other partitions' usage writes run at once. The shared lock comes
// first, as every writer takes it, so two writers never wait for each other in a circle.
func (d *Dialect) BeginUsageWrite(ctx context.Context, part int) (*sql.Tx, error) {
	tx, err := d.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock_shared($1), pg_advisory_xact_lock($2)`,
		WriteLockKey, WriteLockKey+1+int64(part)); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("begin: take the usage write locks: %w", err)
	}
	return tx, nil
}

// TxIDs takes n values of the transactions_id_seq sequence (migration 173): ids that no
// other transaction, of this replica or another, gets.
func (*Dialect) TxIDs(ctx context.Context, tx *sql.Tx, n int) ([]int64, error) {
	rows, err := tx.QueryContext(ctx, `SELECT nextval('transactions_id_seq') FROM generate_series(1, $1)`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ids := make([]int64, 0, n)
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("the sequence gave %d ids, want %d", len(ids), n)
	}
	return ids, nil
}

// NextTxID takes the next value of transactions_id_seq (sqlstore.Partitioner).
func (*Dialect) NextTxID() string { return `nextval('transactions_id_seq')` }

var _ sqlstore.RowLocker = (*Dialect)(nil)

// SkipLocked is " FOR UPDATE SKIP LOCKED": the outbox's claims lock the rows they take
// and pass over the ones another replica is taking, outside the write lock
// (sqlstore.RowLocker).
func (*Dialect) SkipLocked() string { return " FOR UPDATE SKIP LOCKED" }

// mayStart reports whether c may start a placeholder, a literal, an identifier or a comment.
func mayStart(c byte) bool {
	return c == '?' || c == '\'' || c == '"' || c == '-' || c == '/'
}

// Forgetting does nothing before an erasure: PostgreSQL has no secure_delete. The old row
// versions stay in their pages until VACUUM reclaims the space and new rows overwrite it,
// and the write-ahead log (with any WAL archive, replica and backup) keeps the erased text
// until it is recycled, which this process cannot force; so after reports false.
func (*Dialect) Forgetting(context.Context, *sql.Tx) (func(context.Context) (bool, error), error) {
	return func(context.Context) (bool, error) { return false, nil }, nil
}

// expressionKeys names the columns of unique indexes over an expression, whose violation
// PostgreSQL reports with the expression instead of column names.
var expressionKeys = map[string]string{
	"people_email_unique": "people.email", // lower(email COLLATE "C"): SQLite's NOCASE
}

// IsUnique reports whether err is a unique violation (SQLSTATE 23505) of a constraint or
// unique index over exactly columns, written as SQLite words it: "table.col" or
// "table.col1, table.col2" in the index's order. The columns come from the error's
// detail, "Key (col1, col2)=(...) already exists.", which PostgreSQL sends to a role that
// may read the table (the store's role owns it).
func (*Dialect) IsUnique(err error, columns string) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23505" {
		return false
	}
	if cols, ok := expressionKeys[pe.ConstraintName]; ok {
		return cols == normalizeColumns(columns)
	}
	cols, ok := detailColumns(pe.Detail)
	if !ok || pe.TableName == "" {
		return false
	}
	for i, c := range cols {
		cols[i] = pe.TableName + "." + c
	}
	return strings.Join(cols, ", ") == normalizeColumns(columns)
}

// detailColumns reads the column names of "Key (a, b)=(1, 2) already exists.".
func detailColumns(detail string) ([]string, bool) {
	rest, ok := strings.CutPrefix(detail, "Key (")
	if !ok {
		return nil, false
	}
	list, _, ok := strings.Cut(rest, ")=(")
	if !ok || list == "" {
		return nil, false
	}
	cols := strings.Split(list, ", ")
	for i, c := range cols {
		// A name PostgreSQL had to quote is not one of the store's.
		if c == "" || strings.ContainsAny(c, "\"() ") {
			return nil, false
		}
		cols[i] = c
	}
	return cols, true
}

// normalizeColumns writes "a.b ,c.d" as "a.b, c.d".
func normalizeColumns(columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

var _ sqlstore.GroupWriter = (*Dialect)(nil)

// GroupWrites: usage batches waiting for the write lock in one process share one write
// transaction, one lock wait and one commit (sqlstore.GroupWriter).
func (*Dialect) GroupWrites() {}

var _ sqlstore.WritableCTEs = (*Dialect)(nil)

// WritableCTEs: a WITH clause may write (sqlstore.WritableCTEs).
func (*Dialect) WritableCTEs() {}

var _ sqlstore.Arrays = (*Dialect)(nil)

// Array binds vals as one PostgreSQL array (sqlstore.Arrays): BIGINT[] for Go int64 and
// int, TEXT[] for string, BYTEA[] for []byte, with nil as NULL. A column of several of
// those types, of another type, or of nils only has no array form here (ok false), and
// the store binds its values one by one as before.
func (*Dialect) Array(vals []any) (string, any, bool) {
	kind, nulls := "", false
	for _, v := range vals {
		var k string
		switch v.(type) {
		case nil:
			nulls = true
			continue
		case int64, int:
			k = "BIGINT"
		case string:
			k = "TEXT"
		case []byte:
			k = "BYTEA"
		default:
			return "", nil, false
		}
		if kind != "" && k != kind {
			return "", nil, false
		}
		kind = k
	}
	expr := "CAST(? AS " + kind + "[])"
	switch {
	case kind == "":
		return "", nil, false
	case kind == "BIGINT" && !nulls:
		a := make([]int64, len(vals))
		for i, v := range vals {
			a[i] = toInt64(v)
		}
		return expr, a, true
	case kind == "BIGINT":
		a := make([]pgtype.Int8, len(vals))
		for i, v := range vals {
			if v != nil {
				a[i] = pgtype.Int8{Int64: toInt64(v), Valid: true}
			}
		}
		return expr, a, true
	case kind == "TEXT" && !nulls:
		a := make([]string, len(vals))
		for i, v := range vals {
			a[i] = v.(string)
		}
		return expr, a, true
	case kind == "TEXT":
		a := make([]pgtype.Text, len(vals))
		for i, v := range vals {
			if v != nil {
				a[i] = pgtype.Text{String: v.(string), Valid: true}
			}
		}
		return expr, a, true
	default: // BYTEA: a nil []byte is NULL, as when bound alone
		a := make([][]byte, len(vals))
		for i, v := range vals {
			if v != nil {
				a[i] = v.([]byte)
			}
		}
		return expr, a, true
	}
}

func toInt64(v any) int64 {
	if n, ok := v.(int); ok {
		return int64(n)
	}
	return v.(int64)
}
