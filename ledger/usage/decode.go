// Package usage turns what AI gateways report (a JSON batch over HTTP, CSV or JSONL files)
// into ledger postings, through one validation and weighting path.
package usage

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Limits on what one request or file line may carry.
const (
	MaxBatchEvents = 1000
	MaxBodyBytes   = 4 << 20
	maxFieldLen    = 200
	maxTokens      = ledger.MaxEventTokens
)

// ErrTooManyEvents means a batch is over MaxBatchEvents.
var ErrTooManyEvents = fmt.Errorf("a batch may hold at most %s events; split it", ledger.FormatCredits(MaxBatchEvents))

// Item is one decoded event, or why it cannot be used. ID is set whenever the input had one,
// so a rejection can be reported against it.
type Item struct {
	Line  int // file line (1-based) for CSV and JSONL; index+1 in a JSON batch
	Event ledger.UsageEvent
	Err   error
}

// wireEvent is the JSON shape of an event. Token counts stay raw so that 1.5 or 1e99 are
// rejected with a reason instead of being rounded, and a quoted number is read as one. Fields it does not name (a gateway's
// request_id, latency_ms, prompt, …) are ignored: gateways add their own, and tokenpay
// never stores prompts. The fields it names must have their type.
type wireEvent struct {
	ID           string          `json:"id"`
	Email        string          `json:"email"`
	SlackUserID  string          `json:"slack_user_id"`
	TeamsUserID  string          `json:"teams_user_id"`
	Model        string          `json:"model"`
	InputTokens  json.RawMessage `json:"input_tokens"`
	OutputTokens json.RawMessage `json:"output_tokens"`
	OccurredAt   string          `json:"occurred_at"`
	Source       string          `json:"source"`
}

// DecodeBatch reads {"events":[...]}. A body that is not that shape is an error for the
// whole request; a bad event is an Item with Err and does not spoil the others.
func DecodeBatch(r io.Reader) ([]Item, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if items, ok := decodeFast(raw); ok {
		if len(items) > MaxBatchEvents {
			return nil, ErrTooManyEvents
		}
		return items, nil
	}
	return decodeSlow(raw)
}

// decodeFast decodes a batch of well-formed events in one pass. On any problem it reports
// false, and decodeSlow decodes event by event to say which one is wrong and why.
func decodeFast(raw []byte) ([]Item, bool) {
	var fast struct {
		Events []wireEvent `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&fast) != nil || dec.More() || fast.Events == nil {
		return nil, false
	}
	items := make([]Item, len(fast.Events))
	for i, w := range fast.Events {
		items[i] = w.item(i + 1)
	}
	return items, true
}

func decodeSlow(raw []byte) ([]Item, error) {
	// The same struct shape as the fast path, so both match "events" alike.
	var body struct {
		Events json.RawMessage `json:"events"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&body); err != nil {
		return nil, bodyProblem(err)
	}
	if dec.More() {
		return nil, errors.New(`the body must hold one JSON object, {"events": [...]}, and nothing after it`)
	}
	rawEvents := body.Events
	if len(rawEvents) == 0 || bytes.Equal(bytes.TrimSpace(rawEvents), []byte("null")) {
		return nil, errors.New(`the body needs an "events" array: {"events": [{"id": "...", "email": "...", ...}]}`)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(rawEvents, &events); err != nil {
		return nil, fmt.Errorf(`"events" must be an array of event objects, not %s`, jsonKind(rawEvents))
	}
	if len(events) > MaxBatchEvents {
		return nil, ErrTooManyEvents
	}
	items := make([]Item, len(events))
	for i, raw := range events {
		items[i] = decodeEvent(i+1, raw)
	}
	return items, nil
}

func decodeEvent(line int, raw []byte) Item {
	var w wireEvent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		// Recover the id if possible so the caller can say which event was bad.
		var idOnly struct {
			ID any `json:"id"`
		}
		_ = json.Unmarshal(raw, &idOnly)
		id, _ := idOnly.ID.(string)
		return Item{Line: line, Event: ledger.UsageEvent{EventID: id}, Err: fmt.Errorf("event is not valid: %s", jsonProblem(err))}
	}
	return w.item(line)
}

// item validates a decoded event.
func (w wireEvent) item(line int) Item {
	in, err1 := numberText("input_tokens", w.InputTokens)
	out, err2 := numberText("output_tokens", w.OutputTokens)
	if err1 != nil {
		return Item{Line: line, Event: ledger.UsageEvent{EventID: strings.TrimSpace(w.ID)}, Err: err1}
	}
	if err2 != nil {
		return Item{Line: line, Event: ledger.UsageEvent{EventID: strings.TrimSpace(w.ID)}, Err: err2}
	}
	return fromFields(line, fields{w.ID, w.Email, w.SlackUserID, w.TeamsUserID, w.Model, in, out, w.OccurredAt, w.Source})
}

