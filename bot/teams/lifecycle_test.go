package teams

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
)

// TestLifecycle: the bot removed from a personal chat (conversationUpdate) forgets it, an
// install (conversationUpdate with the bot added, installationUpdate add) stores it, and a
// 404 from the connector drops it after one attempt, after which Teams says it cannot
// reach the person without calling the connector.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Open(t)
	defer db.Close()
	var sends atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Write([]byte(`{"access_token":"t","expires_in":3600}`))
			return
		}
		sends.Add(1)
		http.Error(w, `{"error":{"code":"ConversationNotFound"}}`, http.StatusNotFound)
	}))
	defer srv.Close()
	app := New(Config{AppID: "app", AppPassword: "pw", TokenURL: srv.URL + "/token"}, &bot.Handler{}, db, zerolog.Nop())
	eve := ledger.Person{Email: "eve@x.io", TeamsUserID: "aad-eve"}
	act := func(kind schema.ActivityTypes, id string) schema.Activity {
		return schema.Activity{Type: kind, ID: id, ServiceURL: srv.URL + "/",
			From:         schema.ChannelAccount{ID: "29:eve", AadObjectID: "aad-eve"},
			Recipient:    schema.ChannelAccount{ID: "28:bot", Name: "tokenpay"},
			Conversation: schema.ConversationAccount{ID: "a:eve", ConversationType: "personal"}}
	}
	stored := func() bool {
		t.Helper()
		_, ok, err := db.TeamsConversationFor(ctx, "aad-eve")
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}

	added := act(schema.ConversationUpdate, "u1")
	added.MembersAdded = []schema.ChannelAccount{{ID: "28:bot"}}
	if err := app.Activity(ctx, added); err != nil || !stored() || !app.Reaches(ctx, eve) {
		t.Fatalf("bot added: %v, stored %v", err, stored())
	}
	removed := act(schema.ConversationUpdate, "u2")
	removed.MembersRemoved = []schema.ChannelAccount{{ID: "28:bot"}}
	if err := app.Activity(ctx, removed); err != nil || stored() || app.Reaches(ctx, eve) {
		t.Fatalf("bot removed: %v, still stored %v", err, stored())
	}
	install := act("installationUpdate", "u3")
	install.Action = "add"
	if err := app.Activity(ctx, install); err != nil || !stored() {
		t.Fatalf("installationUpdate add: %v, stored %v", err, stored())
	}

	err := app.Direct(ctx, eve, bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "your digest"}}})
	var serr *StatusError
	if !errors.Is(err, bot.ErrUnreachable) || !errors.As(err, &serr) || serr.StatusCode != http.StatusNotFound || sends.Load() != 1 {
		t.Fatalf("404: %v after %d sends; want ErrUnreachable after one", err, sends.Load())
	}
	if stored() {
		t.Fatal("the gone conversation is still stored")
	}
	if err := app.Direct(ctx, eve, bot.Reply{}); !errors.Is(err, bot.ErrUnreachable) || sends.Load() != 1 {
		t.Fatalf("after the 404: %v, %d sends", err, sends.Load())
	}
}
