package postgres

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := OpenPool(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type applied struct {
	version   int
	name      string
	appliedAt int64
}

func appliedMigrations(t *testing.T, db *sql.DB) []applied {
	t.Helper()
	rows, err := db.Query(`SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []applied
	for rows.Next() {
		var a applied
		if err := rows.Scan(&a.version, &a.name, &a.appliedAt); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantAllApplied(t *testing.T, got []applied) {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d (one per migration): %+v", len(got), len(ms), got)
	}
	for i, m := range ms {
		if got[i].version != m.Version || got[i].name != m.Name {
			t.Errorf("schema_migrations row %d = %+v, want version %d %s", i, got[i], m.Version, m.Name)
		}
	}
}

func TestMigrationsApply(t *testing.T) {
	db := open(t, pgtest.Start(t))
	wantAllApplied(t, appliedMigrations(t, db))
	var id, version int64
	if err := db.QueryRow(`SELECT id, version FROM people_version`).Scan(&id, &version); err != nil {
		t.Fatalf("people_version seed row: %v", err)
	}
	if id != 1 || version != 0 {
		t.Fatalf("people_version = (%d, %d), want (1, 0)", id, version)
	}
}

// Opening an up-to-date database again applies nothing.
func TestMigrateTwiceIsNoop(t *testing.T) {
	dsn := pgtest.Start(t)
	first := appliedMigrations(t, open(t, dsn))
	time.Sleep(5 * time.Millisecond) // a second application would record a later time
	db := open(t, dsn)
	if err := migrate(context.Background(), db, time.Now); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	second := appliedMigrations(t, db)
	wantAllApplied(t, second)
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("migration %s was recorded again: %+v then %+v", first[i].name, first[i], second[i])
		}
	}
}

// Replicas starting together on an empty database all open it, and each migration is
// applied once (a second application of 001 would fail: its tables exist).
func TestConcurrentMigrators(t *testing.T) {
	dsn := pgtest.Start(t)
	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	dbs := make([]*sql.DB, replicas)
	start := make(chan struct{})
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dbs[i], errs[i] = OpenPool(context.Background(), dsn)
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
			continue
		}
		dbs[i].Close()
	}
	wantAllApplied(t, appliedMigrations(t, open(t, dsn)))
}

// Write transactions run one at a time: read-modify-write increments from many
// goroutines on their own connections lose none, and a second BeginWrite waits for the
// first to end.
func TestBeginWriteSerializes(t *testing.T) {
	db := open(t, pgtest.Start(t))
	ctx := context.Background()
	if _, err := db.Exec(`CREATE TABLE counter (n BIGINT NOT NULL); INSERT INTO counter VALUES (0)`); err != nil {
		t.Fatal(err)
	}
	d := NewDialect(db)
	const workers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				tx, release, err := d.BeginWrite(ctx, false)
				if err != nil {
					errs <- err
					return
				}
				var n int64
				err = tx.QueryRowContext(ctx, d.Rebind(`SELECT n FROM counter`)).Scan(&n)
				if err == nil {
					time.Sleep(time.Millisecond) // widen the window a lost update needs
					_, err = tx.ExecContext(ctx, d.Rebind(`UPDATE counter SET n = ?`), n+1)
				}
				if err == nil {
					err = tx.Commit()
				} else {
					_ = tx.Rollback()
				}
				release()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var n int64
	if err := db.QueryRow(`SELECT n FROM counter`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != workers*each {
		t.Fatalf("counter = %d after %d serialized increments: updates were lost", n, workers*each)
	}

	first, release1, err := d.BeginWrite(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		tx, release, err := d.BeginWrite(ctx, true)
		if err == nil {
			err = tx.Rollback()
			release()
		}
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("a second write transaction began while the first was open (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := first.Rollback(); err != nil {
		t.Fatal(err)
	}
	release1()
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second write transaction did not begin after the first ended")
	}
}

// A cancelled context while waiting for the lock gives up without holding anything.
func TestBeginWriteCancelled(t *testing.T) {
	db := open(t, pgtest.Start(t))
	d := NewDialect(db)
	first, release, err := d.BeginWrite(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	defer first.Rollback() //nolint:errcheck
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if tx, _, err := d.BeginWrite(ctx, false); err == nil {
		tx.Rollback() //nolint:errcheck
		t.Fatal("BeginWrite took the lock another transaction holds")
	}
}

func TestOpenPoolBadAddress(t *testing.T) {
	_, err := OpenPool(context.Background(), "postgres://tokenpay:s3cret@127.0.0.1:notaport/db")
	if err == nil {
		t.Fatal("a DSN with a bad port opened")
	}
	if msg := err.Error(); strings.Contains(msg, "s3cret") {
		t.Fatalf("the error shows the password: %s", msg)
	}
}

// Open gives a ready store; a schema missing a migration, or newer than this build, is not.
func TestOpenReady(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("a freshly opened store is not ready: %v", err)
	}
	if db.Dialect().Name() != "postgres" {
		t.Fatalf("dialect %q", db.Dialect().Name())
	}
	if _, err := db.pool.Exec(`INSERT INTO schema_migrations(version, name, applied_at) VALUES (99999, '99999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err == nil || !strings.Contains(err.Error(), "upgrade this replica") {
		t.Fatalf("a schema newer than the build: Ready = %v", err)
	}
	if _, err := db.pool.Exec(`DELETE FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err == nil {
		t.Fatal("a schema without its migrations recorded is ready")
	}
}

// A replica that stalls inside a write transaction loses the write lock once PostgreSQL's
// idle-in-transaction timeout ends its session, so the other replicas' writes go on (the
// default is StalledWriterTimeout; the test sets 300 ms through the DSN).
func TestAStalledWriterLosesTheLock(t *testing.T) {
	u, err := url.Parse(pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("idle_in_transaction_session_timeout", "300")
	u.RawQuery = q.Encode()
	d := NewDialect(open(t, u.String()))
	stalled, release, err := d.BeginWrite(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	next, releaseNext, err := d.BeginWrite(ctx, false)
	if err != nil {
		t.Fatalf("the write lock stayed with a stalled transaction: %v", err)
	}
	defer releaseNext()
	if err := next.Commit(); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("the second writer began after %s, before the stalled one timed out", waited)
	}
	if err := stalled.Commit(); err == nil {
		t.Error("the stalled transaction committed after its session was ended")
	}
}

func TestOpenPoolSetsStalledWriterTimeout(t *testing.T) {
	var v string
	if err := open(t, pgtest.Start(t)).QueryRow(`SHOW idle_in_transaction_session_timeout`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != "30s" {
		t.Errorf("idle_in_transaction_session_timeout = %s, want 30s (StalledWriterTimeout)", v)
	}
}
