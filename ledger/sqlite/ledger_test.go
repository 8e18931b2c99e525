package sqlite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// smallLedger holds two people; ana has a 1,000-credit grant and spent 1,200 of it (200
// overage), bo has nothing.
func smallLedger(t *testing.T) (*DB, []ledger.Person) {
	t.Helper()
	ctx := context.Background()
	db := newTestDB(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g1", PersonID: people[0].ID, Kind: ledger.GrantBaseline, Amount: 1000,
		ExpiresAt: testNow.Add(72 * time.Hour), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: people[0].Email, Model: "m",
		OccurredAt: testNow}, Credits: 1200}})
	if err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("usage: %+v, %v", res, err)
	}
	return db, people
}

// TestVerifyFindsCorruption damages the ledger behind its back, one invariant at a time,
// and expects verify to name exactly that invariant.
func TestVerifyFindsCorruption(t *testing.T) {
	tests := []struct {
		name   string
		sql    string
		report []string // each must start one violation line
	}{
		{"clean ledger", "", nil},
		{"posting amount changed", `UPDATE postings SET amount = amount + 5 WHERE id = (SELECT min(id) FROM postings)`,
			[]string{"transaction postings do not sum to zero: transaction 1: 5", "account balance differs from its postings: org:pool"}},
		{"stored balance changed", `UPDATE accounts SET balance = balance + 7 WHERE name = 'org:pool'`,
			[]string{"account balance differs from its postings: org:pool: stored -993, postings -1000"}},
		// A usage row carries its own postings: a broken one is an unbalanced transaction.
		{"usage row unbalanced", `PRAGMA ignore_check_constraints = ON; UPDATE usage_events SET overage = credits + 1`,
			[]string{"transaction postings do not sum to zero: transaction 2: usage of 1200 with 1201 overage"}},
		{"usage credits changed", `UPDATE usage_events SET credits = credits + 7`,
			[]string{"available balance differs from open grants: person 1: available -7, grants 0"}},
		// What remains of a grant lives in its own table, so no constraint ties it to the
		// grant's amount: verify must catch it.
		{"grant over-spent", `UPDATE grant_remaining SET remaining = (SELECT amount + 1 FROM grants WHERE id = grant_id)`,
			[]string{"grant over-spent or inconsistent: grant 1: remaining 1001 of 1000", "available balance differs from open grants: person 1"}},
		{"closed grant with credits", `UPDATE grants SET closed_tx_id = 1; UPDATE grant_remaining SET remaining = 3`,
			[]string{"grant over-spent or inconsistent: grant 1: remaining 3 of 1000", "available balance differs from open grants: person 1: available 0, grants 3"}},
		{"grant remaining lost", `DELETE FROM grant_remaining`,
			[]string{"grant over-spent or inconsistent: grant 1: remaining unrecorded of 1000"}},
		{"remaining for no grant", `PRAGMA foreign_keys = OFF; INSERT INTO grant_remaining(grant_id, remaining) VALUES (99, 5)`,
			[]string{"grant over-spent or inconsistent: remaining 5 recorded for grant 99, which does not exist"}},
		{"usage row lost", `DELETE FROM usage_events`,
			[]string{"usage transaction and row do not match: transaction 2", "available balance differs from open grants: person 1: available 1000, grants 0"}},
		{"reclaimed credits negative", `INSERT INTO accounts(name, balance) VALUES ('expired', -3), ('org:pool', 3) ON CONFLICT(name) DO UPDATE SET balance = balance + excluded.balance`,
			[]string{"account balance differs from its postings: expired", "reclaimed credits are negative: expired: -3"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db, _ := smallLedger(t)
			if tc.sql != "" {
				if _, err := db.write.Exec(tc.sql); err != nil {
					t.Fatal(err)
				}
			}
			got, err := db.Verify(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.report {
				found := false
				for _, v := range got {
					found = found || strings.HasPrefix(v, want)
				}
				if !found {
					t.Errorf("no violation starting %q in %q", want, got)
				}
			}
			if len(tc.report) == 0 && len(got) > 0 {
				t.Errorf("clean ledger reported %q", got)
			}
		})
	}
}

func count(t *testing.T, db *DB, table string) int {
	t.Helper()
	var n int
	if err := db.read.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestImportPeopleProblems(t *testing.T) {
	base := []ledger.PersonRecord{
		{Line: 2, Email: "boss@example.com", Name: "Boss"},
		{Line: 3, Email: "ana@example.com", Name: "Ana", ManagerEmail: "boss@example.com", SlackUserID: "U1"},
	}
	tests := []struct {
		name     string
		recs     []ledger.PersonRecord
		problems []string
	}{
		{"duplicate email, any case", []ledger.PersonRecord{
			{Line: 2, Email: "cy@example.com", Name: "Cy"}, {Line: 5, Email: "CY@example.com", Name: "Cy again"}},
			[]string{"line 5: CY@example.com already appears on line 2"}},
		{"own manager", []ledger.PersonRecord{{Line: 4, Email: "cy@example.com", Name: "Cy", ManagerEmail: "Cy@example.com"}},
			[]string{"line 4: cy@example.com cannot be their own manager"}},
		{"unknown manager", []ledger.PersonRecord{{Line: 7, Email: "cy@example.com", Name: "Cy", ManagerEmail: "ghost@example.com"}},
			[]string{"line 7: manager ghost@example.com is not in the directory"}},
		{"cycle through the stored directory", []ledger.PersonRecord{
			{Line: 2, Email: "boss@example.com", Name: "Boss", ManagerEmail: "ana@example.com"}},
			[]string{"line 2: managers form a cycle: boss@example.com -> ana@example.com -> boss@example.com"}},
		{"cycle inside the file", []ledger.PersonRecord{
			{Line: 2, Email: "x@example.com", Name: "X", ManagerEmail: "y@example.com"},
			{Line: 3, Email: "y@example.com", Name: "Y", ManagerEmail: "z@example.com"},
			{Line: 4, Email: "z@example.com", Name: "Z", ManagerEmail: "x@example.com"}},
			[]string{"line 2: managers form a cycle: x@example.com -> y@example.com -> z@example.com -> x@example.com"}},
		{"cycle named from its earliest line", []ledger.PersonRecord{
			{Line: 6, Email: "a@example.com", Name: "A", ManagerEmail: "b@example.com"},
			{Line: 3, Email: "b@example.com", Name: "B", ManagerEmail: "a@example.com"}},
			[]string{"line 3: managers form a cycle: b@example.com -> a@example.com -> b@example.com"}},
		{"Slack id taken", []ledger.PersonRecord{{Line: 9, Email: "cy@example.com", Name: "Cy", SlackUserID: "U1"}},
			[]string{"line 9: Slack user id U1 already belongs to someone else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := newTestDB(t)
			if _, err := db.ImportPeople(ctx, base); err != nil {
				t.Fatal(err)
			}
			before, err := db.People(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.ImportPeople(ctx, tc.recs)
			if ledger.ErrorCode(err) != ledger.Invalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
			for _, p := range tc.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			after, err := db.People(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) || after[0] != before[0] || after[1] != before[1] {
				t.Errorf("a refused import changed the directory:\n%+v\nwas\n%+v", after, before)
			}
		})
	}
}

func TestImportPeopleUpserts(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	res, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "ana@example.com", Name: "Ana", ManagerEmail: "boss@example.com"}, // manager defined below
		{Line: 3, Email: "boss@example.com", Name: "Boss", SlackUserID: "U1"},
	})
	if err != nil || res != (ledger.ImportResult{Created: 2}) {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	// Email matches ignoring case; a row without chat ids keeps the stored ones.
	res, err = db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "BOSS@example.com", Name: "The Boss", Team: "Exec"}})
	if err != nil || res != (ledger.ImportResult{Updated: 1}) {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	boss, err := db.PersonByEmail(ctx, "boss@example.com")
	if err != nil || boss.Name != "The Boss" || boss.Team != "Exec" || boss.SlackUserID != "U1" {
		t.Fatalf("boss after update: %+v, %v", boss, err)
	}
	ana, err := db.PersonByEmail(ctx, "ana@example.com")
	if err != nil || ana.ManagerID != boss.ID || ana.ManagerEmail != "boss@example.com" {
		t.Fatalf("ana: %+v, %v; want boss as manager", ana, err)
	}
	if n := count(t, db, "people"); n != 2 {
		t.Errorf("%d people, want 2", n)
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	key, k, err := db.CreateAPIKey(ctx, " gateway ", "cli:test")
	if err != nil || k.Name != "gateway" || !strings.HasPrefix(key, "tp_") || len(key) != 3+43 {
		t.Fatalf("create: %q %+v %v", key, k, err)
	}
	var name, hash string
	if err := db.read.QueryRow(`SELECT name, key_hash FROM api_keys`).Scan(&name, &hash); err != nil {
		t.Fatal(err)
	}
	if hash != sha256Hex(key) || strings.Contains(hash, key[3:]) {
		t.Errorf("stored %q; want only the SHA-256 of the key", hash)
	}
	if got, err := db.CheckAPIKey(ctx, key); err != nil || got.ID != k.ID || got.Revoked {
		t.Errorf("check: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "tp_x", key + "x", strings.ToUpper(key)} {
		if _, err := db.CheckAPIKey(ctx, bad); ledger.ErrorCode(err) != ledger.Forbidden {
			t.Errorf("check(%q) = %v, want Forbidden", bad, err)
		}
	}
	if n, err := db.RevokeAPIKey(ctx, "gateway", "cli:test"); err != nil || n != 1 {
		t.Fatalf("revoke: %d, %v", n, err)
	}
	if _, err := db.CheckAPIKey(ctx, key); ledger.ErrorCode(err) != ledger.Forbidden {
		t.Errorf("revoked key: %v, want Forbidden", err)
	}
	for _, bad := range []string{"", "   ", strings.Repeat("n", 101)} {
		if _, _, err := db.CreateAPIKey(ctx, bad, "cli:test"); ledger.ErrorCode(err) != ledger.Invalid {
			t.Errorf("create(%q) = %v, want Invalid", bad, err)
		}
	}
}

func TestGrantIdempotency(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	db.SetNow(func() time.Time { return testNow })
	p := seedPeople(t, db, 1)[0]
	in := ledger.GrantInput{Key: "k", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 500, ExpiresAt: testNow.Add(time.Hour), Reason: "r"}
	first, err := db.Grant(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return testNow.Add(time.Minute) }) // a retry a minute later
	again, err := db.Grant(ctx, in)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retry: %+v, %v; want grant %d again", again, err, first.ID)
	}
	in.Amount = 600
	if _, err := db.Grant(ctx, in); ledger.ErrorCode(err) != ledger.Conflict {
		t.Errorf("same key, other amount: %v, want Conflict", err)
	}
	if n := count(t, db, "grants"); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	bad := []ledger.GrantInput{
		{Key: "a", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 0, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "b", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: ledger.MaxAmount + 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "c", PersonID: p.ID, Kind: "bonus", Amount: 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour)},
		{Key: "d", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(-time.Hour)},
		{Key: "e", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour), From: "person:9:available"},
		{Key: "f", PersonID: p.ID, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour), From: ledger.AccountExpired},
	}
	for _, in := range bad {
		if _, err := db.Grant(ctx, in); ledger.ErrorCode(err) != ledger.Invalid {
			t.Errorf("grant %+v: %v, want Invalid", in, err)
		}
	}
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g", PersonID: 999, Kind: ledger.GrantUnlock, Amount: 1, ExpiresAt: testNow.Add(time.Hour)}); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("grant to nobody: %v, want NotFound", err)
	}
	if n := count(t, db, "transactions"); n != 1 {
		t.Errorf("%d transactions after refused grants, want 1", n)
	}
}

