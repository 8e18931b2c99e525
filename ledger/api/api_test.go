package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// now is the fixed clock of every test here: inside November 2026, the default monthly period.
var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type fixture struct {
	db       ledgertest.Store
	srv      *httptest.Server
	key      string
	observed map[string]int
}

// newFixture serves the real API over a temp-file ledger holding ana (1,000 credits) and bo
// (none), with one valid API key.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	db.SetNow(func() time.Time { return now })
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "ana@example.com", Name: "Ana", SlackUserID: "U0ANA"},
		{Line: 3, Email: "bo@example.com", Name: "Bo"},
	}); err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	ana, err := db.PersonByEmail(ctx, "ana@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Grant(ctx, ledger.GrantInput{Key: "g-ana", PersonID: ana.ID, Kind: ledger.GrantBaseline, Amount: 1000,
		EffectiveAt: pol.PeriodStart(now), ExpiresAt: pol.PeriodEnd(now), Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	key, _, err := db.CreateAPIKey(ctx, "gateway", "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{db: db, key: key, observed: map[string]int{}}
	s := &api.Server{
		Store: db,
		Ingestor: &usage.Ingestor{Store: db, Now: func() time.Time { return now },
			Credits: func(model string, in, out int64) (int64, error) { return pol.WeightFor(model).Credits(in, out) }},
		Period:  func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) },
		Now:     func() time.Time { return now },
		Log:     zerolog.Nop(),
		Observe: func(status string, n int) { f.observed[status] += n },
	}
	mux := http.NewServeMux()
	s.Register(mux)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(t testing.TB, method, path, auth string, body io.Reader) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (f *fixture) postUsage(t testing.TB, body string) response {
	t.Helper()
	return f.do(t, http.MethodPost, "/api/v1/usage", "Bearer "+f.key, strings.NewReader(body))
}

// errorMessage checks that r is a JSON error answer and returns its message.
func errorMessage(t testing.TB, r response) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Fatalf("body %q is not {\"error\": \"...\"}: %v", r.body, err)
	}
	return e.Error
}

