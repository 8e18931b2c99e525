package bot

import (
	"reflect"
	"strings"
	"testing"
)

func TestReplyCodecRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		reply Reply
	}{
		{"empty", Reply{}},
		{"public header only", Reply{Public: true, Header: "Your week"}},
		{"text with markup and unicode", Reply{Blocks: []Block{&Text{Text: "*Hi* _Zoë_ 👋 <!channel> & \"quotes\"\nline two"}}}},
		{"fields", Reply{Blocks: []Block{&Fields{Fields: []Field{{Label: "Left", Value: "150,000 credits"}, {Label: "", Value: ""}}}}}},
		{"empty fields", Reply{Blocks: []Block{&Fields{Fields: []Field{}}}}},
		{"progress", Reply{Blocks: []Block{&Progress{Label: "12,000 of 200,000", Value: 12_000, Max: 200_000}}}},
		{"progress zero and negative", Reply{Blocks: []Block{&Progress{}, &Progress{Value: -5, Max: -1}}}},
		{"context and divider", Reply{Blocks: []Block{&Context{Text: "small print"}, &Divider{}, &Context{}}}},
		{"buttons in every style, with values holding colons", Reply{Blocks: []Block{&Buttons{Buttons: []Button{
			{Label: "Approve", Action: Action{Kind: ActApprove, Value: "42"}, Style: StylePrimary},
			{Label: "Deny", Action: Action{Kind: ActDeny, Value: "42"}, Style: StyleDanger},
			{Label: "Next page", Action: Action{Kind: "prompt_page", Value: "2:code review"}},
			{Label: "Balance", Action: Action{Kind: ActBalance}},
		}}}}},
		{"modal with inputs", Reply{Modal: &Modal{Title: "Request more", Submit: "Send", Intro: "Why?", Action: Action{Kind: ActSubmitRequest},
			Inputs: []Input{{ID: "amount", Label: "How many?", Placeholder: "50k", Initial: "10k", MaxLength: 20},
				{ID: "use_case", Label: "Use case", Multiline: true, Optional: true}}}}},
		{"heading and list with per-item buttons", Reply{Blocks: []Block{&Heading{Text: "Outcomes"}, &List{Title: "Waiting", More: "…and 3 more",
			Items: []Item{{Text: "#1 · Eve: ", Quote: "**typed** [x](y)\nline", Buttons: []Button{{Label: "Approve #1", Action: Action{Kind: ActApprove, Value: "1"}, Style: StylePrimary}}},
				{Text: "*bold* entry"}}}}}},
		{"summary and form errors", Reply{Summary: "Ann asks for 50,000 credits: R&D <draft>", Blocks: []Block{&Text{Text: "Check the amount."}},
			Errors: map[string]string{"amount": "Type a number such as 50000 or 50k."}}},
		{"every block in order", Reply{Header: "h", Blocks: []Block{&Text{Text: "a"}, &Fields{Fields: []Field{{Label: "l", Value: "v"}}},
			&Progress{Label: "p", Value: 1, Max: 2}, &Context{Text: "c"}, &Divider{},
			&Buttons{Buttons: []Button{{Label: "b", Action: Action{Kind: ActNudgesOff}}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := MarshalReply(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			got, err := UnmarshalReply(data)
			if err != nil {
				t.Fatalf("decode %s: %v", data, err)
			}
			want := tt.reply
			// Encoding cannot tell nil from empty slices; compare what renderers see.
			if len(want.Blocks) == 0 {
				want.Blocks = nil
			}
			for _, b := range want.Blocks {
				if f, ok := b.(*Fields); ok && len(f.Fields) == 0 {
					f.Fields = []Field{}
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the reply:\n got %#v\nwant %#v\njson %s", got, want, data)
			}
		})
	}
}

func TestReplyCodecTagsBlocks(t *testing.T) {
	data, err := MarshalReply(Reply{Blocks: []Block{&Divider{}, &Buttons{Buttons: []Button{{Label: "Go", Action: Action{Kind: ActBalance}, Style: StylePrimary}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"divider"`, `"type":"buttons"`, `"style":"primary"`, `"action":{"kind":"balance"}`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("encoding lacks %s: %s", want, data)
		}
	}
}

type strayBlock struct{}

func (*strayBlock) block() {}

func TestReplyCodecRejects(t *testing.T) {
	if _, err := MarshalReply(Reply{Blocks: []Block{&strayBlock{}}}); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("encoding a block type the codec does not know: %v", err)
	}
	if _, err := MarshalReply(Reply{Blocks: []Block{&Buttons{Buttons: []Button{{Style: Style(9)}}}}}); err == nil {
		t.Error("encoding an unknown button style should fail")
	}
	for _, bad := range []string{
		`{"blocks":[{"type":"image"}]}`,
		`{"blocks":[{"type":"buttons","buttons":[{"label":"x","action":{"kind":"balance"},"style":"purple"}]}]}`,
		`{"blocks":[{}]}`,
		`not json`,
		`{"blocks":"text"}`,
	} {
		if _, err := UnmarshalReply([]byte(bad)); err == nil {
			t.Errorf("decoding %s should fail", bad)
		}
	}
}
