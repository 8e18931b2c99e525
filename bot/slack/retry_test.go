package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// TestWebAPIRetries: a 429 with Retry-After and a 502 delay a message but do not lose it.
func TestWebAPIRetries(t *testing.T) {
	var posts atomic.Int32
	var first time.Time
	var retriedAfter time.Duration
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/conversations.open":
			w.Write([]byte(`{"ok":true,"channel":{"id":"D1"}}`))
		case "/chat.postMessage":
			switch posts.Add(1) {
			case 1:
				first = time.Now()
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
			case 2:
				retriedAfter = time.Since(first)
				w.WriteHeader(http.StatusBadGateway)
			default:
				w.Write([]byte(`{"ok":true,"channel":"D1","ts":"1.2"}`))
			}
		}
	}))
	defer srv.Close()
	app := New(Config{BotToken: "xoxb-test", APIURL: srv.URL + "/"}, &bot.Handler{}, nil, zerolog.Nop())
	err := app.Direct(context.Background(), ledger.Person{Email: "eve@x.io", SlackUserID: "U1"}, bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "hello"}}})
	if err != nil {
		t.Fatalf("message lost after 429 and 502: %v", err)
	}
	if n := posts.Load(); n != 3 {
		t.Fatalf("chat.postMessage called %d times, want 3 (429, 502, ok)", n)
	}
	if retriedAfter < time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 1", retriedAfter)
	}
}
