package litellm

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger/connectors"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(spectest.Path(t, "examples/"+name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeExample(t *testing.T) {
	for _, name := range []string{"litellm-generic-api-json-array.json", "litellm-generic-api-ndjson.txt"} {
		got, err := Decode(bytes.NewReader(example(t, name)))
		if err != nil || len(got) != 3 {
			t.Fatalf("%s: %d events, %v", name, len(got), err)
		}
		ann, bob, fail := got[0], got[1], got[2]
		if ann.Err != nil || ann.Event.EventID != "litellm:chatcmpl-4e1b7c90-2f6a-4d3e-9b8c-5a7d1e0f3c21" || ann.Event.Email != "ann@acme.test" ||
			ann.Event.Model != "gpt-4o" || ann.Event.InputTokens != 1240 || ann.Event.OutputTokens != 312 || ann.Event.CachedInputTokens != 0 ||
			!ann.Event.OccurredAt.Equal(time.Date(2026, 3, 2, 9, 15, 15, 204113000, time.UTC)) {
			t.Errorf("%s: ann %+v", name, ann)
		}
		if bob.Err != nil || bob.Event.Email != "bob@acme.test" || bob.Event.InputTokens != 2210 || bob.Event.CachedInputTokens != 1800 || bob.Event.OutputTokens != 845 {
			t.Errorf("%s: bob %+v", name, bob)
		}
		if fail.Skip == "" || fail.Err != nil {
			t.Errorf("%s: the failure is not skipped: %+v", name, fail)
		}
	}
}

