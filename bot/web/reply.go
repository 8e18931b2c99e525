package web

import (
	"html"
	"html/template"
	"regexp"
	"strings"

	"github.com/tokenpay/tokenpay/bot"
)

var bold = regexp.MustCompile(`\*([^*\n]+)\*`)

// text renders the core's plain text (*bold* its only markup) as escaped HTML.
func text(s string) string {
	s = html.EscapeString(s)
	s = bold.ReplaceAllString(s, "<strong>$1</strong>")
	return strings.ReplaceAll(s, "\n", "<br>")
}

// replyHTML renders what the conversation core answered; buttons are left out (the page
// has its own forms).
func replyHTML(r bot.Reply) template.HTML {
	var b strings.Builder
	for _, blk := range r.Blocks {
		switch v := blk.(type) {
		case *bot.Text:
			b.WriteString("<p>" + text(v.Text) + "</p>")
		case *bot.Context:
			b.WriteString(`<p class="hint">` + text(v.Text) + "</p>")
		case *bot.Fields:
			b.WriteString(`<dl class="facts">`)
			for _, f := range v.Fields {
				b.WriteString("<div><dt>" + text(f.Label) + "</dt><dd>" + text(f.Value) + "</dd></div>")
			}
			b.WriteString("</dl>")
		case *bot.Heading:
			b.WriteString("<h2>" + html.EscapeString(v.Text) + "</h2>")
		case *bot.List:
			if v.Title != "" {
				b.WriteString("<p><strong>" + html.EscapeString(v.Title) + "</strong></p>")
			}
			b.WriteString(`<ul class="items">`)
			for _, it := range v.Items {
				// Quote is what a person typed: never formatted, only escaped.
				b.WriteString("<li>" + text(it.Text) + strings.ReplaceAll(html.EscapeString(it.Quote), "\n", "<br>") + "</li>")
			}
			b.WriteString("</ul>")
			if v.More != "" {
				b.WriteString(`<p class="hint">` + text(v.More) + "</p>")
			}
		case *bot.Progress:
			b.WriteString("<p>" + text(v.Label) + " " + html.EscapeString(v.Bar(10)) + "</p>")
		}
	}
	return template.HTML(b.String()) // #nosec: every text is escaped by text()
}
