package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyFile copies src to dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestServeRefusesADamagedDatabase corrupts one page (the root of the people table) of a
// copy of a ledger: serve on the copy exits 1 with a sentence that says to restore from a
// backup, and serves nothing; serve on the original starts.
func TestServeRefusesADamagedDatabase(t *testing.T) {
	bin := buildTokenpay(t)
	env, _ := faultLedger(t, 2000)
	damaged := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, env["TOKENPAY_DB"], damaged) // the CLI closed it: the WAL is checkpointed in
	var root, pageSize int64
	db := rawDB(t, damaged)
	if err := db.QueryRow(`SELECT rootpage FROM sqlite_master WHERE name = 'people'`).Scan(&root); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	db.Close()
	f, err := os.OpenFile(damaged, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(pageSize)), (root-1)*pageSize); err != nil {
		t.Fatal(err)
	}
	f.Close()

	p := startProc(t, bin, map[string]string{"TOKENPAY_DB": damaged, "TOKENPAY_NOW": e2eNow}, "serve", "--addr", "127.0.0.1:0")
	if code := p.exitCode(t, 60*time.Second); code != 1 {
		t.Fatalf("serve on a damaged database: exit %d, want 1\n%s", code, p.stderr.String())
	}
	out := p.stderr.String()
	for _, want := range []string{"tokenpay: the database " + damaged + " is damaged", "restore it from a backup", "tokenpay restore BACKUP-FILE"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's refusal lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `"message":"serving"`) {
		t.Errorf("serve listened on a damaged database:\n%s", out)
	}
	// The same ledger undamaged serves.
	serveProc(t, bin, env)
}

// TestReadyzReportsARemovedWAL removes the WAL of a running serve: /readyz turns 503 and
// says what happened; after SIGTERM every acknowledged event is in the database.
func TestReadyzReportsARemovedWAL(t *testing.T) {
	bin := buildTokenpay(t)
	env, key := faultLedger(t, 5)
	p, base := serveProc(t, bin, env)
	if code := postBatch(base, key, usageBatch("wal", 20, 5)); code != http.StatusOK {
		t.Fatalf("usage: %d", code)
	}
	wal := env["TOKENPAY_DB"] + "-wal"
	if _, err := os.Stat(wal); err != nil {
		t.Fatalf("no WAL while serving: %v", err)
	}
	if err := os.Remove(wal); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "write-ahead log") || !strings.Contains(string(body), "was deleted") {
		t.Errorf("readyz after the WAL was removed: %d %q", resp.StatusCode, body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 30*time.Second); code != 0 {
		t.Fatalf("serve after SIGTERM: exit %d", code)
	}
	var n int
	if err := rawDB(t, env["TOKENPAY_DB"]).QueryRow(`SELECT count(*) FROM usage_events WHERE event_id LIKE 'wal-%'`).Scan(&n); err != nil || n != 20 {
		t.Errorf("%d of 20 acknowledged events in the database after the restart (%v)", n, err)
	}
	verifyLedger(t, env)
}

// TestZeroLengthDatabaseRefusedUnlessInit: an empty database file is refused by serve and
// every other command with a sentence; --init starts a new ledger in it.
func TestZeroLengthDatabaseRefusedUnlessInit(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db")}
	if err := os.WriteFile(env["TOKENPAY_DB"], nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"serve", "--addr", "127.0.0.1:0"}, {"people", "import", "-"}, {"ledger", "verify"}} {
		code, _, errOut := runCLI(t, consolePeople, env, args...)
		if code != 1 || !strings.Contains(errOut, "is an empty file (0 bytes), not a ledger") || !strings.Contains(errOut, "--init") {
			t.Errorf("tokenpay %s on an empty file: exit %d, %q", strings.Join(args, " "), code, errOut)
		}
	}
	if fi, err := os.Stat(env["TOKENPAY_DB"]); err != nil || fi.Size() != 0 {
		t.Fatalf("a refused command changed the file: %v %v", fi, err)
	}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-", "--init"); code != 0 {
		t.Fatalf("import with --init: %s", errOut)
	}
	verifyLedger(t, env)
}