// TestResetNewcomerCarriesNothing: a minimum rollover is for people who had a period; it
// must not mint "carried over" credits for someone who had no grant ending at the boundary.
func TestResetNewcomerCarriesNothing(t *testing.T) {
	ctx := context.Background()
	db := newTestDB(t)
	db.SetNow(func() time.Time { return testNow })
	people := seedPeople(t, db, 2)
	nov := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	dec := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	minRollover := &ledger.RolloverLimits{Max: 500, Min: 100}
	// Only the first person had November credits.
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "nov", PersonID: people[0].ID, Kind: ledger.GrantBaseline, Amount: 1000,
		EffectiveAt: nov, ExpiresAt: dec}); err != nil {
		t.Fatal(err)
	}
	db.SetNow(func() time.Time { return dec.Add(time.Minute) })
	var ins []ledger.ResetInput
	for _, p := range people {
		ins = append(ins, ledger.ResetInput{PersonID: p.ID, Boundary: dec, OldKey: "2026-11", NewKey: "2026-12",
			NextEnd: dec.AddDate(0, 1, 0), Baseline: 10, Rollover: minRollover})
	}
	res, err := db.ResetPeriods(ctx, ins)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.ResetResult{{PersonID: people[0].ID, Expired: 1000, Carried: 500, Baseline: 10}, {PersonID: people[1].ID, Baseline: 10}}
	if len(res) != 2 || res[0] != want[0] || res[1] != want[1] {
		t.Fatalf("reset: %+v, want %+v", res, want)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", err, v)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
	target := filepath.Join(t.TempDir(), "copy.db")
	if err := db.Backup(ctx, target); err != nil {
		t.Fatal(err)
	}
	if err := db.Backup(ctx, target); err == nil {
		t.Error("a second backup over the same file succeeded")
	}
	cp, err := Open(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	cp.SetNow(db.Now)
	if v, err := cp.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("copy fails verify: %v %v", err, v)
	}
	want, err := db.Balance(ctx, people[0].ID, time.Time{}, testNow.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cp.Balance(ctx, people[0].ID, time.Time{}, testNow.Add(time.Hour))
	if err != nil || got != want {
		t.Errorf("copy balance %+v, %v; want %+v", got, err, want)
	}
}

// TestIdentityCacheFollowsOtherProcesses: usage resolves people through a cache, which must
// notice when another process changes the directory (here: erases a person), so usage for
// the old email is quarantined instead of landing on the pseudonym.
func TestIdentityCacheFollowsOtherProcesses(t *testing.T) {
	ctx := context.Background()
	db, people := smallLedger(t)
	post := func(id string) ledger.UsageResult {
		res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: id, Email: people[1].Email, Model: "m",
			OccurredAt: testNow}, Credits: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	if r := post("warm"); r.Status != ledger.UsageAccepted {
		t.Fatalf("first event: %+v", r)
	}
	other, err := Open(ctx, db.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetNow(db.Now)
	if _, err := other.Forget(ctx, people[1].Email, "test"); err != nil {
		t.Fatal(err)
	}
	if r := post("after-forget"); r.Status != ledger.UsageQuarantined {
		t.Fatalf("usage for an erased email after another process erased it: %+v", r)
	}
}

// sha256Hex is how the store keeps a secret: its SHA-256, never the secret.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
