package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	switch os.Getenv("PGTEST_CHILD") {
	case "1":
		child()
		return
	case "missing":
		debianBins = "/nonexistent/*/bin"
	}
	Main(m)
}

// child starts a cluster, prints its postmaster's pid and waits to be killed.
func child() {
	if err := fast.ensure(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	name, err := fast.create(context.Background())
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("pid %d dir %s dsn %s\n", fast.cmd.Process.Pid, fast.dir, fast.dsn(name))
	time.Sleep(time.Minute)
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// Each Start is a database of its own, empty, on a server that is not run by root.
func TestStartGivesIsolatedEmptyDatabases(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Starts gave the same database %s", a)
	}
	ctx := context.Background()
	ca, cb := connect(t, a), connect(t, b)
	if _, err := ca.Exec(ctx, `CREATE TABLE only_in_a (x BIGINT)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the second database has %d tables, want none", n)
	}
	var fsync string
	if err := ca.QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "off" {
		t.Fatalf("fsync = %q (%v), want off on the test cluster", fsync, err)
	}
	fi, err := os.Stat(filepath.Join(fast.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; uid == 0 {
		t.Fatalf("the data directory belongs to root; postgres must run unprivileged")
	}
}

// The durable cluster keeps PostgreSQL's defaults.
func TestStartDurableKeepsDefaults(t *testing.T) {
	c := connect(t, StartDurable(t))
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := c.QueryRow(context.Background(), "SHOW "+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != "on" {
			t.Errorf("%s = %s on the durable cluster, want on", name, v)
		}
	}
}

// A database is dropped when its test ends.
func TestDatabaseDroppedAfterTest(t *testing.T) {
	var dsn string
	t.Run("inner", func(t *testing.T) { dsn = Start(t) })
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	var n int
	if err := connect(t, fast.dsn("postgres")).QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test", name)
	}
}

// A test binary killed with SIGKILL takes its postgres with it (the parent-death signal),
// and the next Start removes the directory it left.
func TestKilledTestBinaryLeavesNoServer(t *testing.T) {
	if _, _, err := binaries(); err != nil {
		Start(t) // skips or fails with the sentence
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("child: %v", err)
	}
	var pid int
	var dir, dsn string
	if _, err := fmt.Sscanf(line, "pid %d dir %s dsn %s", &pid, &dir, &dsn); err != nil {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q: %v", line, err)
	}
	connect(t, dsn).Close(context.Background())
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postgres %d still runs 30 s after its test binary was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The postmaster is gone; its backends follow it (they exit when it does).
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("the killed binary's directory %s: %v (want it left for the sweep)", dir, err)
	}
	removeStale()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s of a dead test binary was not removed: %v", dir, err)
	}
}

// Versioned Debian directories are tried highest first.
func TestVersionOrder(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want float64
	}{{"/usr/lib/postgresql/15/bin", 15}, {"/usr/lib/postgresql/9.6/bin", 9.6}, {"/usr/lib/postgresql/x/bin", 0}} {
		if got := version(tc.dir); got != tc.want {
			t.Errorf("version(%s) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}

// Without PostgreSQL a test says so in a sentence and how to install it: skipped on a
// developer's machine, failed under CI=true.
func TestWithoutPostgres(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "missing" {
		Start(t)
		return
	}
	for _, ci := range []string{"", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestWithoutPostgres$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_CHILD=missing", "PATH=/nonexistent", "CI="+ci)
		out, err := cmd.CombinedOutput()
		if !strings.Contains(string(out), "these tests need PostgreSQL") || !strings.Contains(string(out), "apt-get install postgresql") {
			t.Errorf("CI=%q: output does not say what is missing and how to install it:\n%s", ci, out)
		}
		switch {
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("without CI: want a skip, got %v:\n%s", err, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL")):
			t.Errorf("CI=true: want a failure, got %v:\n%s", err, out)
		}
	}
}

// Cluster directories go where nobody can reach them when the tests run as root.
func TestSearchable(t *testing.T) {
	open := t.TempDir()
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(open, "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(closed, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want bool
	}{{"/", true}, {open, searchable(filepath.Dir(open))}, {closed, false}, {inner, false}, {filepath.Join(open, "missing"), false}} {
		if got := searchable(tc.dir); got != tc.want {
			t.Errorf("searchable(%s) = %v, want %v", tc.dir, got, tc.want)
		}
	}
}
