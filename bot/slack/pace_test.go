package slack

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// paceServer answers chat.postMessage as Slack does for a user id (in the app's DM, D…),
// or with 429 and Retry-After while refuse is set, and counts conversations.open.
func paceServer(t *testing.T, refuse *atomic.Bool, opens, posts *atomic.Int32, postedTo *atomic.Value) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/conversations.open":
			opens.Add(1)
			w.Write([]byte(`{"ok":true,"channel":{"id":"D1"}}`))
		case "/chat.postMessage":
			posts.Add(1)
			postedTo.Store(form.Get("channel"))
			if refuse.Load() {
				w.Header().Set("Retry-After", "3")
				w.WriteHeader(http.StatusTooManyRequests)
				w.Write([]byte(`{"ok":false,"error":"ratelimited"}`))
				return
			}
			w.Write([]byte(`{"ok":true,"channel":"D1","ts":"1.2"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

var eve = ledger.Person{Email: "eve@x.io", SlackUserID: "U1"}

func hello() bot.Reply { return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "hello"}}} }

// TestDirectPostsToTheUserID: a DM goes to the user id, Slack opens the DM itself, and
// where it landed (the D… channel Slack answers with) is recorded; no conversations.open.
func TestDirectPostsToTheUserID(t *testing.T) {
	var refuse atomic.Bool
	var opens, posts atomic.Int32
	var postedTo atomic.Value
	srv := paceServer(t, &refuse, &opens, &posts, &postedTo)
	app := New(Config{BotToken: "xoxb-test", APIURL: srv.URL + "/"}, &bot.Handler{}, nil, zerolog.Nop())
	var landed bot.Delivery
	ctx := bot.WithDeliveryRecorder(context.Background(), func(d bot.Delivery) { landed = d })
	for range 3 {
		if err := app.Direct(ctx, eve, hello()); err != nil {
			t.Fatal(err)
		}
	}
	if opens.Load() != 0 || posts.Load() != 3 || postedTo.Load() != "U1" {
		t.Errorf("%d conversations.open, %d posts, last to %v; want 0, 3, U1", opens.Load(), posts.Load(), postedTo.Load())
	}
	if landed.Channel != "D1" || landed.MessageID != "1.2" {
		t.Errorf("recorded delivery %+v, want the DM channel Slack answered with", landed)
	}
}

// TestBulkDirectReportsA429AtOnce: the outbox's Direct does not wait a 429 out inside
// slack-go; it returns at once with the Retry-After, so that the outbox's budget hears it.
// An interactive Direct still waits and retries.
func TestBulkDirectReportsA429AtOnce(t *testing.T) {
	var refuse atomic.Bool
	refuse.Store(true)
	var opens, posts atomic.Int32
	var postedTo atomic.Value
	srv := paceServer(t, &refuse, &opens, &posts, &postedTo)
	app := New(Config{BotToken: "xoxb-test", APIURL: srv.URL + "/"}, &bot.Handler{}, nil, zerolog.Nop())
	start := time.Now()
	err := app.Direct(bot.WithBulk(context.Background()), eve, hello())
	var retry *bot.RetryAfterError
	if !errors.As(err, &retry) || retry.After != 3*time.Second {
		t.Fatalf("bulk Direct on a 429: %v, want a RetryAfterError of 3 s", err)
	}
	if took := time.Since(start); took > time.Second || posts.Load() != 1 {
		t.Errorf("bulk Direct took %s and %d posts: it waited the 429 out itself", took, posts.Load())
	}
	go func() { time.Sleep(500 * time.Millisecond); refuse.Store(false) }()
	if err := app.Direct(context.Background(), eve, hello()); err != nil || posts.Load() < 3 {
		t.Errorf("interactive Direct after a 429: %v after %d posts; it should wait and retry", err, posts.Load())
	}
}

// TestRepliesGoAheadOfTheOutbox: a post that is not the outbox's takes its slot of the
// workspace budget at once, so the next bulk send waits behind it; a 429 it meets pauses
// the outbox too.
func TestRepliesGoAheadOfTheOutbox(t *testing.T) {
	var refuse atomic.Bool
	var opens, posts atomic.Int32
	var postedTo atomic.Value
	srv := paceServer(t, &refuse, &opens, &posts, &postedTo)
	app := New(Config{BotToken: "xoxb-test", APIURL: srv.URL + "/"}, &bot.Handler{}, nil, zerolog.Nop())
	app.Budget = bot.NewBudget(bot.BudgetConfig{Start: 1, Max: 1}) // one a second
	before := time.Now()
	if err := app.Direct(context.Background(), eve, hello()); err != nil {
		t.Fatal(err)
	}
	if next := app.Budget.Reserve(time.Now()); next.Sub(before) < 900*time.Millisecond {
		t.Errorf("the next bulk send may start %s after a reply: the reply took no slot", next.Sub(before))
	}
	// The outbox's own sends take no slot here: the drainer booked theirs already.
	b := bot.NewBudget(bot.BudgetConfig{Start: 1, Max: 1})
	app.Budget = b
	if err := app.Direct(bot.WithBulk(context.Background()), eve, hello()); err != nil {
		t.Fatal(err)
	}
	if next := b.Reserve(time.Now()); time.Until(next) > 10*time.Millisecond {
		t.Errorf("a bulk Direct booked a second slot: next send in %s", time.Until(next))
	}
	refuse.Store(true)
	done := make(chan error, 1)
	go func() { done <- app.Direct(context.Background(), eve, hello()) }()
	time.Sleep(300 * time.Millisecond) // the 429 came; slack-go waits its 3 s for the reply
	refuse.Store(false)
	if next := b.Reserve(time.Now()); time.Until(next) < 2*time.Second {
		t.Errorf("while a reply waits out a 429 asking for 3 s, the next bulk send may go in %s", time.Until(next))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
