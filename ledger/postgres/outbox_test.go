package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/postgres"
	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
)

// Claiming the outbox takes row locks only (sqlstore.RowLocker): a replica's delivery does
// not wait while another replica holds the write lock (a usage batch, an import, a period
// close). Before, each claim was a write transaction and waited for the lock as long as
// it was held.
func TestOutboxClaimsDoNotWaitForTheWriteLock(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	db := open(t, dsn)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "a@x.io", Name: "A"}, {Line: 3, Email: "b@x.io", Name: "B"}}); err != nil {
		t.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []ledger.OutboxMessage
	for _, p := range people {
		msgs = append(msgs, ledger.OutboxMessage{Kind: "digest", PersonID: p.ID, PeriodKey: "w", Payload: []byte("{}"), NotBefore: now})
	}
	if _, err := db.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}

	// Another replica takes the write lock and keeps it for 5 s.
	pool, err := postgres.OpenPool(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tx, release, err := postgres.NewDialect(pool).BeginWrite(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	held := time.AfterFunc(5*time.Second, func() { _ = tx.Rollback(); release() })
	defer func() {
		if held.Stop() {
			_ = tx.Rollback()
			release()
		}
	}()

	start := time.Now()
	rows, err := db.ClaimDueOutbox(ctx, now, time.Now(), "replica2", 1)
	if err != nil || len(rows) != 1 {
		t.Fatalf("claim a page: %+v %v", rows, err)
	}
	other := people[0].ID
	if rows[0].PersonID == other {
		other = people[1].ID
	}
	all, err := db.OutboxMessages(ctx, "digest", "w")
	if err != nil {
		t.Fatal(err)
	}
	var id int64
	for _, r := range all {
		if r.PersonID == other {
			id = r.ID
		}
	}
	if ok, err := db.ClaimOutbox(ctx, id, "replica2"); !ok || err != nil {
		t.Fatalf("claim one message: %v %v", ok, err)
	}
	// 5 s would mean the claims waited for the lock; 2 s leaves room for a loaded machine.
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the claims took %v while another replica held the write lock", took)
	}
}