func TestDecodeShapes(t *testing.T) {
	obj := func(extra string) string {
		return `{"id":"c1","status":"success","model":"","model_group":"grp","prompt_tokens":"10","completion_tokens":2,"startTime":"1772442915.5"` + extra + `}`
	}
	tests := []struct {
		name, body string
		check      func(t *testing.T, u connectors.Usage)
	}{
		{"model_group and string numbers", obj(`,"metadata":{"user_api_key_user_email":"a@x.io"}`), func(t *testing.T, u connectors.Usage) {
			if u.Err != nil || u.Event.Model != "grp" || u.Event.InputTokens != 10 || u.Event.OccurredAt.Unix() != 1772442915 {
				t.Errorf("%+v", u)
			}
		}},
		{"identities in order", obj(`,"end_user":"","metadata":{"user_api_key_user_email":null,"user_api_key_user_id":"u-1","user_api_key_alias":"ci"}`), func(t *testing.T, u connectors.Usage) {
			if want := []string{"user:u-1", "api_key:ci"}; !reflect.DeepEqual(u.IDs, want) || u.Event.Email != "" {
				t.Errorf("IDs %v, want %v", u.IDs, want)
			}
		}},
		{"cache writes are cached input", obj(`,"metadata":{"user_api_key_user_email":"a@x.io","usage_object":{"cache_creation_input_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}}`), func(t *testing.T, u connectors.Usage) {
			if u.Event.CachedInputTokens != 7 {
				t.Errorf("cached %d, want 7", u.Event.CachedInputTokens)
			}
		}},
		{"cache hit", obj(`,"cache_hit":true`), func(t *testing.T, u connectors.Usage) {
			if u.Skip == "" {
				t.Error("a cache hit is billed")
			}
		}},
		{"escaped email", obj(`,"metadata":{"user_api_key_user_email":"a\u0040x.io"}`), func(t *testing.T, u connectors.Usage) {
			if u.Event.Email != "a@x.io" {
				t.Errorf("email %q", u.Event.Email)
			}
		}},
		{"no time", `{"id":"c1","status":"success","model":"m","prompt_tokens":1}`, func(t *testing.T, u connectors.Usage) {
			if u.Err == nil || !strings.Contains(u.Err.Error(), "startTime") {
				t.Errorf("err %v", u.Err)
			}
		}},
		{"fractional tokens", `{"id":"c1","status":"success","model":"m","prompt_tokens":1.5,"startTime":1}`, func(t *testing.T, u connectors.Usage) {
			if u.Err == nil || !strings.Contains(u.Err.Error(), "prompt_tokens") {
				t.Errorf("err %v", u.Err)
			}
		}},
		{"wrong type names the field", `{"id":"c1","status":7}`, func(t *testing.T, u connectors.Usage) {
			if u.Err == nil || !strings.Contains(u.Err.Error(), "status") || strings.Contains(u.Err.Error(), "Go") {
				t.Errorf("err %v", u.Err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(strings.NewReader(tt.body))
			if err != nil || len(got) != 1 {
				t.Fatalf("%d, %v", len(got), err)
			}
			tt.check(t, got[0])
		})
	}
}

// same reports whether two decodings agree on everything a caller uses.
func same(a, b []connectors.Usage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !reflect.DeepEqual(a[i].Event, b[i].Event) || !reflect.DeepEqual(a[i].IDs, b[i].IDs) || a[i].Skip != b[i].Skip ||
			(a[i].Err == nil) != (b[i].Err == nil) {
			return false
		}
	}
	return true
}

// FuzzDecode: Decode never panics, and on valid JSON the fast path agrees with
// encoding/json whenever it answers.
func FuzzDecode(f *testing.F) {
	f.Add(example(f, "litellm-generic-api-json-array.json"))
	f.Add(example(f, "litellm-generic-api-ndjson.txt"))
	f.Add([]byte(`{"id":"x","status":"success","model":"m","prompt_tokens":"5","startTime":"1.5","metadata":{"user_api_key_user_email":"a\"@b"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := Decode(bytes.NewReader(body))
		fast, ok := decodeFast(body)
		if !ok || !json.Valid(bytes.ReplaceAll(append([]byte("["), append(bytes.ReplaceAll(body, []byte("\n"), []byte(",")), ']')...), []byte("[,"), []byte("["))) {
			return
		}
		slow, serr := decodeSlow(body)
		if serr != nil {
			return // several values run together: json.Valid above cannot tell
		}
		if !same(fast, slow) {
			t.Errorf("fast and encoding/json disagree on %q:\nfast %+v\nslow %+v", body, fast, slow)
		}
		if err != nil || !same(got, fast) {
			t.Errorf("Decode = %v, %v", got, err)
		}
	})
}

// A gateway reads what is wrong with an object in JSON's words, never a Go type.
func TestProblemsInJSONWords(t *testing.T) {
	for body, want := range map[string]string{
		`[{"id":"a","metadata":false}]`:                            "metadata must be an object",
		`[{"id":"a","metAdAtA":false}]`:                            "metadata must be an object",
		`[{"id":"a","prompt_tokens":{}}]`:                          "prompt_tokens must be a number",
		`[{"id":"a","metadata":{"user_api_key_user_email":true}}]`: "metadata.user_api_key_user_email must be a string",
		`[{"id":"a","cache_hit":"yes"}]`:                           "cache_hit must be true or false",
	} {
		got, err := Decode(strings.NewReader(body))
		if err != nil || len(got) != 1 || got[0].Err == nil {
			t.Fatalf("%s: got %+v, %v; want one object with a problem", body, got, err)
		}
		msg := got[0].Err.Error()
		if !strings.Contains(msg, want) || strings.Contains(msg, "struct") || strings.Contains(msg, "*") || strings.Contains(msg, "litellm.") {
			t.Errorf("%s: %q, want it to say %q in JSON's words", body, msg, want)
		}
	}
}

// TestBodyProblems: a body that is not JSON is refused with a sentence that says where,
// never encoding/json's bare "unexpected EOF".
func TestBodyProblems(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"id":"a"}{`, "it ends in the middle of a JSON value (was it cut short?)"},
		{`[{"id":"a","model":"m"`, "it ends in the middle of a JSON value (was it cut short?)"},
		{`garbage`, "it is not valid JSON at character 1 (invalid character 'g' looking for beginning of value)"},
	} {
		_, err := DecodeBytes([]byte(tc.body))
		if err == nil || !strings.HasSuffix(err.Error(), "or one per line): "+tc.want) || strings.Contains(err.Error(), "EOF") {
			t.Errorf("%s: %v, want it to end with %q", tc.body, err, tc.want)
		}
	}
}
