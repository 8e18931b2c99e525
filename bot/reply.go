// Package bot is tokenpay's platform-neutral conversation core: one handler for every
// command and button, answering in a small reply model that Slack, Teams and the console
// each render.
//
// Text in a reply is plain text with *bold* and _italic_ as the only markup. User text is
// included as typed; each renderer escapes what its platform would interpret (Slack's
// &, <, >), so nothing a person types can ping a channel or forge a link.
package bot

import "fmt"

// Reply is what the core answers.
type Reply struct {
	// Public replies are seen by others in the conversation; the default is a reply only
	// the actor sees (ephemeral in Slack).
	Public bool
	Header string
	Blocks []Block
	// Modal, when set, asks the platform to open a form instead of posting a message.
	Modal *Modal
	// Summary is the one line a platform shows where a message is announced rather than
	// read (a push notification, a screen reader's preview); empty means the first Text.
	Summary string
	// Errors answers a form submission that cannot be accepted as typed: a message for
	// each input, by Input.ID, so that a platform able to keep the form open shows each
	// under its field. Blocks say the same in sentences, for platforms that cannot.
	Errors map[string]string
}

// Block is one piece of a reply: *Text, *Heading, *List, *Fields, *Progress, *Context,
// *Buttons or *Divider.
type Block interface{ block() }

// Text is a paragraph. Each line (split on "\n") is its own line on every platform; a
// renderer that lays out elements (Teams) shows each line as its own element.
type Text struct{ Text string }

// Heading titles the section below it (bold in Slack, a heading in Teams). Plain text,
// no markup.
type Heading struct{ Text string }

// List is entries shown one under another: history, a team, a report's rows, the
// commands of help, requests waiting for a decision. Every entry is its own element where
// the platform has elements (Teams), and an entry's buttons sit next to it, so an action
// always says which entry it is for.
type List struct {
	// Title, optional, heads the list (plain text, shown bold).
	Title string
	Items []Item
	// More, optional, is small print after the entries ("…and 4 more").
	More string
}

// Item is one entry of a List: Text (the core's words, with the *bold* and _italic_
// markup) followed by Quote, text a person typed (a use case, an outcome), which no
// platform may format; and the entry's own buttons.
type Item struct {
	Text    string
	Quote   string
	Buttons []Button
}

// Line is the entry as one line of text with markup, for platforms that show text only.
func (it Item) Line() string { return it.Text + it.Quote }

// Field is a label with a value, shown side by side where the platform allows.
type Field struct{ Label, Value string }

// Fields is a group of fields.
type Fields struct{ Fields []Field }

// Progress is a bar: Value out of Max, with a caption.
type Progress struct {
	Label string
	Value int64
	Max   int64
}

// Context is small print under a section.
type Context struct{ Text string }

// Buttons is a row of buttons.
type Buttons struct{ Buttons []Button }

// Divider separates sections.
type Divider struct{}

func (*Text) block()     {}
func (*Heading) block()  {}
func (*List) block()     {}
func (*Fields) block()   {}
func (*Progress) block() {}
func (*Context) block()  {}
func (*Buttons) block()  {}
func (*Divider) block()  {}

// Style colours a button.
type Style int

const (
	StyleDefault Style = iota
	StylePrimary
	StyleDanger
)

// Button triggers an action when pressed.
type Button struct {
	Label  string
	Action Action
	Style  Style
}

// Modal is a form. Submitting it performs Action with the inputs' values.
type Modal struct {
	Title  string
	Submit string
	Intro  string
	Action Action
	Inputs []Input
}

// Input is one field of a modal.
type Input struct {
	ID          string
	Label       string
	Placeholder string
	Initial     string
	Multiline   bool
	Optional    bool
	MaxLength   int
}

// AllButtons returns every button of the reply in the order shown: rows and the buttons
// of list entries.
func (r Reply) AllButtons() []Button {
	var out []Button
	for _, b := range r.Blocks {
		switch x := b.(type) {
		case *Buttons:
			out = append(out, x.Buttons...)
		case *List:
			for _, it := range x.Items {
				out = append(out, it.Buttons...)
			}
		}
	}
	return out
}

// Ratio returns Value/Max clamped to [0, 1].
func (p *Progress) Ratio() float64 {
	if p.Max <= 0 {
		if p.Value > 0 {
			return 1
		}
		return 0
	}
	r := float64(p.Value) / float64(p.Max)
	return min(1, max(0, r))
}

// Bar draws the progress as width cells of text, e.g. "▓▓▓▓░░░░░░ 40%"; it reads well on
// a phone and in a terminal.
func (p *Progress) Bar(width int) string {
	r := p.Ratio()
	filled := int(r*float64(width) + 0.5)
	bar := make([]rune, width)
	for i := range bar {
		bar[i] = '░'
		if i < filled {
			bar[i] = '▓'
		}
	}
	return fmt.Sprintf("%s %d%%", string(bar), int(r*100+0.5))
}

// textReply is a reply with one paragraph.
func textReply(format string, args ...any) Reply {
	return Reply{Blocks: []Block{&Text{Text: fmt.Sprintf(format, args...)}}}
}
