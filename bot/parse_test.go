package bot_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/tokenpay/tokenpay/bot"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		in   string
		want bot.Command
	}{
		{"", bot.Command{Name: "balance"}},
		{" \t\n ", bot.Command{Name: "balance"}},
		{"/tokens", bot.Command{Name: "balance"}},
		{"  /TOKENS  ", bot.Command{Name: "balance"}},
		{"tokens", bot.Command{Name: "balance"}},
		{"/tokens balance", bot.Command{Name: "balance"}},
		{"Tokens History", bot.Command{Name: "history"}},
		{"HELP", bot.Command{Name: "help"}},
		{"/tokens request 5000 summarise  the interviews ", bot.Command{Name: "request",
			Args: []string{"5000", "summarise", "the", "interviews"}, Rest: "5000 summarise  the interviews"}},
		{"request 5k Summarise Q3", bot.Command{Name: "request", Args: []string{"5k", "Summarise", "Q3"}, Rest: "5k Summarise Q3"}},
		{"/tokens\tteam", bot.Command{Name: "team"}},
		{"/tokens\nimpact shipped\n--hours 2", bot.Command{Name: "impact", Args: []string{"shipped", "--hours", "2"}, Rest: "shipped\n--hours 2"}},
		{"request\t5k\tuse case", bot.Command{Name: "request", Args: []string{"5k", "use", "case"}, Rest: "5k\tuse case"}},
		{"impact\nline one\nline two", bot.Command{Name: "impact", Args: []string{"line", "one", "line", "two"}, Rest: "line one\nline two"}},
		// Chat clients send other spaces too: a no-break space or a carriage return
		// separates words like any other.
		{"request\u00a05k interviews", bot.Command{Name: "request", Args: []string{"5k", "interviews"}, Rest: "5k interviews"}},
		{"/tokens\u00a0balance", bot.Command{Name: "balance"}},
		{"nudges\roff", bot.Command{Name: "nudges", Args: []string{"off"}, Rest: "off"}},
		// The prefix is a whole word.
		{"/tokensbalance", bot.Command{Name: "/tokensbalance"}},
		{"tokenspay help", bot.Command{Name: "tokenspay", Args: []string{"help"}, Rest: "help"}},
		{"/tokens tokens", bot.Command{Name: "tokens"}},
		{"/token balance", bot.Command{Name: "/token", Args: []string{"balance"}, Rest: "balance"}},
		{"?", bot.Command{Name: "?"}},
		{"ÉQUIPE", bot.Command{Name: "équipe"}},
	}
	for _, tt := range tests {
		got := bot.ParseCommand(tt.in)
		if got.Name != tt.want.Name || !slices.Equal(got.Args, tt.want.Args) || got.Rest != tt.want.Rest {
			t.Errorf("ParseCommand(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}

func TestParseAction(t *testing.T) {
	tests := []struct {
		in   string
		want bot.Action
		ok   bool
	}{
		{"approve:42", bot.Action{Kind: bot.ActApprove, Value: "42"}, true},
		{"deny:7", bot.Action{Kind: bot.ActDeny, Value: "7"}, true},
		{"ask:7", bot.Action{Kind: bot.ActAsk, Value: "7"}, true},
		{"cancel:1", bot.Action{Kind: bot.ActCancel, Value: "1"}, true},
		{"validate:9223372036854775807", bot.Action{Kind: bot.ActValidate, Value: "9223372036854775807"}, true},
		{"open_request", bot.Action{Kind: bot.ActOpenRequest}, true},
		{"submit_request", bot.Action{Kind: bot.ActSubmitRequest}, true},
		{"open_impact", bot.Action{Kind: bot.ActOpenImpact}, true},
		{"submit_impact", bot.Action{Kind: bot.ActSubmitImpact}, true},
		{"nudges_off", bot.Action{Kind: bot.ActNudgesOff}, true},
		{"balance", bot.Action{Kind: bot.ActBalance}, true},
		// Ids must be numbers.
		{"approve", bot.Action{Kind: bot.ActApprove}, false},
		{"approve:", bot.Action{Kind: bot.ActApprove}, false},
		{"approve:abc", bot.Action{Kind: bot.ActApprove, Value: "abc"}, false},
		{"deny:4.2", bot.Action{Kind: bot.ActDeny, Value: "4.2"}, false},
		{"ask: 7", bot.Action{Kind: bot.ActAsk, Value: " 7"}, false},
		{"cancel:7:8", bot.Action{Kind: bot.ActCancel, Value: "7:8"}, false},
		{"validate:9223372036854775808", bot.Action{Kind: bot.ActValidate, Value: "9223372036854775808"}, false},
		// Extension kinds (handled by Handler.ExtraActions) are lower case words.
		{"share_prompt:3", bot.Action{Kind: "share_prompt", Value: "3"}, true},
		{"prompt_page:2:tax returns", bot.Action{Kind: "prompt_page", Value: "2:tax returns"}, true},
		{"prompt_page:" + strings.Repeat("x", 201), bot.Action{Kind: "prompt_page", Value: strings.Repeat("x", 201)}, false},
		// Unknown kinds.
		{"", bot.Action{}, false},
		{"APPROVE:1", bot.Action{Kind: "APPROVE", Value: "1"}, false},
		{"rm -rf:1", bot.Action{Kind: "rm -rf", Value: "1"}, false},
		{":1", bot.Action{Value: "1"}, false},
	}
	for _, tt := range tests {
		got, ok := bot.ParseAction(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseAction(%q) = %#v, %v; want %#v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.in {
			t.Errorf("ParseAction(%q).String() = %q, want the input back", tt.in, got.String())
		}
	}
	if a, _ := bot.ParseAction("approve:42"); a.ID() != 42 {
		t.Errorf("approve:42 has id %d", a.ID())
	}
}

// FuzzParseCommand checks ParseCommand against a plain model: the words of the text,
// less a leading "tokens" or "/tokens" word; the first is the lower-cased name, the rest
// the arguments, and Rest is the text they came from.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"", "/tokens", "/tokens request 5k summarise interviews", "tokens\thistory",
		"impact shipped\n--hours 2 --link https://x", "request\u00a05k x", "/TOKENS  BAL", "tokensx y", "\u2028help\u3000me"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := bot.ParseCommand(text)
		words := strings.Fields(text)
		if len(words) > 0 && (isWord(words[0], "/tokens") || isWord(words[0], "tokens")) {
			words = words[1:]
		}
		if len(words) == 0 {
			if got.Name != "balance" || len(got.Args) != 0 || got.Rest != "" {
				t.Fatalf("ParseCommand(%q) = %#v, want balance", text, got)
			}
			return
		}
		if got.Name != strings.ToLower(words[0]) || !slices.Equal(got.Args, words[1:]) {
			t.Fatalf("ParseCommand(%q) = %#v, want name %q and args %q", text, got, strings.ToLower(words[0]), words[1:])
		}
		if !slices.Equal(strings.Fields(got.Rest), got.Args) || !strings.Contains(text, got.Rest) ||
			strings.TrimFunc(got.Rest, unicode.IsSpace) != got.Rest {
			t.Fatalf("ParseCommand(%q): Rest %q is not the trimmed text of args %q", text, got.Rest, got.Args)
		}
	})
}

// isWord reports whether w is prefix in any letter case; the lengths must match, so
// look-alikes such as the Kelvin sign for k do not count.
func isWord(w, prefix string) bool {
	return len(w) == len(prefix) && strings.EqualFold(w, prefix)
}
