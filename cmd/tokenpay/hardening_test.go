package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
)

// hardPolicy gives the largest weight the policy allows (1,000,000 a token) to "huge", and
// "big" a weight that makes a billion input tokens cost exactly one event's bound.
const hardPolicy = `admins: [mia@x.io]
models:
  weights:
    huge: {input: 1000000, output: 1000000}
    big: {input: 1000, output: 0}
`

// hardEnv is a ledger with consolePeople, the policy above, an API key and a running serve.
type hardEnv struct {
	env  map[string]string
	base string
	key  string
}

func newHardEnv(t *testing.T) *hardEnv {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(hardPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_POLICY": pol}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, errOut := runCLI(t, "", env, "apikey", "create", "gateway")
	if code != 0 {
		t.Fatal(errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	base, _ := startServe(t, env)
	return &hardEnv{env: env, base: base, key: lines[len(lines)-1]}
}

func (h *hardEnv) post(t *testing.T, events ...string) api.UsageResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.base+"/api/v1/usage", strings.NewReader(`{"events":[`+strings.Join(events, ",")+`]}`))
	req.Header.Set("Authorization", "Bearer "+h.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.UsageResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("usage: %d %v", resp.StatusCode, err)
	}
	return out
}

func (h *hardEnv) balance(t *testing.T, email string) (int, api.BalanceJSON) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.base+"/api/v1/people/"+email+"/balance", nil)
	req.Header.Set("Authorization", "Bearer "+h.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b api.BalanceJSON
	_ = json.NewDecoder(resp.Body).Decode(&b)
	return resp.StatusCode, b
}

func hardEvent(id, email, model string, in, out int64) string {
	return fmt.Sprintf(`{"id":%q,"email":%q,"model":%q,"input_tokens":%d,"output_tokens":%d,"occurred_at":"2026-11-20T09:00:00Z"}`, id, email, model, in, out)
}

// everyoneStillServed runs, through the CLI, everything the issue saw fail for the whole
// organisation after one person's absurd usage.
func everyoneStillServed(t *testing.T, env map[string]string) {
	t.Helper()
	for _, args := range [][]string{
		{"ledger", "verify"}, {"segments"}, {"segments", "--json"}, {"balance", "eve@x.io", "--json"}, {"balance", "pat@x.io"},
		{"jobs", "run", "weekly-digest"}, {"jobs", "run", "manager-digest"}, {"jobs", "run", "nudges"}, {"jobs", "run", "admin-report"},
	} {
		if code, out, errOut := runCLI(t, "", env, args...); code != 0 {
			t.Errorf("tokenpay %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
		}
	}
}

// TestAmountBoundsEndToEnd is the example through the real HTTP server and CLI:
// five events of 1e12 input and output tokens at weight 1,000,000 are each rejected with a
// reason; so is an event under the token bound that costs more than one event may, and
// the event that would take a person past the bound per period; the organisation keeps
// working throughout.
func TestAmountBoundsEndToEnd(t *testing.T) {
	h := newHardEnv(t)
	var five []string
	for i := range 5 {
		five = append(five, hardEvent(fmt.Sprintf("huge-%d", i), "eve@x.io", "huge", 1_000_000_000_000, 1_000_000_000_000))
	}
	res := h.post(t, five...)
	for _, r := range res.Results {
		if r.Status != ledger.UsageRejected || !strings.Contains(r.Reason, "input_tokens must be a whole number from 0 to 1,000,000,000 (the most one event may report)") {
			t.Errorf("issue example: %+v", r)
		}
	}
	// Under the token bound, over the credit bound: 1e9 tokens at 1,000,000 is 1e15 credits.
	res = h.post(t, hardEvent("costly", "eve@x.io", "huge", 1_000_000_000, 0))
	if r := res.Results[0]; r.Status != ledger.UsageRejected || !strings.Contains(r.Reason, "more than the 1,000,000,000,000 one event may") {
		t.Errorf("costly event: %+v", r)
	}
	// Eleven events of exactly one event's bound: ten fill the period, the eleventh is refused.
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, hardEvent(fmt.Sprintf("big-%d", i), "eve@x.io", "big", 1_000_000_000, 0))
	}
	res = h.post(t, eleven...)
	if res.Accepted != 10 || res.Rejected != 1 || !strings.Contains(res.Results[10].Reason, "past 10,000,000,000,000 credits, the most one person may use in a period") {
		t.Errorf("period bound: %+v", res)
	}
	if res.Results[0].Credits != ledger.MaxEventCredits {
		t.Errorf("an event at the bound costs %d", res.Results[0].Credits)
	}
	code, b := h.balance(t, "eve@x.io")
	if code != http.StatusOK || b.Spent != ledger.MaxPeriodCredits {
		t.Errorf("balance: %d %+v", code, b)
	}
	// Someone else is unaffected.
	res = h.post(t, hardEvent("pat-1", "pat@x.io", "m", 100, 0))
	if res.Accepted != 1 {
		t.Errorf("pat: %+v", res)
	}
	everyoneStillServed(t, h.env)
}

