// Package console renders tokenpay's replies as plain text and runs the interactive
// terminal session behind `tokenpay console`.
package console

import (
	"fmt"
	"strings"

	"github.com/tokenpay/tokenpay/bot"
)

// Render turns a reply into readable text; buttons are numbered from first, in order,
// and returned so the session can press them.
func Render(r bot.Reply, first int) (string, []bot.Button) {
	var b strings.Builder
	var buttons []bot.Button
	// labels numbers a row of buttons after those already shown.
	labels := func(row []bot.Button) string {
		var out []string
		for _, btn := range row {
			buttons = append(buttons, btn)
			out = append(out, fmt.Sprintf("[%d] %s", first+len(buttons)-1, plain(btn.Label)))
		}
		return strings.Join(out, "  ")
	}
	if r.Header != "" {
		fmt.Fprintf(&b, "%s\n%s\n", plain(r.Header), strings.Repeat("─", min(60, len([]rune(plain(r.Header))))))
	}
	for _, blk := range r.Blocks {
		switch x := blk.(type) {
		case *bot.Text:
			fmt.Fprintln(&b, plain(x.Text))
		case *bot.Heading:
			fmt.Fprintln(&b, plain(x.Text))
		case *bot.List:
			if x.Title != "" {
				fmt.Fprintln(&b, plain(x.Title))
			}
			for _, it := range x.Items {
				fmt.Fprintln(&b, plain(it.Text)+controlFree(it.Quote))
				if len(it.Buttons) > 0 {
					fmt.Fprintln(&b, "  "+labels(it.Buttons))
				}
			}
			if x.More != "" {
				fmt.Fprintf(&b, "  %s\n", plain(x.More))
			}
		case *bot.Fields:
			for _, f := range x.Fields {
				fmt.Fprintf(&b, "%-18s %s\n", plain(f.Label)+":", plain(f.Value))
			}
		case *bot.Progress:
			fmt.Fprintf(&b, "%s  %s\n", x.Bar(20), plain(x.Label))
		case *bot.Context:
			fmt.Fprintf(&b, "  %s\n", plain(x.Text))
		case *bot.Divider:
			fmt.Fprintln(&b, strings.Repeat("·", 40))
		case *bot.Buttons:
			fmt.Fprintln(&b, labels(x.Buttons))
		}
	}
	if r.Modal != nil {
		fmt.Fprintf(&b, "%s\n", plain(r.Modal.Title))
		if r.Modal.Intro != "" {
			fmt.Fprintf(&b, "  %s\n", plain(r.Modal.Intro))
		}
	}
	return b.String(), buttons
}

// plain drops the *bold* and _italic_ markers and control characters a terminal would act on.
func plain(s string) string {
	return controlFree(strings.ReplaceAll(s, "*", ""))
}

// controlFree drops control characters a terminal would act on; text a person typed keeps
// its asterisks.
func controlFree(s string) string {
	s = strings.NewReplacer("\x1b", "", "\r", "").Replace(s)
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, s)
}
