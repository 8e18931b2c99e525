// Package sqlstore is the one SQL implementation of the ledger's ports (package ledger),
// shared by the SQLite and PostgreSQL drivers. It is written against database/sql with ?
// placeholders and portable SQL; what differs between the engines (placeholders, how writes
// are serialized, how a unique violation reads, engine-only maintenance) is a Dialect that
// the driver passes to New. The rules themselves (burn-down, rollover, decisions) come from
// package ledger; this package reads their inputs and writes their outputs in one
// transaction.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Dialect is what differs between the SQL engines behind the store.
type Dialect interface {
	// Name is "sqlite" or "postgres".
	Name() string
	// Rebind rewrites a query written with ? placeholders into the engine's form
	// ($1, $2, ... for PostgreSQL); a ? inside a '...' literal or a -- comment is kept.
	Rebind(query string) string
	// BeginWrite starts a write transaction. Writes are serialized: SQLite by its one
	// writer connection (bulk picks the writer's bulk lane), PostgreSQL by a
	// transaction-level advisory lock taken right after BEGIN, so the read-modify-write
	// rules (running balances, burn-down, decisions) see every earlier commit. release
	// runs after Commit or Rollback.
	BeginWrite(ctx context.Context, bulk bool) (tx *sql.Tx, release func(), err error)
	// IsUnique reports whether err is a unique-constraint violation over exactly the
	// given columns, written "table.col" or "table.col1, table.col2".
	IsUnique(err error, columns string) bool
	// Forgetting runs first in the transaction that erases a person's personal data, so
	// that what it deletes is overwritten rather than left readable in free space (SQLite's
	// secure_delete). after runs once that transaction is over; it reports whether the
	// engine's log no longer holds the erased text (SQLite empties its write-ahead log).
	Forgetting(ctx context.Context, tx *sql.Tx) (after func(context.Context) (logCleared bool, err error), err error)
}

// LargeWriter is a Dialect that must prepare for a write transaction changing a whole
// table at once (a directory import's apply: a million people). LargeWrite runs before
// that transaction begins, outside it; done runs after it is over, whatever its outcome.
// SQLite implements it: its writer keeps a statement's undo journal in memory, which for
// such a write would be hundreds of MB, so LargeWrite moves it to a temporary file. An
// engine without such a setting (PostgreSQL) does not implement it.
type LargeWriter interface {
	LargeWrite(ctx context.Context) (done func(), err error)
}

// WritableCTEs is a Dialect whose WITH clauses may hold INSERT, UPDATE and DELETE
// (PostgreSQL): a statement can then read rows and write them back in one round trip.
type WritableCTEs interface {
	WritableCTEs()
}

// RowLocker is a Dialect whose engine locks the rows a statement changes, one by one
// (PostgreSQL). A claim of queue rows (ClaimDueOutbox, ClaimOutbox) then runs as one
// statement outside BeginWrite's serialization, with SkipLocked on its SELECT: workers on
// several replicas take disjoint rows at once and never wait for each other's writes
// (usage batches, imports, period closes). Such a claim reads and changes only the rows
// it claims, so it needs none of the serialized read-modify-write rules. SQLite, with one
// writer, does not implement it: its claims are write transactions.
type RowLocker interface {
	// SkipLocked is the clause that makes a SELECT lock the rows it returns and pass
	// over the rows another transaction holds: " FOR UPDATE SKIP LOCKED".
	SkipLocked() string
}

// Partitioner is a Dialect on which usage batches for different people are written at
// once (PostgreSQL, where one write transaction keeps one backend, so one core, busy). The
// people are split into UsagePartitions partitions by id; a usage write for one partition
// excludes the other writers of that partition and every BeginWrite, and runs beside the
// usage writes of the other partitions. The rules of a usage batch read and change only
// its people's rows (open grants, period totals), so they hold as when writes ran one at a
// time; what reads wider than its people (late usage for a closed period, a grant edge
// inside the batch's window, events for people not in the directory) is written under
// BeginWrite instead. Transaction ids then come from a sequence, since MAX(id)+1 is no
// longer the next writer's alone.
type Partitioner interface {
	UsagePartitions() int
	// BeginUsageWrite starts a usage write transaction for partition part (0 <= part <
	// UsagePartitions()); the locks go with Commit or Rollback.
	BeginUsageWrite(ctx context.Context, part int) (*sql.Tx, error)
	// TxIDs allocates n transaction ids no other transaction gets, committed or not.
	TxIDs(ctx context.Context, tx *sql.Tx, n int) ([]int64, error)
	// NextTxID is the SQL expression that allocates one such id, for each row of an
	// INSERT ... SELECT.
	NextTxID() string
}

