package bot

import (
	"encoding/json"
	"fmt"
)

// The reply codec stores a Reply as JSON (the scheduler's outbox keeps what it will send
// this way). Blocks are an interface, so each is written as an object tagged with its
// type; decoding rejects unknown types and styles rather than dropping them.

type replyJSON struct {
	Public bool        `json:"public,omitempty"`
	Header string      `json:"header,omitempty"`
	Blocks []blockJSON `json:"blocks,omitempty"`
	Modal  *modalJSON  `json:"modal,omitempty"`
	// Summary and Errors were added later; replies stored without them read as before.
	Summary string            `json:"summary,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
}

type blockJSON struct {
	Type    string       `json:"type"`
	Text    string       `json:"text,omitempty"`
	Fields  []fieldJSON  `json:"fields,omitempty"`
	Label   string       `json:"label,omitempty"`
	Value   int64        `json:"value,omitempty"`
	Max     int64        `json:"max,omitempty"`
	Buttons []buttonJSON `json:"buttons,omitempty"`
	Title   string       `json:"title,omitempty"`
	Items   []itemJSON   `json:"items,omitempty"`
	More    string       `json:"more,omitempty"`
}

type itemJSON struct {
	Text    string       `json:"text,omitempty"`
	Quote   string       `json:"quote,omitempty"`
	Buttons []buttonJSON `json:"buttons,omitempty"`
}

type fieldJSON struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

type actionJSON struct {
	Kind  ActionKind `json:"kind"`
	Value string     `json:"value,omitempty"`
}

type buttonJSON struct {
	Label  string     `json:"label"`
	Action actionJSON `json:"action"`
	Style  string     `json:"style,omitempty"`
}

type modalJSON struct {
	Title  string      `json:"title"`
	Submit string      `json:"submit"`
	Intro  string      `json:"intro,omitempty"`
	Action actionJSON  `json:"action"`
	Inputs []inputJSON `json:"inputs,omitempty"`
}

type inputJSON struct {
	ID          string `json:"id"`
	Label       string `json:"label"`
	Placeholder string `json:"placeholder,omitempty"`
	Initial     string `json:"initial,omitempty"`
	Multiline   bool   `json:"multiline,omitempty"`
	Optional    bool   `json:"optional,omitempty"`
	MaxLength   int    `json:"max_length,omitempty"`
}

// Block type tags.
const (
	tagText     = "text"
	tagFields   = "fields"
	tagProgress = "progress"
	tagContext  = "context"
	tagButtons  = "buttons"
	tagDivider  = "divider"
	tagHeading  = "heading"
	tagList     = "list"
)

var styleNames = map[Style]string{StyleDefault: "", StylePrimary: "primary", StyleDanger: "danger"}

// MarshalReply encodes a reply as JSON; UnmarshalReply reads it back to an equal reply.
func MarshalReply(r Reply) ([]byte, error) {
	out := replyJSON{Public: r.Public, Header: r.Header, Summary: r.Summary, Errors: r.Errors}
	for i, b := range r.Blocks {
		var j blockJSON
		switch x := b.(type) {
		case *Text:
			j = blockJSON{Type: tagText, Text: x.Text}
		case *Fields:
			j = blockJSON{Type: tagFields, Fields: make([]fieldJSON, len(x.Fields))}
			for k, f := range x.Fields {
				j.Fields[k] = fieldJSON(f)
			}
		case *Progress:
			j = blockJSON{Type: tagProgress, Label: x.Label, Value: x.Value, Max: x.Max}
		case *Context:
			j = blockJSON{Type: tagContext, Text: x.Text}
		case *Buttons:
			buttons, err := encodeButtons(x.Buttons)
			if err != nil {
				return nil, fmt.Errorf("encode reply: block %d: %w", i, err)
			}
			j = blockJSON{Type: tagButtons, Buttons: buttons}
		case *Heading:
			j = blockJSON{Type: tagHeading, Text: x.Text}
		case *List:
			j = blockJSON{Type: tagList, Title: x.Title, More: x.More, Items: make([]itemJSON, len(x.Items))}
			for k, it := range x.Items {
				buttons, err := encodeButtons(it.Buttons)
				if err != nil {
					return nil, fmt.Errorf("encode reply: block %d item %d: %w", i, k, err)
				}
				j.Items[k] = itemJSON{Text: it.Text, Quote: it.Quote, Buttons: buttons}
			}
		case *Divider:
			j = blockJSON{Type: tagDivider}
		default:
			return nil, fmt.Errorf("encode reply: block %d has unknown type %T", i, b)
		}
		out.Blocks = append(out.Blocks, j)
	}
	if m := r.Modal; m != nil {
		out.Modal = &modalJSON{Title: m.Title, Submit: m.Submit, Intro: m.Intro, Action: actionJSON(m.Action)}
		for _, in := range m.Inputs {
			out.Modal.Inputs = append(out.Modal.Inputs, inputJSON(in))
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	return data, nil
}

// UnmarshalReply decodes what MarshalReply wrote.
func UnmarshalReply(data []byte) (Reply, error) {
	var in replyJSON
	if err := json.Unmarshal(data, &in); err != nil {
		return Reply{}, fmt.Errorf("decode reply: %w", err)
	}
	r := Reply{Public: in.Public, Header: in.Header, Summary: in.Summary, Errors: in.Errors}
	for i, j := range in.Blocks {
		var b Block
		switch j.Type {
		case tagText:
			b = &Text{Text: j.Text}
		case tagFields:
			f := &Fields{Fields: make([]Field, len(j.Fields))}
			for k, x := range j.Fields {
				f.Fields[k] = Field(x)
			}
			b = f
		case tagProgress:
			b = &Progress{Label: j.Label, Value: j.Value, Max: j.Max}
		case tagContext:
			b = &Context{Text: j.Text}
		case tagButtons:
			buttons, err := decodeButtons(j.Buttons)
			if err != nil {
				return Reply{}, fmt.Errorf("decode reply: block %d: %w", i, err)
			}
			if buttons == nil {
				buttons = []Button{}
			}
			b = &Buttons{Buttons: buttons}
		case tagHeading:
			b = &Heading{Text: j.Text}
		case tagList:
			l := &List{Title: j.Title, More: j.More, Items: make([]Item, len(j.Items))}
			for k, it := range j.Items {
				buttons, err := decodeButtons(it.Buttons)
				if err != nil {
					return Reply{}, fmt.Errorf("decode reply: block %d item %d: %w", i, k, err)
				}
				l.Items[k] = Item{Text: it.Text, Quote: it.Quote, Buttons: buttons}
			}
			b = l
		case tagDivider:
			b = &Divider{}
		default:
			return Reply{}, fmt.Errorf("decode reply: block %d has unknown type %q", i, j.Type)
		}
		r.Blocks = append(r.Blocks, b)
	}
	if m := in.Modal; m != nil {
		r.Modal = &Modal{Title: m.Title, Submit: m.Submit, Intro: m.Intro, Action: Action(m.Action)}
		for _, in := range m.Inputs {
			r.Modal.Inputs = append(r.Modal.Inputs, Input(in))
		}
	}
	return r, nil
}

func encodeButtons(in []Button) ([]buttonJSON, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]buttonJSON, len(in))
	for k, btn := range in {
		style, ok := styleNames[btn.Style]
		if !ok {
			return nil, fmt.Errorf("button %d has unknown style %d", k, btn.Style)
		}
		out[k] = buttonJSON{Label: btn.Label, Action: actionJSON(btn.Action), Style: style}
	}
	return out, nil
}

func decodeButtons(in []buttonJSON) ([]Button, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]Button, len(in))
	for k, x := range in {
		style, ok := styleOf(x.Style)
		if !ok {
			return nil, fmt.Errorf("button %d has unknown style %q", k, x.Style)
		}
		out[k] = Button{Label: x.Label, Action: Action(x.Action), Style: style}
	}
	return out, nil
}

func styleOf(name string) (Style, bool) {
	for s, n := range styleNames {
		if n == name {
			return s, true
		}
	}
	return StyleDefault, false
}
