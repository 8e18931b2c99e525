package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

// exampleNow is just after the example files' calls (2026-03-02, 09:00-13:00 UTC).
var exampleNow = time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)

type connFixture struct {
	db  ledgertest.Store
	srv *httptest.Server
	key string
	pol *policy.Policy
	hub *connectors.Hub
	ing *usage.Ingestor
}

// newConnFixture serves the real API with the push connectors over a temp-file ledger whose
// directory holds the people of the examples (ann and bob), under pol (nil: the defaults).
func newConnFixture(t testing.TB, pol *policy.Policy, people ...string) *connFixture {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	db.SetNow(func() time.Time { return exampleNow })
	if pol == nil {
		pol = policy.Default()
	}
	var recs []ledger.PersonRecord
	for i, email := range people {
		recs = append(recs, ledger.PersonRecord{Line: i + 2, Email: email, Name: email})
	}
	if len(recs) > 0 {
		if _, err := db.ImportPeople(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	key, _, err := db.CreateAPIKey(ctx, "gateway", "cli:test")
	if err != nil {
		t.Fatal(err)
	}
	ing := &usage.Ingestor{Store: db, Now: func() time.Time { return exampleNow },
		Credits: func(model string, in, out int64) (int64, error) { return pol.WeightFor(model).Credits(in, out) },
		CreditsCached: func(model string, in, cached, out int64) (int64, error) {
			return pol.WeightFor(model).CreditsCached(in, cached, out)
		}}
	hub := &connectors.Hub{Store: db, Ingester: ing, Log: zerolog.Nop(), Maps: func(name string) connectors.Mapper {
		c := pol.Connector(name)
		return connectors.Mapper{Users: c.Users, APIKeys: c.APIKeys}
	}}
	s := &api.Server{Store: db, Ingestor: ing, Connectors: hub, Now: func() time.Time { return exampleNow }, Log: zerolog.Nop(),
		Period: func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) }}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &connFixture{db: db, srv: srv, key: key, pol: pol, hub: hub, ing: ing}
}

func (f *connFixture) post(t testing.TB, path, contentType string, body []byte, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.key)
	req.Header.Set("Content-Type", contentType)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, buf.Bytes()
}