// GroupWriter is a Dialect on which usage batches that wait for the write lock in one
// process are posted one after another in one transaction (usageGroup): one lock wait
// and one commit for all. On PostgreSQL every transaction pays its own lock wait, round
// trips and commit; on SQLite the commit writes each page the transaction dirtied to the
// WAL once, and concurrent batches dirty many of the same pages (what remains of grants,
// the period totals, the tops of the indexes).
type GroupWriter interface {
	GroupWrites()
}

// Store implements the ledger's ports on one SQL database. Drivers embed it.
type Store struct {
	clock func() time.Time

	d     Dialect
	read  Reader // reads, from a pool
	write Reader // single statements that need no transaction and no ordering

	identities identityCache
	writer     *writerState // OneWriter dialects
	usage      usageGroup   // batches under BeginWrite
	parts      []usageGroup // batches of one partition each (Partitioner)
	// partitioned counts the usage transactions committed by partition.
	partitioned atomic.Int64
}

// New returns a store reading through read and writing single statements through write;
// write transactions come from d.BeginWrite. The schema must be migrated already.
func New(read, write *sql.DB, d Dialect) *Store {
	db := &Store{clock: time.Now, d: d, read: Reader{read, d}, write: Reader{write, d}, usage: usageGroup{part: -1}}
	if _, ok := d.(OneWriter); ok {
		db.writer = &writerState{}
	}
	if p, ok := d.(Partitioner); ok {
		db.parts = make([]usageGroup, p.UsagePartitions())
		for i := range db.parts {
			db.parts[i].part = i
		}
	}
	return db
}

// Reader is a *sql.DB whose queries are written with ? placeholders.
type Reader struct {
	db *sql.DB
	d  Dialect
}

func (r Reader) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.db.ExecContext(ctx, r.d.Rebind(query), args...)
}

func (r Reader) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.db.QueryContext(ctx, r.d.Rebind(query), args...)
}

func (r Reader) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.db.QueryRowContext(ctx, r.d.Rebind(query), args...)
}

// Tx is a write transaction whose queries are written with ? placeholders.
type Tx struct {
	tx *sql.Tx
	d  Dialect
}

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.d.Rebind(query), args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.d.Rebind(query), args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.d.Rebind(query), args...)
}

func (t *Tx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, t.d.Rebind(query))
}

func (t *Tx) Commit() error   { return t.tx.Commit() }
func (t *Tx) Rollback() error { return t.tx.Rollback() }

// BeginTx starts a read transaction (one snapshot for several queries).
func (r Reader) BeginTx(ctx context.Context, opts *sql.TxOptions) (*Tx, error) {
	tx, err := r.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &Tx{tx, r.d}, nil
}

// Conn is one connection of the pool, for work that spans statements on it.
type Conn struct {
	c *sql.Conn
	d Dialect
}

func (r Reader) Conn(ctx context.Context) (*Conn, error) {
	c, err := r.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &Conn{c, r.d}, nil
}

func (c *Conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.c.ExecContext(ctx, c.d.Rebind(query), args...)
}

func (c *Conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.c.QueryContext(ctx, c.d.Rebind(query), args...)
}

func (c *Conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.c.QueryRowContext(ctx, c.d.Rebind(query), args...)
}

func (c *Conn) Close() error { return c.c.Close() }

// Dialect is the engine the store runs on.
func (db *Store) Dialect() Dialect { return db.d }

// Now is the store's clock: every timestamp and period decision reads it.
func (db *Store) Now() time.Time { return db.clock() }

// SetNow replaces the clock (tests, and TOKENPAY_NOW); call it before the store is used.
func (db *Store) SetNow(now func() time.Time) { db.clock = now }

func (db *Store) now() time.Time { return db.clock().UTC() }

// inTx runs fn in a write transaction, committing on nil.
func (db *Store) inTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.writeTx(ctx, false, fn)
}

// inBulkTx is inTx for large writes, which let the small ones people wait for go first.
func (db *Store) inBulkTx(ctx context.Context, fn func(tx *Tx) error) error {
	return db.writeTx(ctx, true, fn)
}

func (db *Store) writeTx(ctx context.Context, bulk bool, fn func(tx *Tx) error) error {
	stx, release, err := db.d.BeginWrite(ctx, bulk)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer release()
	return db.runTx(stx, fn)
}

