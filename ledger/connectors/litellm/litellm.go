// Package litellm reads what LiteLLM's generic_api logging callback POSTs: a JSON array of
// StandardLoggingPayload objects (log_format json_array, the default), one object per line
// (ndjson, sent as Content-Type application/json), or one object (single).
//
// Source: BerriAI/litellm litellm/integrations/generic_api/generic_api_callback.py,
// docs/my-website/docs/proxy/logging_spec.md (StandardLoggingPayload) and the
// StandardLoggingPayload TypedDicts in litellm/types/utils.py; see ../shared/spec/SOURCES.md.
package litellm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
)

// Limits on one POST. LiteLLM flushes 100 events by default, each a few kilobytes with the
// messages and response it logs; a rejected POST is dropped by LiteLLM (it does not retry),
// so the limits are generous.
const (
	MaxBodyBytes = 32 << 20
	MaxEvents    = 5000
	maxTokens    = 1_000_000_000_000
)

// ErrTooManyEvents means a POST holds more than MaxEvents objects.
var ErrTooManyEvents = fmt.Errorf("a LiteLLM batch may hold at most %d events; lower batch_size in the callback settings", MaxEvents)

// payload is the part of a StandardLoggingPayload tokenpay reads; the rest (messages,
// response, costs) is ignored and never stored.
type payload struct {
	ID               string          `json:"id"`
	Status           string          `json:"status"`
	Model            string          `json:"model"`
	ModelGroup       string          `json:"model_group"`
	PromptTokens     json.Number     `json:"prompt_tokens"`
	CompletionTokens json.Number     `json:"completion_tokens"`
	StartTime        json.RawMessage `json:"startTime"`
	EndTime          json.RawMessage `json:"endTime"`
	CacheHit         *bool           `json:"cache_hit"`
	EndUser          *string         `json:"end_user"`
	Metadata         struct {
		UserEmail   *string `json:"user_api_key_user_email"`
		UserID      *string `json:"user_api_key_user_id"`
		EndUserID   *string `json:"user_api_key_end_user_id"`
		KeyAlias    *string `json:"user_api_key_alias"`
		KeyHash     *string `json:"user_api_key_hash"`
		UsageObject *usage  `json:"usage_object"`
	} `json:"metadata"`
}

