package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
)

// TestOutgoingCallsHaveTimeouts: the Web API client and response_url posts share one
// bounded HTTP client (10 s), so a Slack that never answers cannot hold a goroutine forever.
func TestOutgoingCallsHaveTimeouts(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	a := New(Config{BotToken: "xoxb-test", SigningSecret: "s", APIURL: hang.URL + "/"}, nil, nil, zerolog.Nop())
	if a.HTTP.Timeout != 10*time.Second {
		t.Fatalf("Slack HTTP client timeout %s, want 10 s", a.HTTP.Timeout)
	}
	// The same client serves both paths: shortening it shows each call gives up.
	a.HTTP.Timeout = 100 * time.Millisecond
	for name, call := range map[string]func() error{
		"users.info": func() error { _, err := a.Client.GetUserInfoContext(context.Background(), "U1"); return err },
		"response_url": func() error {
			return a.respond(context.Background(), hang.URL+"/respond", bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "hi"}}})
		},
	} {
		start := time.Now()
		err := call()
		if err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("%s against a hanging Slack: %v after %s, want a timeout error within the client timeout", name, err, time.Since(start))
		}
	}
}