// runTx runs fn in stx, a write transaction begun already, and commits on nil.
func (db *Store) runTx(stx *sql.Tx, fn func(tx *Tx) error) error {
	tx := &Tx{stx, db.d}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// execAffected runs one write statement in its own transaction and returns how many rows
// it changed: the answer to "did this click, claim or delivery change anything".
func (db *Store) execAffected(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

func (db *Store) isUnique(err error, columns string) bool { return db.d.IsUnique(err, columns) }

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

// intValues is placeholders for a VALUES list of BIGINTs outside an INSERT (a CTE, an IN
// list): the first row's CAST types every column, as PostgreSQL reads the parameters of
// such a list as text otherwise (and then refuses to compare them with BIGINT columns).
// For SQLite the cast of one row is a no-op.
func intValues(rows, cols int) string {
	if rows == 0 {
		return ""
	}
	first := "(" + strings.TrimSuffix(strings.Repeat("CAST(? AS BIGINT),", cols), ",") + ")"
	if rows == 1 {
		return first
	}
	return first + "," + placeholders(rows-1, cols)
}

// maxRowsPerInsert keeps multi-row statements under SQLite's variable limit.
func maxRowsPerInsert(cols int) int { return 30000 / cols }

// insertChunks splits n rows of cols columns into the row counts of multi-row statements
// whose texts repeat from batch to batch, so that SQLite's statement cache keeps them
// prepared (parsing a statement of thousands of placeholders costs about as much as
// running it): as many of the largest power of two under the variable limit (at most
// 1,024) as fit, then the powers of two of what is left, largest first.
func insertChunks(n, cols int) []int {
	top := 1
	for top*2 <= min(1024, maxRowsPerInsert(cols)) {
		top *= 2
	}
	var out []int
	for ; n > 0; top /= 2 {
		for n >= top {
			out, n = append(out, top), n-top
		}
	}
	return out
}

// Arrays is a Dialect that binds a column of many rows as one array parameter
// (PostgreSQL). The statements over a batch (its inserts, its IN lists, the VALUES lists
// of its CTEs) then have one text whatever the batch's size: the driver prepares each once
// and the server parses and plans a handful of parameters instead of one per value. SQLite
// does not implement it and keeps its multi-row VALUES, which cost it nothing to parse.
type Arrays interface {
	// Array returns the SQL of one parameter holding vals as an array, a ? placeholder
	// with its cast ("CAST(? AS BIGINT[])"), and the argument to bind to it. ok is false
	// when vals have no array form here (no non-nil value, mixed or unknown Go types);
	// the caller then binds them one by one.
	Array(vals []any) (expr string, arg any, ok bool)
}

// arrayRows is how many rows one statement sends in arrays: any number keeps the text,
// this bounds a statement's memory on both sides.
const arrayRows = 10000

// rowStep is how many rows of cols columns one statement takes.
func (t *Tx) rowStep(cols int) int {
	if _, ok := t.d.(Arrays); ok {
		return arrayRows
	}
	return maxRowsPerInsert(cols)
}

// inStep is how many values one IN list takes (inList).
func (t *Tx) inStep() int { return inStep(t.d) }

func (r Reader) inStep() int { return inStep(r.d) }

func inStep(d Dialect) int {
	if _, ok := d.(Arrays); ok {
		return arrayRows
	}
	return 500
}

// arrayColumns returns rows (of cols columns) as one array per column, the SQL of each
// and their arguments; ok is false when the dialect has no arrays or a column has no
// array form.
func (t *Tx) arrayColumns(rows [][]any, cols int) (exprs []string, args []any, ok bool) {
	a, ok := t.d.(Arrays)
	if !ok || len(rows) == 0 {
		return nil, nil, false
	}
	exprs, args = make([]string, cols), make([]any, cols)
	col := make([]any, len(rows))
	for c := range cols {
		for i, r := range rows {
			col[i] = r[c]
		}
		e, arg, ok := a.Array(col)
		if !ok {
			return nil, nil, false
		}
		exprs[c], args[c] = e, arg
		col = make([]any, len(rows)) // the dialect may keep the slice it was given
	}
	return exprs, args, true
}

// rowsSource returns rows (of cols columns, at most rowStep) as a parenthesised row
// source that stands where "(VALUES ...)" would: in FROM, as a CTE's body, after IN. With
// arrays it is "(SELECT * FROM unnest(...))"; otherwise a VALUES list, whose first row is
// cast to BIGINT when ints (see intValues).
func (t *Tx) rowsSource(rows [][]any, cols int, ints bool) (string, []any) {
	if exprs, args, ok := t.arrayColumns(rows, cols); ok {
		return "(SELECT * FROM unnest(" + strings.Join(exprs, ", ") + "))", args
	}
	args := make([]any, 0, len(rows)*cols)
	for _, r := range rows {
		args = append(args, r...)
	}
	if ints {
		return "(VALUES " + intValues(len(rows), cols) + ")", args
	}
	return "(VALUES " + placeholders(len(rows), cols) + ")", args
}

// keyRows is rowsSource for BIGINT rows that a statement only looks up or joins on, where
// a repeated row changes nothing (an IN, a lookup, an UPDATE ... FROM): as a VALUES list
// its last row is repeated up to a size class (valuesClass).
func (t *Tx) keyRows(rows [][]any, cols int) (string, []any) {
	if _, ok := t.d.(Arrays); !ok {
		if n := valuesClass(len(rows), cols); n > len(rows) {
			padded := make([][]any, n)
			copy(padded, rows)
			for i := len(rows); i < n; i++ {
				padded[i] = rows[len(rows)-1]
			}
			rows = padded
		}
	}
	return t.rowsSource(rows, cols, true)
}

// valuesClass is how many rows a VALUES list of n rows of cols columns is given: the next
// power of two from 16, within the variable limit. A batch's lists then take a dozen
// texts per statement, which SQLite's statement cache keeps prepared, instead of a new
// text, prepared again, for nearly every batch.
func valuesClass(n, cols int) int {
	if n == 0 {
		return 0
	}
	c := 16
	for c < n {
		c *= 2
	}
	return max(n, min(c, maxRowsPerInsert(cols)))
}

// inList returns the condition that follows a column to test it against vals (at most
// rowStep of them): "= ANY(CAST(? AS TEXT[]))" with arrays, else "IN (?,?,...)".
func (t *Tx) inList(vals []any) (string, []any) { return inList(t.d, vals) }

func (r Reader) inList(vals []any) (string, []any) { return inList(r.d, vals) }

func inList(d Dialect, vals []any) (string, []any) {
	if a, ok := d.(Arrays); ok && len(vals) > 0 {
		if e, arg, ok := a.Array(vals); ok {
			return "= ANY(" + e + ")", []any{arg}
		}
	}
	return "IN (" + strings.TrimSuffix(strings.Repeat("?,", len(vals)), ",") + ")", vals
}

// insertRows runs "INSERT ... VALUES" for rows in as few statements as the variable limit
// allows; multi-row inserts cut the per-row cgo cost that dominates ingestion.
func insertRows(ctx context.Context, tx *Tx, prefix string, cols int, rows [][]any) error {
	return insertRowsIgnore(ctx, tx, prefix, cols, rows, "")
}

// insertRowsIgnore is insertRows with a conflict clause appended to each statement. With
// arrays (Arrays) the rows go as "INSERT ... SELECT * FROM unnest(...)", one text for any
// number of rows.
func insertRowsIgnore(ctx context.Context, tx *Tx, prefix string, cols int, rows [][]any, suffix string) error {
	step := tx.rowStep(cols)
	for start := 0; start < len(rows); start += step {
		end := min(start+step, len(rows))
		if exprs, args, ok := tx.arrayColumns(rows[start:end], cols); ok {
			if err := execBound(ctx, tx, prefix+" SELECT * FROM unnest("+strings.Join(exprs, ", ")+") "+suffix, args...); err != nil {
				return err
			}
			continue
		}
		part := start
		for _, size := range insertChunks(end-start, cols) {
			stop := part + size
			args := make([]any, 0, size*cols)
			for _, r := range rows[part:stop] {
				args = append(args, r...)
			}
			if err := execBound(ctx, tx, prefix+" VALUES "+placeholders(size, cols)+" "+suffix, args...); err != nil {
				return err
			}
			part = stop
		}
	}
	return nil
}

// execBound runs a write statement that binds many arguments, such as a 500-row insert.
// mattn/go-sqlite3 binds an Exec's arguments with one cgo call each but a Query's in a
// single call, and it takes a query's first step inside QueryContext, so the statement
// has run, and any error (a UNIQUE or CHECK violation) is returned, before this returns.
// For the ingestion statements that is about 5% of a batch (BENCHMARKS.md).
func execBound(ctx context.Context, tx *Tx, query string, args ...any) error {
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
