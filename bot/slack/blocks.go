// Package slack is tokenpay's Slack adapter: request verification, Block Kit rendering of
// the core's neutral replies, and (to come) the HTTP and Socket Mode transports.
package slack

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"github.com/tokenpay/tokenpay/bot"
)

// Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
const (
	maxHeader       = 150
	maxSectionText  = 3000
	maxFieldText    = 2000
	maxFields       = 10
	maxButtonText   = 75
	maxModalTitle   = 24
	maxButtonsInRow = 25
	barCells        = 10
)

// escape makes user text inert in mrkdwn: Slack reads &, < and > as control characters
// (<!channel>, <@U123>, <http://x|link>), so they are sent as entities.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func mrkdwn(s string, n int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(escape(s), n), false, false)
}

func plainText(s string, n int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, clip(s, n), true, false)
}

// Blocks renders a reply as Block Kit blocks.
func Blocks(r bot.Reply) []slack.Block {
	var out []slack.Block
	if r.Header != "" {
		out = append(out, slack.NewHeaderBlock(plainText(r.Header, maxHeader)))
	}
	// Block ids count the blocks after the header, so a reply keeps its ids when a list
	// is added above or below.
	first := len(out)
	for _, blk := range r.Blocks {
		switch x := blk.(type) {
		case *bot.Text:
			out = append(out, slack.NewSectionBlock(mrkdwn(x.Text, maxSectionText), nil, nil))
		case *bot.Heading:
			out = append(out, slack.NewSectionBlock(mrkdwn("*"+x.Text+"*", maxSectionText), nil, nil))
		case *bot.List:
			out = appendList(out, first, x)
		case *bot.Fields:
			var fields []*slack.TextBlockObject
			for _, f := range x.Fields[:min(len(x.Fields), maxFields)] {
				fields = append(fields, slack.NewTextBlockObject(slack.MarkdownType,
					clip("*"+escape(f.Label)+"*\n"+escape(f.Value), maxFieldText), false, false))
			}
			out = append(out, slack.NewSectionBlock(nil, fields, nil))
		case *bot.Progress:
			out = append(out, slack.NewSectionBlock(mrkdwn(fmt.Sprintf("`%s`\n%s", x.Bar(barCells), x.Label), maxSectionText), nil, nil))
		case *bot.Context:
			out = append(out, slack.NewContextBlock("", mrkdwn(x.Text, maxSectionText)))
		case *bot.Divider:
			out = append(out, slack.NewDividerBlock())
		case *bot.Buttons:
			out = append(out, actionRow(len(out)-first, x.Buttons))
		}
	}
	return out
}

// appendList renders a list the way Slack reads best: without per-entry buttons, one
// section with a line per entry (under the title in bold); with them, each entry its own
// section followed by its buttons.
func appendList(out []slack.Block, first int, l *bot.List) []slack.Block {
	perItem := false
	for _, it := range l.Items {
		perItem = perItem || len(it.Buttons) > 0
	}
	if !perItem {
		if lines := listLines(l); len(lines) > 0 {
			out = append(out, slack.NewSectionBlock(mrkdwn(strings.Join(lines, "\n"), maxSectionText), nil, nil))
		}
	} else {
		if l.Title != "" {
			out = append(out, slack.NewSectionBlock(mrkdwn("*"+l.Title+"*", maxSectionText), nil, nil))
		}
		for _, it := range l.Items {
			out = append(out, slack.NewSectionBlock(mrkdwn(it.Line(), maxSectionText), nil, nil))
			if len(it.Buttons) > 0 {
				out = append(out, actionRow(len(out)-first, it.Buttons))
			}
		}
	}
	if l.More != "" {
		out = append(out, slack.NewContextBlock("", mrkdwn(l.More, maxSectionText)))
	}
	return out
}

// listLines is a list as lines of mrkdwn: the title in bold, then one line per entry.
func listLines(l *bot.List) []string {
	var lines []string
	if l.Title != "" {
		lines = append(lines, "*"+l.Title+"*")
	}
	for _, it := range l.Items {
		lines = append(lines, it.Line())
	}
	return lines
}

func actionRow(index int, buttons []bot.Button) *slack.ActionBlock {
	var elems []slack.BlockElement
	for _, b := range buttons[:min(len(buttons), maxButtonsInRow)] {
		btn := slack.NewButtonBlockElement(b.Action.String(), b.Action.String(), plainText(b.Label, maxButtonText))
		switch b.Style {
		case bot.StylePrimary:
			btn.Style = slack.StylePrimary
		case bot.StyleDanger:
			btn.Style = slack.StyleDanger
		}
		elems = append(elems, btn)
	}
	return slack.NewActionBlock(fmt.Sprintf("actions-%d", index), elems...)
}

// Modal renders a form. The callback id carries the typed action, so a submission
// dispatches like a button press with the form attached.
func Modal(m *bot.Modal) slack.ModalViewRequest {
	v := slack.ModalViewRequest{Type: slack.VTModal, Title: plainText(m.Title, maxModalTitle),
		Submit: plainText(m.Submit, maxModalTitle), Close: plainText("Cancel", maxModalTitle), CallbackID: m.Action.String()}
	if m.Intro != "" {
		v.Blocks.BlockSet = append(v.Blocks.BlockSet, slack.NewSectionBlock(mrkdwn(m.Intro, maxSectionText), nil, nil))
	}
	for _, in := range m.Inputs {
		el := slack.NewPlainTextInputBlockElement(nil, in.ID)
		if in.Placeholder != "" {
			el.Placeholder = plainText(in.Placeholder, 150)
		}
		el.Multiline = in.Multiline
		el.MaxLength = in.MaxLength
		el.InitialValue = in.Initial
		block := slack.NewInputBlock(in.ID, plainText(in.Label, 2000), nil, el)
		block.Optional = in.Optional
		v.Blocks.BlockSet = append(v.Blocks.BlockSet, block)
	}
	return v
}

// FormValues reads a submitted modal's values by input id, with &amp; &lt; &gt; decoded
// once so that the text is stored as typed.
func FormValues(state *slack.ViewState) map[string]string {
	form := map[string]string{}
	if state == nil {
		return form
	}
	for blockID, actions := range state.Values {
		for _, a := range actions {
			form[blockID] = decodeEntities(a.Value)
		}
	}
	return form
}

// Fallback is the notification text of a message (shown in push notifications and to
// clients without Block Kit): the reply's Summary, else its first paragraph.
func Fallback(r bot.Reply) string {
	if r.Summary != "" {
		return clip(escape(r.Summary), 300)
	}
	for _, b := range r.Blocks {
		switch x := b.(type) {
		case *bot.Text:
			return clip(escape(x.Text), 300)
		case *bot.List:
			if lines := listLines(x); len(lines) > 0 {
				return clip(escape(strings.Join(lines, "\n")), 300)
			}
		}
	}
	return clip(escape(r.Header), 300)
}
