package ledgertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func testAPIKeys(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	key, k, err := db.CreateAPIKey(ctx, " gateway ", "cli:test")
	if err != nil || k.Name != "gateway" || !strings.HasPrefix(key, "tp_") || len(key) != 3+43 {
		t.Fatalf("create: %q %+v %v", key, k, err)
	}
	var name, hash string
	if err := rawSQL(t, db).QueryRowContext(ctx, `SELECT name, key_hash FROM api_keys`).Scan(&name, &hash); err != nil {
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

func testLoginLinks(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	people := seedPeople(t, db, 2)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })

	token, expires, err := db.CreateLoginLink(ctx, "P0@example.com", "alice")
	if err != nil || !expires.Equal(now.Add(10*time.Minute)) || len(token) != 43 {
		t.Fatalf("create: %q %v %v", token, expires, err)
	}
	if _, _, err := db.CreateLoginLink(ctx, "nobody@example.com", "alice"); ledger.ErrorCode(err) != ledger.NotFound {
		t.Fatalf("link for someone not in the directory: %v", err)
	}
	var stored string
	if err := rawSQL(t, db).QueryRowContext(ctx, `SELECT token_hash FROM login_links`).Scan(&stored); err != nil || stored != sha256Hex(token) {
		t.Fatalf("stored %q, want only the SHA-256 of the token (%v)", stored, err)
	}
	// Looking a link up (what its GET page does) neither uses it nor writes anything.
	auditBefore, err := db.AuditLog(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if p, err := db.LoginLinkPerson(ctx, token); err != nil || p.ID != people[0].ID {
			t.Fatalf("look up: %+v %v", p, err)
		}
	}
	if after, _ := db.AuditLog(ctx, 100); len(after) != len(auditBefore) {
		t.Fatalf("looking a link up wrote %d audit entries", len(after)-len(auditBefore))
	}
	p, err := db.UseLoginLink(ctx, token)
	if err != nil || p.ID != people[0].ID {
		t.Fatalf("use: %+v %v", p, err)
	}
	for _, bad := range []string{token, "", "x", strings.ToUpper(token)} {
		if _, err := db.UseLoginLink(ctx, bad); err != ledger.ErrLinkRefused {
			t.Errorf("use(%q) again = %v, want the refusal", bad, err)
		}
		if _, err := db.LoginLinkPerson(ctx, bad); err != ledger.ErrLinkRefused {
			t.Errorf("look up(%q) after use = %v, want the refusal", bad, err)
		}
	}
	// Valid up to 10 minutes, not at 10 minutes.
	late, _, err := db.CreateLoginLink(ctx, "p1@example.com", "alice")
	if err != nil {
		t.Fatal(err)
	}
	in, _, _ := db.CreateLoginLink(ctx, "p1@example.com", "alice")
	now = now.Add(10*time.Minute - time.Millisecond)
	if _, err := db.UseLoginLink(ctx, in); err != nil {
		t.Fatalf("a link 1 ms before expiry: %v", err)
	}
	now = now.Add(time.Millisecond)
	if _, err := db.LoginLinkPerson(ctx, late); err != ledger.ErrLinkRefused {
		t.Fatalf("looking up an expired link: %v", err)
	}
	if _, err := db.UseLoginLink(ctx, late); err != ledger.ErrLinkRefused {
		t.Fatalf("an expired link: %v", err)
	}
	log, err := db.AuditLog(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action+":"+e.Detail)
	}
	got := strings.Join(actions, " | ")
	for _, want := range []string{"login-link.create", "login-link.use", "login-link.refused:already used", "login-link.refused:expired"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit lacks %s: %s", want, got)
		}
	}
	if strings.Contains(got, token) {
		t.Error("the audit log holds a token")
	}
}

func testSessions(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	people := seedPeople(t, db, 1)
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	token, s, err := db.CreateSession(ctx, people[0].ID, "link", time.Hour)
	if err != nil || s.CSRF == "" || s.CSRF == token {
		t.Fatalf("create: %+v %v", s, err)
	}
	got, err := db.SessionFor(ctx, token)
	if err != nil || got.PersonID != people[0].ID || !got.CheckCSRF(s.CSRF) || got.CheckCSRF("") || got.CheckCSRF(s.CSRF+"x") {
		t.Fatalf("read: %+v %v", got, err)
	}
	now = now.Add(time.Hour)
	if _, err := db.SessionFor(ctx, token); ledger.ErrorCode(err) != ledger.NotFound {
		t.Fatalf("expired session: %v", err)
	}
	now = now.Add(-time.Minute)
	if err := db.DeleteSession(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionFor(ctx, token); ledger.ErrorCode(err) != ledger.NotFound {
		t.Fatalf("signed-out session: %v", err)
	}
	// Forgetting a person signs them out everywhere.
	token, _, _ = db.CreateSession(ctx, people[0].ID, "oidc", time.Hour)
	link, _, _ := db.CreateLoginLink(ctx, people[0].Email, "cli")
	if _, err := db.Forget(ctx, people[0].Email, "cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SessionFor(ctx, token); ledger.ErrorCode(err) != ledger.NotFound {
		t.Fatalf("a forgotten person's session: %v", err)
	}
	if _, err := db.UseLoginLink(ctx, link); err != ledger.ErrLinkRefused {
		t.Fatalf("a forgotten person's link: %v", err)
	}
}
