package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

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
