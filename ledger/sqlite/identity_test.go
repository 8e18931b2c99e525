package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// TestEmailKeyMatchesEverySpelling: the example. The directory holds
// "Élise@acme.test"; a gateway's "ÉLISE@acme.test", a decomposed é, and a later import in
// lower case all reach the same person.
func TestEmailKeyMatchesEverySpelling(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	db.SetNow(func() time.Time { return testNow })
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "Élise@acme.test", Name: "Élise"},
		{Line: 3, Email: "Straße@acme.test", Name: "S", ManagerEmail: "ÉLISE@ACME.TEST"}}); err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{"ÉLISE@acme.test", "élise@acme.test", "E\u0301LISE@acme.test", " Élise@acme.test "} {
		p, err := db.PersonByEmail(ctx, spelling)
		if err != nil || p.Name != "Élise" || p.Email != "Élise@acme.test" {
			t.Errorf("PersonByEmail(%q) = %+v, %v", spelling, p, err)
		}
	}
	s, err := db.PersonByEmail(ctx, "STRASSE@acme.test")
	if err != nil || s.ManagerEmail != "Élise@acme.test" {
		t.Errorf("manager named in another spelling: %+v %v", s, err)
	}
	res, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "élise@acme.test", Name: "Élise B"}})
	if err != nil || res != (ledger.ImportResult{Updated: 1}) {
		t.Fatalf("re-import in another spelling: %+v %v", res, err)
	}
	posted, err := db.PostUsage(ctx, []ledger.UsagePosting{
		{Event: ledger.UsageEvent{EventID: "u1", Email: "ÉLISE@acme.test", Model: "m", OccurredAt: testNow}, Credits: 10},
		{Event: ledger.UsageEvent{EventID: "u2", Email: "E\u0301lise@ACME.test", Model: "m", OccurredAt: testNow}, Credits: 5},
	})
	if err != nil || posted[0].Status != ledger.UsageAccepted || posted[1].Status != ledger.UsageAccepted {
		t.Fatalf("usage in other spellings: %+v %v", posted, err)
	}
	// The same event retried in another spelling is the same event.
	again, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: "élise@acme.test", Model: "m", OccurredAt: testNow}, Credits: 10}})
	if err != nil || again[0].Status != ledger.UsageDuplicate {
		t.Errorf("retry in another spelling: %+v %v", again, err)
	}
}

// TestEmailKeyMigrationBackfills: a database from before migration 130 gets its keys, and
// two rows that NOCASE kept apart but the key joins keep working: the oldest holds the key.
func TestEmailKeyMigrationBackfills(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.write.Exec(`DROP INDEX people_email_key; ALTER TABLE people DROP COLUMN email_key;
		DELETE FROM schema_migrations WHERE version = 130;
		INSERT INTO people(email, name, joined_at, updated_at) VALUES ('Élise@acme.test', 'first', 0, 0), ('élise@acme.test', 'second', 0, 0),
			('Bo@Example.com', 'bo', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = Open(ctx, path); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	defer db.Close()
	for email, want := range map[string]string{"ÉLISE@ACME.TEST": "first", "bo@example.com": "bo"} {
		if p, err := db.PersonByEmail(ctx, email); err != nil || p.Name != want {
			t.Errorf("%s: %+v %v, want %s", email, p, err, want)
		}
	}
	var keyless int
	if err := db.read.QueryRow(`SELECT count(*) FROM people WHERE email_key IS NULL`).Scan(&keyless); err != nil || keyless != 1 {
		t.Errorf("%d people without a key (%v), want the one duplicate", keyless, err)
	}
}
