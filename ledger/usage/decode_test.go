package usage

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func TestDecodeBatch(t *testing.T) {
	ok := `{"id":"e1","email":"ana@x.io","model":"gpt-4o","input_tokens":10,"output_tokens":5,"occurred_at":"2026-11-27T10:00:00Z","source":"gw"}`
	tests := []struct {
		name    string
		body    string
		wantErr string   // whole-body error
		reasons []string // per event: "" accepted by the decoder, else a substring of the reason
	}{
		{"one good event", `{"events":[` + ok + `]}`, "", []string{""}},
		{"empty batch", `{"events":[]}`, "", nil},
		{"not json", `hello`, "the body is not valid JSON (at character 1)", nil},
		{"empty", ``, "the body is empty", nil},
		{"cut short", `{"events":[`, "it ends too early", nil},
		{"an array", `[{"id":"e1"}]`, `the body must be a JSON object like {"events": [...]}, not an array`, nil},
		{"a string", `"events"`, `the body must be a JSON object like {"events": [...]}, not a string`, nil},
		{"no events key", `{"evts":[]}`, `needs an "events" array`, nil},
		{"trailing garbage", `{"events":[]} {}`, "one JSON object", nil},
		{"events not array", `{"events":{}}`, `"events" must be an array of event objects, not an object`, nil},
		{"events a string", `{"events":"e1"}`, `"events" must be an array of event objects, not a string`, nil},
		{"events null", `{"events":null}`, `needs an "events" array`, nil},
		{"bad events", `{"events":[` + strings.Join([]string{
			`{"email":"a@x.io","model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","slack_user_id":"U1","model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"nope","model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","model":"m","input_tokens":-1,"occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","model":"m","input_tokens":1.5,"occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","model":"m","output_tokens":1e30,"occurred_at":"2026-11-27T10:00:00Z"}`,
			// A quoted number is a number: some gateways send them that way.
			`{"id":"e","email":"a@x.io","model":"m","input_tokens":"12","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","model":"m"}`,
			`{"id":"e","email":"a@x.io","model":"m","occurred_at":"yesterday"}`,
			`{"id":"e","email":"a@x.io","model":"m","occurred_at":"2026-11-27T10:00:00Z","extra":1}`,
			`{"id":7,"email":"a@x.io","model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":"a@x.io","model":"m","input_tokens":true,"occurred_at":"2026-11-27T10:00:00Z"}`,
			`{"id":"e","email":["a@x.io"],"model":"m","occurred_at":"2026-11-27T10:00:00Z"}`,
			`"e1"`,
			`[1,2]`,
		}, ",") + `]}`, "", []string{
			"id is required", "exactly one of", "exactly one of", "not an email address", "model is required",
			"input_tokens must be a whole number", "input_tokens must be a whole number", "output_tokens must be a whole number",
			"", "occurred_at is required", "not an RFC 3339 time", "", "id must be text (a JSON string), not a number",
			"input_tokens must be a number, not true or false", "email must be text (a JSON string), not an array",
			"each event must be a JSON object, not a string", "each event must be a JSON object, not an array"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := DecodeBatch(strings.NewReader(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != len(tc.reasons) {
				t.Fatalf("%d items, want %d", len(items), len(tc.reasons))
			}
			for i, want := range tc.reasons {
				got := ""
				if items[i].Err != nil {
					got = items[i].Err.Error()
				}
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("event %d: reason %q, want %q", i, got, want)
				}
			}
		})
	}
}

// TestNoGoTypesInErrors: whatever shape a body has, what the gateway reads names no Go
// type (issue 16: "json: cannot unmarshal … struct", "usage.wireEvent").
func TestNoGoTypesInErrors(t *testing.T) {
	bodies := []string{`[]`, `5`, `"x"`, `null`, `true`, `{"events":5}`, `{"events":[5]}`, `{"events":[null]}`, `{"events":[[]]}`,
		`{"events":[{"id":{}}]}`, `{"events":[{"id":"e","input_tokens":{}}]}`, `{"events":[{"id":"e","occurred_at":5}]}`,
		`{"events":[{"id":"e","email":"a@x.io","model":"m","occurred_at":"2026-11-27T10:00:00Z","source":[]}]}`,
		`{"events":[{]}`, `{"events":[]`, `{`, `{"events":{"a":1}}`}
	for _, b := range bodies {
		items, err := DecodeBatch(strings.NewReader(b))
		texts := []string{}
		if err != nil {
			texts = append(texts, err.Error())
		}
		for _, it := range items {
			if it.Err != nil {
				texts = append(texts, it.Err.Error())
			}
		}
		if len(texts) == 0 {
			t.Errorf("%s: accepted without a word", b)
		}
		for _, s := range texts {
			for _, goWord := range []string{"json:", "struct", "wireEvent", "usage.", "RawMessage", "Go value", "json.Number", "int64", "unmarshal"} {
				if strings.Contains(s, goWord) {
					t.Errorf("%s: %q names %q", b, s, goWord)
				}
			}
		}
	}
}

// TestUnknownFieldsIgnored: gateways add fields of their own; the event is accepted and
// they are not kept.
func TestUnknownFieldsIgnored(t *testing.T) {
	body := `{"batch_id":"b1","events":[{"id":"e1","email":"a@x.io","model":"m","input_tokens":10,"output_tokens":5,
		"occurred_at":"2026-11-27T10:00:00Z","request_id":"req-9","latency_ms":812,"prompt":"secret text","meta":{"a":[1]}}]}`
	items, err := DecodeBatch(strings.NewReader(body))
	if err != nil || len(items) != 1 || items[0].Err != nil {
		t.Fatalf("%v %+v", err, items)
	}
	if ev := items[0].Event; ev.EventID != "e1" || ev.InputTokens != 10 || ev.OutputTokens != 5 {
		t.Fatalf("%+v", ev)
	}
	lines, err := ReadJSONL(strings.NewReader(`{"id":"e2","email":"a@x.io","model":"m","occurred_at":"2026-11-27T10:00:00Z","prompt":"x"}` + "\n"))
	if err != nil || len(lines) != 1 || lines[0].Err != nil {
		t.Fatalf("jsonl: %v %+v", err, lines)
	}
}

func TestDecodeBatchFields(t *testing.T) {
	items, err := DecodeBatch(strings.NewReader(`{"events":[{"id":" e1 ","slack_user_id":"U1","model":"m","input_tokens":10,"output_tokens":5,"occurred_at":"2026-11-27T11:00:00+01:00"}]}`))
	if err != nil || items[0].Err != nil {
		t.Fatal(err, items[0].Err)
	}
	ev := items[0].Event
	if ev.EventID != "e1" || ev.SlackUserID != "U1" || ev.InputTokens != 10 || ev.OutputTokens != 5 || !ev.OccurredAt.Equal(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("%+v", ev)
	}
}

func TestDecodeBatchTooMany(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"events":[`)
	for i := 0; i <= MaxBatchEvents; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`{}`)
	}
	b.WriteString(`]}`)
	if _, err := DecodeBatch(strings.NewReader(b.String())); err != ErrTooManyEvents {
		t.Fatalf("got %v", err)
	}
}

func TestReadCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr string
		reasons []string
	}{
		{"good", "id,email,model,input_tokens,output_tokens,occurred_at,source\ne1,a@x.io,m,1,2,2026-11-27T10:00:00Z,gw\n", "", []string{""}},
		{"any order, slack ids", "occurred_at,model,slack_user_id,id\n2026-11-27T10:00:00Z,m,U1,e1\n", "", []string{""}},
		{"empty", "", "the file is empty", nil},
		{"unknown column", "id,mail\n", `line 1: unknown column "mail"`, nil},
		{"missing id", "email,model,occurred_at\n", `line 1: the header needs a "id" column`, nil},
		{"no identity", "id,model,occurred_at\n", "line 1: the header needs an email", nil},
		{"duplicate column", "id,id,email,model,occurred_at\n", `line 1: column "id" appears twice`, nil},
		{"short row and bad number", "id,email,model,input_tokens,occurred_at\ne1,a@x.io\ne2,a@x.io,m,x,2026-11-27T10:00:00Z\n", "", []string{"line 2 has 2 fields", "input_tokens must be a whole number"}},
		{"bad quote", "id,email,model,occurred_at\ne1,a@x.io,\"m,2026\n", "line 2:", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := ReadCSV(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(items) != len(tc.reasons) {
				t.Fatalf("%v, %d items", err, len(items))
			}
			for i, want := range tc.reasons {
				got := ""
				if items[i].Err != nil {
					got = items[i].Err.Error()
				}
				if (want == "") != (got == "") || !strings.Contains(got, want) {
					t.Errorf("row %d: reason %q, want %q", i, got, want)
				}
			}
		})
	}
}

func TestReadJSONL(t *testing.T) {
	items, err := ReadJSONL(strings.NewReader("{\"id\":\"e1\",\"email\":\"a@x.io\",\"model\":\"m\",\"occurred_at\":\"2026-11-27T10:00:00Z\"}\n\nnot json\n"))
	if err != nil || len(items) != 2 || items[0].Err != nil || items[1].Err == nil || items[1].Line != 3 {
		t.Fatalf("%v %+v", err, items)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	seed, err := os.ReadFile("testdata/batch.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"events":[{"id":"x","email":"a@b","model":"m","input_tokens":1e3,"occurred_at":"2026-01-01T00:00:00Z"}]}`))
	// The example and the int64 limits.
	f.Add([]byte(`{"events":[{"id":"x","email":"ana@example.com","model":"huge","input_tokens":1000000000000,"output_tokens":1000000000000,"occurred_at":"2026-11-27T10:00:00Z"}]}`))
	f.Add([]byte(`{"events":[{"id":"x","email":"a@b","model":"m","input_tokens":1000000000,"output_tokens":1000000001,"occurred_at":"2026-11-27T10:00:00Z"}]}`))
	f.Add([]byte(`{"events":[{"id":"x","email":"a@b","model":"m","input_tokens":9223372036854775807,"output_tokens":9223372036854775808,"occurred_at":"2026-11-27T10:00:00Z"}]}`))
	f.Add([]byte(`{"events":[{"id":"x","email":"a@b","model":"m","input_tokens":-9223372036854775808,"occurred_at":"2026-11-27T10:00:00Z"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		// The one-pass decoder must agree with the event-by-event one whenever it answers.
		if fast, ok := decodeFast(data); ok {
			slow, err := decodeSlow(data)
			if err != nil || len(slow) != len(fast) {
				t.Fatalf("fast path accepted what the slow path refuses: %v", err)
			}
			for i := range fast {
				if fast[i].Event != slow[i].Event || (fast[i].Err == nil) != (slow[i].Err == nil) {
					t.Fatalf("event %d: fast %+v, slow %+v", i, fast[i], slow[i])
				}
			}
		}
		items, err := DecodeBatch(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, it := range items {
			if it.Err != nil {
				continue
			}
			ev := it.Event
			if ev.EventID == "" || ev.Model == "" || ev.InputTokens < 0 || ev.OutputTokens < 0 || ev.OccurredAt.IsZero() ||
				ev.InputTokens > ledger.MaxEventTokens || ev.OutputTokens > ledger.MaxEventTokens {
				t.Fatalf("accepted an invalid event: %+v", ev)
			}
		}
	})
}

func FuzzReadCSV(f *testing.F) {
	seed, err := os.ReadFile("testdata/usage.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := ReadCSV(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, it := range items {
			if it.Err == nil && (it.Event.EventID == "" || it.Event.InputTokens < 0) {
				t.Fatalf("accepted an invalid row: %+v", it.Event)
			}
		}
	})
}

// lines is a reader of n JSONL events, made as they are read: a file of any size without
// holding it.
type lines struct {
	n, i int
	buf  []byte
}

func (l *lines) Read(p []byte) (int, error) {
	for len(l.buf) < len(p) && l.i < l.n {
		l.buf = fmt.Appendf(l.buf, `{"id":"ev-%09d","email":"person%d@example.com","model":"gpt-4o","input_tokens":1200,"output_tokens":300,"occurred_at":"2026-11-27T10:00:00Z","source":"gateway"}`+"\n", l.i, l.i%5000)
		l.i++
	}
	if len(l.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	return n, nil
}

// TestStreamsInBoundedMemory reads 300,000 events (a 50 MB file; ReadJSONL would hold
// about 100 MB of items) through StreamJSONL in chunks of 500: every event arrives once, in
// order, no chunk is larger than asked, and the live heap never grows by more than 16 MiB.
func TestStreamsInBoundedMemory(t *testing.T) {
	const n = 300_000
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	seen, maxChunk := 0, 0
	var peak uint64
	err := StreamJSONL(&lines{n: n}, 500, func(part []Item) error {
		maxChunk = max(maxChunk, len(part))
		for _, it := range part {
			if it.Err != nil || it.Event.EventID != fmt.Sprintf("ev-%09d", seen) {
				return fmt.Errorf("item %d: %+v", seen, it)
			}
			seen++
		}
		if seen%50_000 == 0 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		return nil
	})
	if err != nil || seen != n || maxChunk != 500 {
		t.Fatalf("streamed %d of %d events, largest chunk %d: %v", seen, n, maxChunk, err)
	}
	if grew := int64(peak) - int64(base.HeapAlloc); grew > 16<<20 {
		t.Errorf("the live heap grew by %.1f MiB while streaming: the events are being kept", float64(grew)/(1<<20))
	}
}