// numberText is a token count as text: a JSON number as written, or the text of a quoted
// one (some gateways quote them); absent or null is "" (zero).
func numberText(name string, raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", nil
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%s must be a number", name)
		}
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("%s must be a whole number from 0 to %s, not %q", name, ledger.FormatCredits(maxTokens), s)
		}
		return s, nil
	case raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil
	}
	return "", fmt.Errorf("%s must be a number, not %s", name, jsonKind(raw))
}

// jsonProblem says in words what is wrong with one event's JSON, never naming a Go type.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return fmt.Sprintf("each event must be a JSON object, not %s", article(te.Value))
		}
		want := "text (a JSON string)"
		return fmt.Sprintf("%s must be %s, not %s", te.Field, want, article(te.Value))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("it is not valid JSON (at character %d)", se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "it is not valid JSON (it ends too early)"
	}
	return "it is not a JSON object of the documented fields"
}

// bodyProblem says in words what is wrong with a whole usage body.
func bodyProblem(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return fmt.Errorf(`the body must be a JSON object like {"events": [...]}, not %s`, article(te.Value))
	case errors.As(err, &se):
		return fmt.Errorf(`the body is not valid JSON (at character %d); send {"events": [...]}`, se.Offset)
	case errors.Is(err, io.EOF):
		return errors.New(`the body is empty; send {"events": [...]}`)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New(`the body is not valid JSON (it ends too early); send {"events": [...]}`)
	}
	return errors.New(`the body must be JSON like {"events": [...]}`)
}

// jsonKind names the kind of a JSON value as a person would: "a string", "an object".
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "true or false"
	case 'n':
		return "null"
	}
	return "a number"
}

// article puts "a" or "an" before a JSON kind as encoding/json names it ("string", "array", "number 5").
func article(kind string) string {
	kind, _, _ = strings.Cut(kind, " ")
	switch kind {
	case "object", "array":
		return "an " + kind
	case "bool":
		return "true or false"
	case "":
		return "that"
	}
	return "a " + kind
}

type fields struct {
	id, email, slack, teams, model, input, output, occurred, source string
}

// fromFields validates one event's fields; every source format ends here.
func fromFields(line int, f fields) Item {
	it := Item{Line: line, Event: ledger.UsageEvent{EventID: strings.TrimSpace(f.id), Email: strings.TrimSpace(f.email),
		SlackUserID: strings.TrimSpace(f.slack), TeamsUserID: strings.TrimSpace(f.teams), Model: strings.TrimSpace(f.model),
		Source: strings.TrimSpace(f.source)}}
	ev := &it.Event
	fail := func(format string, args ...any) Item { it.Err = fmt.Errorf(format, args...); return it }
	switch {
	case ev.EventID == "":
		return fail("id is required")
	case len(ev.EventID) > maxFieldLen:
		return fail("id is longer than %d characters", maxFieldLen)
	}
	identities := 0
	for _, s := range []string{ev.Email, ev.SlackUserID, ev.TeamsUserID} {
		if s != "" {
			identities++
		}
	}
	if identities != 1 {
		return fail("give exactly one of email, slack_user_id or teams_user_id")
	}
	if ev.Email != "" && (!strings.Contains(ev.Email, "@") || len(ev.Email) > 254) {
		return fail("email %q is not an email address", ev.Email)
	}
	if len(ev.SlackUserID) > maxFieldLen || len(ev.TeamsUserID) > maxFieldLen || len(ev.Source) > maxFieldLen {
		return fail("user ids and source must be at most %d characters", maxFieldLen)
	}
	if ev.Model == "" || len(ev.Model) > maxFieldLen {
		return fail("model is required (at most %d characters)", maxFieldLen)
	}
	var err error
	if ev.InputTokens, err = tokenCount("input_tokens", f.input); err != nil {
		it.Err = err
		return it
	}
	if ev.OutputTokens, err = tokenCount("output_tokens", f.output); err != nil {
		it.Err = err
		return it
	}
	if strings.TrimSpace(f.occurred) == "" {
		return fail("occurred_at is required (RFC 3339, e.g. 2026-11-27T10:00:00Z)")
	}
	if ev.OccurredAt, err = time.Parse(time.RFC3339Nano, strings.TrimSpace(f.occurred)); err != nil {
		return fail("occurred_at %q is not an RFC 3339 time such as 2026-11-27T10:00:00Z", f.occurred)
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	return it
}

func tokenCount(name, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxTokens {
		return 0, fmt.Errorf("%s must be a whole number from 0 to %s (the most one event may report), not %q", name, ledger.FormatCredits(maxTokens), s)
	}
	return n, nil
}

// ReadJSONL reads one event object per line; blank lines are skipped.
func ReadJSONL(r io.Reader) ([]Item, error) {
	return collect(func(fn func([]Item) error) error { return StreamJSONL(r, 1000, fn) })
}

// collect gathers what a Stream function hands over, and on a read error what came
// before it.
func collect(stream func(func([]Item) error) error) ([]Item, error) {
	var all []Item
	err := stream(func(part []Item) error {
		all = append(all, part...)
		return nil
	})
	return all, err
}

// StreamJSONL reads one event object per line, as ReadJSONL, and hands them to fn at most
// n at a time, so that a file of any size is read in bounded memory (fn must not keep the
// slice). A read error hands over the events before it, then is returned; an error from
// fn stops the reading and is returned as is.
func StreamJSONL(r io.Reader, n int, fn func([]Item) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	part := make([]Item, 0, n)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		part = append(part, decodeEvent(line, b))
		if len(part) == n {
			if err := fn(part); err != nil {
				return err
			}
			part = part[:0]
		}
	}
	if err := sc.Err(); err != nil {
		if ferr := flush(fn, part); ferr != nil {
			return ferr
		}
		return fmt.Errorf("read line %d: %w", line+1, err)
	}
	return flush(fn, part)
}

