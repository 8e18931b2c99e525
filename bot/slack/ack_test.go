package slack

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// TestSlowCommandAnswersThroughResponseURL: when the answer is not ready before the
// acknowledgement deadline, the command is acknowledged empty and answered later through
// response_url; a response_url off Slack's hosts is never used.
func TestSlowCommandAnswersThroughResponseURL(t *testing.T) {
	ctx := context.Background()
	db := ledgertest.Open(t)
	defer db.Close()
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "eve@x.io", Name: "Eve", SlackUserID: "U0EVE"}}); err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	if _, err := period.Reset(ctx, db, pol, time.Now()); err != nil {
		t.Fatal(err)
	}
	answers := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		answers <- r.URL.Path + " " + string(b)
	}))
	defer srv.Close()
	release := make(chan struct{})
	h := &bot.Handler{Store: db, Policy: pol, Now: time.Now, Log: zerolog.Nop(),
		Extra: map[string]bot.CommandFunc{"slow": func(ctx context.Context, _ ledger.Person, _ bot.Command) bot.Reply {
			<-release
			return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "done at last"}}}
		}}}
	app := New(Config{BotToken: "xoxb-test", APIURL: srv.URL + "/"}, h, db, zerolog.Nop())
	app.AckTimeout = 50 * time.Millisecond

	start := time.Now()
	resp, answered := app.Command(ctx, slack.SlashCommand{UserID: "U0EVE", Text: "slow", ResponseURL: srv.URL + "/respond/1"})
	if answered || time.Since(start) > time.Second {
		t.Fatalf("a slow command must be acknowledged empty within the deadline: %+v after %v", resp, time.Since(start))
	}
	close(release)
	select {
	case got := <-answers:
		if !strings.HasPrefix(got, "/respond/1 ") || !strings.Contains(got, "done at last") || !strings.Contains(got, `"response_type":"ephemeral"`) {
			t.Fatalf("late answer: %s", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the late answer never reached response_url")
	}

	// A payload naming another host never makes the bot post there.
	if err := app.respond(ctx, "https://attacker.example/hook", bot.Reply{}); err == nil {
		t.Fatal("posted to a response_url off Slack's hosts")
	}
	app.Wait()
}
