// Package otlp reads OTLP/HTTP trace exports (ExportTraceServiceRequest, protobuf or JSON)
// and turns spans that follow the OpenTelemetry GenAI semantic conventions into usage.
//
// Decoding uses the OpenTelemetry Collector's pdata (ptrace), which reads OTLP JSON's hex
// trace and span ids correctly (plain protojson over the generated types reads them as
// base64). Sources: open-telemetry/opentelemetry-proto docs/specification.md (OTLP/HTTP,
// JSON Protobuf Encoding); semantic-conventions-genai docs/gen-ai/client-inference.md and
// model/gen-ai/registry.yaml; semantic-conventions model/user and model/enduser registries
// (see ../shared/spec/SOURCES.md).
package otlp

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
)

// MaxBodyBytes bounds one export, compressed or not (the SDKs' batch processors send a
// few hundred spans at a time).
const MaxBodyBytes = 16 << 20

const maxTokens = 1_000_000_000_000

// ErrContentType is a body that is neither application/x-protobuf nor application/json.
var ErrContentType = errors.New("send OTLP/HTTP as Content-Type application/x-protobuf or application/json")

// GenAI attribute names (semantic-conventions-genai, Development status).
const (
	attrOperation   = "gen_ai.operation.name"
	attrProvider    = "gen_ai.provider.name"
	attrSystem      = "gen_ai.system" // before semconv v1.37
	attrReqModel    = "gen_ai.request.model"
	attrRespModel   = "gen_ai.response.model"
	attrInput       = "gen_ai.usage.input_tokens"
	attrOutput      = "gen_ai.usage.output_tokens"
	attrCacheRead   = "gen_ai.usage.cache_read.input_tokens"
	attrCacheCreate = "gen_ai.usage.cache_creation.input_tokens"
	attrUserEmail   = "user.email"
	attrEnduserID   = "enduser.id"
	attrUserID      = "user.id"
)

// aggregateOps are operations whose spans sum the model calls beneath them (agents, tools,
// workflows): counting them too would bill the same tokens twice.
var aggregateOps = map[string]bool{"invoke_agent": true, "create_agent": true, "execute_tool": true, "invoke_workflow": true}

// Decode reads one export body by its Content-Type and returns one Usage per GenAI model
// call span. Spans that are no GenAI call are left out; a GenAI span without token counts
// is a Usage with Skip.
func Decode(body []byte, contentType string) ([]connectors.Usage, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, ErrContentType
	}
	var td ptrace.Traces
	switch mt {
	case "application/x-protobuf", "application/protobuf":
		td, err = (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	case "application/json":
		td, err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(body)
	default:
		return nil, ErrContentType
	}
	if err != nil {
		return nil, fmt.Errorf("the body is not an OTLP ExportTraceServiceRequest in %s: %w", mt, err)
	}
	var out []connectors.Usage
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		sss := rs.ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				if u, ok := fromSpan(spans.At(k), res); ok {
					out = append(out, u)
				}
			}
		}
	}
	return out, nil
}

