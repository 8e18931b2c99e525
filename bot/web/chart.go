package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strconv"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// Charts are drawn on the server as inline SVG: no script, no external asset, readable
// without JavaScript and allowed by a CSP that forbids everything but the page itself.
// Each chart has a title and a one-sentence description (its text alternative, read by
// screen readers through aria-labelledby) and the table of its numbers beside it, which
// is also what its CSV download contains.

// palette is Okabe and Ito's colour-blind safe set, without its yellow (too pale on white).
var palette = []string{"#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#000000"}

// Series is one named row of values, one per label.
type Series struct {
	Name   string
	Values []float64
}

// Interval is an estimate with its 95% interval, for the lift chart.
type Interval struct {
	Label          string
	Mid, Low, High float64
	Missing        bool // not enough data: drawn as a note, not a point
}

// Table is a chart's numbers: what the page shows beside it and what its CSV holds.
type Table struct {
	Head []string
	Rows [][]string
}

// Chart is one figure of a page.
type Chart struct {
	ID    string // unique in the page; names the CSV download
	Title string
	// Desc says what the chart shows in one or two sentences; it is the chart's text
	// alternative, together with the table.
	Desc      string
	Kind      string // "hbar", "line", "stack" or "interval"
	Labels    []string
	Series    []Series
	Intervals []Interval
	Unit      string // e.g. "credits", "people", "points"
	Table     Table
	// Note is shown instead of the chart when there is nothing to draw yet.
	Note string
}

// Empty reports whether there is nothing to draw.
func (c Chart) Empty() bool {
	if c.Kind == "interval" {
		for _, iv := range c.Intervals {
			if !iv.Missing {
				return false
			}
		}
		return true
	}
	for _, s := range c.Series {
		for _, v := range s.Values {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

// SVG draws the chart.
func (c Chart) SVG() template.HTML {
	var b strings.Builder
	switch c.Kind {
	case "hbar":
		c.hbar(&b)
	case "line":
		c.line(&b)
	case "stack":
		c.stack(&b)
	case "interval":
		c.interval(&b)
	default:
		return ""
	}
	return template.HTML(b.String()) // #nosec: every text is escaped by esc as it is written
}

func esc(s string) string { return html.EscapeString(s) }

const (
	chartWidth = 480.0
	fontSize   = 13
)

func (c Chart) open(b *strings.Builder, height float64) {
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-title %s-desc" focusable="false">`,
		chartWidth, height, esc(c.ID), esc(c.ID))
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, esc(c.ID), esc(c.Title), esc(c.ID), esc(c.Desc))
}

// legend draws the series names in a row (wrapping) at y; it returns the height used.
func (c Chart) legend(b *strings.Builder, y float64) float64 {
	x, rows := 8.0, 1
	for i, s := range c.Series {
		w := 22 + 7.2*float64(len([]rune(s.Name)))
		if x+w > chartWidth {
			x, rows = 8, rows+1
			y += 18
		}
		fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/><text x="%.1f" y="%.1f" font-size="%d">%s</text>`,
			x, y-10, palette[i%len(palette)], x+16, y, fontSize, esc(s.Name))
		x += w + 10
	}
	return float64(rows) * 18
}

func (c Chart) max() float64 {
	m := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			m = math.Max(m, v)
		}
	}
	return m
}

// hbar draws grouped horizontal bars: one group per label, one bar per series. Labels
// sit on their own line above their bars so long team names never squeeze the bars in a
// narrow window.
func (c Chart) hbar(b *strings.Builder) {
	barH, gap := 12.0, 26.0
	n := float64(len(c.Series))
	groupH := gap + n*barH
	legendH := 24.0
	height := legendH + float64(len(c.Labels))*groupH + 8
	c.open(b, height)
	c.legend(b, 16)
	max := niceMax(c.max())
	left, right := 8.0, chartWidth-70
	for i, label := range c.Labels {
		y := legendH + float64(i)*groupH
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" font-weight="600">%s</text>`, left, y+gap-8, fontSize, esc(label))
		for j, s := range c.Series {
			v := value(s, i)
			w := 0.0
			if max > 0 {
				w = (right - left) * v / max
			}
			by := y + gap + float64(j)*barH
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`,
				left, by, math.Max(w, 0.5), barH-2, palette[j%len(palette)], esc(label), esc(s.Name), esc(compact(v, c.Unit)))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11">%s</text>`, left+w+4, by+barH-3, esc(compact(v, "")))
		}
	}
	b.WriteString(`</svg>`)
}

// plot is the frame of charts with an x axis of labels and a y axis of values.
type plot struct {
	top, bottom, left, right float64
	max                      float64
}

func (p plot) y(v float64) float64 {
	if p.max <= 0 {
		return p.bottom
	}
	return p.bottom - (p.bottom-p.top)*v/p.max
}

