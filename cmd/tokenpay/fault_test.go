package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokenpay/tokenpay/ledger"
)

// Fault tests: the real binary (or the real server in-process) under SIGKILL, a full disk,
// a hanging Slack and SIGTERM. Each stays well under 30 s.

// buildTokenpay builds this package's binary into a temp dir. Under -race it is built with
// -race too, so the packages the test binary compiled are reused and only linking is new.
func buildTokenpay(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tokenpay binary; not run with -short")
	}
	bin := filepath.Join(t.TempDir(), "tokenpay")
	args := []string{"build", "-o", bin}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running tokenpay subprocess.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error
}

// startProc runs bin with args and only the given environment (plus PATH and HOME).
func startProc(t *testing.T, bin string, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout = io.Discard
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s stderr:\n%s", filepath.Base(bin), strings.Join(args, " "), p.stderr.String())
		}
	})
	return p
}

// exitCode waits for the process to end and returns its exit code (-1: killed by a signal).
func (p *proc) exitCode(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("process still running after %s", within)
	}
	return p.cmd.ProcessState.ExitCode()
}

var servingAddr = regexp.MustCompile(`"addr":"([^"]+)"[^\n]*"message":"serving"`)

// serveProc starts `tokenpay serve` on a free loopback port and returns it with its base URL.
func serveProc(t *testing.T, bin string, env map[string]string) (*proc, string) {
	t.Helper()
	p := startProc(t, bin, env, "serve", "--addr", "127.0.0.1:0")
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingAddr.FindStringSubmatch(p.stderr.String()); m != nil {
			base := "http://" + m[1]
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return p, base
				}
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited: %v\n%s", p.err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not become ready:\n%s", p.stderr.String())
	return nil, ""
}

// faultLedger is a ledger with people p0..p<n-1>@x.io and an API key, for subprocesses.
func faultLedger(t *testing.T, people int) (map[string]string, string) {
	t.Helper()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db")}
	var csv strings.Builder
	csv.WriteString("email,name,team,role,manager_email,slack_user_id\n")
	for i := range people {
		fmt.Fprintf(&csv, "p%d@x.io,P %d,T%d,analyst,,U%07d\n", i, i, i%5, i)
	}
	if code, _, errOut := runCLI(t, csv.String(), env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	return env, opsAPIKey(t, env)
}

// rawDB opens the ledger file directly, as an operator's sqlite3 shell would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// verifyLedger runs `tokenpay ledger verify` on env's database and fails on any violation.
func verifyLedger(t *testing.T, env map[string]string) {
	t.Helper()
	if code, out, errOut := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatalf("ledger verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestKillDuringServeBatches kills `serve` with SIGKILL while clients post large usage
// batches: every batch is in the ledger whole or not at all, every acknowledged batch is
// there, and the ledger verifies.
func TestKillDuringServeBatches(t *testing.T) {
	bin := buildTokenpay(t)
	env, key := faultLedger(t, 1000)
	p, base := serveProc(t, bin, env)

	const batchSize = 1000
	var mu sync.Mutex
	acked := map[string]bool{}
	var sent []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%db%d", w, n)
				mu.Lock()
				sent = append(sent, name)
				mu.Unlock()
				if postBatch(base, key, faultBatch(name, batchSize, 1000)) == http.StatusOK {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 6 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop) // no new batches; those in flight are cut by the kill
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 10*time.Second); code != -1 {
		t.Fatalf("serve exit code %d, want death by SIGKILL", code)
	}
	wg.Wait()

	counts := batchCounts(t, env["TOKENPAY_DB"])
	var whole, missing int
	for _, name := range sent {
		switch n := counts[name]; {
		case n == batchSize:
			whole++
		case n == 0 && acked[name]:
			t.Errorf("batch %s was acknowledged but is not in the ledger", name)
		case n == 0:
			missing++
		default:
			t.Errorf("batch %s is in the ledger in part: %d of %d events", name, n, batchSize)
		}
	}
	t.Logf("%d batches sent, %d acknowledged, %d in the ledger, %d lost with the process (never acknowledged)", len(sent), len(acked), whole, missing)
	verifyLedger(t, env)
}

// faultBatch is a JSON batch of n events named <batch>-e<i>.
func faultBatch(batch string, n, people int) string {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%s-e%d","email":"p%d@x.io","model":"m","input_tokens":%d,"output_tokens":3,"occurred_at":"2026-11-20T09:00:00Z"}`,
			batch, i, (i*7919)%people, 5+i%50)
	}
	b.WriteString(`]}`)
	return b.String()
}

