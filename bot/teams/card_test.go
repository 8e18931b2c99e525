package teams

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/bottest"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/manifest/spectest"
	"github.com/tokenpay/tokenpay/prompts"
)

// everyReply collects what the bot can send: each command's answer (with bad input too),
// the forms, the approval card before and after a decision and the requester's message.
func everyReply(t *testing.T) map[string]bot.Reply {
	t.Helper()
	ctx := context.Background()
	f := bottest.New(t)
	h, rec := f.Handler, f.Sent
	eve, mia, ada := f.People["eve@x.io"], f.People["mia@x.io"], f.People["ada@x.io"]
	out := map[string]bot.Reply{}
	for _, c := range []struct {
		name, text string
		who        ledger.Person
	}{
		{"balance", "", eve}, {"help", "help", eve}, {"request", "request 50k summarise [interviews](http://x) <b>now</b>", eve},
		{"request-form", "request", eve}, {"bad-amount", "request -5 x", eve}, {"team", "team", mia},
		{"impact", "impact drafted the readout --hours 2", eve}, {"history", "history", eve}, {"nudges", "nudges off", eve},
		{"admin-report", "admin report", ada}, {"prompts", "prompts interview", eve}, {"share", "share", eve},
		{"learn", "learn", eve}, {"unknown", "frob", eve}, {"long", "impact " + strings.Repeat("very long outcome ", 50), eve},
	} {
		out[c.name] = h.Command(ctx, c.who, c.text)
	}
	out["approval-pending"] = rec.Approvals[0].Message
	out["deny-form"] = h.Act(ctx, mia, bot.Action{Kind: bot.ActDeny, Value: "1"}, nil)
	out["approve"] = h.Act(ctx, mia, bot.Action{Kind: bot.ActApprove, Value: "1"}, nil)
	out["approval-decided"] = rec.Approvals[len(rec.Approvals)-1].Message
	out["requester-told"] = rec.Directs[len(rec.Directs)-1]
	out["lesson"] = h.Act(ctx, eve, bot.Action{Kind: prompts.ActLesson, Value: "what-is-a-token"}, nil)
	return out
}

// TestEveryCardValidates walks every card the bot can send and checks it against the
// Adaptive Card 1.5 schema and Teams' limits.
func TestEveryCardValidates(t *testing.T) {
	for name, r := range everyCard(t) {
		t.Run(name, func(t *testing.T) {
			c := CardFrom(r, "request:1")
			raw, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			spectest.Validate(t, "adaptive-card.schema.json", raw)
			if len(raw) > maxCardBytes {
				t.Errorf("card is %d bytes, over Teams' 28 KB", len(raw))
			}
			if acts, _ := c["actions"].([]any); len(acts) > maxActions {
				t.Errorf("card has %d buttons, more than %d", len(acts), maxActions)
			}
			walk(c, func(e card) {
				if e["type"] == "TextBlock" && e["wrap"] != true {
					t.Errorf("TextBlock without wrap: %v", e)
				}
				if acts, _ := e["actions"].([]any); e["type"] == "ActionSet" && len(acts) > maxActions {
					t.Errorf("a row of %d buttons, more than %d", len(acts), maxActions)
				}
			})
			if c["version"] != "1.5" {
				t.Errorf("version %v", c["version"])
			}
		})
	}
}

// walk calls fn on every element and inline under v, depth first.
func walk(v any, fn func(card)) {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			walk(e, fn)
		}
	case card:
		fn(x)
		for _, k := range []string{"body", "items", "inlines", "actions", "columns", "fallback"} {
			if e, ok := x[k]; ok {
				walk(e, fn)
			}
		}
	}
}

func TestCardShapes(t *testing.T) {
	replies := everyReply(t)
	c := Card(replies["approval-pending"])
	raw, _ := json.Marshal(c)
	for _, want := range []string{`"type":"Action.Execute"`, `"verb":"approve:1"`, `"data":{"tokenpay":"approve:1"}`,
		`"fallback":{"data":{"tokenpay":"approve:1"},"title":"Approve","type":"Action.Submit"}`, `"title":"Amount"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("approval card lacks %s: %s", want, raw)
		}
	}
	// The use case a person typed is a TextRun (never markdown), and no TextBlock holds it.
	var inRun bool
	walk(c, func(e card) {
		s, _ := e["text"].(string)
		switch e["type"] {
		case "TextRun":
			inRun = inRun || s == "summarise [interviews](http://x) <b>now</b>"
		case "TextBlock":
			if strings.Contains(s, "interviews") {
				t.Errorf("user text in a markdown TextBlock: %q", s)
			}
		}
	})
	if !inRun {
		t.Errorf("use case not shown as typed in a TextRun: %s", raw)
	}
	raw, _ = json.Marshal(Card(replies["approval-decided"]))
	if strings.Contains(string(raw), "Action.") || !strings.Contains(string(raw), "Approved by Mia Boss") {
		t.Errorf("decided card must show the outcome and no buttons: %s", raw)
	}
	raw, _ = json.Marshal(Card(replies["request-form"]))
	if !strings.Contains(string(raw), `"id":"amount"`) {
		t.Errorf("the request form has no amount input: %s", raw)
	}
	if !strings.Contains(string(raw), `"data":{"tokenpay":"submit_request"}`) || !strings.Contains(string(raw), `"type":"Action.Submit"`) {
		t.Errorf("the request form does not submit its action: %s", raw)
	}
	action, form := FormFrom(map[string]any{"tokenpay": "submit_request", "amount": "20k", "use_case": "x", "msteams": map[string]any{}, "origin": "team"})
	if action != "submit_request" || form["amount"] != "20k" || len(form) != 2 {
		t.Errorf("FormFrom: %q %v", action, form)
	}
}

func TestSpans(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []span
	}{
		{"plain", []span{{text: "plain"}}},
		{"*bold* then", []span{{text: "bold", bold: true}, {text: " then"}}},
		{"a _it_ b", []span{{text: "a "}, {text: "it", italic: true}, {text: " b"}}},
		{"**x** stays", []span{{text: "**x** stays"}}},
		{"snake_case_name and 2*3*4", []span{{text: "snake_case_name and 2*3*4"}}},
		{"* not bold *", []span{{text: "* not bold *"}}},
		{"✅ *1. Title* · 3 min", []span{{text: "✅ "}, {text: "1. Title", bold: true}, {text: " · 3 min"}}},
		{"*/tokens* or */tokens balance*: x", []span{{text: "/tokens", bold: true}, {text: " or "}, {text: "/tokens balance", bold: true}, {text: ": x"}}},
		{"*unclosed", []span{{text: "*unclosed"}}},
	} {
		if got := spans(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("spans(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEscapeMarkdown(t *testing.T) {
	for in, want := range map[string]string{
		"**x** [a](b)":   `\*\*x\*\* \[a\](b)`,
		"- item":         `\- item`,
		"12. point":      `12\. point`,
		"# title":        `\# title`,
		"a\nb":           "a b",
		"<at>x</at>":     "&lt;at&gt;x&lt;/at&gt;",
		"Request #1: ok": "Request #1: ok",
	} {
		if got := escapeMarkdown(in); got != want {
			t.Errorf("escapeMarkdown(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSpansStayLinear: reading markup in a long text takes linear time, whatever the
// asterisks in it (text people typed goes through it).
func TestSpansStayLinear(t *testing.T) {
	s := strings.Repeat("*a ", 100_000) + strings.Repeat("_", 100_000)
	start := time.Now()
	spans(s)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("spans of %d bytes took %s", len(s), d)
	}
}
