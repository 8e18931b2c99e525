package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

func TestFormatVersion(t *testing.T) {
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "tokenpay (unknown version: no build information)\ngo        " + runtime.Version() + "\n"},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-20T10:00:00Z"}, {Key: "vcs.modified", Value: "false"},
			{Key: "CGO_ENABLED", Value: "1"}}},
			true, "tokenpay v1.4.0\ncommit    0123abcd\ncommitted 2026-11-20T10:00:00Z\ngo        go1.26.8\ncgo       enabled\n"},
		{"dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"}}},
			true, "tokenpay (devel)\ncommit    0123abcd (with uncommitted changes)\ngo        go1.26.8\n"},
		{"built without VCS", &debug.BuildInfo{GoVersion: "go1.26.8"}, true, "tokenpay (devel)\ngo        go1.26.8\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatVersion(tc.bi, tc.ok); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	// The command itself reads this binary's build information.
	code, out, _ := runCLI(t, "", nil, "version")
	if code != 0 || !strings.HasPrefix(out, "tokenpay ") || !strings.Contains(out, "go        "+runtime.Version()) {
		t.Errorf("version: exit %d\n%s", code, out)
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080/readyz",
		":9000":          "http://127.0.0.1:9000/readyz",
		"0.0.0.0:80":     "http://127.0.0.1:80/readyz",
		"[::]:8080":      "http://127.0.0.1:8080/readyz",
		"10.0.0.5:8080":  "http://10.0.0.5:8080/readyz",
		"[::1]:8080":     "http://[::1]:8080/readyz",
		"tokenpay.local": "http://tokenpay.local/readyz",
	} {
		if got := readyzURL(addr); got != want {
			t.Errorf("readyzURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db")}
	base, stop := startServe(t, env)
	defer stop()
	env["TOKENPAY_ADDR"] = strings.TrimPrefix(base, "http://")
	if code, out, errOut := runCLI(t, "", env, "healthcheck"); code != 0 || !strings.Contains(out, "/readyz: ready") {
		t.Errorf("healthcheck of a running server: exit %d %s %s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "healthcheck", "--url", base+"/nothing-here"); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("healthcheck of a wrong URL: exit %d %s", code, errOut)
	}
}

func TestPeopleExportForgetAndAudit(t *testing.T) {
	c := withPeople(t)
	c.ok(t, "usage", "import", c.file(t, "u.csv", "id,email,model,input_tokens,output_tokens,occurred_at\n"+
		"e1,bo@example.com,m,700,300,2026-11-26T10:00:00Z\n"))
	r := c.run(t, "impact shipped the Zephyr pricing memo --hours 2\n", "console", "--as", "bo@example.com")
	if r.code != 0 {
		t.Fatalf("console: %s", r.stderr)
	}
	before := c.balance(t, "bo@example.com")

	out := c.ok(t, "people", "export", "bo@example.com")
	var d ledger.PersonData
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("export is not JSON: %v\n%s", err, out)
	}
	if d.Person.Email != "bo@example.com" || d.Person.Name != "Bo" || len(d.Usage) != 1 || d.Usage[0].Credits != 1000 ||
		len(d.Impacts) != 1 || !strings.Contains(d.Impacts[0].Text, "Zephyr") {
		t.Errorf("export: %+v", d)
	}
	for _, key := range []string{`"exported_at"`, `"manager_email": "boss@example.com"`, `"input_tokens": 700`, `"minutes": 120`} {
		if !strings.Contains(out, key) {
			t.Errorf("export lacks %s", key)
		}
	}

	c.fails(t, "cannot be undone; run again with --yes", "people", "forget", "bo@example.com")
	c.fails(t, "manages 2 people", "people", "forget", "boss@example.com", "--yes")
	out = c.ok(t, "people", "forget", "bo@example.com", "--yes", "--compact")
	for _, want := range []string{"Forgot bo@example.com: the person is now forgotten-3@invalid.", "Erased 1 impact text, 0 request use cases and 0 lesson reflections; withdrew 0 queued messages.",
		"Remove bo@example.com from the directory", "Compacted the database file", "ledger verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("forget output lacks %q:\n%s", want, out)
		}
	}
	c.fails(t, "bo@example.com is not in the directory", "balance", "bo@example.com")
	after := c.balance(t, "forgotten-3@invalid")
	if after.Available != before.Available || after.Spent != before.Spent || after.Overage != before.Overage {
		t.Errorf("balance changed by forget: %+v, was %+v", after, before)
	}
	raw, err := os.ReadFile(c.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"bo@example.com", "Zephyr"} {
		if strings.Contains(string(raw), s) {
			t.Errorf("%q is still in the database file", s)
		}
	}

	// The audit log shows both admin actions, the erasure under the pseudonym only.
	out = c.ok(t, "audit")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "WHEN") || !strings.Contains(lines[1], "people.forget") ||
		!strings.Contains(lines[1], "forgotten-3@invalid") || !strings.Contains(lines[2], "people.export") {
		t.Errorf("audit:\n%s", out)
	}
	if strings.Contains(out, "bo@example.com") {
		t.Errorf("the audit log still names the forgotten person:\n%s", out)
	}
	out = c.ok(t, "audit", "--json", "--limit", "1")
	var e struct{ Action, Actor, Subject string }
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Action != "people.forget" || !strings.HasPrefix(e.Actor, "cli:") || strings.Count(out, "\n") != 1 {
		t.Errorf("audit --json --limit 1: %q %v", out, err)
	}
	c.fails(t, "--limit must be at least 1", "audit", "--limit", "0")
}