type usage struct {
	PromptTokensDetails *struct {
		CachedTokens json.Number `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CacheCreationInputTokens json.Number `json:"cache_creation_input_tokens"`
}

// Decode reads one POST body in any log_format: a sequence of JSON values, each an object
// or an array of objects. A body that is not JSON is an error for the whole POST; a bad
// object is a Usage with Err and does not spoil the others.
func Decode(r io.Reader) ([]connectors.Usage, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return DecodeBytes(body)
}

// DecodeBytes is Decode for a body already read.
func DecodeBytes(body []byte) ([]connectors.Usage, error) {
	if out, ok := decodeFast(body); ok {
		if len(out) > MaxEvents {
			return nil, ErrTooManyEvents
		}
		return out, nil
	}
	return decodeSlow(body)
}

// decodeSlow decodes with encoding/json, saying which object is wrong and why.
func decodeSlow(body []byte) ([]connectors.Usage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var out []connectors.Usage
	for n := 0; ; n++ {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, errors.New("the body is empty; LiteLLM sends a JSON array, one object per line, or one object")
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the body is not what LiteLLM's generic_api callback sends (JSON objects, an array of them, or one per line): %s", bodyProblem(err))
		}
		switch b := bytes.TrimSpace(raw); {
		case len(b) > 0 && b[0] == '[':
			var objs []json.RawMessage
			if err := json.Unmarshal(b, &objs); err != nil {
				return nil, fmt.Errorf("the array is not a list of LiteLLM log objects: %w", err)
			}
			for _, o := range objs {
				out = append(out, decodeOne(len(out)+1, o))
			}
		case len(b) > 0 && b[0] == '{':
			out = append(out, decodeOne(len(out)+1, b))
		default:
			return nil, fmt.Errorf("value %d of the body is neither an object nor an array of objects", n+1)
		}
		if len(out) > MaxEvents {
			return nil, ErrTooManyEvents
		}
	}
}

func decodeOne(n int, raw []byte) connectors.Usage {
	var p payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		var idOnly struct {
			ID any `json:"id"`
		}
		_ = json.Unmarshal(raw, &idOnly)
		id, _ := idOnly.ID.(string)
		return connectors.Usage{Event: ledger.UsageEvent{EventID: eventID(id)}, Err: fmt.Errorf("log object %d is not a LiteLLM StandardLoggingPayload: %s", n, problem(err))}
	}
	return toUsage(n, p)
}

// bodyProblem says where a body stops being JSON, in words: encoding/json's decoder
// answers a body cut short with a bare "unexpected EOF".
func bodyProblem(err error) string {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("it is not valid JSON at character %d (%s)", se.Offset, strings.TrimPrefix(se.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends in the middle of a JSON value (was it cut short?)"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func problem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "it must be a JSON object"
		}
		return fmt.Sprintf("%s must be %s", te.Field, wanted(te.Type))
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

// wanted names what a field of payload holds in JSON's words, never as a Go type, which is
// what encoding/json's UnmarshalTypeError carries.
func wanted(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[json.Number]():
		return "a number"
	case t.Kind() == reflect.Struct:
		return "an object"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "a number or a string" // json.RawMessage: startTime, endTime
	}
	return "another kind of value"
}

// eventID namespaces LiteLLM's call id, so it cannot collide with another source's.
func eventID(id string) string {
	if strings.TrimSpace(id) == "" {
		return ""
	}
	return ledger.ConnectorLiteLLM + ":" + strings.TrimSpace(id)
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return strings.TrimSpace(*p)
}

func toUsage(n int, p payload) connectors.Usage {
	u := connectors.Usage{Event: ledger.UsageEvent{EventID: eventID(p.ID), Model: strings.TrimSpace(p.Model), Source: ledger.ConnectorLiteLLM}}
	fail := func(format string, args ...any) connectors.Usage {
		u.Err = fmt.Errorf(format, args...)
		return u
	}
	if u.Event.EventID == "" {
		return fail("log object %d has no id", n)
	}
	switch p.Status {
	case "failure":
		u.Skip = "a failed call (status failure) is not billed"
		return u
	case "", "success":
	default:
		return fail("status %q is neither success nor failure", p.Status)
	}
	if p.CacheHit != nil && *p.CacheHit {
		u.Skip = "a response served from LiteLLM's cache used no model tokens"
		return u
	}
	if u.Event.Model == "" {
		u.Event.Model = strings.TrimSpace(p.ModelGroup)
	}
	if u.Event.Model == "" {
		return fail("log object %d names no model (model or model_group)", n)
	}
	var err error
	if u.Event.InputTokens, err = count("prompt_tokens", p.PromptTokens); err != nil {
		u.Err = err
		return u
	}
	if u.Event.OutputTokens, err = count("completion_tokens", p.CompletionTokens); err != nil {
		u.Err = err
		return u
	}
	if uo := p.Metadata.UsageObject; uo != nil {
		var cached, written int64
		if uo.PromptTokensDetails != nil {
			cached, _ = count("cached_tokens", uo.PromptTokensDetails.CachedTokens)
		}
		written, _ = count("cache_creation_input_tokens", uo.CacheCreationInputTokens)
		// Both are part of prompt_tokens; a payload that says otherwise gets no cache price.
		if c := cached + written; c <= u.Event.InputTokens {
			u.Event.CachedInputTokens = c
		}
	}
	at, err := epoch(p.StartTime)
	if err != nil || at.IsZero() {
		if at, err = epoch(p.EndTime); err != nil || at.IsZero() {
			return fail("log object %d has no startTime or endTime (Unix seconds)", n)
		}
	}
	u.Event.OccurredAt = at
	if e := str(p.Metadata.UserEmail); e != "" {
		u.Event.Email = e
		return u
	}
	for _, id := range []struct{ kind, v string }{
		{connectors.KindUser, str(p.EndUser)},
		{connectors.KindUser, str(p.Metadata.UserID)},
		{connectors.KindUser, str(p.Metadata.EndUserID)},
		{connectors.KindAPIKey, str(p.Metadata.KeyAlias)},
		{connectors.KindAPIKey, str(p.Metadata.KeyHash)},
	} {
		if id.v != "" {
			u.IDs = append(u.IDs, connectors.Identity(id.kind, id.v))
		}
	}
	return u
}

// count reads a token count that LiteLLM writes as an integer (older payloads: a string).
func count(name string, n json.Number) (int64, error) {
	s := strings.Trim(strings.TrimSpace(string(n)), `"`)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > maxTokens {
		return 0, fmt.Errorf("%s must be a whole number from 0 to %d, not %q", name, int64(maxTokens), s)
	}
	return v, nil
}

// epoch reads startTime/endTime: Unix seconds as a float, or the same as a string (the
// repository's own fixture writes them so).
func epoch(raw json.RawMessage) (time.Time, error) {
	s := strings.Trim(strings.TrimSpace(string(raw)), `"`)
	if s == "" || s == "null" {
		return time.Time{}, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1e11 {
		if t, terr := time.Parse(time.RFC3339Nano, s); terr == nil {
			return t.UTC(), nil
		}
		return time.Time{}, fmt.Errorf("%q is not Unix seconds", s)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC(), nil
}
