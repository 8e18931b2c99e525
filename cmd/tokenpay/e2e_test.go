package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// run runs one command line in-process with a fixed clock.
func runCLI(t *testing.T, stdin string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code := Run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, getenv)
	return code, out.String(), errOut.String()
}

const e2eNow = "2026-11-20T10:00:00Z"

func TestDemoThenVerify(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "demo.db")
	env := map[string]string{"TOKENPAY_NOW": e2eNow}
	code, out, errOut := runCLI(t, "", env, "demo", "--db", db)
	if code != 0 {
		t.Fatalf("demo exit %d: %s %s", code, out, errOut)
	}
	for _, want := range []string{"128 people in 8 teams", "console --db " + db, "--policy " + filepath.Join(dir, "demo.policy.yaml"), "serve"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo summary lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := runCLI(t, "", env, "ledger", "verify", "--db", db); code != 0 || !strings.Contains(out, "ledger verified") {
		t.Fatalf("verify after demo: exit %d %s", code, out)
	}
	// Safe to run twice: the second run replaces the first demo, with the same result.
	if code, out, errOut := runCLI(t, "", env, "demo", "--db", db); code != 0 || !strings.Contains(out, "128 people") {
		t.Fatalf("second demo: exit %d %s %s", code, out, errOut)
	}
	// The three behaviour groups are visible in the ledger: some people used nothing or
	// little, some used far more than others.
	code, out, _ = runCLI(t, "", env, "ledger", "export", "--db", db)
	if code != 0 || strings.Count(out, ",usage,") < 1000 {
		t.Fatalf("export after demo: exit %d, %d usage postings", code, strings.Count(out, ",usage,"))
	}
	// A real ledger is never replaced by the demo.
	real := filepath.Join(dir, "real.db")
	if code, _, errOut := runCLI(t, "email,name,team,role,manager_email\n", env, "people", "import", "-", "--db", real); code != 0 {
		t.Fatalf("import: %s", errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "demo", "--db", real); code != 1 || !strings.Contains(errOut, "is not a tokenpay demo database") {
		t.Fatalf("demo over a real ledger: exit %d %s", code, errOut)
	}
}

const consolePeople = `email,name,team,role,manager_email
mia@x.io,Mia Boss,Research,manager,
eve@x.io,Eve Analyst,Research,analyst,mia@x.io
pat@x.io,Pat Peer,Research,analyst,mia@x.io
`

func TestConsoleRequestApproveLoop(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": db}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	script := strings.Join([]string{
		"balance",
		"request 50k summarise the customer interviews",
		":as pat@x.io",
		"team", // a peer has no team view and no buttons
		":as mia@x.io",
		"1", // the approval message's first button: Approve
		"1", // pressing again on the same message: already decided
		":as eve@x.io",
		"balance",
	}, "\n") + "\n"
	code, out, errOut := runCLI(t, script, env, "console", "--as", "eve@x.io")
	if code != 0 {
		t.Fatalf("console exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Available:         200,000 credits",
		"Request #1 for 50,000 credits sent to Mia Boss",
		"You are now Mia Boss",
		"[1] Approve  [2] Deny  [3] Ask for details",
		"Approved request #1: Eve Analyst now has 50,000 more credits, until 20 Dec 2026 10:00 UTC.",
		"Request #1 was already decided: ✅ Approved by Mia Boss",
		"Mia Boss approved your request #1",
		"Available:         250,000 credits",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
	code, out, _ = runCLI(t, "", env, "balance", "--json", "eve@x.io")
	var b struct{ Available int64 }
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.Available != 250_000 {
		t.Fatalf("balance after the loop: %s", out)
	}
}

func TestConsoleModalOverPipe(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db")}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	// "request" with no arguments opens the form; its fields are asked one per line.
	code, out, _ := runCLI(t, "request\n20k\nbuild a churn model for the Q4 plan\n", env, "console", "--as", "eve@x.io")
	if code != 0 || !strings.Contains(out, "How many credits?: ") || !strings.Contains(out, "Request #1 for 20,000 credits sent to Mia Boss") {
		t.Fatalf("modal over a pipe:\n%s", out)
	}
	if code, _, errOut := runCLI(t, "", env, "console"); code != 1 || !strings.Contains(errOut, "--as EMAIL") {
		t.Fatalf("console without --as: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "console", "--as", "nobody@x.io"); code != 1 || !strings.Contains(errOut, "not in the directory") {
		t.Fatalf("console as a stranger: %d %s", code, errOut)
	}
}

// startServe runs the real server on port 0 and returns its base URL and a stop function
// that waits for a clean shutdown.
func startServe(t testing.TB, env map[string]string) (string, func() error) {
	t.Helper()
	stderr := &syncBuffer{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return env[k] }, logLevel: "debug"}
	if err := a.setup(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db, pol, err := a.env(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &server{app: a, db: db, pol: pol, ready: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- s.run(ctx, "127.0.0.1:0") }()
	select {
	case <-s.ready:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	stop := func() error {
		cancel()
		err := <-done
		db.Close()
		return err
	}
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("serve log:\n%s", stderr.String())
		}
	})
	serveLogs[t.Name()] = stderr
	return "http://" + s.Addr, stop
}

// serveLogs keeps each test's serve log for assertions.
var serveLogs = map[string]*syncBuffer{}

// syncBuffer is a log sink that tests may read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServeEndToEnd(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db")}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := runCLI(t, "", env, "apikey", "create", "gateway")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(key, "tp_") {
		t.Fatalf("apikey: %s", out)
	}
	base, stop := startServe(t, env)
	for _, want := range []string{"Slack disabled: set SLACK_BOT_TOKEN", "Teams disabled: set TEAMS_APP_ID"} {
		if log := serveLogs[t.Name()].String(); strings.Count(log, want) != 1 {
			t.Errorf("serve without credentials should log %q once; log:\n%s", want, log)
		}
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("readyz %d %q", code, body)
	}

	batch := `{"events":[{"id":"e1","email":"eve@x.io","model":"m","input_tokens":700,"output_tokens":300,"occurred_at":"2026-11-20T09:00:00Z"},
		{"id":"e2","email":"ghost@x.io","model":"m","input_tokens":1,"occurred_at":"2026-11-20T09:00:00Z"},
		{"id":"e3","email":"eve@x.io","model":"m","input_tokens":-1,"occurred_at":"2026-11-20T09:00:00Z"}]}`
	post := func(body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", base+"/api/v1/usage", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := post(batch); code != 200 || m["accepted"] != 1.0 || m["quarantined"] != 1.0 || m["rejected"] != 1.0 {
		t.Fatalf("usage: %d %v", code, m)
	}
	if code, m := post(batch); code != 200 || m["duplicates"] != 1.0 || m["accepted"] != 0.0 {
		t.Fatalf("usage replay: %d %v", code, m)
	}
	req, _ := http.NewRequest("GET", base+"/api/v1/people/eve@x.io/balance", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var bal struct{ Available, Spent int64 }
	_ = json.NewDecoder(resp.Body).Decode(&bal)
	resp.Body.Close()
	if bal.Spent != 1000 || bal.Available != 199_000 {
		t.Fatalf("balance after ingestion: %+v", bal)
	}

	code, metrics := get("/metrics")
	for _, want := range []string{
		`tokenpay_usage_events_total{status="accepted"} 1`,
		`tokenpay_usage_events_total{status="duplicate"} 1`,
		`tokenpay_http_requests_total{code="200",route="POST /api/v1/usage"} 2`,
		`tokenpay_http_request_seconds_bucket{route="GET /healthz"`,
		"\ntokenpay_sqlite_wal_bytes ", "\ntokenpay_sqlite_wal_resets_total ",
		// Issued credits count up from zero (issue 16: never negative).
		"\ntokenpay_ledger_issued_credits 600000\n",
	} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	// Graceful shutdown: a request whose body is still arriving when SIGTERM comes is
	// finished and answered before the server stops.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"events":[{"id":"late","email":"eve@x.io","model":"m","input_tokens":5,"occurred_at":"2026-11-20T09:30:00Z"}]}`
	fmt.Fprintf(conn, "POST /api/v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		key, len(body), body[:20])
	time.Sleep(200 * time.Millisecond) // the server has the headers and is reading the body
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-stopped:
		t.Fatalf("server stopped with a request in flight: %v", err)
	default:
	}
	if _, err := io.WriteString(conn, body[20:]); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no answer: %v", err)
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != 200 || !strings.Contains(string(b), `"accepted":1`) {
		t.Fatalf("in-flight request: %d %s", r.StatusCode, b)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// The late event is in the ledger and the books balance.
	if code, out, _ := runCLI(t, "", env, "balance", "--json", "eve@x.io"); code != 0 || !strings.Contains(out, `"spent": 1005`) {
		t.Fatalf("after shutdown: %s", out)
	}
	if code, _, _ := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatal("verify failed after serve")
	}
	_ = os.Remove(env["TOKENPAY_DB"])
}
