package teams

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
)

// FuzzCardText renders whatever text people and the directory may put into a reply: the
// card is always valid JSON, no TextBlock or TextRun holds a line break, and the markup
// reader loses no character (the spans and their markers give back the input).
func FuzzCardText(f *testing.F) {
	for _, s := range []string{"plain", "*bold* and _it_", "**x** [a](b) <at>y</at>", "a\nb\r\nc", "*", "_*_*", "2*3*4 snake_case",
		"- item\n1. first\n# title", "é*ü* 👋 _ñ_", "\x00\xff*\x80*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var back strings.Builder
		for _, sp := range spans(s) {
			switch {
			case sp.bold:
				back.WriteString("*" + sp.text + "*")
			case sp.italic:
				back.WriteString("_" + sp.text + "_")
			default:
				back.WriteString(sp.text)
			}
		}
		if back.String() != s {
			t.Fatalf("spans(%q) give back %q", s, back.String())
		}
		r := bot.Reply{Header: s, Blocks: []bot.Block{&bot.Text{Text: s}, &bot.Heading{Text: s}, &bot.Context{Text: s},
			&bot.List{Title: s, More: s, Items: []bot.Item{{Text: s, Quote: s, Buttons: []bot.Button{{Label: s, Action: bot.Action{Kind: bot.ActApprove, Value: "1"}}}}}},
			&bot.Fields{Fields: []bot.Field{{Label: s, Value: s}}}}}
		c := CardFrom(r, "request:1")
		if _, err := json.Marshal(c); err != nil {
			t.Fatal(err)
		}
		walk(c, func(e card) {
			if text, _ := e["text"].(string); (e["type"] == "TextBlock" || e["type"] == "TextRun") && strings.ContainsAny(text, "\n") {
				t.Fatalf("%s holds a line break: %q", e["type"], text)
			}
		})
	})
}