// TestAbsurdStoredUsageTakesNobodyDown: a database that an older version let accept the
// issue's five events (2e18 credits each, 1e19 together) still answers balances over HTTP,
// and segments, digests, nudges, the admin report and verify still run.
func TestAbsurdStoredUsageTakesNobodyDown(t *testing.T) {
	h := newHardEnv(t)
	if res := h.post(t, hardEvent("pat-1", "pat@x.io", "m", 100, 0)); res.Accepted != 1 {
		t.Fatalf("%+v", res)
	}
	db := rawDB(t, h.env["TOKENPAY_DB"])
	for i := range 5 {
		r, err := db.Exec(`INSERT INTO transactions(idem_key, input_hash, kind, person_id, created_at)
			VALUES (?, 'x', 'usage', (SELECT id FROM people WHERE email = 'eve@x.io'), 0)`, fmt.Sprintf("usage:old-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		id, _ := r.LastInsertId()
		if _, err := db.Exec(`INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, received_at)
			VALUES (?, ?, (SELECT id FROM people WHERE email = 'eve@x.io'), 'huge', 1000000000000, 1000000000000, 2000000000000000000, 2000000000000000000,
			strftime('%s', '2026-11-20T09:00:00Z') * 1000, 0)`, id, fmt.Sprintf("old-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// Rows written behind the ledger's back have no running period total (the import's
	// reset opened Eve's at 0): the next batch sums them, as for rows from before the totals.
	if _, err := db.Exec(`DELETE FROM usage_totals WHERE person_id = (SELECT id FROM people WHERE email = 'eve@x.io')`); err != nil {
		t.Fatal(err)
	}
	code, b := h.balance(t, "eve@x.io")
	if code != http.StatusOK || b.Spent != math.MaxInt64 {
		t.Errorf("balance of the absurd spender: %d %+v, want 200 with spent clamped", code, b)
	}
	if code, b := h.balance(t, "pat@x.io"); code != http.StatusOK || b.Spent != 100 {
		t.Errorf("balance of someone else: %d %+v", code, b)
	}
	// Eve's period is full; her next event is refused with the reason, not summed past int64.
	res := h.post(t, hardEvent("eve-next", "eve@x.io", "m", 1, 0))
	if res.Rejected != 1 || !strings.Contains(res.Results[0].Reason, "the most one person may use in a period") {
		t.Errorf("eve after the absurd rows: %+v", res)
	}
	everyoneStillServed(t, h.env)
}

// TestIdentitiesMatchEndToEnd is the example through the HTTP server and the CLI:
// the directory holds "Élise@acme.test", the gateway sends "ÉLISE@acme.test"; the usage is
// billed, not quarantined. An event for someone not yet imported waits in quarantine and
// is billed when the directory adds them in another spelling. Balances answer for any
// spelling.
func TestIdentitiesMatchEndToEnd(t *testing.T) {
	h := newHardEnv(t)
	dir := filepath.Dir(h.env["TOKENPAY_DB"])
	csv := filepath.Join(dir, "more.csv")
	if err := os.WriteFile(csv, []byte("email,name,team,role,manager_email\nÉlise@acme.test,Élise,Research,analyst,MIA@x.io\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "", h.env, "people", "import", csv); code != 0 {
		t.Fatalf("import: %s %s", out, errOut)
	}
	res := h.post(t, hardEvent("e1", "ÉLISE@acme.test", "m", 100, 0), hardEvent("e2", "E\u0301LISE@ACME.TEST", "m", 20, 0),
		hardEvent("n1", "ÑOÑO@acme.test", "m", 7, 0))
	if res.Accepted != 2 || res.Quarantined != 1 {
		t.Fatalf("usage: %+v", res)
	}
	if err := os.WriteFile(csv, []byte("email,name,team,role,manager_email\nn\u0303on\u0303o@acme.test,Ñoño,Research,analyst,mia@x.io\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", h.env, "people", "import", csv)
	if code != 0 || !strings.Contains(out, "1 event replayed, 0 still waiting") {
		t.Fatalf("import with replay: %d %s %s", code, out, errOut)
	}
	for email, want := range map[string]int64{"%C3%89LISE@acme.test": 120, "%C3%A9lise@acme.test": 120, "%C3%B1o%C3%B1o@ACME.test": 7} {
		if code, b := h.balance(t, email); code != http.StatusOK || b.Spent != want {
			t.Errorf("balance of %s: %d %+v, want %d spent", email, code, b, want)
		}
	}
	code, out, errOut = runCLI(t, "", h.env, "balance", "ÉLISE@ACME.TEST", "--json")
	var b api.BalanceJSON
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.Spent != 120 || b.Email != "Élise@acme.test" {
		t.Errorf("CLI balance: %d %s %s", code, out, errOut)
	}
}

// TestEveryAdminActionIsAttributed: the CLI's grants, key changes, imports, job runs and
// exports are in the audit log under cli:<os user> (the issue found grant and apikey logged
// as bare "cli"); a chat admin's grant under the person.
func TestEveryAdminActionIsAttributed(t *testing.T) {
	h := newHardEnv(t)
	env := map[string]string{"USER": "alice"}
	for k, v := range h.env {
		env[k] = v
	}
	dir := filepath.Dir(env["TOKENPAY_DB"])
	usageFile := filepath.Join(dir, "u.csv")
	if err := os.WriteFile(usageFile, []byte("id,email,model,input_tokens,occurred_at\nf1,eve@x.io,m,5,2026-11-20T09:00:00Z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"people", "import", "-"}, {"apikey", "create", "second"}, {"apikey", "revoke", "second"},
		{"grant", "eve@x.io", "500", "--reason", "conference"}, {"usage", "import", usageFile},
		{"jobs", "run", "weekly-digest"}, {"people", "export", "eve@x.io"},
	}
	for _, args := range steps {
		if code, out, errOut := runCLI(t, consolePeople, env, args...); code != 0 {
			t.Fatalf("tokenpay %s: %d %s %s", strings.Join(args, " "), code, out, errOut)
		}
	}
	if code, out, errOut := runCLI(t, "admin grant pat@x.io 300 for the offsite\n", h.env, "console", "--as", "mia@x.io"); code != 0 || !strings.Contains(out, "Granted 300 credits") {
		t.Fatalf("chat admin grant: %d %s %s", code, out, errOut)
	}
	code, out, _ := runCLI(t, "", h.env, "audit", "--json", "--limit", "100")
	if code != 0 {
		t.Fatal(out)
	}
	actors := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e auditJSON
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		if e.Actor == "" || e.Actor == "cli" {
			t.Errorf("unattributed audit entry: %+v", e)
		}
		if _, seen := actors[e.Action]; !seen {
			actors[e.Action] = e.Actor // newest first
		}
	}
	for action, want := range map[string]string{"people.import": "cli:alice", "apikey.create": "cli:alice", "apikey.revoke": "cli:alice",
		"usage.import": "cli:alice", "jobs.run": "cli:alice", "people.export": "cli:alice", "grant": "mia@x.io"} {
		if actors[action] != want {
			t.Errorf("%s by %q, want %q (all: %v)", action, actors[action], want, actors)
		}
	}
	// The CLI grant's ledger transaction names the OS user too.
	var txActor string
	if err := rawDB(t, h.env["TOKENPAY_DB"]).QueryRow(`SELECT actor FROM transactions WHERE reason = 'conference'`).Scan(&txActor); err != nil || txActor != "cli:alice" {
		t.Errorf("grant transaction by %q (%v), want cli:alice", txActor, err)
	}
}

// TestSeparationOfDutiesThroughTheConsole: Mia is Eve's manager and the only admin. Eve's
// request above unlock.manager_limit is refused when filed (nobody but Mia could approve
// it, and Mia may give only one of the two approvals); Mia's grant to herself above the
// limit needs a second admin. Within the limit both go through.
func TestSeparationOfDutiesThroughTheConsole(t *testing.T) {
	h := newHardEnv(t)
	code, out, errOut := runCLI(t, "request 600k label every support ticket of the quarter\nrequest 50k label the backlog\n", h.env, "console", "--as", "eve@x.io")
	if code != 0 || !strings.Contains(out, "Requests above 500,000 credits need two different people to approve") ||
		!strings.Contains(out, "the only admin who could is your manager, Mia Boss") || !strings.Contains(out, "Request #1 for 50,000 credits sent to Mia Boss") {
		t.Errorf("eve's requests: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "admin grant mia@x.io 600k offsite\nadmin grant mia@x.io 500k offsite\n", h.env, "console", "--as", "mia@x.io")
	if code != 0 || !strings.Contains(out, "A grant to yourself above 500,000 credits needs a second admin, and the policy names no other") ||
		!strings.Contains(out, "Granted 500,000 credits to Mia Boss") {
		t.Errorf("mia's grants: %d\n%s\n%s", code, out, errOut)
	}
	var requests int
	if err := rawDB(t, h.env["TOKENPAY_DB"]).QueryRow(`SELECT count(*) FROM requests`).Scan(&requests); err != nil || requests != 1 {
		t.Errorf("%d requests stored (%v), want only the one within the limit", requests, err)
	}
}

// TestSlackWindowHoldsForExtremeTimestamps: correctly signed Slack requests whose timestamp
// is centuries away (where a time.Duration saturates), at the int64 limits, zero, negative
// or just outside five minutes are refused with 401 by the real server; inside it, served.
func TestSlackWindowHoldsForExtremeTimestamps(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, _ := startServe(t, env)
	body := slashBody("U0EVE", "balance", fake.apiURL()+"/respond")
	now := time.Now().Unix()
	for _, ts := range []string{strconv.FormatInt(now+10_000_000_000, 10), strconv.FormatInt(now-10_000_000_000, 10),
		"9223372036854775807", "-9223372036854775808", "0", "-1", strconv.FormatInt(now+400, 10), strconv.FormatInt(now-400, 10)} {
		r, _ := signedPost(t, base, "/slack/commands", body, map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slackSignature(ts, body)})
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("signed request with timestamp %s: %d, want 401", ts, r.StatusCode)
		}
	}
	ts := strconv.FormatInt(now, 10)
	if r, b := signedPost(t, base, "/slack/commands", body, map[string]string{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": slackSignature(ts, body)}); r.StatusCode != http.StatusOK {
		t.Errorf("signed request now: %d %s", r.StatusCode, b)
	}
}

// serveInProcess starts serve in-process and returns the running server (both addresses).
func serveInProcess(t *testing.T, env map[string]string) (*server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }, logLevel: "info"}
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
	}
	t.Cleanup(func() {
		cancel()
		<-done
		db.Close()
	})
	return s, logs
}

// TestQuarantineBoundAndMetricsListener: with TOKENPAY_METRICS_ADDR, /metrics answers on its
// own listener and not on the public one. One API key fills its quarantine
// (MaxQuarantinePerKey events for people not in the directory); its next such event is
// rejected with a reason, counted in tokenpay_quarantine_bounded_events_total and logged;
// another key still quarantines. A month later the replay job gives the waiting events up.
func TestQuarantineBoundAndMetricsListener(t *testing.T) {
	h := newHardEnv(t)
	env := map[string]string{"TOKENPAY_METRICS_ADDR": "127.0.0.1:0"}
	for k, v := range h.env {
		env[k] = v
	}
	s, logs := serveInProcess(t, env)
	h.base = "http://" + s.Addr
	if s.MetricsAddr == "" || s.MetricsAddr == s.Addr {
		t.Fatalf("metrics listener %q beside %q", s.MetricsAddr, s.Addr)
	}
	if r, err := http.Get(h.base + "/metrics"); err != nil || r.StatusCode != http.StatusNotFound {
		t.Fatalf("/metrics on the public listener: %v %v", r, err)
	}
	for b := range ledger.MaxQuarantinePerKey / 1000 {
		var events []string
		for i := range 1000 {
			events = append(events, hardEvent(fmt.Sprintf("g%d-%d", b, i), fmt.Sprintf("ghost%d@x.io", i), "m", 1, 0))
		}
		if res := h.post(t, events...); res.Quarantined != 1000 {
			t.Fatalf("batch %d: %+v", b, res.Quarantined)
		}
	}
	res := h.post(t, hardEvent("over", "ghost@x.io", "m", 1, 0), hardEvent("eve-ok", "eve@x.io", "m", 1, 0))
	if res.Rejected != 1 || res.Accepted != 1 || !strings.Contains(res.Results[0].Reason, "10,000 events from this API key already wait for people not in the directory") {
		t.Errorf("past the bound: %+v", res)
	}
	resp, err := http.Get("http://" + s.MetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`tokenpay_quarantine_bounded_events_total{bound="count"} 1`, "tokenpay_quarantine_waiting_events 10000"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(logs.String(), "quarantine bound reached") {
		t.Errorf("no log line for the bound:\n%s", logs.String())
	}
	// Another key is not held back by the first one's quarantine.
	code, out, _ := runCLI(t, "", h.env, "apikey", "create", "other")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	other := &hardEnv{env: h.env, base: h.base, key: lines[len(lines)-1]}
	if res := other.post(t, hardEvent("other-1", "ghost@x.io", "m", 1, 0)); code != 0 || res.Quarantined != 1 {
		t.Errorf("another key: %+v", res)
	}
	// A month on, the replay job gives them up, with a log line.
	code, out, errOut := runCLI(t, "", h.env, "jobs", "run", "quarantine-replay", "--at", "2026-12-25T10:00:00Z")
	if code != 0 || !strings.Contains(out+errOut, "0 still waiting") || !strings.Contains(errOut, "quarantine bound reached") {
		t.Errorf("replay a month later: %d\n%s\n%s", code, out, errOut)
	}
}

// TestTeamsTokenTimesHoldForExtremeValues: validly signed Bot Framework tokens whose nbf is
// beyond int64 (the JWT library read it as the distant past), or whose exp or iat are
// centuries away, zero or negative, are refused with 401 by the real server and change
// nothing; the same token with ordinary times is served.
func TestTeamsTokenTimesHoldForExtremeValues(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, _ := startServe(t, env)
	msg := bf.activity("message", "m1", "29:eve", "aad-eve", "request 50k x", nil)
	now := time.Now().Unix()
	for name, mutate := range map[string]func(jwt.MapClaims){
		"nbf 1e300":           func(c jwt.MapClaims) { c["nbf"] = 1e300 },
		"nbf centuries":       func(c jwt.MapClaims) { c["nbf"] = now + 10_000_000_000 },
		"exp centuries":       func(c jwt.MapClaims) { c["exp"] = now + 10_000_000_000 },
		"exp int64 max":       func(c jwt.MapClaims) { c["exp"] = int64(math.MaxInt64) },
		"exp 1e300":           func(c jwt.MapClaims) { c["exp"] = 1e300 },
		"exp zero":            func(c jwt.MapClaims) { c["exp"] = 0 },
		"exp negative":        func(c jwt.MapClaims) { c["exp"] = -1e300 },
		"iat centuries":       func(c jwt.MapClaims) { c["iat"] = now + 10_000_000_000 },
		"exp six minutes ago": func(c jwt.MapClaims) { c["exp"] = now - 360 },
	} {
		if code := bf.post(t, base, bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, mutate), msg); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	if n := bf.total(); n != 0 {
		t.Fatalf("refused activities made the bot send %d messages", n)
	}
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	if code := bf.post(t, base, bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil), bf.activity("message", "m2", "29:eve", "aad-eve", "balance", nil)); code != 200 {
		t.Fatalf("ordinary token: %d", code)
	}
}

// TestSlackLinksByEmailKey: chat linking uses the same email key. The directory holds
// "Élise@acme.test"; Slack's profile says "ÉLISE@ACME.TEST". Her first /tokens links her
// account and answers her balance.
func TestSlackLinksByEmailKey(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	if code, _, errOut := runCLI(t, "email,name,team,role,manager_email\nÉlise@acme.test,Élise,Research,analyst,mia@x.io\n", env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	base, stop := startServe(t, env)
	fake.users["U0ELI"] = "ÉLISE@ACME.TEST"
	if _, body := signedPost(t, base, "/slack/commands", slashBody("U0ELI", "balance", fake.apiURL()+"/respond"), nil); !strings.Contains(body, "200,000 credits") {
		t.Fatalf("first contact in another spelling: %s", body)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var slackID string
	if err := rawDB(t, env["TOKENPAY_DB"]).QueryRow(`SELECT slack_user_id FROM people WHERE email = 'Élise@acme.test'`).Scan(&slackID); err != nil || slackID != "U0ELI" {
		t.Errorf("linked Slack id %q (%v), want U0ELI", slackID, err)
	}
}