func TestRestoreRefusesNewerUnlessForced(t *testing.T) {
	c := withPeople(t)
	backup := filepath.Join(c.dir, "backup.db")
	c.ok(t, "backup", backup)
	c.ok(t, "grant", "ana@example.com", "5k", "--reason", "after the backup")
	grown := c.balance(t, "ana@example.com")

	r := c.run(t, "", "restore", backup)
	if r.code != 1 || !strings.Contains(r.stderr, "is newer than the backup") || !strings.Contains(r.stderr, "1 ledger transaction after") ||
		!strings.Contains(r.stderr, "1 audit log entry after") || !strings.Contains(r.stderr, "Nothing was changed") {
		t.Fatalf("restore over newer work: exit %d\n%s", r.code, r.stderr)
	}
	if b := c.balance(t, "ana@example.com"); b != grown {
		t.Fatalf("a refused restore changed the balance: %+v, was %+v", b, grown)
	}

	out := c.ok(t, "restore", backup, "--force")
	if !strings.Contains(out, "Restored "+c.db) || !strings.Contains(out, "saved in "+c.db+".before-restore-") || !strings.Contains(out, "ledger verified") {
		t.Fatalf("forced restore:\n%s", out)
	}
	if b := c.balance(t, "ana@example.com"); b.Available != grown.Available-5000 {
		t.Errorf("after restore ana has %d, want %d (the grant after the backup undone)", b.Available, grown.Available-5000)
	}
	if out := c.ok(t, "audit", "--limit", "1"); !strings.Contains(out, "restore") || !strings.Contains(out, "forced over") {
		t.Errorf("restore not audited: %s", out)
	}
	saved, _ := filepath.Glob(c.db + ".before-restore-*.db")
	if len(saved) != 1 {
		t.Fatalf("saved copies: %v", saved)
	}
	// The saved copy is itself a backup: restoring it brings the grant back.
	if out := c.ok(t, "restore", saved[0], "--force"); !strings.Contains(out, "ledger verified") {
		t.Fatal(out)
	}
	if b := c.balance(t, "ana@example.com"); b.Available != grown.Available {
		t.Errorf("after restoring the saved copy ana has %d, want %d", b.Available, grown.Available)
	}

	// A running tokenpay process (its heartbeat is recent) blocks a restore.
	live, err := sqlite.Open(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Heartbeat(context.Background(), "host/4242/serve", time.Now()); err != nil {
		t.Fatal(err)
	}
	live.Close()
	r = c.run(t, "", "restore", backup)
	if r.code != 1 || !strings.Contains(r.stderr, "in use by a running tokenpay process (host/4242/serve)") || !strings.Contains(r.stderr, "Stop it first") {
		t.Errorf("restore under a running process: exit %d %s", r.code, r.stderr)
	}

	// A restore into a fresh path needs no force and saves nothing.
	fresh := filepath.Join(c.dir, "fresh.db")
	if code, out, errOut := runCLI(t, "", map[string]string{"TOKENPAY_NOW": cliNow}, "restore", backup, "--db", fresh); code != 0 || strings.Contains(out, "saved in") {
		t.Errorf("restore into a new file: exit %d\n%s%s", code, out, errOut)
	}
	c.fails(t, "that is the live database itself", "restore", c.db)
	c.fails(t, "is not a readable SQLite database", "restore", c.file(t, "junk.db", strings.Repeat("junk", 2000)))
}

// TestBackupUnderLoadRestores takes a backup while the server ingests usage, restores it,
// and checks the copy is consistent: ledger verify passes and every batch is in it whole
// or not at all.
func TestBackupUnderLoadRestores(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "live.db")}
	var people strings.Builder
	people.WriteString("email,name,team,role,manager_email\n")
	for i := range 200 {
		fmt.Fprintf(&people, "p%d@x.io,P %d,T,analyst,\n", i, i)
	}
	if code, _, errOut := runCLI(t, people.String(), env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	key := opsAPIKey(t, env)
	base, stop := startServe(t, env)

	const batchSize = 200
	ctx, cancel := context.WithCancel(context.Background())
	var posted atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				if code := postBatch(base, key, usageBatch(fmt.Sprintf("w%d-b%d", w, n), batchSize, 200)); code == http.StatusOK {
					posted.Add(1)
				}
			}
		}()
	}
	for posted.Load() < 5 {
		time.Sleep(10 * time.Millisecond)
	}
	backup := filepath.Join(dir, "backup.db")
	code, out, errOut := runCLI(t, "", env, "backup", backup)
	atBackup := posted.Load()
	for posted.Load() < atBackup+5 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup while serving: %s %s", out, errOut)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	restored := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "restored.db")}
	if code, out, errOut := runCLI(t, "", restored, "restore", backup); code != 0 || !strings.Contains(out, "ledger verified") {
		t.Fatalf("restore: exit %d %s %s", code, out, errOut)
	}
	db, err := sqlite.Open(context.Background(), restored["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := usageCount(t, db)
	// Batches were in flight while the snapshot was read: each is in it whole or not at all.
	if n == 0 || n%batchSize != 0 || int64(n/batchSize) > posted.Load() {
		t.Errorf("restored %d usage events: not whole batches of %d (%d batches posted in all)", n, batchSize, posted.Load())
	}
	live, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if total := usageCount(t, live); total <= n {
		t.Errorf("the live database has %d events, the backup %d: the backup was not taken under load", total, n)
	}
}

// opsAPIKey creates an API key in env's database and returns it.
func opsAPIKey(t testing.TB, env map[string]string) string {
	t.Helper()
	var out, errOut strings.Builder
	code := Run(context.Background(), []string{"apikey", "create", "load"}, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] })
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if code != 0 {
		t.Fatalf("apikey: %s", errOut.String())
	}
	return lines[len(lines)-1]
}