// postings counts posting rows through the export, the ledger's own view of itself.
func (f *fixture) postings(t testing.TB) int {
	t.Helper()
	var buf bytes.Buffer
	if err := f.db.ExportPostings(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	return strings.Count(buf.String(), "\n") - 1 // minus the header
}

func (f *fixture) quarantined(t testing.TB) int {
	t.Helper()
	q, err := f.db.Quarantined(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(q)
}

func event(id, who, model string, in, out int64, at time.Time) string {
	ident := `"email":"` + who + `"`
	if !strings.Contains(who, "@") {
		ident = `"slack_user_id":"` + who + `"`
	}
	return fmt.Sprintf(`{"id":%q,%s,"model":%q,"input_tokens":%d,"output_tokens":%d,"occurred_at":%q,"source":"gw"}`,
		id, ident, model, in, out, at.Format(time.RFC3339))
}

func batch(events ...string) string { return `{"events":[` + strings.Join(events, ",") + `]}` }

func TestUnauthorized(t *testing.T) {
	f := newFixture(t)
	revoked, _, err := f.db.CreateAPIKey(context.Background(), "old-gateway", "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RevokeAPIKey(context.Background(), "old-gateway", "cli:test"); err != nil {
		t.Fatal(err)
	}
	body := batch(event("e1", "ana@example.com", "m", 10, 0, now))
	tests := []struct {
		name, auth, challenge string
	}{
		{"no header", "", `Bearer realm="tokenpay"`},
		{"basic scheme", "Basic " + f.key, `Bearer realm="tokenpay"`},
		{"empty bearer", "Bearer ", `Bearer realm="tokenpay"`},
		{"wrong key", "Bearer tp_not-a-key", `Bearer realm="tokenpay", error="invalid_token"`},
		{"revoked key", "Bearer " + revoked, `Bearer realm="tokenpay", error="invalid_token"`},
	}
	for _, tc := range tests {
		for _, route := range []struct{ method, path string }{
			{http.MethodPost, "/api/v1/usage"},
			{http.MethodGet, "/api/v1/people/ana@example.com/balance"},
		} {
			t.Run(tc.name+" "+route.method, func(t *testing.T) {
				r := f.do(t, route.method, route.path, tc.auth, strings.NewReader(body))
				if r.status != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401; body %s", r.status, r.body)
				}
				if got := r.header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if msg := errorMessage(t, r); !strings.Contains(msg, "API key") {
					t.Errorf("message %q does not say what to fix", msg)
				}
			})
		}
	}
	// The scheme is case-insensitive (RFC 7235); the key itself is not.
	if r := f.do(t, http.MethodGet, "/api/v1/people/ana@example.com/balance", "bearer "+f.key, nil); r.status != http.StatusOK {
		t.Errorf("lower-case scheme: status %d, want 200", r.status)
	}
	if r := f.do(t, http.MethodGet, "/api/v1/people/ana@example.com/balance", "Bearer "+strings.ToUpper(f.key), nil); r.status != http.StatusUnauthorized {
		t.Errorf("upper-cased key: status %d, want 401", r.status)
	}
	if n := f.postings(t); n != 2 {
		t.Errorf("unauthorized requests changed the ledger: %d postings, want the grant's 2", n)
	}
}

func TestPostUsageBodyLimits(t *testing.T) {
	one := event("e1", "ana@example.com", "m", 10, 0, now)
	// padded returns a valid one-event batch of exactly size bytes.
	padded := func(size int) string {
		b := batch(one)
		return b[:len(b)-2] + strings.Repeat(" ", size-len(b)) + "]}"
	}
	events := func(n int) string {
		evs := make([]string, n)
		for i := range evs {
			evs[i] = event(fmt.Sprintf("n%d", i), "ana@example.com", "m", 1, 0, now)
		}
		return batch(evs...)
	}
	tests := []struct {
		name   string
		body   string
		status int
		msg    string // substring of the error message
	}{
		{"4 MiB exactly", padded(usage.MaxBodyBytes), http.StatusOK, ""},
		{"one byte over 4 MiB", padded(usage.MaxBodyBytes + 1), http.StatusRequestEntityTooLarge, "over 4 MiB"},
		{"over 4 MiB after the JSON value", batch(one) + strings.Repeat(" ", usage.MaxBodyBytes), http.StatusRequestEntityTooLarge, "over 4 MiB"},
		{"1000 events", events(1000), http.StatusOK, ""},
		{"1001 events", events(1001), http.StatusRequestEntityTooLarge, "at most 1,000 events"},
		{"not JSON", "hello", http.StatusBadRequest, "the body is not valid JSON (at character 1)"},
		{"truncated JSON", `{"events":[` + one, http.StatusBadRequest, "the body is not valid JSON (it ends too early)"},
		{"empty body", "", http.StatusBadRequest, `the body is empty; send {"events": [...]}`},
		{"array at the top", `[` + one + `]`, http.StatusBadRequest, `the body must be a JSON object like {"events": [...]}, not an array`},
		{"events not an array", `{"events":{}}`, http.StatusBadRequest, `"events" must be an array of event objects, not an object`},
		{"no events key", `{}`, http.StatusBadRequest, `needs an "events" array`},
		{"two JSON values", batch(one) + batch(one), http.StatusBadRequest, "one JSON object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := f.postings(t)
			r := f.postUsage(t, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %.200s", r.status, tc.status, r.body)
			}
			if tc.status == http.StatusOK {
				return
			}
			if msg := errorMessage(t, r); !strings.Contains(msg, tc.msg) {
				t.Errorf("message %q, want it to contain %q", msg, tc.msg)
			}
			if after := f.postings(t); after != before {
				t.Errorf("a refused body changed the ledger: %d postings, was %d", after, before)
			}
		})
	}
}

