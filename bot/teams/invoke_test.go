package teams

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot/bottest"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

// execute builds the invoke Teams sends for an Action.Execute press in Mia's personal chat.
func execute(id string, data map[string]any) schema.Activity {
	return schema.Activity{Type: schema.Invoke, Name: "adaptiveCard/action", ID: id, ServiceURL: "https://smba.example/",
		From:         schema.ChannelAccount{ID: "29:mia", AadObjectID: "aad-mia"},
		Recipient:    schema.ChannelAccount{ID: "28:bot"},
		Conversation: schema.ConversationAccount{ID: "a:mia", ConversationType: "personal"},
		Value:        map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": data["tokenpay"], "data": data}, "trigger": "manual"}}
}

// TestInvokeDenyWithAReason: Deny on the approval card turns the card into the reason form
// in place; submitting it denies and redraws the approval card with the outcome; pressing
// again only redraws. Each answer is a valid card in the documented invoke response.
func TestInvokeDenyWithAReason(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	mia := f.People["mia@x.io"]
	if err := f.DB.LinkChat(ctx, mia.ID, Platform, "aad-mia", ""); err != nil {
		t.Fatal(err)
	}
	f.Handler.Command(ctx, f.People["eve@x.io"], "request 50k summarise the interviews")
	app := New(Config{AppID: "app", AppPassword: "pw"}, f.Handler, f.DB, zerolog.Nop())

	card := func(resp InvokeResponse) string {
		t.Helper()
		if resp.StatusCode != 200 || resp.Type != "application/vnd.microsoft.card.adaptive" {
			t.Fatalf("invoke response %+v", resp)
		}
		raw, _ := json.Marshal(resp.Value)
		spectest.Validate(t, "adaptive-card.schema.json", raw)
		return string(raw)
	}
	resp, err := app.Invoke(ctx, execute("i1", map[string]any{"tokenpay": "deny:1", "origin": "request:1"}))
	if err != nil {
		t.Fatal(err)
	}
	form := card(resp)
	if !strings.Contains(form, `"id":"reason"`) || !strings.Contains(form, `"verb":"deny:1"`) || !strings.Contains(form, `"origin":"request:1"`) {
		t.Fatalf("Deny should turn the card into the reason form, submitting deny:1 for the same card: %s", form)
	}
	resp, err = app.Invoke(ctx, execute("i2", map[string]any{"tokenpay": "deny:1", "origin": "request:1", "reason": "Try the **free** tier first"}))
	if err != nil {
		t.Fatal(err)
	}
	done := card(resp)
	if !strings.Contains(done, "Denied request #1") || !strings.Contains(done, "Denied by Mia Boss") || strings.Contains(done, "Action.") {
		t.Fatalf("the redrawn card should say the request is denied, with no buttons left: %s", done)
	}
	req, _ := f.DB.Request(ctx, 1)
	if req.Status != ledger.RequestDenied || req.Note != "Try the **free** tier first" {
		t.Fatalf("request %+v", req)
	}
	// The same delivery again: nothing runs, the card is redrawn as it stands.
	resp, err = app.Invoke(ctx, execute("i2", map[string]any{"tokenpay": "deny:1", "origin": "request:1", "reason": "again"}))
	if err != nil {
		t.Fatal(err)
	}
	if again := card(resp); strings.Contains(again, "Denied request #1") || !strings.Contains(again, "Denied by Mia Boss") {
		t.Fatalf("a repeated delivery should only redraw: %s", again)
	}
	if req, _ := f.DB.Request(ctx, 1); req.Note != "Try the **free** tier first" {
		t.Fatalf("a repeated delivery changed the request: %+v", req)
	}

	// A card names the request it shows, but that is no pass to see another's request:
	// Eve (the requester, no decider) pressing anything "on request 1" gets no approval card.
	if err := f.DB.LinkChat(ctx, f.People["eve@x.io"].ID, Platform, "aad-eve", ""); err != nil {
		t.Fatal(err)
	}
	forged := execute("i7", map[string]any{"tokenpay": "balance", "origin": "request:1"})
	forged.From = schema.ChannelAccount{ID: "29:eve", AadObjectID: "aad-eve"}
	forged.Conversation.ID = "a:eve"
	if resp, _ := app.Invoke(ctx, forged); resp.Type != "application/vnd.microsoft.activity.message" || !strings.Contains(resp.Value.(string), "Only Mia Boss") {
		t.Fatalf("a forged origin showed the approval card: %+v", resp)
	}

	// Paging the team card answers the next page in place.
	resp, err = app.Invoke(ctx, execute("i3", map[string]any{"tokenpay": "team:0", "origin": "team"}))
	if err != nil {
		t.Fatal(err)
	}
	if team := card(resp); !strings.Contains(team, "Your team's AI tokens") {
		t.Fatalf("team page: %s", team)
	}

	// In a channel the action is refused with a sentence; other invokes are acknowledged.
	ch := execute("i4", map[string]any{"tokenpay": "approve:1"})
	ch.Conversation.ConversationType = "channel"
	if resp, _ := app.Invoke(ctx, ch); resp.Type != "application/vnd.microsoft.activity.message" || !strings.Contains(resp.Value.(string), "personal chat") {
		t.Fatalf("channel press: %+v", resp)
	}
	other := execute("i5", nil)
	other.Name = "composeExtension/query"
	if resp, _ := app.Invoke(ctx, other); resp.StatusCode != 200 || resp.Value != nil {
		t.Fatalf("other invoke: %+v", resp)
	}
	if resp, _ := app.Invoke(ctx, execute("i6", map[string]any{"tokenpay": "no such action!"})); resp.Type != "application/vnd.microsoft.activity.message" {
		t.Fatalf("unknown action: %+v", resp)
	}
}
