package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// litellmTemplate is the first object of the LiteLLM example (ann's call, with its messages,
// response and metadata: what LiteLLM really sends), decoded once and varied per event.
func litellmTemplate(b *testing.B) map[string]any {
	var objs []map[string]any
	if err := json.Unmarshal(example(b, "litellm-generic-api-json-array.json"), &objs); err != nil {
		b.Fatal(err)
	}
	return objs[0]
}

// BenchmarkConnectorIngest posts the same kind of batch of 500 events three ways through
// the real server, in the same loop so all three see the same machine load: the native
// usage API ({"events": [...]}), LiteLLM's ndjson (full StandardLoggingPayload objects, as
// LiteLLM sends them, Content-Type application/json) and OTLP/HTTP protobuf (500 GenAI chat
// spans with the example's attributes). One op is one batch of each. Metrics: events/s of
// each, and each connector's ratio to the native API (the goal is 0.7 or more). Only the
// requests are timed, not building the bodies.
func BenchmarkConnectorIngest(b *testing.B) {
	db, srv, key := benchLedger(b)
	people, err := db.People(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	pol := policy.Default()
	ing := &usage.Ingestor{Store: db, Now: func() time.Time { return now },
		Credits: func(model string, in, out int64) (int64, error) { return pol.WeightFor(model).Credits(in, out) }}
	cs := &api.Server{Store: db, Ingestor: ing, Now: func() time.Time { return now }, Log: zerolog.Nop(),
		Period:     func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) },
		Connectors: &connectors.Hub{Store: db, Ingester: ing, Log: zerolog.Nop()}}
	mux := http.NewServeMux()
	cs.Register(mux)
	csrv := httptest.NewServer(mux)
	b.Cleanup(csrv.Close)
	tmpl := litellmTemplate(b)
	rng := rand.New(rand.NewPCG(3, 4))
	client := srv.Client()
	post := func(url, ct string, body []byte) []byte {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", ct)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			b.Fatalf("%s: status %d, %v: %.300s", url, res.StatusCode, err, answer)
		}
		return answer
	}
	var nativeTime, litellmTime, otlpTime time.Duration
	var ndjsonBytes, otlpBytes int
	seq, op := 0, 0
	for b.Loop() {
		// Native batch.
		events := make([]benchEvent, benchBatch)
		for i := range events {
			seq++
			p := people[rng.IntN(len(people))]
			at := now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			events[i] = benchEvent{ID: fmt.Sprintf("native-%09d", seq), Email: p.Email, Model: "gpt-4o",
				InputTokens: rng.Int64N(2000), OutputTokens: rng.Int64N(500), OccurredAt: at.Format(time.RFC3339), Source: "bench"}
		}
		native, err := json.Marshal(map[string]any{"events": events})
		if err != nil {
			b.Fatal(err)
		}
		// LiteLLM ndjson batch: Python's json.dumps per object, joined by newlines.
		var nd bytes.Buffer
		for i := range benchBatch {
			seq++
			p := people[rng.IntN(len(people))]
			at := now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			tmpl["id"] = fmt.Sprintf("chatcmpl-%09d", seq)
			tmpl["prompt_tokens"], tmpl["completion_tokens"] = rng.Int64N(2000), rng.Int64N(500)
			tmpl["startTime"] = float64(at.UnixMicro()) / 1e6
			tmpl["metadata"].(map[string]any)["user_api_key_user_email"] = p.Email
			line, err := json.Marshal(tmpl)
			if err != nil {
				b.Fatal(err)
			}
			if i > 0 {
				nd.WriteByte('\n')
			}
			nd.Write(line)
		}
		// OTLP protobuf batch.
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "acme-support-bot")
		spans := rs.ScopeSpans().AppendEmpty().Spans()
		for range benchBatch {
			seq++
			p := people[rng.IntN(len(people))]
			at := now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			sp := spans.AppendEmpty()
			var tid [16]byte
			var sid [8]byte
			copy(tid[:], fmt.Sprintf("%016d", seq))
			copy(sid[:], fmt.Sprintf("%08d", seq%100_000_000))
			sp.SetTraceID(pcommon.TraceID(tid))
			sp.SetSpanID(pcommon.SpanID(sid))
			sp.SetName("chat gpt-4o")
			sp.SetKind(ptrace.SpanKindClient)
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(2 * time.Second)))
			a := sp.Attributes()
			a.PutStr("gen_ai.operation.name", "chat")
			a.PutStr("gen_ai.provider.name", "openai")
			a.PutStr("gen_ai.request.model", "gpt-4o")
			a.PutDouble("gen_ai.request.temperature", 0.2)
			a.PutStr("gen_ai.response.model", "gpt-4o-2024-08-06")
			a.PutStr("gen_ai.response.id", fmt.Sprintf("chatcmpl-%09d", seq))
			a.PutEmptySlice("gen_ai.response.finish_reasons").AppendEmpty().SetStr("stop")
			a.PutInt("gen_ai.usage.input_tokens", rng.Int64N(2000))
			a.PutInt("gen_ai.usage.output_tokens", rng.Int64N(500))
			a.PutStr("server.address", "api.openai.com")
			a.PutInt("server.port", 443)
			a.PutStr("user.email", p.Email)
		}
		pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			b.Fatal(err)
		}
		ndjsonBytes += nd.Len()
		otlpBytes += len(pb)

		// Each op starts with a different path, so none always pays for what the previous
		// one left (garbage to collect, a checkpoint to run).
		paths := []func(){
			func() {
				start := time.Now()
				answer := post(srv.URL+"/api/v1/usage", "application/json", native)
				nativeTime += time.Since(start)
				var got api.UsageResponse
				if json.Unmarshal(answer, &got) != nil || got.Accepted != benchBatch {
					b.Fatalf("native: %.300s", answer)
				}
			},
			func() {
				start := time.Now()
				answer := post(csrv.URL+"/api/v1/usage/litellm", "application/json", nd.Bytes())
				litellmTime += time.Since(start)
				var got api.UsageResponse
				if json.Unmarshal(answer, &got) != nil || got.Accepted != benchBatch {
					b.Fatalf("litellm: %.300s", answer)
				}
			},
			func() {
				start := time.Now()
				answer := post(csrv.URL+"/v1/traces", "application/x-protobuf", pb)
				otlpTime += time.Since(start)
				if len(answer) != 0 {
					b.Fatalf("otlp: partial success %q", answer)
				}
			},
		}
		for k := range paths {
			paths[(op+k)%len(paths)]()
		}
		op++
	}
	n := float64(b.N * benchBatch)
	b.ReportMetric(n/nativeTime.Seconds(), "native-events/s")
	b.ReportMetric(n/litellmTime.Seconds(), "litellm-events/s")
	b.ReportMetric(n/otlpTime.Seconds(), "otlp-events/s")
	b.ReportMetric(nativeTime.Seconds()/litellmTime.Seconds(), "litellm-ratio")
	b.ReportMetric(nativeTime.Seconds()/otlpTime.Seconds(), "otlp-ratio")
	b.ReportMetric(float64(ndjsonBytes)/float64(b.N), "ndjson-B/batch")
	b.ReportMetric(float64(otlpBytes)/float64(b.N), "otlp-B/batch")
	b.ReportMetric(0, "ns/op") // one op mixes three paths; the metrics above are the figures
}
