package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenpay/tokenpay/manifest/spectest"
)

const connectorPeople = `email,name,team,role,manager_email
ann@acme.test,Ann,Platform,engineer,
bob@acme.test,Bob,Data,analyst,
`

// connectorEnv is a ledger with ann and bob and a gateway API key.
func connectorEnv(t *testing.T) (map[string]string, string) {
	t.Helper()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db")}
	if code, _, errOut := runCLI(t, connectorPeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	code, out, _ := runCLI(t, "", env, "apikey", "create", "gateway")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 {
		t.Fatalf("apikey: %s", out)
	}
	return env, lines[len(lines)-1]
}

func spentVia(t *testing.T, base, key, email string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/people/"+email+"/balance", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b struct{ Spent int64 }
	if err := json.NewDecoder(res.Body).Decode(&b); err != nil || res.StatusCode != 200 {
		t.Fatalf("balance of %s: %d %v", email, res.StatusCode, err)
	}
	return b.Spent
}

// TestOTLPExporterToServe: the OpenTelemetry Go SDK's own otlptracehttp exporter (a client no
// one here wrote) sends GenAI spans to a running serve, in protobuf with gzip and in JSON;
// each model call is billed once to its person, and other spans are ignored.
func TestOTLPExporterToServe(t *testing.T) {
	env, key := connectorEnv(t)
	base, stop := startServe(t, env)
	at, _ := time.Parse(time.RFC3339, e2eNow)
	send := func(opts ...otlptracehttp.Option) {
		t.Helper()
		ctx := context.Background()
		exp, err := otlptracehttp.New(ctx, append([]otlptracehttp.Option{otlptracehttp.WithEndpointURL(base + "/v1/traces"),
			otlptracehttp.WithHeaders(map[string]string{"Authorization": "Bearer " + key}),
			otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false})}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "acme-support-bot"), attribute.String("enduser.id", "bob@acme.test"))))
		tr := tp.Tracer("acme.genai.client")
		root, rootSpan := tr.Start(ctx, "handle ticket", trace.WithTimestamp(at.Add(-time.Minute)))
		_, chat := tr.Start(root, "chat gpt-4o", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at.Add(-50*time.Second)),
			trace.WithAttributes(attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.provider.name", "openai"),
				attribute.String("gen_ai.request.model", "gpt-4o"), attribute.String("gen_ai.response.model", "gpt-4o-2024-08-06"),
				attribute.Int64("gen_ai.usage.input_tokens", 1240), attribute.Int64("gen_ai.usage.output_tokens", 312),
				attribute.String("user.email", "ann@acme.test")))
		chat.End(trace.WithTimestamp(at.Add(-48 * time.Second)))
		// No user on the span: the resource's enduser.id names bob.
		_, chat2 := tr.Start(root, "chat claude-sonnet-4-5", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at.Add(-40*time.Second)),
			trace.WithAttributes(attribute.String("gen_ai.operation.name", "chat"), attribute.String("gen_ai.system", "anthropic"),
				attribute.String("gen_ai.request.model", "claude-sonnet-4-5"),
				attribute.Int64("gen_ai.usage.input_tokens", 2210), attribute.Int64("gen_ai.usage.cache_read.input_tokens", 1800),
				attribute.Int64("gen_ai.usage.output_tokens", 845)))
		chat2.End(trace.WithTimestamp(at.Add(-30 * time.Second)))
		rootSpan.End(trace.WithTimestamp(at.Add(-20 * time.Second)))
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("the exporter failed: %v", err)
		}
	}
	send(otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if a, b := spentVia(t, base, key, "ann@acme.test"), spentVia(t, base, key, "bob@acme.test"); a != 1552 || b != 3055 {
		t.Fatalf("after protobuf: ann %d, bob %d; want 1552, 3055", a, b)
	}
	send(otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	if a, b := spentVia(t, base, key, "ann@acme.test"), spentVia(t, base, key, "bob@acme.test"); a != 2*1552 || b != 2*3055 {
		t.Fatalf("after JSON (new spans): ann %d, bob %d; want %d, %d", a, b, 2*1552, 2*3055)
	}
	// The example export (calls of 2026-03-02) is months late: the ledger's time rules reject
	// its spans, and the exporter is told so in partial_success.
	js, err := os.ReadFile(spectest.Path(t, "examples/otlp-genai-traces.json"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/traces", strings.NewReader(string(js)))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var partial struct {
		PartialSuccess struct {
			RejectedSpans string `json:"rejectedSpans"`
			ErrorMessage  string `json:"errorMessage"`
		} `json:"partialSuccess"`
	}
	if err := json.NewDecoder(res.Body).Decode(&partial); err != nil || res.StatusCode != 200 || partial.PartialSuccess.RejectedSpans != "2" ||
		!strings.Contains(partial.PartialSuccess.ErrorMessage, "otlp:4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7") {
		t.Errorf("example export: %d %+v %v", res.StatusCode, partial, err)
	}
	res.Body.Close()
	res, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(metrics), `tokenpay_connector_events_total{connector="otlp",status="accepted"} 4`) ||
		!strings.Contains(string(metrics), `tokenpay_connector_events_total{connector="otlp",status="rejected"} 2`) {
		t.Errorf("metrics lack the otlp counts:\n%s", grepLines(string(metrics), "tokenpay_connector"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", env, "connectors")
	if code != 0 || !strings.Contains(out, "otlp — push") || !strings.Contains(out, "4 events, 9,214 credits") {
		t.Errorf("connectors: %d\n%s%s", code, out, errOut)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPullOpenAIJob runs `tokenpay jobs run pull-openai` against a local server speaking
// OpenAI's documented format (OPENAI_BASE_URL), then `tokenpay connectors` shows the run,
// the cursor and what was booked; without a key the job says how to configure it.
func TestPullOpenAIJob(t *testing.T) {
	env, _ := connectorEnv(t)
	env["TOKENPAY_NOW"] = "2026-03-02T14:00:00Z"
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "pull-openai")
	if code != 0 || !strings.Contains(out, "not configured: set OPENAI_ADMIN_KEY") {
		t.Fatalf("unconfigured: %d %s %s", code, out, errOut)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(spectest.Path(t, "examples/"+name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	page1, page2, users := read("openai-usage-completions-page.json"), read("openai-usage-completions-page2.json"), read("openai-organization-users.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer sk-admin-e2e" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/organization/users":
			_, _ = w.Write(users)
		case r.URL.Path == "/v1/organization/usage/completions" && r.URL.Query().Get("page") != "":
			_, _ = w.Write(page2)
		case r.URL.Path == "/v1/organization/usage/completions":
			_, _ = w.Write(page1)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	env["OPENAI_BASE_URL"] = srv.URL + "/v1"
	env["OPENAI_ADMIN_KEY"] = "sk-wrong"
	env["TOKENPAY_NOW"] = "2026-03-02T14:07:00Z"
	if code, _, errOut := runCLI(t, "", env, "jobs", "run", "pull-openai"); code != 1 || !strings.Contains(errOut, "check OPENAI_ADMIN_KEY") {
		t.Fatalf("wrong key: %d %s", code, errOut)
	}
	env["OPENAI_ADMIN_KEY"] = "sk-admin-e2e"
	env["TOKENPAY_NOW"] = "2026-03-02T15:07:00Z"
	code, out, errOut = runCLI(t, "", env, "jobs", "run", "pull-openai")
	if code != 0 || !strings.Contains(out, "5 new or grown, 5 events posted") {
		t.Fatalf("pull: %d %s %s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", env, "connectors", "--json")
	var list []connectorJSON
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 {
		t.Fatalf("connectors --json: %d %s", code, out)
	}
	o := list[2]
	if o.Name != "openai" || !o.Configured || o.Events != 5 || o.Credits != 81630+22430 || o.Cursor == nil || o.LastError != "" {
		t.Errorf("openai connector: %+v", o)
	}
	code, out, _ = runCLI(t, "", env, "connectors")
	if code != 0 || !strings.Contains(out, "openai — pull: job pull-openai (7 * * * *) reads "+srv.URL+"/v1") || !strings.Contains(out, "104,060 credits") {
		t.Errorf("connectors:\n%s", out)
	}
	// An operator's shell without the key still learns that serve runs the job.
	delete(env, "OPENAI_ADMIN_KEY")
	if code, out, _ = runCLI(t, "", env, "connectors"); code != 0 || !strings.Contains(out, "openai — pull: job pull-openai runs in serve (OPENAI_ADMIN_KEY is not set for this command)") {
		t.Errorf("connectors without the key:\n%s", out)
	}
}
