package teams

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

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
	for name, r := range everyReply(t) {
		t.Run(name, func(t *testing.T) {
			c := Card(r)
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
			if c["version"] != "1.5" {
				t.Errorf("version %v", c["version"])
			}
		})
	}
}

func TestCardShapes(t *testing.T) {
	replies := everyReply(t)
	raw, _ := json.Marshal(Card(replies["approval-pending"]))
	for _, want := range []string{`"type":"Action.Submit"`, `"data":{"tokenpay":"approve:1"}`, `"data":{"tokenpay":"deny:1"}`, `"title":"Amount"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("approval card lacks %s: %s", want, raw)
		}
	}
	if strings.Contains(string(raw), "](http") || strings.Contains(string(raw), "<b>") {
		t.Errorf("user text became a link or HTML: %s", raw)
	}
	raw, _ = json.Marshal(Card(replies["approval-decided"]))
	if strings.Contains(string(raw), "Action.Submit") || !strings.Contains(string(raw), "Approved by Mia Boss") {
		t.Errorf("decided card must show the outcome and no buttons: %s", raw)
	}
	raw, _ = json.Marshal(Card(replies["request-form"]))
	if !strings.Contains(string(raw), `"type":"Input.Text","id":"amount"`) && !strings.Contains(string(raw), `"id":"amount"`) {
		t.Errorf("the request form has no amount input: %s", raw)
	}
	if !strings.Contains(string(raw), `"data":{"tokenpay":"submit_request"}`) {
		t.Errorf("the request form does not submit its action: %s", raw)
	}
	action, form := FormFrom(map[string]any{"tokenpay": "submit_request", "amount": "20k", "use_case": "x", "msteams": map[string]any{}})
	if action != "submit_request" || form["amount"] != "20k" || len(form) != 2 {
		t.Errorf("FormFrom: %q %v", action, form)
	}
}