func fromSpan(span ptrace.Span, res pcommon.Map) (connectors.Usage, bool) {
	attrs := span.Attributes()
	op := str(attrs, attrOperation)
	_, hasIn := attrs.Get(attrInput)
	_, hasOut := attrs.Get(attrOutput)
	if op == "" && !hasIn && !hasOut {
		return connectors.Usage{}, false // not a GenAI span
	}
	u := connectors.Usage{Event: ledger.UsageEvent{
		EventID:    ledger.ConnectorOTLP + ":" + span.TraceID().String() + ":" + span.SpanID().String(),
		OccurredAt: span.StartTimestamp().AsTime().UTC(),
		Source:     ledger.ConnectorOTLP,
	}}
	if aggregateOps[op] {
		u.Skip = fmt.Sprintf("a %s span sums the model calls beneath it, which are counted themselves", op)
		return u, true
	}
	if !hasIn && !hasOut {
		u.Skip = "the GenAI span carries no token usage (gen_ai.usage.input_tokens, gen_ai.usage.output_tokens)"
		return u, true
	}
	provider := str(attrs, attrProvider)
	if provider == "" {
		provider = str(attrs, attrSystem)
	}
	if provider != "" {
		u.Event.Source = ledger.ConnectorOTLP + ":" + provider
	}
	if u.Event.Model = str(attrs, attrRespModel); u.Event.Model == "" {
		u.Event.Model = str(attrs, attrReqModel)
	}
	var err error
	fail := func(e error) (connectors.Usage, bool) { u.Err = e; return u, true }
	if u.Event.InputTokens, err = tokens(attrs, attrInput); err != nil {
		return fail(err)
	}
	if u.Event.OutputTokens, err = tokens(attrs, attrOutput); err != nil {
		return fail(err)
	}
	read, err := tokens(attrs, attrCacheRead)
	if err != nil {
		return fail(err)
	}
	created, err := tokens(attrs, attrCacheCreate)
	if err != nil {
		return fail(err)
	}
	cached := read + created
	if cached > u.Event.InputTokens {
		// The conventions count cached tokens in input_tokens; an instrumentation that
		// reports them apart (as Anthropic's API does) has them added.
		u.Event.InputTokens += cached
	}
	u.Event.CachedInputTokens = cached
	if span.StartTimestamp() == 0 {
		u.Event.OccurredAt = span.EndTimestamp().AsTime().UTC()
	}
	for _, m := range []pcommon.Map{attrs, res} {
		if e := str(m, attrUserEmail); e != "" {
			u.Event.Email = e
			return u, true
		}
	}
	for _, m := range []pcommon.Map{attrs, res} {
		for _, k := range []string{attrEnduserID, attrUserID} {
			if id := str(m, k); id != "" {
				u.IDs = append(u.IDs, connectors.Identity(connectors.KindUser, id))
			}
		}
	}
	return u, true
}

func str(m pcommon.Map, key string) string {
	v, ok := m.Get(key)
	if !ok {
		return ""
	}
	return strings.TrimSpace(v.AsString())
}

// tokens reads a token count: an int attribute, or a double or string holding a whole
// number (some instrumentations write those). Absent is 0.
func tokens(m pcommon.Map, key string) (int64, error) {
	v, ok := m.Get(key)
	if !ok {
		return 0, nil
	}
	var n int64
	switch v.Type() {
	case pcommon.ValueTypeInt:
		n = v.Int()
	case pcommon.ValueTypeDouble:
		f := v.Double()
		if f != math.Trunc(f) || math.Abs(f) > maxTokens {
			return 0, fmt.Errorf("%s must be a whole number of tokens, not %v", key, f)
		}
		n = int64(f)
	case pcommon.ValueTypeStr:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(v.Str()), 10, 64); err != nil {
			return 0, fmt.Errorf("%s must be a whole number of tokens, not %q", key, v.Str())
		}
	default:
		return 0, fmt.Errorf("%s must be a whole number of tokens, not a %s", key, strings.ToLower(v.Type().String()))
	}
	if n < 0 || n > maxTokens {
		return 0, fmt.Errorf("%s must be from 0 to %d, not %d", key, int64(maxTokens), n)
	}
	return n, nil
}

// Response encodes an ExportTraceServiceResponse in the request's encoding. rejected spans
// and a message go in partial_success (opentelemetry-proto
// collector/trace/v1/trace_service.proto: ExportTracePartialSuccess{int64
// rejected_spans = 1; string error_message = 2}); with none rejected it is empty, which is
// how OTLP says "all accepted".
func Response(contentType string, rejected int64, message string) (body []byte, ct string) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/json" {
		if rejected == 0 && message == "" {
			return []byte("{}"), "application/json"
		}
		b, _ := json.Marshal(map[string]any{"partialSuccess": map[string]any{
			"rejectedSpans": strconv.FormatInt(rejected, 10), "errorMessage": message}})
		return b, "application/json"
	}
	if rejected == 0 && message == "" {
		return []byte{}, "application/x-protobuf"
	}
	var ps []byte
	if rejected != 0 {
		ps = protowire.AppendTag(ps, 1, protowire.VarintType)
		ps = protowire.AppendVarint(ps, uint64(rejected))
	}
	if message != "" {
		ps = protowire.AppendTag(ps, 2, protowire.BytesType)
		ps = protowire.AppendString(ps, message)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ps), "application/x-protobuf"
}
