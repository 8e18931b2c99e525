package connectors_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/connectors/anthropic"
	"github.com/tokenpay/tokenpay/ledger/connectors/openai"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

// exampleNow is just after the example files' buckets (2026-03-02, 09:00-13:00 UTC).
var exampleNow = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

type fixture struct {
	db    ledgertest.Store
	pol   *policy.Policy
	ing   *usage.Ingestor
	hub   *connectors.Hub
	now   time.Time
	waits []time.Duration
}

func newFixture(t *testing.T, people ...string) *fixture {
	t.Helper()
	db := ledgertest.Open(t)
	f := &fixture{db: db, pol: policy.Default(), now: exampleNow}
	db.SetNow(func() time.Time { return f.now })
	f.importPeople(t, people...)
	f.ing = &usage.Ingestor{Store: db, Now: func() time.Time { return f.now },
		Credits: func(model string, in, out int64) (int64, error) { return f.pol.WeightFor(model).Credits(in, out) },
		CreditsCached: func(model string, in, cached, out int64) (int64, error) {
			return f.pol.WeightFor(model).CreditsCached(in, cached, out)
		}}
	f.hub = &connectors.Hub{Store: db, Ingester: f.ing, Log: zerolog.Nop(), Maps: func(name string) connectors.Mapper {
		c := f.pol.Connector(name)
		return connectors.Mapper{Users: c.Users, APIKeys: c.APIKeys}
	}}
	return f
}

