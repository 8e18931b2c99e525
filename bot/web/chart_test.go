package web

import (
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
)

func TestNiceMaxAndCompact(t *testing.T) {
	for _, tc := range []struct {
		in, want float64
	}{{0, 0}, {0.053, 0.1}, {7, 10}, {12, 20}, {24, 25}, {51, 100}, {10.5e6, 20e6}, {66e6, 100e6}} {
		if got := niceMax(tc.in); got != tc.want {
			t.Errorf("niceMax(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   float64
		unit string
		want string
	}{{0, "", "0"}, {0.025, "", "0.025"}, {0.05, "", "0.05"}, {7, "people", "7 people"}, {1234, "", "1.2k"}, {42000, "", "42k"},
		{3_400_000, "credits", "3.4M credits"}, {7_000_000, "", "7M"}, {2.5, "", "2.5"}} {
		if got := compact(tc.in, tc.unit); got != tc.want {
			t.Errorf("compact(%v, %q) = %q, want %q", tc.in, tc.unit, got, tc.want)
		}
	}
}

// Team names come from the directory CSV: they are text wherever they are drawn.
func TestChartsEscapeText(t *testing.T) {
	evil := `<script>alert(1)</script>"&`
	for _, kind := range []string{"hbar", "line", "stack", "interval"} {
		c := Chart{ID: "c", Title: evil, Desc: evil, Kind: kind, Labels: []string{evil}, Series: []Series{{Name: evil, Values: []float64{3}}},
			Intervals: []Interval{{Label: evil, Mid: 0.1, Low: -0.05, High: 0.25}}}
		svg := string(c.SVG())
		if strings.Contains(svg, "<script") || !strings.Contains(svg, "&lt;script&gt;") {
			t.Errorf("%s: text not escaped: %.300s", kind, svg)
		}
		if !strings.HasPrefix(svg, `<svg class="chart"`) || !strings.Contains(svg, `role="img" aria-labelledby="c-title c-desc"`) || !strings.HasSuffix(svg, "</svg>") {
			t.Errorf("%s: not an accessible SVG: %.200s", kind, svg)
		}
	}
	r := bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "*Approved* " + evil}, &bot.Context{Text: evil}, &bot.Heading{Text: evil},
		&bot.List{Title: evil, Items: []bot.Item{{Text: "*#1* ", Quote: "*not bold* " + evil}}, More: evil}}}
	if h := string(replyHTML(r)); strings.Contains(h, "<script") || !strings.Contains(h, "<strong>Approved</strong>") ||
		!strings.Contains(h, "<strong>#1</strong> *not bold*") {
		t.Errorf("reply: %s", h)
	}
}

func TestCSVSafe(t *testing.T) {
	got := csvSafe([]string{"=SUM(A1)", "+1", "-12.5", "-x", "@cmd", "Sales", ""})
	want := []string{"'=SUM(A1)", "'+1", "-12.5", "'-x", "'@cmd", "Sales", ""}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("csvSafe[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}