// spent is what a person has spent in the example's period, in credits.
func (f *connFixture) spent(t testing.TB, email string) int64 {
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

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(spectest.Path(t, "examples/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// litellm posts body as LiteLLM does (every log_format as application/json) and decodes the
// answer.
func (f *connFixture) litellm(t testing.TB, body []byte) api.ConnectorResponse {
	t.Helper()
	status, _, out := f.post(t, "/api/v1/usage/litellm", "application/json", body)
	return connectorResponse(t, status, out)
}

func connectorResponse(t testing.TB, status int, body []byte) api.ConnectorResponse {
	t.Helper()
	if status != http.StatusOK {
		t.Fatalf("status %d: %s", status, body)
	}
	var r api.ConnectorResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return r
}

func compact(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLiteLLMExampleBillsDefaultWeights: the example array bills ann 1,552 and bob 3,055
// credits (input, cached included, plus output) and nothing for the failed call; the same
// logs again, as an array, as ndjson or one by one, change nothing.
func TestLiteLLMExampleBillsDefaultWeights(t *testing.T) {
	array, ndjson := example(t, "litellm-generic-api-json-array.json"), example(t, "litellm-generic-api-ndjson.txt")
	for _, first := range []struct {
		name string
		body []byte
	}{{"json_array", compact(t, array)}, {"ndjson", ndjson}} {
		t.Run(first.name+" first", func(t *testing.T) {
			f := newConnFixture(t, nil, "ann@acme.test", "bob@acme.test")
			// LiteLLM sends every log_format as application/json.
			r := f.litellm(t, first.body)
			if r.Accepted != 2 || r.Ignored != 1 || r.Rejected != 0 || len(r.Results) != 3 {
				t.Fatalf("first post: %+v", r)
			}
			if r.Results[0].Credits != 1552 || r.Results[1].Credits != 3055 || r.Results[2].Status != connectors.Ignored {
				t.Errorf("results = %+v", r.Results)
			}
			check := func(when string) {
				t.Helper()
				if got := f.spent(t, "ann@acme.test"); got != 1552 {
					t.Errorf("%s: ann spent %d, want 1552", when, got)
				}
				if got := f.spent(t, "bob@acme.test"); got != 3055 {
					t.Errorf("%s: bob spent %d, want 3055", when, got)
				}
			}
			check("after the first post")
			singles := bytes.Split(ndjson, []byte("\n"))
			for i, again := range append([][]byte{array, ndjson}, singles...) {
				r := f.litellm(t, again)
				if r.Accepted != 0 || r.Rejected != 0 {
					t.Errorf("repeat %d: %+v", i, r)
				}
			}
			check("after repeats")
			stats, err := f.db.ConnectorStats(context.Background(), ledger.ConnectorLiteLLM)
			if err != nil {
				t.Fatal(err)
			}
			if stats.Events != 2 || stats.Credits != 1552+3055 {
				t.Errorf("stats = %+v, want 2 events, 4607 credits", stats)
			}
		})
	}
}

// TestLiteLLMCachedInputWeight: a model weight with cached_input prices bob's 1,800 cached
// prompt tokens apart; the rest of the input and the output keep their weights.
func TestLiteLLMCachedInputWeight(t *testing.T) {
	pol := policy.Default()
	pol.Models.Weights = map[string]policy.Weight{"claude-sonnet-4-5": {InputMilli: 3000, OutputMilli: 15000, CachedInputMilli: 300, CachedSet: true}}
	f := newConnFixture(t, pol, "ann@acme.test", "bob@acme.test")
	f.litellm(t, example(t, "litellm-generic-api-json-array.json"))
	// (2210-1800)*3 + 1800*0.3 + 845*15 = 1230 + 540 + 12675
	if got := f.spent(t, "bob@acme.test"); got != 14445 {
		t.Errorf("bob spent %d, want 14445", got)
	}
	if got := f.spent(t, "ann@acme.test"); got != 1552 {
		t.Errorf("ann spent %d, want 1552 (default weight)", got)
	}
}

// litellmObject is a minimal success payload for one user.
func litellmObject(id string, meta map[string]any, endUser string) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "status": "success", "model": "gpt-4o", "prompt_tokens": 100,
		"completion_tokens": 20, "startTime": 1772442915.2, "end_user": endUser, "metadata": meta})
	return b
}

// TestLiteLLMUnmappedUserWaitsForMapping: an event naming only an end-user id nobody maps is
// kept (quarantined for the gateway), shown as unmapped, and posted once the policy maps it;
// an email LiteLLM knows but the directory does not is quarantined and replayed after the
// directory import.
func TestLiteLLMUnmappedUserWaitsForMapping(t *testing.T) {
	f := newConnFixture(t, nil, "ann@acme.test")
	ctx := context.Background()
	body := append(append(litellmObject("c-1", map[string]any{"user_api_key_user_id": nil}, "cust-4711"), '\n'),
		litellmObject("c-2", map[string]any{"user_api_key_user_email": "newcomer@acme.test"}, "")...)
	r := f.litellm(t, body)
	if r.Quarantined != 2 || !strings.Contains(r.Results[0].Reason, "connectors.litellm.users") {
		t.Fatalf("response %+v", r)
	}
	stats, err := f.db.ConnectorStats(ctx, ledger.ConnectorLiteLLM)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Unmapped["user:cust-4711"] != 1 || stats.Quarantined != 1 {
		t.Errorf("stats = %+v", stats)
	}
	// Still nobody: replay keeps it waiting.
	if posted, waiting, err := f.hub.Replay(ctx, ledger.ConnectorLiteLLM); err != nil || posted != 0 || waiting != 1 {
		t.Fatalf("Replay = %d, %d, %v; want 0, 1", posted, waiting, err)
	}
	f.pol.Connectors.LiteLLM.Users = map[string]string{"cust-4711": "ann@acme.test"}
	if posted, waiting, err := f.hub.Replay(ctx, ledger.ConnectorLiteLLM); err != nil || posted != 1 || waiting != 0 {
		t.Fatalf("Replay after mapping = %d, %d, %v; want 1, 0", posted, waiting, err)
	}
	if got := f.spent(t, "ann@acme.test"); got != 120 {
		t.Errorf("ann spent %d, want 120", got)
	}
	if _, err := f.db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "newcomer@acme.test", Name: "New"}}); err != nil {
		t.Fatal(err)
	}
	if replayed, _, err := f.ing.ReplayQuarantine(ctx); err != nil || replayed != 1 {
		t.Fatalf("ReplayQuarantine = %d, %v; want 1", replayed, err)
	}
	if got := f.spent(t, "newcomer@acme.test"); got != 120 {
		t.Errorf("newcomer spent %d, want 120", got)
	}
}