// usageBatch is a JSON batch of n events with ids prefix-0.., spread over people p0..p<people-1>.
func usageBatch(prefix string, n, people int) string {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%s-%d","email":"p%d@x.io","model":"m","input_tokens":%d,"output_tokens":7,"occurred_at":"2026-11-20T09:00:00Z"}`,
			prefix, i, (i*7919+len(prefix))%people, 10+i)
	}
	b.WriteString(`]}`)
	return b.String()
}

// postBatch posts a usage batch and returns the status, 0 when the request failed.
func postBatch(base, key, body string) int {
	req, err := http.NewRequest(http.MethodPost, base+"/api/v1/usage", strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func usageCount(t testing.TB, db *sqlite.DB) int {
	t.Helper()
	var buf strings.Builder
	if err := db.ExportPostings(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, line := range strings.Split(buf.String(), "\n") {
		if f := strings.Split(line, ","); len(f) > 3 && f[3] == "usage" {
			events[f[2]] = true
		}
	}
	return len(events)
}

// TestReadmeListsEveryCommand keeps the README's command reference complete: every command
// the binary has appears there as `tokenpay <command>` (or `<command>` after a sibling).
func TestReadmeListsEveryCommand(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	a := &app{getenv: func(string) string { return "" }}
	seen := 0
	var walk func(prefix string, cmds []*cobra.Command)
	walk = func(prefix string, cmds []*cobra.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
				continue
			}
			path := strings.TrimSpace(prefix + " " + c.Name())
			seen++
			if c.HasSubCommands() {
				walk(path, c.Commands())
				continue
			}
			if !strings.Contains(string(readme), "`tokenpay "+path) && !strings.Contains(string(readme), "`"+path) {
				t.Errorf("README.md does not document `tokenpay %s` (%s)", path, c.Short)
			}
		}
	}
	walk("", a.rootCommand().Commands())
	if seen < 20 {
		t.Fatalf("only %d commands found; the walk is broken", seen)
	}
}