func flush(fn func([]Item) error, part []Item) error {
	if len(part) == 0 {
		return nil
	}
	return fn(part)
}

var csvColumns = []string{"id", "email", "slack_user_id", "teams_user_id", "model", "input_tokens", "output_tokens", "occurred_at", "source"}

// ReadCSV reads events with a header naming the JSON fields (any order; id, model and
// occurred_at are required, and at least one identity column).
func ReadCSV(r io.Reader) ([]Item, error) {
	return collect(func(fn func([]Item) error) error { return StreamCSV(r, 1000, fn) })
}

// StreamCSV reads events as ReadCSV does and hands them to fn at most n at a time (see
// StreamJSONL). A bad header is an error before fn is called.
func StreamCSV(r io.Reader, n int, fn func([]Item) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return errors.New("the file is empty; it needs a header line: " + strings.Join(csvColumns, ","))
	}
	if err != nil {
		return fmt.Errorf("read header: %w", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		known := false
		for _, c := range csvColumns {
			known = known || c == h
		}
		if !known {
			return fmt.Errorf("line 1: unknown column %q; columns are %s", h, strings.Join(csvColumns, ","))
		}
		if _, dup := col[h]; dup {
			return fmt.Errorf("line 1: column %q appears twice", h)
		}
		col[h] = i
	}
	for _, need := range []string{"id", "model", "occurred_at"} {
		if _, ok := col[need]; !ok {
			return fmt.Errorf("line 1: the header needs a %q column", need)
		}
	}
	_, e := col["email"]
	_, s := col["slack_user_id"]
	_, t := col["teams_user_id"]
	if !e && !s && !t {
		return errors.New("line 1: the header needs an email, slack_user_id or teams_user_id column")
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	part := make([]Item, 0, n)
	add := func(it Item) error {
		part = append(part, it)
		if len(part) < n {
			return nil
		}
		err := fn(part)
		part = part[:0]
		return err
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return flush(fn, part)
		}
		if err != nil {
			if ferr := flush(fn, part); ferr != nil {
				return ferr
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return fmt.Errorf("line %d: %w", pe.Line, pe.Err)
			}
			return fmt.Errorf("read usage: %w", err)
		}
		line, _ := cr.FieldPos(0)
		var it Item
		if len(rec) != len(header) {
			it = Item{Line: line, Event: ledger.UsageEvent{EventID: get(rec, "id")},
				Err: fmt.Errorf("line %d has %d fields, the header has %d", line, len(rec), len(header))}
		} else {
			it = fromFields(line, fields{get(rec, "id"), get(rec, "email"), get(rec, "slack_user_id"),
				get(rec, "teams_user_id"), get(rec, "model"), get(rec, "input_tokens"), get(rec, "output_tokens"),
				get(rec, "occurred_at"), get(rec, "source")})
		}
		if err := add(it); err != nil {
			return err
		}
	}
}
