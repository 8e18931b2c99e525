package otlp

import (
	"os"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/tokenpay/tokenpay/manifest/spectest"
)

func example(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(spectest.Path(t, "examples/otlp-genai-traces.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeExample: hex ids read as hex (not base64), usage, cached tokens, provider and
// person from the example export.
func TestDecodeExample(t *testing.T) {
	got, err := Decode(example(t), "application/json; charset=utf-8")
	if err != nil || len(got) != 2 {
		t.Fatalf("%d, %v", len(got), err)
	}
	ann, bob := got[0], got[1]
	if ann.Event.EventID != "otlp:4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7" || ann.Event.Email != "ann@acme.test" ||
		ann.Event.Model != "gpt-4o-2024-08-06" || ann.Event.InputTokens != 1240 || ann.Event.OutputTokens != 312 ||
		ann.Event.Source != "otlp:openai" || !ann.Event.OccurredAt.Equal(time.Unix(0, 1772442915204113000).UTC()) {
		t.Errorf("ann %+v", ann)
	}
	if bob.Event.Email != "" || len(bob.IDs) != 1 || bob.IDs[0] != "user:bob@acme.test" || bob.Event.InputTokens != 2210 ||
		bob.Event.CachedInputTokens != 1800 || bob.Event.Model != "claude-sonnet-4-5-20250929" || bob.Event.Source != "otlp:anthropic" {
		t.Errorf("bob %+v", bob)
	}
}

func span(spans ptrace.SpanSlice, id byte, attrs map[string]any) {
	s := spans.AppendEmpty()
	s.SetTraceID(pcommon.TraceID{1, id})
	s.SetSpanID(pcommon.SpanID{2, id})
	s.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)))
	if err := s.Attributes().FromRaw(attrs); err != nil {
		panic(err)
	}
}

func TestDecodeRules(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("user.id", "u-42")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	span(spans, 1, map[string]any{"http.method": "GET"}) // not GenAI: left out
	span(spans, 2, map[string]any{"gen_ai.operation.name": "invoke_agent", "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 90})
	span(spans, 3, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
		"gen_ai.usage.input_tokens": "100", "gen_ai.usage.output_tokens": 20.0})
	span(spans, 4, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude", "gen_ai.usage.input_tokens": 10,
		"gen_ai.usage.cache_read.input_tokens": 50, "gen_ai.usage.cache_creation.input_tokens": 5, "gen_ai.usage.output_tokens": 1})
	span(spans, 5, map[string]any{"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": -3})
	span(spans, 6, map[string]any{"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e"})
	pb, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(pb, "application/x-protobuf")
	if err != nil || len(got) != 5 {
		t.Fatalf("%d usages, %v; want 5 (the HTTP span left out)", len(got), err)
	}
	if !strings.Contains(got[0].Skip, "invoke_agent") {
		t.Errorf("agent span: %+v", got[0])
	}
	if u := got[1]; u.Err != nil || u.Event.Source != "otlp:openai" || u.Event.InputTokens != 100 || u.Event.OutputTokens != 20 ||
		len(u.IDs) != 1 || u.IDs[0] != "user:u-42" {
		t.Errorf("gen_ai.system fallback, string and double counts, resource user.id: %+v", u)
	}
	if u := got[2]; u.Event.InputTokens != 65 || u.Event.CachedInputTokens != 55 {
		t.Errorf("cache counted apart from input is added to it: %+v", u.Event)
	}
	if u := got[3]; u.Err == nil || !strings.Contains(u.Err.Error(), "gen_ai.usage.input_tokens") {
		t.Errorf("negative count: %v", u.Err)
	}
	if u := got[4]; u.Skip == "" {
		t.Errorf("a GenAI span without usage is billed: %+v", u)
	}
	if _, err := Decode(pb, "text/plain"); err != ErrContentType {
		t.Errorf("text/plain: %v", err)
	}
}

func TestResponse(t *testing.T) {
	if b, ct := Response("application/x-protobuf", 0, ""); len(b) != 0 || ct != "application/x-protobuf" {
		t.Errorf("empty protobuf response: %x %s", b, ct)
	}
	b, _ := Response("application/x-protobuf", 2, "x")
	// partial_success (field 1, bytes) { rejected_spans (1, varint) = 2, error_message (2) = "x" }
	if want := []byte{0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, 'x'}; string(b) != string(want) {
		t.Errorf("protobuf partial success % x, want % x", b, want)
	}
	if b, _ := Response("application/json", 2, "x"); string(b) != `{"partialSuccess":{"errorMessage":"x","rejectedSpans":"2"}}` {
		t.Errorf("json: %s", b)
	}
}

// FuzzDecode: no input panics the decoder, in either encoding.
func FuzzDecode(f *testing.F) {
	f.Add(example(f), true)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00","attributes":[{"key":"gen_ai.usage.input_tokens","value":{"doubleValue":1e300}}]}]}]}]}`), true)
	f.Add([]byte{0x0a, 0x02, 0x12, 0x00}, false)
	f.Fuzz(func(t *testing.T, body []byte, asJSON bool) {
		ct := "application/x-protobuf"
		if asJSON {
			ct = "application/json"
		}
		got, err := Decode(body, ct)
		if err != nil {
			return
		}
		for _, u := range got {
			if u.Err == nil && u.Skip == "" && (u.Event.InputTokens < 0 || u.Event.OutputTokens < 0 || u.Event.CachedInputTokens > u.Event.InputTokens) {
				t.Errorf("bad counts %+v", u.Event)
			}
		}
	})
}
