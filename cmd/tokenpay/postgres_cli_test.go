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