// TestPostUsageShapes: what a gateway adds is ignored, what tokenpay reads is checked,
// and every answer is a sentence without a Go type name (issue 16).
func TestPostUsageShapes(t *testing.T) {
	f := newFixture(t)
	at := now.Add(-time.Hour).Format(time.RFC3339)
	body := `{"events":[
		{"id":"x1","email":"ana@example.com","model":"m","input_tokens":10,"output_tokens":0,"occurred_at":"` + at + `","request_id":"req-1","latency_ms":812,"prompt":"do not keep me"},
		{"id":"x2","email":"ana@example.com","model":"m","input_tokens":"ten","occurred_at":"` + at + `"},
		{"id":"x3","email":"ana@example.com","model":"m","input_tokens":true,"occurred_at":"` + at + `"},
		{"id":"x4","email":5,"model":"m","occurred_at":"` + at + `"},
		"x5"]}`
	r := f.postUsage(t, body)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var got struct {
		Results []ledger.UsageResult `json:"results"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || len(got.Results) != 5 {
		t.Fatalf("%v %s", err, r.body)
	}
	want := []struct{ status, reason string }{
		{ledger.UsageAccepted, ""},
		{ledger.UsageRejected, `input_tokens must be a whole number from 0 to`},
		{ledger.UsageRejected, "input_tokens must be a number, not true or false"},
		{ledger.UsageRejected, "email must be text (a JSON string), not a number"},
		{ledger.UsageRejected, "each event must be a JSON object, not a string"},
	}
	for i, w := range want {
		if got.Results[i].Status != w.status || !strings.Contains(got.Results[i].Reason, w.reason) {
			t.Errorf("event %d: %+v, want %s %q", i+1, got.Results[i], w.status, w.reason)
		}
	}
	if strings.Contains(string(r.body), "do not keep me") {
		t.Error("the prompt came back")
	}
	for _, b := range []string{`[]`, `{"events":5}`, `{"events":"a"}`, `"x"`, `{"events":[1,2]}`} {
		r := f.postUsage(t, b)
		for _, goWord := range []string{"json:", "struct", "wireEvent", "RawMessage", "Go value", "unmarshal"} {
			if strings.Contains(string(r.body), goWord) {
				t.Errorf("%s: %d %s names %q", b, r.status, r.body, goWord)
			}
		}
	}
}

type balanceBody struct {
	Email       string    `json:"email"`
	Available   *int64    `json:"available"`
	Spent       *int64    `json:"spent"`
	Overage     *int64    `json:"overage"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

func (f *fixture) balance(t testing.TB, email string) balanceBody {
	t.Helper()
	r := f.do(t, http.MethodGet, "/api/v1/people/"+email+"/balance", "Bearer "+f.key, nil)
	if r.status != http.StatusOK {
		t.Fatalf("balance %s: status %d %s", email, r.status, r.body)
	}
	var b balanceBody
	if err := json.Unmarshal(r.body, &b); err != nil {
		t.Fatal(err)
	}
	if b.Available == nil || b.Spent == nil || b.Overage == nil {
		t.Fatalf("balance body %s lacks available, spent or overage", r.body)
	}
	return b
}

func TestPostUsageResults(t *testing.T) {
	f := newFixture(t)
	body := batch(
		event("a1", "ana@example.com", "gpt-4o", 300, 100, now.Add(-time.Hour)), // 400 credits
		event("a1", "ana@example.com", "gpt-4o", 300, 100, now.Add(-time.Hour)), // same event again in the batch
		event("a2", "U0ANA", "gpt-4o", 500, 0, now),                             // by Slack id: 500 credits
		event("c1", "carl@example.com", "gpt-4o", 50, 0, now),                   // not in the directory yet
		`{"id":"bad1","email":"ana@example.com","model":"m","input_tokens":-1,"occurred_at":"2026-11-27T10:00:00Z"}`,
		event("late", "ana@example.com", "gpt-4o", 1, 0, now.Add(time.Hour)),
		event("a3", "ana@example.com", "gpt-4o", 1, 0, now.Add(-time.Minute)),
		event("a3", "ana@example.com", "gpt-4o", 2, 0, now.Add(-time.Minute)), // same id, different content
	)
	type result struct {
		ID, Status, Reason string
		Credits            int64
	}
	want := []result{
		{"a1", ledger.UsageAccepted, "", 400},
		{"a1", ledger.UsageDuplicate, "", 0},
		{"a2", ledger.UsageAccepted, "", 500},
		{"c1", ledger.UsageQuarantined, "no person with email carl@example.com in the directory", 0},
		{"bad1", ledger.UsageRejected, "input_tokens must be a whole number", 0},
		{"late", ledger.UsageRejected, "occurred_at is in the future", 0},
		{"a3", ledger.UsageAccepted, "", 1},
		{"a3", ledger.UsageRejected, "event id appears twice in the batch with different content", 0},
	}
	check := func(t *testing.T, r response, want []result, counts [4]int) {
		t.Helper()
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var got struct {
			Results []struct {
				ID      string `json:"id"`
				Status  string `json:"status"`
				Reason  string `json:"reason"`
				Credits int64  `json:"credits"`
			} `json:"results"`
			Accepted, Duplicates, Quarantined, Rejected int
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Results) != len(want) {
			t.Fatalf("%d results, want %d: %s", len(got.Results), len(want), r.body)
		}
		for i, w := range want {
			g := got.Results[i]
			if g.ID != w.ID || g.Status != w.Status || !strings.Contains(g.Reason, w.Reason) || (w.Reason == "") != (g.Reason == "") || g.Credits != w.Credits {
				t.Errorf("result %d = %+v, want %+v", i, g, w)
			}
		}
		if c := [4]int{got.Accepted, got.Duplicates, got.Quarantined, got.Rejected}; c != counts {
			t.Errorf("accepted, duplicates, quarantined, rejected = %v, want %v", c, counts)
		}
	}
	check(t, f.postUsage(t, body), want, [4]int{3, 1, 1, 3})
	if want := map[string]int{ledger.UsageAccepted: 3, ledger.UsageDuplicate: 1, ledger.UsageQuarantined: 1, ledger.UsageRejected: 3}; !equalCounts(f.observed, want) {
		t.Errorf("observed %v, want %v", f.observed, want)
	}
	b := f.balance(t, "ana@example.com")
	if *b.Spent != 901 || *b.Available != 99 || *b.Overage != 0 {
		t.Fatalf("after the first batch: available %d spent %d overage %d, want 99 901 0", *b.Available, *b.Spent, *b.Overage)
	}

	// The gateway retries the whole batch: nothing is counted twice, and a3 reused with
	// other content is refused against the stored event.
	again := slices.Clone(want)
	again[0] = result{"a1", ledger.UsageDuplicate, "", 0}
	again[2] = result{"a2", ledger.UsageDuplicate, "", 0}
	again[6] = result{"a3", ledger.UsageDuplicate, "", 0}
	again[7] = result{"a3", ledger.UsageRejected, "event id was already used for a different event", 0}
	check(t, f.postUsage(t, body), again, [4]int{0, 4, 1, 3})
	if b2 := f.balance(t, "ana@example.com"); *b2.Spent != *b.Spent || *b2.Available != *b.Available {
		t.Fatalf("a repeated batch moved the balance: %+v, was %+v", b2, b)
	}
	if n := f.quarantined(t); n != 1 {
		t.Errorf("%d quarantined events, want carl's one (kept once)", n)
	}

	// Spending past the balance goes to overage and is kept.
	check(t, f.postUsage(t, batch(event("a4", "ana@example.com", "gpt-4o", 150, 0, now))),
		[]result{{"a4", ledger.UsageAccepted, "", 150}}, [4]int{1, 0, 0, 0})
	b = f.balance(t, "ana@example.com")
	if *b.Spent != 1051 || *b.Available != 0 || *b.Overage != 51 {
		t.Fatalf("after overspending: available %d spent %d overage %d, want 0 1051 51", *b.Available, *b.Spent, *b.Overage)
	}
	if v, err := f.db.Verify(context.Background()); err != nil || len(v) > 0 {
		t.Fatalf("verify: %v %v", err, v)
	}
}

func equalCounts(got, want map[string]int) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return len(got) == len(want)
}

func TestQuarantinedUsageReplayedWhenPersonArrives(t *testing.T) {
	f := newFixture(t)
	r := f.postUsage(t, batch(event("c1", "carl@example.com", "m", 70, 0, now.Add(-time.Hour))))
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"status":"quarantined"`) {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	ctx := context.Background()
	if _, err := f.db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "carl@example.com", Name: "Carl"}}); err != nil {
		t.Fatal(err)
	}
	ing := &usage.Ingestor{Store: f.db, Now: func() time.Time { return now },
		Credits: func(_ string, in, out int64) (int64, error) { return in + out, nil }}
	replayed, waiting, err := ing.ReplayQuarantine(ctx)
	if err != nil || replayed != 1 || waiting != 0 {
		t.Fatalf("replay: %d replayed, %d waiting, %v; want 1, 0", replayed, waiting, err)
	}
	if b := f.balance(t, "carl@example.com"); *b.Spent != 70 || *b.Overage != 70 {
		t.Errorf("carl: spent %d overage %d, want 70 70", *b.Spent, *b.Overage)
	}
	// The gateway's retry of the same event is now a duplicate, not a second charge.
	r = f.postUsage(t, batch(event("c1", "carl@example.com", "m", 70, 0, now.Add(-time.Hour))))
	if !strings.Contains(string(r.body), `"status":"duplicate"`) {
		t.Errorf("retry after replay: %s", r.body)
	}
	if n := f.quarantined(t); n != 0 {
		t.Errorf("%d events still quarantined", n)
	}
}

func TestGetBalance(t *testing.T) {
	f := newFixture(t)
	if r := f.postUsage(t, batch(event("a1", "ana@example.com", "m", 250, 0, now))); r.status != http.StatusOK {
		t.Fatalf("post usage: %d %s", r.status, r.body)
	}
	for _, email := range []string{"ana@example.com", "ANA@Example.com", "ana%40example.com"} {
		r := f.do(t, http.MethodGet, "/api/v1/people/"+email+"/balance", "Bearer "+f.key, nil)
		if r.status != http.StatusOK {
			t.Fatalf("%s: status %d %s", email, r.status, r.body)
		}
		var fields map[string]any
		if err := json.Unmarshal(r.body, &fields); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"email": "ana@example.com", "available": 750.0, "spent": 250.0, "overage": 0.0,
			"period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z"}
		if fmt.Sprint(fields) != fmt.Sprint(want) {
			t.Errorf("%s: body %v, want %v", email, fields, want)
		}
	}

	r := f.do(t, http.MethodGet, "/api/v1/people/nobody@example.com/balance", "Bearer "+f.key, nil)
	if r.status != http.StatusNotFound {
		t.Fatalf("unknown email: status %d, want 404", r.status)
	}
	if msg := errorMessage(t, r); !strings.Contains(msg, "no person with that email") {
		t.Errorf("unknown email: message %q", msg)
	}
	if r := f.do(t, http.MethodGet, "/api/v1/people/ana@example.com/balance", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("no key: status %d, want 401", r.status)
	}
}

// TestLedgerUnavailable checks that a storage failure is a 503 with a JSON error, not a
// panic and not a success.
func TestLedgerUnavailable(t *testing.T) {
	f := newFixture(t)
	f.db.Close()
	for _, r := range []response{
		f.postUsage(t, batch(event("a1", "ana@example.com", "m", 1, 0, now))),
		f.do(t, http.MethodGet, "/api/v1/people/ana@example.com/balance", "Bearer "+f.key, nil),
	} {
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503: %s", r.status, r.body)
		}
		errorMessage(t, r)
	}
}

// The usage API answers the time rules with a code a gateway can act on, from the same
// ingestion path as `usage import`: too late (a period closed beyond the grace window) and
// too far in the future.
func TestPostUsageTimeCodes(t *testing.T) {
	f := newFixture(t)
	body := batch(
		event("old", "ana@example.com", "gpt-4o", 1, 0, time.Date(2026, 10, 28, 12, 0, 0, 0, time.UTC)),
		event("ahead", "ana@example.com", "gpt-4o", 1, 0, now.Add(6*time.Minute)),
		event("fine", "ana@example.com", "gpt-4o", 1, 0, now.Add(5*time.Minute)),
	)
	r := f.postUsage(t, body)
	var got struct {
		Results []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
			Code   string `json:"code"`
		} `json:"results"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK {
		t.Fatalf("%d %s %v", r.status, r.body, err)
	}
	want := []string{"old rejected too_late", "ahead rejected occurred_at_in_future", "fine accepted "}
	for i, w := range want {
		if i >= len(got.Results) || got.Results[i].ID+" "+got.Results[i].Status+" "+got.Results[i].Code != w {
			t.Errorf("results %s, want %v", r.body, want)
			break
		}
	}
}
