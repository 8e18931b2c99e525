package teams

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
	"github.com/tokenpay/tokenpay/manifest/spectest"
	"github.com/tokenpay/tokenpay/prompts"
)

type recorder struct {
	approvals []bot.RequestView
	direct    []bot.Reply
}

func (r *recorder) Approval(_ context.Context, v bot.RequestView) error {
	r.approvals = append(r.approvals, v)
	return nil
}

func (r *recorder) Direct(_ context.Context, _ ledger.Person, reply bot.Reply) error {
	r.direct = append(r.direct, reply)
	return nil
}

// everyReply collects what the bot can send: each command's answer (with bad input too),
// the forms, the approval card before and after a decision and the requester's message.
func everyReply(t *testing.T) map[string]bot.Reply {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	db.Now = func() time.Time { return now }
	pol := policy.Default()
	pol.Admins = []string{"ada@x.io"}
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "mia@x.io", Name: "Mia Boss", Team: "Research", Role: "manager"},
		{Line: 3, Email: "eve@x.io", Name: "Eve Analyst", Team: "Research", Role: "analyst", ManagerEmail: "mia@x.io"},
		{Line: 4, Email: "ada@x.io", Name: "Ada Admin", Team: "People", Role: "hr"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := period.Reset(ctx, db, pol, now); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	h := &bot.Handler{Store: db, Policy: pol, Now: func() time.Time { return now }, Log: zerolog.Nop(), Notify: rec}
	lib := &prompts.Library{Store: db, Policy: pol, Now: func() time.Time { return now }, Log: zerolog.Nop()}
	if err := lib.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	lib.Register(h)
	person := func(email string) ledger.Person {
		p, err := db.PersonByEmail(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	eve, mia, ada := person("eve@x.io"), person("mia@x.io"), person("ada@x.io")
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
	out["approval-pending"] = rec.approvals[0].Message
	out["deny-form"] = h.Act(ctx, mia, bot.Action{Kind: bot.ActDeny, Value: "1"}, nil)
	out["approve"] = h.Act(ctx, mia, bot.Action{Kind: bot.ActApprove, Value: "1"}, nil)
	out["approval-decided"] = rec.approvals[len(rec.approvals)-1].Message
	out["requester-told"] = rec.direct[len(rec.direct)-1]
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
