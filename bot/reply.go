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
}

// Block is one piece of a reply: *Text, *Fields, *Progress, *Context, *Buttons or *Divider.
type Block interface{ block() }

// Text is a paragraph.
type Text struct{ Text string }

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
