package teams

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
)

// TestDirectReportsDeliveryAndThrottling: a proactive message reports where it landed (so
// the outbox can update it later), and a 429 that outlives the connector's retries comes
// back as bot.RetryAfterError with the wait Teams asked for.
func TestDirectReportsDeliveryAndThrottling(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Open(t)
	defer db.Close()
	var throttle atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/token":
			w.Write([]byte(`{"access_token":"t","expires_in":3600}`))
		case throttle.Load():
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Write([]byte(`{"id":"act-42"}`))
		}
	}))
	defer srv.Close()
	if err := db.SaveTeamsConversation(ctx, ledger.TeamsConversation{AADObjectID: "aad-eve", UserID: "29:eve", ConversationID: "a:eve",
		ServiceURL: srv.URL + "/", BotID: "28:bot"}); err != nil {
		t.Fatal(err)
	}
	app := New(Config{AppID: "app", AppPassword: "pw", TokenURL: srv.URL + "/token"}, &bot.Handler{}, db, zerolog.Nop())
	app.Connector = NewConnector(ConnectorConfig{AppID: "app", AppPassword: "pw", TokenURL: srv.URL + "/token", MaxRetries: -1})
	eve := ledger.Person{Email: "eve@x.io", TeamsUserID: "aad-eve"}

	var got bot.Delivery
	rctx := bot.WithDeliveryRecorder(ctx, func(d bot.Delivery) { got = d })
	if err := app.Direct(rctx, eve, bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	if got != (bot.Delivery{Platform: Platform, Channel: "a:eve", MessageID: "act-42"}) {
		t.Fatalf("delivery %+v", got)
	}
	throttle.Store(true)
	err := app.Direct(ctx, eve, bot.Reply{})
	var ra *bot.RetryAfterError
	if !errors.As(err, &ra) || ra.After != 7*time.Second {
		t.Fatalf("429: %v", err)
	}
	if err := app.Direct(ctx, ledger.Person{Email: "bo@x.io", TeamsUserID: "aad-bo"}, bot.Reply{}); !errors.Is(err, bot.ErrUnreachable) {
		t.Fatalf("no conversation stored: %v", err)
	}
}