// batchCounts counts the usage events of each batch (the event id before "-e").
func batchCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	rows, err := rawDB(t, path).Query(`SELECT substr(event_id, 1, instr(event_id, '-e') - 1), count(*) FROM usage_events GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		out[name] = n
	}
	return out
}

// TestKillDuringUsageImport kills `usage import` of a large file mid-way: the ledger holds
// whole 500-event chunks from the top of the file, verifies, and importing the file again
// completes it without counting anything twice.
func TestKillDuringUsageImport(t *testing.T) {
	bin := buildTokenpay(t)
	env, _ := faultLedger(t, 1000)
	const events = 40_000
	var csv strings.Builder
	csv.WriteString("id,email,model,input_tokens,output_tokens,occurred_at\n")
	for i := range events {
		fmt.Fprintf(&csv, "imp-%06d,p%d@x.io,m,%d,4,2026-11-20T09:00:00Z\n", i, (i*7919)%1000, 10+i%90)
	}
	file := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, env, "usage", "import", file)
	db := rawDB(t, env["TOKENPAY_DB"])
	count := func() (n int, last string) {
		if err := db.QueryRow(`SELECT count(*), COALESCE(max(event_id), '') FROM usage_events`).Scan(&n, &last); err != nil {
			t.Fatal(err)
		}
		return n, last
	}
	deadline := time.Now().Add(20 * time.Second)
	for n, _ := count(); n < 2000; n, _ = count() {
		if time.Now().After(deadline) {
			t.Fatalf("the import stored only %d events in 20 s", n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 10*time.Second); code != -1 {
		t.Skipf("the import finished (exit %d) before it could be killed", code)
	}
	n, last := count()
	if n%500 != 0 || n >= events || last != fmt.Sprintf("imp-%06d", n-1) {
		t.Fatalf("after SIGKILL the ledger holds %d events ending with %q: want whole 500-event chunks from the top of the file", n, last)
	}
	t.Logf("killed after %d of %d events", n, events)
	verifyLedger(t, env)

	code, out, errOut := runCLI(t, "", env, "usage", "import", file)
	if want := fmt.Sprintf("%s accepted, %s duplicate, 0 quarantined, 0 rejected.", ledger.FormatCredits(int64(events-n)), ledger.FormatCredits(int64(n))); code != 0 || !strings.Contains(out, want) {
		t.Fatalf("import again: exit %d %q %s, want %q", code, out, errOut, want)
	}
	if n, _ := count(); n != events {
		t.Fatalf("%d events after the second import, want %d", n, events)
	}
	verifyLedger(t, env)
}

// setFileSizeLimit sets RLIMIT_FSIZE of another process (with util-linux prlimit): writes
// that would grow a file past limit bytes fail with EFBIG, as on a full disk. 0 lifts it.
func setFileSizeLimit(t *testing.T, pid int, limit uint64) {
	t.Helper()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prlimit (util-linux) is not installed; it stands in for a full disk" + "; .ci/run installs it")
		}
		t.Skip("prlimit (util-linux) is not installed; it stands in for a full disk")
	}
	value := "unlimited:unlimited"
	if limit > 0 {
		value = fmt.Sprintf("%d:unlimited", limit)
	}
	if out, err := exec.Command(prlimit, "--pid", fmt.Sprint(pid), "--fsize="+value).CombinedOutput(); err != nil {
		t.Skipf("cannot limit the server's file size: %v %s", err, out)
	}
}

// TestDiskFullAnswers503AndKeepsServingBalances fills the server's "disk" (a file size
// limit set on the running process): the usage API answers 503 with a sentence and stores
// nothing, balances are still served, and once space is back the same batch is accepted.
func TestDiskFullAnswers503AndKeepsServingBalances(t *testing.T) {
	bin := buildTokenpay(t)
	env, key := faultLedger(t, 1000)
	p, base := serveProc(t, bin, env)
	if code := postBatch(base, key, faultBatch("before", 10, 1000)); code != http.StatusOK {
		t.Fatalf("usage before the fault: %d", code)
	}
	balance := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/people/p7@x.io/balance", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	_, before := balance()

	// 64 KiB: the database and its log are larger, so any transaction that writes more than
	// a few pages needs to grow a file past the limit.
	setFileSizeLimit(t, p.cmd.Process.Pid, 64<<10)
	batch := faultBatch("during", 1000, 1000)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/usage", strings.NewReader(batch))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body.Error, "retry it (an event already recorded is counted once)") ||
		resp.Header.Get("Retry-After") == "" {
		t.Fatalf("usage on a full disk: %d %q (Retry-After %q), want 503 with a sentence and Retry-After", resp.StatusCode, body.Error, resp.Header.Get("Retry-After"))
	}
	if code, b := balance(); code != http.StatusOK || b != before {
		t.Fatalf("balance on a full disk: %d %s, want 200 %s", code, b, before)
	}
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz on a full disk: %v %v", resp, err)
	}
	if !strings.Contains(p.stderr.String(), "ingest usage") {
		t.Errorf("the write failure was not logged")
	}

	setFileSizeLimit(t, p.cmd.Process.Pid, 0)
	req, _ = http.NewRequest(http.MethodPost, base+"/api/v1/usage", strings.NewReader(batch))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Accepted, Duplicates int }
	_ = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || res.Accepted != 1000 || res.Duplicates != 0 {
		t.Fatalf("the same batch once space is back: %d %+v, want 1000 accepted (nothing was stored the first time)", resp.StatusCode, res)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t, 25*time.Second); code != 0 {
		t.Fatalf("serve exit %d after SIGTERM", code)
	}
	verifyLedger(t, env)
}

// TestSIGTERMDrainsInFlightRequests sends SIGTERM to `serve` while a usage request's body
// is still arriving: the request is finished and answered, then the process exits 0.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	bin := buildTokenpay(t)
	env, key := faultLedger(t, 10)
	p, base := serveProc(t, bin, env)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := faultBatch("late", 50, 10)
	fmt.Fprintf(conn, "POST /api/v1/usage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		key, len(body), body[:100])
	time.Sleep(200 * time.Millisecond) // the server has the headers and is reading the body
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("serve exited with a request in flight: %v", p.err)
	default:
	}
	if !strings.Contains(p.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line after SIGTERM")
	}
	// A new connection is refused while the old one drains.
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("a new connection was accepted after SIGTERM")
	}
	if _, err := io.WriteString(conn, body[100:]); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no answer: %v", err)
	}
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || !strings.Contains(string(b), `"accepted":50`) {
		t.Fatalf("in-flight request: %d %s", r.StatusCode, b)
	}
	if code := p.exitCode(t, 25*time.Second); code != 0 || !strings.Contains(p.stderr.String(), `"message":"stopped"`) {
		t.Fatalf("serve exit %d after draining", code)
	}
	if counts := batchCounts(t, env["TOKENPAY_DB"]); counts["late"] != 50 {
		t.Fatalf("the drained batch is not in the ledger: %v", counts)
	}
	verifyLedger(t, env)
}

// TestHangingSlackNeverBlocksTheUsageAPI points the Slack adapter at a Web API that never
// answers. Slash commands that need Slack are acknowledged in time and give up after the
// client timeout; meanwhile the usage API, balances and commands that need no Slack call
// answer at their usual speed.
func TestHangingSlackNeverBlocksTheUsageAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the Slack client's 10 s timeout; not run with -short")
	}
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	slackAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
			http.Error(w, "gone", http.StatusServiceUnavailable)
		case <-r.Context().Done():
		}
	}))
	defer slackAPI.Close()
	defer unblock()

	env, key := faultLedger(t, 100)
	env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"], env["SLACK_API_URL"] = "xoxb-test", slackSecret, slackAPI.URL+"/"
	base, stop := startServe(t, env)

	// 20 people Slack has never introduced: each command needs users.info, which hangs.
	started := time.Now()
	var commands sync.WaitGroup
	acks := make(chan time.Duration, 20)
	for i := range 20 {
		commands.Add(1)
		go func() {
			defer commands.Done()
			t0 := time.Now()
			resp, _ := signedPost(t, base, "/slack/commands", slashBody(fmt.Sprintf("U9NEW%02d", i), "balance", slackAPI.URL+"/respond"), nil)
			if resp.StatusCode == http.StatusOK {
				acks <- time.Since(t0)
			}
		}()
	}

	// Meanwhile: usage batches, balance lookups, and a known person's /tokens balance.
	var latencies []time.Duration
	timed := func(f func() int) {
		t0 := time.Now()
		if code := f(); code != http.StatusOK {
			t.Errorf("status %d while Slack hangs", code)
		}
		latencies = append(latencies, time.Since(t0))
	}
	for i := 0; time.Since(started) < 3*time.Second; i++ {
		timed(func() int { return postBatch(base, key, faultBatch(fmt.Sprintf("s%d", i), 50, 100)) })
		timed(func() int {
			req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/people/p3@x.io/balance", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0
			}
			resp.Body.Close()
			return resp.StatusCode
		})
		timed(func() int {
			resp, body := signedPost(t, base, "/slack/commands", slashBody("U0000003", "balance", slackAPI.URL+"/respond"), nil)
			if !strings.Contains(body, "credits") {
				t.Errorf("a known person's balance while Slack hangs: %s", body)
			}
			return resp.StatusCode
		})
		time.Sleep(20 * time.Millisecond)
	}
	commands.Wait()
	close(acks)
	for d := range acks {
		if d > 3*time.Second {
			t.Errorf("a slash command was acknowledged after %s; Slack wants 3 s", d)
		}
	}
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	t.Logf("%d requests while 20 Slack calls hung: p50 %s, p99 %s, max %s", len(latencies), latencies[len(latencies)/2], p99, latencies[len(latencies)-1])
	if p99 > 500*time.Millisecond {
		t.Errorf("p99 %s while Slack hangs; the usage API must not wait for Slack", p99)
	}

	// The hanging calls give up at the Slack client's timeout, not never.
	deadline := started.Add(20 * time.Second)
	for !strings.Contains(serveLogs[t.Name()].String(), "Client.Timeout exceeded") {
		if time.Now().After(deadline) {
			t.Fatal("no Slack call timed out within 20 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if waited := time.Since(started); waited < 9*time.Second {
		t.Errorf("users.info gave up after %s, want the 10 s client timeout", waited)
	}
	unblock()
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	verifyLedger(t, env)
}

// TestBodyLimitsOnEveryEndpoint sends an oversized body to every POST endpoint: each
// answers 413 without reading it all.
func TestBodyLimitsOnEveryEndpoint(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	env["SLACK_BOT_TOKEN"], env["SLACK_SIGNING_SECRET"], env["SLACK_API_URL"] = "xoxb-test", slackSecret, "http://127.0.0.1:1/"
	key := opsAPIKey(t, env)
	base, stop := startServe(t, env)
	defer stop()
	huge := bytes.Repeat([]byte("x"), 5<<20)
	teamsToken := bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil)
	for _, tc := range []struct {
		path string
		body []byte
		auth string
	}{
		{"/slack/commands", append([]byte("text="), huge...), ""},
		{"/slack/interactions", append([]byte("payload="), huge...), ""},
		{"/slack/events", append([]byte(`{"type":"event_callback","event":"`), huge...), ""},
		{"/api/messages", append([]byte(`{"type":"message","text":"`), huge...), "Bearer " + teamsToken},
		{"/api/v1/usage", append([]byte(`{"events":[{"id":"`), huge...), "Bearer " + key},
	} {
		if code := rawPost(t, base, tc.path, tc.auth, tc.body); code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s with a 5 MiB body: %d, want 413", tc.path, code)
		}
	}
}

// rawPost sends body while it reads the answer, so that a server that answers early and
// closes the connection is seen answering, not as a failed write.
func rawPost(t *testing.T, base, path, auth string, body []byte) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, len(body))
	if auth != "" {
		head += "Authorization: " + auth + "\r\n"
	}
	go func() {
		_, _ = io.WriteString(conn, head+"\r\n")
		_, _ = conn.Write(body)
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: no answer: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
