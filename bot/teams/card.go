// Package teams is tokenpay's Microsoft Teams adapter: Bot Framework authentication, the
// connector client, Adaptive Card rendering of the core's replies, and the activity
// handler behind POST /api/messages.
package teams

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tokenpay/tokenpay/bot"
)

// Teams limits: a message carries at most 28 KB, and a card is readable with at most six
// buttons.
const (
	maxCardBytes = 28 << 10
	maxActions   = 6
	cardVersion  = "1.5"
	// dataKey names the typed action in an Action.Submit's data.
	dataKey = "tokenpay"
)

// card is an Adaptive Card as JSON-ready maps.
type card = map[string]any

// inert keeps user text from becoming a link or HTML in a TextBlock's markdown; Adaptive
// Cards never turn text into mentions, so that is all there is to escape.
func inert(s string) string {
	return strings.NewReplacer("](", "]\u200b(", "<", "&lt;", ">", "&gt;").Replace(s)
}

func textBlock(text string, extra map[string]any) card {
	b := card{"type": "TextBlock", "text": inert(text), "wrap": true}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// Card renders a reply as an Adaptive Card 1.5. A modal becomes a card with inputs whose
// submit carries the modal's action, so a form works the same as in Slack.
func Card(r bot.Reply) card {
	var body []any
	var actions []any
	if r.Header != "" {
		body = append(body, textBlock(r.Header, map[string]any{"size": "Medium", "weight": "Bolder"}))
	}
	separate := false
	add := func(b card) {
		if separate {
			b["separator"] = true
			b["spacing"] = "Medium"
			separate = false
		}
		body = append(body, b)
	}
	for _, blk := range r.Blocks {
		switch x := blk.(type) {
		case *bot.Text:
			add(textBlock(x.Text, nil))
		case *bot.Fields:
			var facts []any
			for _, f := range x.Fields {
				facts = append(facts, card{"title": inert(f.Label), "value": inert(f.Value)})
			}
			add(card{"type": "FactSet", "facts": facts})
		case *bot.Progress:
			add(textBlock(x.Bar(10), map[string]any{"fontType": "Monospace"}))
			add(textBlock(x.Label, map[string]any{"isSubtle": true, "spacing": "None"}))
		case *bot.Context:
			add(textBlock(x.Text, map[string]any{"isSubtle": true, "size": "Small"}))
		case *bot.Divider:
			separate = true
		case *bot.Buttons:
			for _, b := range x.Buttons {
				if len(actions) == maxActions {
					break
				}
				a := card{"type": "Action.Submit", "title": b.Label, "data": card{dataKey: b.Action.String()}}
				switch b.Style {
				case bot.StylePrimary:
					a["style"] = "positive"
				case bot.StyleDanger:
					a["style"] = "destructive"
				}
				actions = append(actions, a)
			}
		}
	}
	if m := r.Modal; m != nil {
		body = append(body, textBlock(m.Title, map[string]any{"weight": "Bolder"}))
		if m.Intro != "" {
			body = append(body, textBlock(m.Intro, map[string]any{"isSubtle": true}))
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
		actions = append(actions, card{"type": "Action.Submit", "title": m.Submit, "style": "positive", "data": card{dataKey: m.Action.String()}})
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
		for _, b := range c["body"].([]any) {
			if tb, ok := b.(card); ok && tb["type"] == "TextBlock" {
				if s, _ := tb["text"].(string); len([]rune(s)) > limit {
					tb["text"] = string([]rune(s)[:limit]) + "…"
				}
			}
		}
	}
}

// FormFrom reads a submitted card's values: the typed action and every input's value.
func FormFrom(value map[string]any) (action string, form map[string]string) {
	form = map[string]string{}
	for k, v := range value {
		if k == dataKey {
			action, _ = v.(string)
			continue
		}
		if s, ok := v.(string); ok {
			form[k] = s
		} else if v != nil && k != "msteams" {
			form[k] = fmt.Sprint(v)
		}
	}
	return action, form
}
