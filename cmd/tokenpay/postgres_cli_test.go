package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the PostgreSQL tests start, and removes
// its directory, when the tests end.
func TestMain(m *testing.M) { pgtest.Main(m) }

// TestPostgresFileCommandsSayWhatToDo: backup, restore and forget --compact work on a
// SQLite file; with TOKENPAY_DB holding a postgres:// URL each says in one sentence what
// to do on PostgreSQL instead and exits 1, without connecting (the address here answers
// nothing), and the demo refuses the URL. Logs name the database without its password.
func TestPostgresFileCommandsSayWhatToDo(t *testing.T) {
	for _, db := range []string{"postgres://tp:s3cret@127.0.0.1:1/tp", "postgresql://tp@127.0.0.1:1/tp?sslmode=disable", "POSTGRES://127.0.0.1:1/tp"} {
		env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": db}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"backup", filepath.Join(t.TempDir(), "b.db")}, "use pg_dump (and pg_restore) on PostgreSQL: "},
			{[]string{"restore", filepath.Join(t.TempDir(), "b.db")}, "use pg_restore on PostgreSQL: "},
			{[]string{"people", "forget", "pat@x.io", "--yes", "--compact"}, "on PostgreSQL autovacuum reclaims"},
			{[]string{"demo", "--db", db}, "the demo makes its own SQLite file"},
		} {
			code, out, errOut := runCLI(t, "", env, c.args...)
			if code != 1 || !strings.Contains(errOut, c.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 || strings.Contains(errOut, "s3cret") {
				t.Errorf("%s on %s: exit %d, want 1 and one sentence with %q\n%s%s", strings.Join(c.args, " "), db, code, c.want, out, errOut)
			}
		}
	}
	for dsn, want := range map[string]string{
		"postgres://tp:s3cret@db:5432/tp":                       "postgres://tp:xxxxx@db:5432/tp",
		"postgresql://tp@db/tp?password=s3cret&sslmode=require": "postgresql://tp@db/tp?password=xxxxx&sslmode=require",
		"/var/lib/tokenpay/tokenpay.db":                         "/var/lib/tokenpay/tokenpay.db",
	} {
		a := &app{dbPath: dsn}
		if got := a.dbName(); got != want {
			t.Errorf("dbName of %s: %q, want %q", dsn, got, want)
		}
	}
	// A file path is still a SQLite file, whatever it is called.
	for _, path := range []string{"tokenpay.db", "/var/lib/postgres/tokenpay.db", "postgres.db", "./postgres://x"} {
		if isPostgresDSN(path) {
			t.Errorf("%q taken for a PostgreSQL URL", path)
		}
	}
}

// TestPostgresCommands runs the everyday commands with TOKENPAY_DB holding a postgres://
// URL: they work as on SQLite, and forget speaks of autovacuum, not of compacting a file.
func TestPostgresCommands(t *testing.T) {
	dsn := pgtest.Start(t)
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": dsn}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, stdin, env, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	ok(slackPeople, "people", "import", "-")
	ok("", "grant", "eve@x.io", "25k", "--reason", "pilot")
	if got := balanceOf(t, env, "eve@x.io"); got != 225_000 {
		t.Errorf("eve's balance after a 25k grant: %d, want 225,000", got)
	}
	ok("id,email,model,input_tokens,output_tokens,occurred_at\nu1,eve@x.io,m,1000,500,2026-11-20T09:00:00Z\n",
		"usage", "import", "-", "--format", "csv")
	if out := ok("", "ledger", "export"); !strings.Contains(out, "u1") {
		t.Errorf("ledger export lacks the imported event:\n%s", out)
	}
	ok("", "apikey", "create", "gateway")
	if out := ok("", "audit"); !strings.Contains(out, "grant") || !strings.Contains(out, "apikey") {
		t.Errorf("audit log:\n%s", out)
	}
	for args, want := range map[string]string{
		"people list":            "eve@x.io",
		"jobs run weekly-digest": "Your week with AI tokens",
		"jobs list":              "weekly-digest",
		"segments":               "Segments on",
		"connectors":             "litellm",
		"apikey list":            "gateway",
		"ledger verify":          "ledger verified",
		"login-link mia@x.io":    "/auth/link",
	} {
		if out := ok("", strings.Fields(args)...); !strings.Contains(out, want) {
			t.Errorf("%s lacks %q:\n%s", args, want, out)
		}
	}

	out := ok("", "people", "forget", "pat@x.io", "--yes")
	if !strings.Contains(out, "autovacuum") || strings.Contains(out, "--compact") || strings.Contains(out, "quiet checkpoint") {
		t.Errorf("forget on PostgreSQL should speak of autovacuum, not of compacting a file:\n%s", out)
	}
}
