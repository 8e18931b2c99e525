package litellm

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/ledger/connectors"
)

// A StandardLoggingPayload is a few kilobytes, of which tokenpay reads a dozen fields; the
// rest (messages, response, model prices) is most of the bytes. decodeFast walks the body
// once, reads those fields and skips everything else without building it, several times
// faster than encoding/json, which scans every byte through its state machine and then
// again for the struct. On anything it does not expect it gives up (ok false), and Decode
// uses encoding/json, which also says what is wrong. Skipped values are checked for their
// structure (strings closed, brackets balanced), not for every literal or control
// character inside them.

type scanner struct {
	b []byte
	i int
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func (s *scanner) ws() {
	for s.i < len(s.b) && isSpace(s.b[s.i]) {
		s.i++
	}
}

// decodeFast is Decode for well-formed bodies; see above.
func decodeFast(b []byte) ([]connectors.Usage, bool) {
	s := &scanner{b: b}
	var out []connectors.Usage
	values := 0
	for {
		s.ws()
		if s.i == len(b) {
			return out, values > 0
		}
		values++
		switch b[s.i] {
		case '[':
			s.i++
			s.ws()
			if s.i < len(b) && b[s.i] == ']' {
				s.i++
				continue
			}
			for {
				s.ws()
				p, ok := s.object()
				if !ok {
					return nil, false
				}
				out = append(out, toUsage(len(out)+1, p))
				s.ws()
				if s.i >= len(b) {
					return nil, false
				}
				if b[s.i] == ',' {
					s.i++
					continue
				}
				if b[s.i] == ']' {
					s.i++
					break
				}
				return nil, false
			}
		case '{':
			p, ok := s.object()
			if !ok {
				return nil, false
			}
			out = append(out, toUsage(len(out)+1, p))
		default:
			return nil, false
		}
		if len(out) > MaxEvents {
			return nil, false
		}
	}
}

// object reads one log object into a payload.
func (s *scanner) object() (payload, bool) {
	var p payload
	ok := s.fields(func(key string) bool {
		switch key {
		case "id":
			return s.str(&p.ID)
		case "status":
			return s.str(&p.Status)
		case "model":
			return s.str(&p.Model)
		case "model_group":
			return s.str(&p.ModelGroup)
		case "prompt_tokens":
			return s.number(&p.PromptTokens)
		case "completion_tokens":
			return s.number(&p.CompletionTokens)
		case "startTime":
			return s.raw(&p.StartTime)
		case "endTime":
			return s.raw(&p.EndTime)
		case "cache_hit":
			return s.boolPtr(&p.CacheHit)
		case "end_user":
			return s.strPtr(&p.EndUser)
		case "metadata":
			return s.metadata(&p)
		}
		return s.skip()
	})
	return p, ok
}

func (s *scanner) metadata(p *payload) bool {
	if s.null() {
		return true
	}
	m := &p.Metadata
	return s.fields(func(key string) bool {
		switch key {
		case "user_api_key_user_email":
			return s.strPtr(&m.UserEmail)
		case "user_api_key_user_id":
			return s.strPtr(&m.UserID)
		case "user_api_key_end_user_id":
			return s.strPtr(&m.EndUserID)
		case "user_api_key_alias":
			return s.strPtr(&m.KeyAlias)
		case "user_api_key_hash":
			return s.strPtr(&m.KeyHash)
		case "usage_object":
			if s.null() {
				m.UsageObject = nil
				return true
			}
			u := &usage{}
			m.UsageObject = u
			return s.fields(func(key string) bool {
				switch key {
				case "cache_creation_input_tokens":
					return s.number(&u.CacheCreationInputTokens)
				case "prompt_tokens_details":
					if s.null() {
						u.PromptTokensDetails = nil
						return true
					}
					d := &struct {
						CachedTokens json.Number `json:"cached_tokens"`
					}{}
					u.PromptTokensDetails = d
					return s.fields(func(key string) bool {
						if key == "cached_tokens" {
							return s.number(&d.CachedTokens)
						}
						return s.skip()
					})
				}
				return s.skip()
			})
		}
		return s.skip()
	})
}

// fields walks an object, calling fn with the scanner at each value.
func (s *scanner) fields(fn func(key string) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key, ok := s.plainString()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		s.ws()
		if !knownNames[key] && foldsToKnown(key) {
			return false // encoding/json matches names regardless of case ("metAdAtA"); leave that to it
		}
		if !fn(key) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// knownNames are the names the scanner reads, at any depth.
var knownNames = map[string]bool{}

func init() {
	for _, n := range []string{"id", "status", "model", "model_group", "prompt_tokens", "completion_tokens",
		"startTime", "endTime", "cache_hit", "end_user", "metadata", "user_api_key_user_email",
		"user_api_key_user_id", "user_api_key_end_user_id", "user_api_key_alias", "user_api_key_hash",
		"usage_object", "cache_creation_input_tokens", "prompt_tokens_details", "cached_tokens"} {
		knownNames[n] = true
	}
}

// foldsToKnown reports whether a name that is not exactly one the scanner reads would still
// be matched by encoding/json, which compares names without regard to case.
func foldsToKnown(key string) bool {
	for n := range knownNames {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}

// plainString reads a string without escapes (keys, and values that need none). One with
// bytes that are not UTF-8 is left to encoding/json too, which turns each into U+FFFD.
func (s *scanner) plainString() (string, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			if !ascii && !utf8.Valid(s.b[start:j]) {
				return "", false
			}
			s.i = j + 1
			return string(s.b[start:j]), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

func (s *scanner) null() bool {
	if strings.HasPrefix(string(s.b[s.i:min(s.i+4, len(s.b))]), "null") {
		s.i += 4
		return true
	}
	return false
}

// str reads a string value; one with escapes is decoded by encoding/json.
func (s *scanner) str(dst *string) bool {
	if s.null() {
		return true // encoding/json leaves the field as it was
	}
	start := s.i
	if v, ok := s.plainString(); ok {
		*dst = v
		return true
	}
	s.i = start
	if !s.skipString() {
		return false
	}
	return json.Unmarshal(s.b[start:s.i], dst) == nil
}

func (s *scanner) strPtr(dst **string) bool {
	if s.null() {
		*dst = nil
		return true
	}
	var v string
	if !s.str(&v) {
		return false
	}
	*dst = &v
	return true
}

func (s *scanner) boolPtr(dst **bool) bool {
	switch {
	case s.null():
		*dst = nil
	case strings.HasPrefix(string(s.b[s.i:min(s.i+4, len(s.b))]), "true"):
		s.i += 4
		t := true
		*dst = &t
	case strings.HasPrefix(string(s.b[s.i:min(s.i+5, len(s.b))]), "false"):
		s.i += 5
		f := false
		*dst = &f
	default:
		return false
	}
	return true
}

// number reads a JSON number, or a string holding one (json.Number accepts both).
func (s *scanner) number(dst *json.Number) bool {
	if s.null() {
		return true
	}
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.plainString()
		if !ok || !json.Valid([]byte(v)) || v == "" || v[0] == '"' {
			return false
		}
		*dst = json.Number(v)
		return true
	}
	start := s.i
	s.literal()
	tok := s.b[start:s.i]
	if len(tok) == 0 || !json.Valid(tok) || tok[0] == 't' || tok[0] == 'f' || tok[0] == 'n' {
		return false
	}
	*dst = json.Number(tok)
	return true
}

// raw keeps a scalar value as it is written (startTime: a number or a string).
func (s *scanner) raw(dst *json.RawMessage) bool {
	start := s.i
	if !s.skip() {
		return false
	}
	*dst = json.RawMessage(s.b[start:s.i])
	return true
}

func (s *scanner) literal() {
	for s.i < len(s.b) {
		switch c := s.b[s.i]; c {
		case ',', '}', ']', ' ', '\n', '\r', '\t':
			return
		}
		s.i++
	}
}

// skipString passes over a string, finding quotes with bytes.IndexByte (message texts are
// most of a payload). Control characters inside skipped strings are not checked.
func (s *scanner) skipString() bool {
	// A value cut short (`{"id":`) or of another kind is not a string.
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false
	}
	j := s.i + 1
	for {
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			return false
		}
		j += k
		// The quote is escaped when an odd number of backslashes precede it.
		n := 0
		for p := j - 1; p > s.i && s.b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			s.i = j + 1
			return true
		}
		j++
	}
}

// skip passes over one value: strings to their closing quote, objects and arrays to their
// matching bracket.
func (s *scanner) skip() bool {
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	default:
		start := s.i
		s.literal()
		return s.i > start
	}
}