func (c Chart) frame(b *strings.Builder, max float64) plot {
	height := 240.0
	c.open(b, height)
	lh := c.legend(b, 16)
	p := plot{top: 12 + lh, bottom: height - 28, left: 52, right: chartWidth - 10, max: niceMax(max)}
	for i := 0; i <= 4; i++ {
		v := p.max * float64(i) / 4
		y := p.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#d0d0d0"/>`, p.left, p.right, y, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`, p.left-4, y+4, esc(compact(v, "")))
	}
	return p
}

func (c Chart) xLabel(b *strings.Builder, p plot, x float64, i int) {
	// With many labels only every other one is written, so they never overlap.
	if len(c.Labels) > 8 && i%2 == 1 {
		return
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s</text>`, x, p.bottom+16, esc(c.Labels[i]))
}

// line draws one line per series over the labels.
func (c Chart) line(b *strings.Builder) {
	p := c.frame(b, c.max())
	n := len(c.Labels)
	x := func(i int) float64 {
		if n <= 1 {
			return (p.left + p.right) / 2
		}
		return p.left + 16 + (p.right-p.left-32)*float64(i)/float64(n-1)
	}
	for i := range c.Labels {
		c.xLabel(b, p, x(i), i)
	}
	for j, s := range c.Series {
		var pts []string
		for i := range c.Labels {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), p.y(value(s, i))))
		}
		colour := palette[j%len(palette)]
		fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"/>`, strings.Join(pts, " "), colour)
		for i, label := range c.Labels {
			v := value(s, i)
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, %s: %s</title></circle>`,
				x(i), p.y(v), colour, esc(label), esc(s.Name), esc(compact(v, c.Unit)))
		}
	}
	b.WriteString(`</svg>`)
}

// stack draws one column per label, the series stacked in it.
func (c Chart) stack(b *strings.Builder) {
	max := 0.0
	for i := range c.Labels {
		t := 0.0
		for _, s := range c.Series {
			t += value(s, i)
		}
		max = math.Max(max, t)
	}
	p := c.frame(b, max)
	n := float64(len(c.Labels))
	slot := (p.right - p.left) / math.Max(n, 1)
	w := math.Min(slot*0.7, 48)
	for i, label := range c.Labels {
		cx := p.left + slot*(float64(i)+0.5)
		c.xLabel(b, p, cx, i)
		base := 0.0
		for j, s := range c.Series {
			v := value(s, i)
			if v <= 0 {
				continue
			}
			y0, y1 := p.y(base), p.y(base+v)
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s, %s: %s</title></rect>`,
				cx-w/2, y1, w, math.Max(y0-y1, 0.5), palette[j%len(palette)], esc(label), esc(s.Name), esc(compact(v, c.Unit)))
			base += v
		}
	}
	b.WriteString(`</svg>`)
}

// interval draws each estimate as a dot with its 95% interval as a bar, against zero.
func (c Chart) interval(b *strings.Builder) {
	rowH := 34.0
	height := 30 + rowH*float64(len(c.Intervals)) + 20
	c.open(b, height)
	lo, hi := 0.0, 0.0
	for _, iv := range c.Intervals {
		if !iv.Missing {
			lo, hi = math.Min(lo, iv.Low), math.Max(hi, iv.High)
		}
	}
	span := math.Max(math.Ceil(math.Max(-lo, hi)*10)/10, 0.1)
	left, right := 140.0, chartWidth-20
	x := func(v float64) float64 { return left + (right-left)*(v+span)/(2*span) }
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="20" y2="%.1f" stroke="#555" stroke-dasharray="3 3"/>`, x(0), x(0), height-20)
	for _, v := range []float64{-span, 0, span} {
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%+.0f pts</text>`, x(v), height-6, v*100)
	}
	for i, iv := range c.Intervals {
		y := 30 + rowH*float64(i) + rowH/2
		fmt.Fprintf(b, `<text x="8" y="%.1f" font-size="%d">%s</text>`, y+4, fontSize, esc(iv.Label))
		if iv.Missing {
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12" fill="#444">not enough data yet</text>`, left, y+4)
			continue
		}
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="4"/>`, x(iv.Low), x(iv.High), y, y, palette[0])
		fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="6" fill="%s"><title>%s: %+.0f points (95%% interval %+.0f to %+.0f)</title></circle>`,
			x(iv.Mid), y, palette[4], esc(iv.Label), iv.Mid*100, iv.Low*100, iv.High*100)
	}
	b.WriteString(`</svg>`)
}

func value(s Series, i int) float64 {
	if i < len(s.Values) {
		return s.Values[i]
	}
	return 0
}

// niceMax rounds the top of an axis up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 0
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// compact writes a number short: 1,234 -> 1.2k, 3,400,000 -> 3.4M; unit is appended.
func compact(v float64, unit string) string {
	var s string
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		s = strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case a >= 1e4:
		s = strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case a >= 1e3:
		s = strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case a == math.Trunc(a):
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a < 1:
		s = strconv.FormatFloat(v, 'f', 3, 64)
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	default:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	}
	s = strings.Replace(s, ".0k", "k", 1)
	s = strings.Replace(s, ".0M", "M", 1)
	if unit != "" {
		s += " " + unit
	}
	return s
}

func credits(n int64) string { return ledger.FormatCredits(n) }