func (f *fixture) importPeople(t *testing.T, people ...string) {
	t.Helper()
	var recs []ledger.PersonRecord
	for i, e := range people {
		recs = append(recs, ledger.PersonRecord{Line: i + 2, Email: e, Name: e})
	}
	if len(recs) == 0 {
		return
	}
	if _, err := f.db.ImportPeople(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// client is the production client with its pauses recorded instead of slept.
func (f *fixture) client(c *connectors.Client) *connectors.Client {
	c.Sleep = func(_ context.Context, d time.Duration) error {
		f.waits = append(f.waits, d)
		return nil
	}
	return c
}

func (f *fixture) puller(name string, fetcher connectors.Fetcher) *connectors.Puller {
	return &connectors.Puller{Name: name, Fetcher: fetcher, Hub: f.hub, Now: func() time.Time { return f.now },
		Backfill: f.pol.Connectors.Backfill, Reread: f.pol.Connectors.Reread, Log: zerolog.Nop()}
}

func (f *fixture) spent(t *testing.T, email string) int64 {
	t.Helper()
	ctx := context.Background()
	p, err := f.db.PersonByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.db.Balance(ctx, p.ID, f.pol.PeriodStart(exampleNow), f.pol.PeriodEnd(exampleNow))
	if err != nil {
		t.Fatal(err)
	}
	return b.Spent
}

func readExample(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(spectest.Path(t, "examples/"+name))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// vendor is a local server speaking a vendor's documented wire format from the example
// files; handlers may be changed between runs.
type vendor struct {
	mu       sync.Mutex
	srv      *httptest.Server
	requests []*http.Request
	// fail, when set, answers the next requests with these statuses first (and a header).
	fail   []int
	header http.Header
	routes map[string]func(r *http.Request) any
}

func newVendor(t *testing.T, authOK func(r *http.Request) bool) *vendor {
	v := &vendor{routes: map[string]func(r *http.Request) any{}}
	v.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		v.requests = append(v.requests, r)
		var status int
		if len(v.fail) > 0 {
			status, v.fail = v.fail[0], v.fail[1:]
		}
		route := v.routes[r.URL.Path]
		header := v.header
		v.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if !authOK(r) {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"type":"authentication_error","message":"invalid x-api-key"}}`))
			return
		}
		if status != 0 {
			for k, vs := range header {
				w.Header()[k] = vs
			}
			w.WriteHeader(status)
			_, _ = w.Write([]byte(`{"error":{"message":"slow down"}}`))
			return
		}
		if route == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(route(r))
	}))
	t.Cleanup(v.srv.Close)
	return v
}

func (v *vendor) set(path string, h func(r *http.Request) any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.routes[path] = h
}

func (v *vendor) seen(path string) []*http.Request {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*http.Request
	for _, r := range v.requests {
		if r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

const openaiKey = "sk-admin-test"

// openaiServer serves the two usage pages and the user list of the examples.
func openaiServer(t *testing.T) (*vendor, map[string]any, map[string]any) {
	v := newVendor(t, func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer "+openaiKey })
	page1, page2 := readExample(t, "openai-usage-completions-page.json"), readExample(t, "openai-usage-completions-page2.json")
	users := readExample(t, "openai-organization-users.json")
	v.set("/v1/organization/usage/completions", func(r *http.Request) any {
		if r.URL.Query().Get("page") == page1["next_page"] {
			return page2
		}
		return page1
	})
	v.set("/v1/organization/users", func(*http.Request) any { return users })
	return v, page1, page2
}

func openaiFetcher(f *fixture, v *vendor) *openai.Fetcher {
	fe := openai.NewFetcher(v.srv.URL+"/v1", openaiKey)
	fe.Client = f.client(fe.Client)
	fe.Now = func() time.Time { return f.now }
	return fe
}

// The examples' totals with default weights (input, cached included, plus output).
const (
	annOpenAI = 51000 + 9100 + 13700 + 1830 + 5120 + 880
	bobOpenAI = 15400 + 2050 + 2320 + 2660
)

// TestOpenAIPull reads both pages (following next_page, after a 429 honouring Retry-After),
// maps user ids to emails through the user list, books each person's buckets, and a bucket
// that grows between two runs is booked as the difference only.
func TestOpenAIPull(t *testing.T) {
	f := newFixture(t, "ann@acme.test", "bob@acme.test")
	v, page1, _ := openaiServer(t)
	v.fail, v.header = []int{http.StatusTooManyRequests}, http.Header{"Retry-After": {"7"}}
	p := f.puller(ledger.ConnectorOpenAI, openaiFetcher(f, v))
	ctx := context.Background()
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.waits) != 1 || f.waits[0] != 7*time.Second {
		t.Errorf("waits %v, want one of 7s (Retry-After)", f.waits)
	}
	usageReqs := v.seen("/v1/organization/usage/completions")
	if len(usageReqs) != 3 { // 429, page 1, page 2
		t.Fatalf("%d usage requests, want 3", len(usageReqs))
	}
	q := usageReqs[1].URL.Query()
	if q.Get("bucket_width") != "1h" || strings.Join(q["group_by"], ",") != "user_id,api_key_id,model" ||
		q.Get("start_time") != "1771855200" || q.Get("end_time") != "1772460000" || q.Get("page") != "" {
		t.Errorf("page 1 query %v (want 7 days back from 2026-03-02T14:00Z)", q)
	}
	if got := usageReqs[2].URL.Query().Get("page"); got != page1["next_page"] {
		t.Errorf("page 2 asked with page=%q", got)
	}
	if got := f.spent(t, "ann@acme.test"); got != annOpenAI {
		t.Errorf("ann spent %d, want %d", got, annOpenAI)
	}
	if got := f.spent(t, "bob@acme.test"); got != bobOpenAI {
		t.Errorf("bob spent %d, want %d", got, bobOpenAI)
	}
	st, err := f.db.ConnectorState(ctx, ledger.ConnectorOpenAI)
	if err != nil || !st.Cursor.Equal(exampleNow) || st.LastError != "" {
		t.Fatalf("state %+v, %v", st, err)
	}

	// An hour later ann's first bucket has grown by 2,000 input and 300 output tokens.
	f.now = exampleNow.Add(time.Hour)
	first := page1["data"].([]any)[0].(map[string]any)["results"].([]any)[0].(map[string]any)
	first["input_tokens"] = 53000.0
	first["output_tokens"] = 9400.0
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	q = v.seen("/v1/organization/usage/completions")[3].URL.Query()
	if q.Get("start_time") != "1772373600" { // the cursor (14:00) less the 24 h reread window
		t.Errorf("second run started at %s, want 1772373600", q.Get("start_time"))
	}
	if got := f.spent(t, "ann@acme.test"); got != annOpenAI+2300 {
		t.Errorf("ann spent %d after the bucket grew, want %d", got, annOpenAI+2300)
	}
	if got := f.spent(t, "bob@acme.test"); got != bobOpenAI {
		t.Errorf("bob spent %d, want %d (unchanged)", got, bobOpenAI)
	}
	// A third run over the same totals books nothing.
	f.now = exampleNow.Add(2 * time.Hour)
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.spent(t, "ann@acme.test"); got != annOpenAI+2300 {
		t.Errorf("ann spent %d after an unchanged run, want %d", got, annOpenAI+2300)
	}
	stats, err := f.db.ConnectorStats(ctx, ledger.ConnectorOpenAI)
	if err != nil || stats.Events != 6 || stats.Credits != annOpenAI+2300+bobOpenAI {
		t.Errorf("stats %+v, %v; want 6 events (5 buckets and one difference)", stats, err)
	}
	// Down for three days: the next run reads from the cursor (less the reread window),
	// so nothing missed meanwhile is lost.
	f.now = exampleNow.Add(74 * time.Hour)
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := v.seen("/v1/organization/usage/completions")
	q = reqs[len(reqs)-2].URL.Query() // page 1 of the last run
	if want := exampleNow.Add(2*time.Hour - 24*time.Hour).Unix(); q.Get("start_time") != fmt.Sprint(want) || q.Get("end_time") != fmt.Sprint(f.now.Unix()) {
		t.Errorf("catch-up read %s..%s, want %d..%d", q.Get("start_time"), q.Get("end_time"), want, f.now.Unix())
	}
}

// TestOpenAIUnmappedUserQuarantinedThenReplayed: bob is in OpenAI's user list but not in the
// directory: his usage is quarantined, and replayed once the directory import adds him. A key
// without a user waits for connectors.openai.api_keys.
func TestOpenAIUnmappedUserQuarantinedThenReplayed(t *testing.T) {
	f := newFixture(t, "ann@acme.test")
	v, page1, _ := openaiServer(t)
	// One more result: a service key's usage, with no user.
	bucket := page1["data"].([]any)[0].(map[string]any)
	bucket["results"] = append(bucket["results"].([]any), map[string]any{"object": "organization.usage.completions.result",
		"input_tokens": 1000.0, "output_tokens": 10.0, "user_id": nil, "api_key_id": "key_svc", "model": "gpt-4o-mini-2024-07-18"})
	p := f.puller(ledger.ConnectorOpenAI, openaiFetcher(f, v))
	ctx := context.Background()
	out, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 waiting for an identity mapping") {
		t.Errorf("summary %q", out)
	}
	stats, err := f.db.ConnectorStats(ctx, ledger.ConnectorOpenAI)
	if err != nil || stats.Quarantined != 2 || stats.Unmapped["api_key:key_svc"] != 1 {
		t.Fatalf("stats %+v, %v; want bob's 2 buckets quarantined and key_svc unmapped", stats, err)
	}
	f.importPeople(t, "bob@acme.test", "ops@acme.test")
	if replayed, _, err := f.ing.ReplayQuarantine(ctx); err != nil || replayed != 2 {
		t.Fatalf("ReplayQuarantine = %d, %v; want 2", replayed, err)
	}
	if got := f.spent(t, "bob@acme.test"); got != bobOpenAI {
		t.Errorf("bob spent %d after the import, want %d", got, bobOpenAI)
	}
	f.pol.Connectors.OpenAI.APIKeys = map[string]string{"key_svc": "ops@acme.test"}
	if posted, waiting, err := f.hub.Replay(ctx, ledger.ConnectorOpenAI); err != nil || posted != 1 || waiting != 0 {
		t.Fatalf("Replay = %d, %d, %v; want 1, 0", posted, waiting, err)
	}
	if got := f.spent(t, "ops@acme.test"); got != 1010 {
		t.Errorf("ops spent %d, want 1010", got)
	}
}

// TestOpenAIErrors: a 401 fails the run at once with the variable to check, keeps the
// cursor and books nothing; 5xx answers are retried with a growing pause; an error that
// outlasts the retries is recorded and the next run reads the same span.
func TestOpenAIErrors(t *testing.T) {
	f := newFixture(t, "ann@acme.test", "bob@acme.test")
	v, _, _ := openaiServer(t)
	fe := openaiFetcher(f, v)
	fe.AdminKey = "sk-wrong"
	p := f.puller(ledger.ConnectorOpenAI, fe)
	ctx := context.Background()
	_, err := p.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "OPENAI_ADMIN_KEY") || !strings.Contains(err.Error(), "401") || !errors.Is(err, connectors.ErrVendor) {
		t.Fatalf("err = %v", err)
	}
	if len(v.seen("/v1/organization/usage/completions")) != 1 {
		t.Error("a 401 was retried")
	}
	st, _ := f.db.ConnectorState(ctx, ledger.ConnectorOpenAI)
	if !st.Cursor.IsZero() || !strings.Contains(st.LastError, "OPENAI_ADMIN_KEY") {
		t.Errorf("state after 401: %+v", st)
	}
	fe.AdminKey = openaiKey
	v.fail = []int{500, 502, 503, 500}
	if _, err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), "server error") {
		t.Fatalf("err after 4 server errors = %v", err)
	}
	if want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}; len(f.waits) != 3 || f.waits[0] != want[0] || f.waits[2] != want[2] {
		t.Errorf("waits %v, want %v", f.waits, want)
	}
	if got := f.spent(t, "ann@acme.test"); got != 0 {
		t.Errorf("ann spent %d after failed runs", got)
	}
	v.fail = []int{503}
	if _, err := p.Run(ctx); err != nil {
		t.Fatalf("a run after one 503: %v", err)
	}
	if got := f.spent(t, "ann@acme.test"); got != annOpenAI {
		t.Errorf("ann spent %d, want %d", got, annOpenAI)
	}
	st, _ = f.db.ConnectorState(ctx, ledger.ConnectorOpenAI)
	if st.LastError != "" || !st.LastOKAt.Equal(exampleNow) {
		t.Errorf("state after success: %+v", st)
	}
}

const anthropicKey = "sk-ant-admin01-test"

// anthropicUsers is GET /v1/organizations/users for the people the example's keys and
// accounts name (the documented shape: data, has_more, first_id, last_id), in two pages.
func anthropicUsers(r *http.Request) any {
	ann := map[string]any{"type": "user", "id": "user_01TestAnnTq7Vb3Xr9Lm2Ks5Hd", "email": "ann@acme.test", "name": "Ann", "role": "admin", "added_at": "2025-01-01T00:00:00Z"}
	bob := map[string]any{"type": "user", "id": "user_01TestBobPw4Ny8Gc2Fj6Re1Sa", "email": "bob@acme.test", "name": "Bob", "role": "user", "added_at": "2025-06-01T00:00:00Z"}
	if r.URL.Query().Get("after_id") == ann["id"] {
		return map[string]any{"data": []any{bob}, "has_more": false, "first_id": bob["id"], "last_id": bob["id"]}
	}
	return map[string]any{"data": []any{ann}, "has_more": true, "first_id": ann["id"], "last_id": ann["id"]}
}

// TestAnthropicPull reads the report (two pages), maps the account through the user list
// and the key through its creator, and books a grown bucket as the difference.
func TestAnthropicPull(t *testing.T) {
	f := newFixture(t, "ann@acme.test", "bob@acme.test")
	v := newVendor(t, func(r *http.Request) bool {
		return r.Header.Get("x-api-key") == anthropicKey && r.Header.Get("anthropic-version") == anthropic.APIVersion
	})
	page1 := readExample(t, "anthropic-usage-report-messages.json")
	// Page 2: the example's second bucket two hours later, as the end of the report.
	var page2 map[string]any
	raw, _ := json.Marshal(page1)
	_ = json.Unmarshal(raw, &page2)
	b := page2["data"].([]any)[1].(map[string]any)
	b["starting_at"], b["ending_at"] = "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"
	page2["data"], page2["has_more"], page2["next_page"] = []any{b}, false, nil
	v.set("/v1/organizations/usage_report/messages", func(r *http.Request) any {
		if r.URL.Query().Get("page") == page1["next_page"] {
			return page2
		}
		return page1
	})
	keys := readExample(t, "anthropic-api-keys.json")
	v.set("/v1/organizations/api_keys", func(*http.Request) any { return keys })
	v.set("/v1/organizations/users", anthropicUsers)
	v.fail, v.header = []int{http.StatusTooManyRequests}, http.Header{"Retry-After": {"3"}}
	fe := anthropic.NewFetcher(v.srv.URL, anthropicKey)
	fe.Client = f.client(fe.Client)
	p := f.puller(ledger.ConnectorAnthropic, fe)
	ctx := context.Background()
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := v.seen("/v1/organizations/usage_report/messages")
	if len(reqs) != 3 {
		t.Fatalf("%d report requests, want 3 (429, two pages)", len(reqs))
	}
	q := reqs[1].URL.Query()
	if q.Get("starting_at") != "2026-02-23T14:00:00Z" || q.Get("bucket_width") != "1h" || strings.Join(q["group_by[]"], ",") != "api_key_id,account_id,model" {
		t.Errorf("query %v", q)
	}
	if len(f.waits) != 1 || f.waits[0] != 3*time.Second {
		t.Errorf("waits %v, want 3s", f.waits)
	}
	// ann: key by creator; input = uncached + cache reads + both cache writes.
	ann := int64(18400+6200+41000+5300) + 2*(7300+2400+9800+1450)
	bob := int64(2600 + 900) // by account
	if got := f.spent(t, "ann@acme.test"); got != ann {
		t.Errorf("ann spent %d, want %d", got, ann)
	}
	if got := f.spent(t, "bob@acme.test"); got != bob {
		t.Errorf("bob spent %d, want %d", got, bob)
	}
	// Bob's bucket grows by 400 output tokens before the next run.
	f.now = exampleNow.Add(time.Hour)
	page1["data"].([]any)[0].(map[string]any)["results"].([]any)[1].(map[string]any)["output_tokens"] = 1300.0
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.spent(t, "bob@acme.test"); got != bob+400 {
		t.Errorf("bob spent %d after his bucket grew, want %d", got, bob+400)
	}
	if got := f.spent(t, "ann@acme.test"); got != ann {
		t.Errorf("ann spent %d, want %d (unchanged)", got, ann)
	}
}

// TestBookedDifferenceSurvivesACrash: a difference decided and queued but not yet posted
// (the process died in between) is posted by the next run, once; reading the same totals
// again queues nothing new.
func TestBookedDifferenceSurvivesACrash(t *testing.T) {
	f := newFixture(t, "ann@acme.test")
	ctx := context.Background()
	bucket := ledger.UsageBucket{Key: "1772442000|user-ann|key|gpt-4o", Identity: "user:user-ann",
		Event: ledger.UsageEvent{Email: "ann@acme.test", Model: "gpt-4o", InputTokens: 100, CachedInputTokens: 40, OutputTokens: 10,
			OccurredAt: time.Unix(1772442000, 0).UTC()}}
	if n, err := f.hub.BookBuckets(ctx, ledger.ConnectorOpenAI, []ledger.UsageBucket{bucket}); err != nil || n != 1 {
		t.Fatalf("BookBuckets = %d, %v", n, err)
	}
	// ... crash: nothing posted yet.
	if got := f.spent(t, "ann@acme.test"); got != 0 {
		t.Fatalf("spent %d before posting", got)
	}
	for range 2 {
		if n, err := f.hub.BookBuckets(ctx, ledger.ConnectorOpenAI, []ledger.UsageBucket{bucket}); err != nil || n != 0 {
			t.Fatalf("BookBuckets again = %d, %v; want 0", n, err)
		}
		if _, _, err := f.hub.Replay(ctx, ledger.ConnectorOpenAI); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.spent(t, "ann@acme.test"); got != 110 {
		t.Errorf("spent %d, want 110", got)
	}
	// The bucket shrinks in output and grows in input: only the growth is booked.
	bucket.Event.InputTokens, bucket.Event.OutputTokens = 150, 5
	if n, err := f.hub.BookBuckets(ctx, ledger.ConnectorOpenAI, []ledger.UsageBucket{bucket}); err != nil || n != 1 {
		t.Fatalf("BookBuckets grown = %d, %v", n, err)
	}
	if _, _, err := f.hub.Replay(ctx, ledger.ConnectorOpenAI); err != nil {
		t.Fatal(err)
	}
	if got := f.spent(t, "ann@acme.test"); got != 160 {
		t.Errorf("spent %d, want 160", got)
	}
	if _, err := f.db.UsageTxID(ctx, "openai:"+bucket.Key+":2"); err != nil {
		t.Errorf("the difference is not under revision 2: %v", err)
	}
}

// TestForgetDropsQueuedEvents: usage queued for a person who is then forgotten is dropped,
// not posted under the pseudonym later.
func TestForgetDropsQueuedEvents(t *testing.T) {
	f := newFixture(t, "ann@acme.test")
	ctx := context.Background()
	bucket := ledger.UsageBucket{Key: "k", Event: ledger.UsageEvent{Email: "ann@acme.test", Model: "m", InputTokens: 5, OccurredAt: exampleNow.Add(-time.Hour)}}
	if _, err := f.hub.BookBuckets(ctx, ledger.ConnectorOpenAI, []ledger.UsageBucket{bucket}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Forget(ctx, "ann@acme.test", "test"); err != nil {
		t.Fatal(err)
	}
	if pending, err := f.db.PendingUsage(ctx, ledger.ConnectorOpenAI); err != nil || len(pending) != 0 {
		t.Errorf("pending after forget: %+v, %v", pending, err)
	}
}

// TestAnthropicUnknownAccountWaitsForMapping: an account missing from the organisation's
// user list waits, listed as unmapped, until connectors.anthropic.users maps it; a 401 names
// ANTHROPIC_ADMIN_KEY.
func TestAnthropicUnknownAccountWaitsForMapping(t *testing.T) {
	f := newFixture(t, "ann@acme.test", "bob@acme.test")
	v := newVendor(t, func(r *http.Request) bool { return r.Header.Get("x-api-key") == anthropicKey })
	page := readExample(t, "anthropic-usage-report-messages.json")
	page["has_more"], page["next_page"] = false, nil
	v.set("/v1/organizations/usage_report/messages", func(*http.Request) any { return page })
	v.set("/v1/organizations/api_keys", func(*http.Request) any { return readExample(t, "anthropic-api-keys.json") })
	v.set("/v1/organizations/users", func(r *http.Request) any {
		users := anthropicUsers(r).(map[string]any)
		users["has_more"] = false // ann only: bob's account is unknown to this list
		return users
	})
	fe := anthropic.NewFetcher(v.srv.URL, "sk-ant-admin01-wrong")
	fe.Client = f.client(fe.Client)
	p := f.puller(ledger.ConnectorAnthropic, fe)
	ctx := context.Background()
	if _, err := p.Run(ctx); err == nil || !strings.Contains(err.Error(), "ANTHROPIC_ADMIN_KEY") {
		t.Fatalf("wrong key: %v", err)
	}
	fe.AdminKey = anthropicKey
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	stats, err := f.db.ConnectorStats(ctx, ledger.ConnectorAnthropic)
	if err != nil || stats.Unmapped["user:user_01TestBobPw4Ny8Gc2Fj6Re1Sa"] != 1 {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	f.pol.Connectors.Anthropic.Users = map[string]string{"user_01TestBobPw4Ny8Gc2Fj6Re1Sa": "bob@acme.test"}
	if _, err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.spent(t, "bob@acme.test"); got != 3500 {
		t.Errorf("bob spent %d, want 3500", got)
	}
}