func TestLiteLLMBadRequests(t *testing.T) {
	f := newConnFixture(t, nil, "ann@acme.test")
	for _, tt := range []struct {
		name, body string
		want       int
	}{
		{"not json", "hello", http.StatusBadRequest},
		{"empty", "", http.StatusBadRequest},
		{"a number", "42", http.StatusBadRequest},
		{"broken second line", `{"id":"a"}` + "\n{", http.StatusBadRequest},
	} {
		if status, _, body := f.post(t, "/api/v1/usage/litellm", "application/json", []byte(tt.body)); status != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, status, body, tt.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/usage/litellm", strings.NewReader("[]"))
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a key: %d, want 401", res.StatusCode)
	}
	// One bad object is rejected alone.
	r := f.litellm(t, []byte(`[{"id":"x","status":"success","model":"m","prompt_tokens":-5,"startTime":1772442915,"metadata":{"user_api_key_user_email":"ann@acme.test"}},`+
		string(litellmObject("ok-1", map[string]any{"user_api_key_user_email": "ann@acme.test"}, ""))+`]`))
	if r.Rejected != 1 || r.Accepted != 1 || !strings.Contains(r.Results[0].Reason, "prompt_tokens") {
		t.Errorf("response %+v", r)
	}
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestOTLPExampleTraces: the example export, as JSON and as protobuf, gzipped or not, bills
// ann (user.email) 1,552 and bob (enduser.id) 3,055 credits once.
func TestOTLPExampleTraces(t *testing.T) {
	js := example(t, "otlp-genai-traces.json")
	td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(js)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, ct string
		body     []byte
		gzip     bool
	}{
		{"json", "application/json", js, false},
		{"protobuf gzip", "application/x-protobuf", pb, true},
		{"json gzip", "application/json", js, true},
		{"protobuf", "application/x-protobuf", pb, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newConnFixture(t, nil, "ann@acme.test", "bob@acme.test")
			for range 2 {
				body, hdr := tt.body, []string{}
				if tt.gzip {
					body, hdr = gz(t, body), []string{"Content-Encoding", "gzip"}
				}
				status, h, out := f.post(t, "/v1/traces", tt.ct, body, hdr...)
				if status != http.StatusOK || h.Get("Content-Type") != map[bool]string{true: "application/json", false: "application/x-protobuf"}[tt.ct == "application/json"] {
					t.Fatalf("status %d %q: %s", status, h.Get("Content-Type"), out)
				}
				if tt.ct == "application/json" && string(out) != "{}" {
					t.Errorf("body %s, want {} (all accepted)", out)
				}
			}
			if got := f.spent(t, "ann@acme.test"); got != 1552 {
				t.Errorf("ann spent %d, want 1552", got)
			}
			if got := f.spent(t, "bob@acme.test"); got != 3055 {
				t.Errorf("bob spent %d, want 3055", got)
			}
			stats, err := f.db.ConnectorStats(context.Background(), ledger.ConnectorOTLP)
			if err != nil || stats.Events != 2 {
				t.Errorf("stats %+v, %v", stats, err)
			}
		})
	}
}

func TestOTLPBadRequests(t *testing.T) {
	f := newConnFixture(t, nil, "ann@acme.test")
	for _, tt := range []struct {
		name, ct string
		body     []byte
		hdr      []string
		want     int
	}{
		{"text", "text/plain", []byte("x"), nil, http.StatusUnsupportedMediaType},
		{"bad json", "application/json", []byte("{"), nil, http.StatusBadRequest},
		{"bad protobuf", "application/x-protobuf", []byte{0xff, 0xff}, nil, http.StatusBadRequest},
		{"not gzip", "application/json", []byte("{}"), []string{"Content-Encoding", "gzip"}, http.StatusBadRequest},
		{"br", "application/json", []byte("{}"), []string{"Content-Encoding", "br"}, http.StatusUnsupportedMediaType},
	} {
		if status, _, body := f.post(t, "/v1/traces", tt.ct, tt.body, tt.hdr...); status != tt.want {
			t.Errorf("%s: status %d (%s), want %d", tt.name, status, body, tt.want)
		}
	}
	// A gzip bomb is cut off at the limit.
	big := gz(t, bytes.Repeat([]byte(" "), 17<<20))
	if status, _, _ := f.post(t, "/v1/traces", "application/json", big, "Content-Encoding", "gzip"); status != http.StatusRequestEntityTooLarge {
		t.Errorf("gzip bomb: %d, want 413", status)
	}
}
