// Package teams is tokenpay's Microsoft Teams adapter: Bot Framework authentication, the
// connector client, Adaptive Card rendering of the core's replies, and the activity
// handler behind POST /api/messages.
package teams

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/bot"
)

// Teams limits: a message carries at most 28 KB; a row of more than six buttons does not
// fit a card.
const (
	maxCardBytes = 28 << 10
	maxActions   = 6
	cardVersion  = "1.5"
	// dataKey names the typed action in an action's data.
	dataKey = "tokenpay"
	// originKey names, in an Action.Execute's data, the card the action was pressed on
	// ("team", "request:12"), so the invoke response can redraw that card.
	originKey = "origin"
)

// card is an Adaptive Card (or one of its elements) as JSON-ready maps.
type card = map[string]any

// Cards are composed from Adaptive Card structure, one element per line or entry, so
// Teams never has to guess where a line ends. Body text goes into RichTextBlocks of
// TextRuns, which Teams never reads as markdown: what a person typed shows exactly as
// typed. Only headings and facts are TextBlocks (markdown), and their text is escaped.
// Source: https://adaptivecards.io/explorer (1.5) and Teams' "Format cards" page (the
// markdown subset: bold, italic, lists, links).

// escapeMarkdown makes text inert in a TextBlock or a fact: the characters of Teams'
// markdown subset are backslash-escaped, a line that would start a list or a quote is
// defused, and < and > are entities so nothing reads as HTML.
func escapeMarkdown(s string) string {
	s = mdEscaper.Replace(s)
	if m := listStart.FindStringIndex(s); m != nil {
		s = s[:m[1]-1] + `\` + s[m[1]-1:]
	}
	return s
}

var (
	mdEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `_`, `\_`, "`", "\\`", `[`, `\[`, `]`, `\]`, `~`, `\~`,
		`<`, "&lt;", `>`, "&gt;", "\r", "", "\n", " ")
	// listStart matches the start of a line markdown would turn into a list item.
	listStart = regexp.MustCompile(`^\s*(?:[-+#]|\d+[.)])`)
)

// textBlock is a TextBlock of escaped text; extra adds or overrides properties.
func textBlock(text string, extra card) card {
	b := card{"type": "TextBlock", "text": escapeMarkdown(text), "wrap": true}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// span is a run of the core's text in one style.
type span struct {
	text         string
	bold, italic bool
}

// spans reads the core's markup: *bold* and _italic_ around words. A marker counts only
// at a word's edge and never doubled, so `**x**`, snake_case or 2*3*4 stay as written.
func spans(s string) []span {
	var out []span
	plain := strings.Builder{}
	flush := func() {
		if plain.Len() > 0 {
			out = append(out, span{text: plain.String()})
			plain.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c == '*' || c == '_' {
			if j := closing(s, i); j > 0 {
				flush()
				out = append(out, span{text: s[i+1 : j], bold: c == '*', italic: c == '_'})
				i = j + 1
				continue
			}
		}
		plain.WriteByte(c)
		i++
	}
	flush()
	return out
}

// maxMarked bounds the length of a *bold* or _italic_ phrase in bytes.
const maxMarked = 300

// closing returns the index of the marker closing the one at i, or -1.
func closing(s string, i int) int {
	c := s[i]
	before, _ := utf8.DecodeLastRuneInString(s[:i])
	if i > 0 && (isWord(before) || before == rune(c)) {
		return -1
	}
	if i+1 >= len(s) || s[i+1] == c || s[i+1] == ' ' {
		return -1
	}
	// A marked phrase is short and on one line; looking no further keeps reading linear.
	for j := i + 2; j < len(s) && j <= i+maxMarked && s[j] != '\n'; j++ {
		if s[j] != c {
			continue
		}
		if s[j-1] == ' ' {
			continue
		}
		after, _ := utf8.DecodeRuneInString(s[j+1:])
		if j+1 < len(s) && (isWord(after) || after == rune(c)) {
			continue
		}
		return j
	}
	return -1
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// runs turns the core's marked-up text into TextRuns; style applies to every run.
func runs(s string, style card) []any {
	var out []any
	for _, sp := range spans(s) {
		r := card{"type": "TextRun", "text": sp.text}
		if sp.bold {
			r["weight"] = "Bolder"
		}
		if sp.italic {
			r["italic"] = true
		}
		for k, v := range style {
			r[k] = v
		}
		out = append(out, r)
	}
	return out
}

// quoteRun is text a person typed, as one TextRun: shown exactly as typed. Line breaks
// they typed become spaces, as the run is one line of its entry.
func quoteRun(s string, style card) card {
	r := card{"type": "TextRun", "text": strings.Join(strings.Fields(s), " ")}
	for k, v := range style {
		r[k] = v
	}
	return r
}

// richLine is one line of the core's text as a RichTextBlock, nil when the line is blank.
func richLine(line string, style card) card {
	if strings.TrimSpace(line) == "" {
		return nil
	}
	// A line that is one bold phrase is a heading.
	if sp := spans(line); len(sp) == 1 && sp[0].bold && style == nil {
		return textBlock(sp[0].text, card{"weight": "Bolder"})
	}
	return card{"type": "RichTextBlock", "inlines": runs(line, style)}
}

// oneLine makes an entry one line: a line break in it becomes a space.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

// lines renders text as one element per line.
func lines(text string, style card) []card {
	var out []card
	for _, l := range strings.Split(strings.ReplaceAll(text, "\r", ""), "\n") {
		if el := richLine(l, style); el != nil {
			out = append(out, el)
		}
	}
	return out
}

// stateful action kinds change a card's state: they are Universal Actions
// (Action.Execute, invoke adaptiveCard/action), so the card is redrawn in place for
// whoever presses them. The others post a message back (Action.Submit) and the bot
// answers below.
var stateful = map[bot.ActionKind]bool{bot.ActApprove: true, bot.ActDeny: true, bot.ActAsk: true, bot.ActCancel: true,
	bot.ActValidate: true, bot.ActTeam: true}

// idLabel says what an action on an entry acts on, for the tooltip ("request #12").
var idLabel = map[bot.ActionKind]string{bot.ActApprove: "request", bot.ActDeny: "request", bot.ActAsk: "request",
	bot.ActCancel: "request", bot.ActValidate: "outcome"}

// renderer builds one card.
type renderer struct {
	origin string
}

// action renders a button. A stateful one is an Action.Execute whose verb and data carry
// the typed action, with an Action.Submit of the same data as its fallback for clients
// without Universal Actions.
func (rd renderer) action(b bot.Button) card {
	data := card{dataKey: b.Action.String()}
	submit := card{"type": "Action.Submit", "title": b.Label, "data": data}
	a := submit
	if stateful[b.Action.Kind] {
		execData := card{dataKey: b.Action.String()}
		if rd.origin != "" {
			execData[originKey] = rd.origin
		}
		a = card{"type": "Action.Execute", "title": b.Label, "verb": b.Action.String(), "data": execData,
			"fallback": card{"type": "Action.Submit", "title": b.Label, "data": card{dataKey: b.Action.String()}}}
	}
	if what := idLabel[b.Action.Kind]; what != "" {
		a["tooltip"] = fmt.Sprintf("%s (%s #%s)", b.Label, what, b.Action.Value)
	}
	switch b.Style {
	case bot.StylePrimary:
		a["style"] = "positive"
	case bot.StyleDanger:
		a["style"] = "destructive"
	}
	return a
}

// actionSet renders a row of buttons in place, next to what they act on.
func (rd renderer) actionSet(buttons []bot.Button) card {
	var acts []any
	for _, b := range buttons[:min(len(buttons), maxActions)] {
		acts = append(acts, rd.action(b))
	}
	return card{"type": "ActionSet", "actions": acts}
}

// list renders a list: the title as a heading, then each entry its own element (a
// Container holding the entry's line and its buttons when it has some).
func (rd renderer) list(l *bot.List) []card {
	var out []card
	if l.Title != "" {
		out = append(out, textBlock(l.Title, card{"weight": "Bolder", "style": "heading", "size": "Default"}))
	}
	for _, it := range l.Items {
		inl := runs(oneLine(it.Text), nil)
		if strings.TrimSpace(it.Quote) != "" {
			inl = append(inl, quoteRun(it.Quote, nil))
		}
		if len(inl) == 0 {
			continue
		}
		line := card{"type": "RichTextBlock", "inlines": inl}
		if len(it.Buttons) == 0 {
			// Entries of a list sit closer together than paragraphs.
			line["spacing"] = "Small"
			out = append(out, line)
			continue
		}
		out = append(out, card{"type": "Container", "separator": true, "spacing": "Medium",
			"items": []any{line, rd.actionSet(it.Buttons)}})
	}
	if l.More != "" {
		out = append(out, lines(l.More, card{"isSubtle": true, "size": "Small"})...)
	}
	return out
}

// Card renders a reply as an Adaptive Card 1.5. A modal becomes a card with inputs whose
// submit carries the modal's action, so a form works the same as in Slack.
func Card(r bot.Reply) card { return CardFrom(r, "") }

// CardFrom is Card for a card that Action.Execute presses may redraw: origin names it
// ("team", "request:12") and rides along in each Action.Execute's data.
func CardFrom(r bot.Reply, origin string) card {
	rd := renderer{origin: origin}
	var body []any
	if r.Header != "" {
		body = append(body, textBlock(r.Header, card{"size": "Medium", "weight": "Bolder", "style": "heading"}))
	}
	separate := false
	add := func(els ...card) {
		for _, b := range els {
			if separate {
				b["separator"] = true
				b["spacing"] = "Medium"
				separate = false
			}
			body = append(body, b)
		}
	}
	for _, blk := range r.Blocks {
		switch x := blk.(type) {
		case *bot.Text:
			add(lines(x.Text, nil)...)
		case *bot.Heading:
			add(textBlock(x.Text, card{"weight": "Bolder", "style": "heading", "size": "Default"}))
		case *bot.List:
			add(rd.list(x)...)
		case *bot.Fields:
			var facts []any
			for _, f := range x.Fields {
				facts = append(facts, card{"title": escapeMarkdown(f.Label), "value": escapeMarkdown(f.Value)})
			}
			if len(facts) > 0 {
				add(card{"type": "FactSet", "facts": facts})
			}
		case *bot.Progress:
			add(textBlock(x.Bar(10), card{"fontType": "Monospace"}),
				textBlock(x.Label, card{"isSubtle": true, "spacing": "None"}))
		case *bot.Context:
			add(lines(x.Text, card{"isSubtle": true, "size": "Small"})...)
		case *bot.Divider:
			separate = true
		case *bot.Buttons:
			if len(x.Buttons) > 0 {
				add(rd.actionSet(x.Buttons))
			}
		}
	}
	var actions []any
	if m := r.Modal; m != nil {
		body = append(body, textBlock(m.Title, card{"weight": "Bolder", "style": "heading", "size": "Medium"}))
		if m.Intro != "" {
			body = append(body, textBlock(m.Intro, card{"isSubtle": true}))
		}
		for _, in := range m.Inputs {
			input := card{"type": "Input.Text", "id": in.ID, "label": in.Label, "isMultiline": in.Multiline, "isRequired": !in.Optional}
			if in.Placeholder != "" {
				input["placeholder"] = in.Placeholder
			}
			if in.Initial != "" {
				input["value"] = in.Initial
			}
			if in.MaxLength > 0 {
				input["maxLength"] = in.MaxLength
			}
			if !in.Optional {
				input["errorMessage"] = in.Label + " is required"
			}
			body = append(body, input)
		}
		submit := rd.action(bot.Button{Label: m.Submit, Action: m.Action, Style: bot.StylePrimary})
		delete(submit, "tooltip")
		actions = append(actions, submit)
	}
	if len(body) == 0 {
		body = append(body, textBlock(" ", nil))
	}
	c := card{"type": "AdaptiveCard", "$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "version": cardVersion, "body": body}
	if len(actions) > 0 {
		c["actions"] = actions
	}
	return shrink(c)
}

// shrink cuts long texts until the card fits Teams' message limit.
func shrink(c card) card {
	for limit := 2000; ; limit /= 2 {
		raw, _ := json.Marshal(c)
		if len(raw) <= maxCardBytes-1024 || limit < 50 {
			return c
		}
		cutTexts(c["body"], limit)
	}
}

// cutTexts shortens the text of every TextBlock and TextRun under v to limit runes.
func cutTexts(v any, limit int) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			cutTexts(e, limit)
		}
	case card:
		if t := x["type"]; t == "TextBlock" || t == "TextRun" {
			if s, _ := x["text"].(string); utf8.RuneCountInString(s) > limit {
				x["text"] = string([]rune(s)[:limit]) + "…"
			}
		}
		for _, k := range []string{"items", "inlines"} {
			if e, ok := x[k]; ok {
				cutTexts(e, limit)
			}
		}
	}
}

// FormFrom reads a submitted card's values: the typed action and every input's value.
// The origin of an Action.Execute and Teams' own msteams block are not form values.
func FormFrom(value map[string]any) (action string, form map[string]string) {
	form = map[string]string{}
	for k, v := range value {
		switch {
		case k == dataKey:
			action, _ = v.(string)
		case k == originKey || k == "msteams":
		case v == nil:
		default:
			if s, ok := v.(string); ok {
				form[k] = s
			} else {
				form[k] = fmt.Sprint(v)
			}
		}
	}
	return action, form
}
