package slack

import (
	"strings"
	"testing"
	"testing/quick"
	"unicode/utf8"
)

func TestUnformat(t *testing.T) {
	tests := []struct{ in, want string }{
		{"R&amp;D survey &lt;draft&gt; for Q4", "R&D survey <draft> for Q4"},
		{"a &amp;lt; b", "a &lt; b"}, // typed "&lt;": decoded once, not twice
		{"&amp;amp;", "&amp;"},
		{"ping <@U0PAT> and <@W0ANN|ann>", "ping @U0PAT and @ann"},
		{"<!channel> <!here|here> <!everyone>", "@channel here @everyone"},
		{"<!subteam^S123|@design> <!subteam^S123>", "@design @subteam"},
		{"<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"},
		{"in <#C024BE7LR|general> or <#C024BE7LR>", "in #general or #C024BE7LR"},
		{"see <https://x|label> and <https://y> and <https://z|https://z>", "see label (https://x) and https://y and https://z"},
		{"<https://x?a=1&amp;b=2|a &amp; b>", "a & b (https://x?a=1&b=2)"},
		{"<mailto:ann@x.io|ann@x.io> <mailto:bo@x.io>", "ann@x.io bo@x.io"},
		{"2 < 3 but no closing", "2 < 3 but no closing"},
		{"", ""},
		{"plain", "plain"},
	}
	for _, tt := range tests {
		if got := Unformat(tt.in); got != tt.want {
			t.Errorf("Unformat(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := decodeEntities("R&amp;D &lt;b&gt; &amp;lt; <@U1>"); got != "R&D <b> &lt; <@U1>" {
		t.Errorf("decodeEntities = %q", got)
	}
}

// TestUnformatInvertsEscape: whatever a person types, Slack's encoding of it (escape)
// decodes back to exactly what they typed, and rendering it again pings no one.
func TestUnformatInvertsEscape(t *testing.T) {
	check := func(typed string) bool {
		if Unformat(escape(typed)) != typed || decodeEntities(escape(typed)) != typed {
			return false
		}
		return !strings.ContainsAny(escape(Unformat(typed)), "<>")
	}
	if err := quick.Check(check, &quick.Config{MaxCount: 5000}); err != nil {
		t.Error(err)
	}
	for _, s := range []string{"<!channel>", "&amp;lt;", "<@U1|x>", "a<b>c&d"} {
		if !check(s) {
			t.Errorf("round trip of %q", s)
		}
	}
}

func FuzzUnformat(f *testing.F) {
	for _, s := range []string{"R&amp;D &lt;draft&gt;", "<@U1|ann> <!channel> <https://x|label>", "<<>>", "<!date^1^{date}|x>", "&amp;amp;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Unformat(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("Unformat(%q) = %q is not valid UTF-8", s, out)
		}
		if r := escape(out); strings.ContainsAny(r, "<>") {
			t.Fatalf("rendering %q again leaves markup: %q", out, r)
		}
		if Unformat(escape(out)) != out {
			t.Fatalf("%q does not survive a round trip through Slack", out)
		}
	})
}
