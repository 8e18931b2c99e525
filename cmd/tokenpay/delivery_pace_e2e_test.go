package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
)

// pacedSlack is a local Slack that enforces chat.postMessage's documented limits
// (../shared/spec/platform-limits.md) as Slack does, with 429 and Retry-After: one
// message a second per channel (a DM is its own channel; a user id posts in the app's DM
// with that user) and a workspace ceiling, here 20 a second over any second. It counts
// conversations.open calls.
type pacedSlack struct {
	mu       sync.Mutex
	ceiling  int
	last     map[string]time.Time // channel -> last accepted post
	window   []time.Time          // accepted posts of the last second
	per      map[string]int
	refused  int
	opens    int
	first    time.Time // first post attempt
	lastPost time.Time // last accepted post
}

func newPacedSlack(ceiling int) *pacedSlack {
	return &pacedSlack{ceiling: ceiling, last: map[string]time.Time{}, per: map[string]int{}}
}

func (p *pacedSlack) bind(s slacktest.Customize) {
	s.Handle("/conversations.open", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		p.mu.Lock()
		p.opens++
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": map[string]any{"id": dmChannel(form.Get("users"))}})
	})
	s.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		ch := dmChannel(form.Get("channel"))
		now := time.Now()
		p.mu.Lock()
		if p.first.IsZero() {
			p.first = now
		}
		i := 0
		for i < len(p.window) && now.Sub(p.window[i]) >= time.Second {
			i++
		}
		p.window = p.window[i:]
		last, seen := p.last[ch]
		if len(p.window) >= p.ceiling || (seen && now.Sub(last) < time.Second) {
			p.refused++
			p.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
		p.window = append(p.window, now)
		p.last[ch] = now
		p.per[ch]++
		p.lastPost = now
		n := len(p.per)
		p.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": ch, "ts": fmt.Sprintf("1700000000.%06d", n)})
	})
}

// TestDigestsAtTheWorkspacesPace delivers the weekly digest to 1,000 people (300 with
// -short) through a local Slack enforcing one message a second per channel and 20 a
// second per workspace, under the default policy (no fixed workspace cap): delivery takes
// at most 1.5x the time the ceiling allows, every digest arrives exactly once, and a cold
// process makes no conversations.open per message.
func TestDigestsAtTheWorkspacesPace(t *testing.T) {
	people := 1000
	if testing.Short() {
		people = 300
	}
	const ceiling = 20
	slack := newPacedSlack(ceiling)
	fake := slacktest.NewTestServer(slack.bind)
	fake.Start()
	t.Cleanup(fake.Stop)
	env := jobsEnv(t, fake, people, "org:\n  name: Paced\n")

	code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest")
	if code != 0 {
		t.Fatalf("jobs run: exit %d\n%s\n%s", code, out, errOut)
	}
	slack.mu.Lock()
	defer slack.mu.Unlock()
	total := 0
	for ch, n := range slack.per {
		total += n
		if n != 1 {
			t.Errorf("%s got %d digests", ch, n)
		}
	}
	if total != people || len(slack.per) != people {
		t.Errorf("%d digests to %d channels, want one to each of %d", total, len(slack.per), people)
	}
	took := slack.lastPost.Sub(slack.first)
	allowed := time.Duration(people/ceiling) * time.Second
	if took > allowed*3/2 {
		t.Errorf("%d digests took %s to deliver; the ceiling of %d a second allows %s, and 1.5x that is the bound", people, took.Round(time.Millisecond), ceiling, allowed)
	}
	if slack.opens > 3 {
		t.Errorf("%d conversations.open calls for %d digests", slack.opens, people)
	}
	if !strings.Contains(out, fmt.Sprintf("delivered %d", people)) || !strings.Contains(out, "Nothing is waiting.") {
		t.Errorf("output:\n%s", out)
	}
	t.Logf("%d digests in %s (the ceiling allows %s): %.2fx; %d refused with 429, %d conversations.open",
		people, took.Round(time.Millisecond), allowed, float64(took)/float64(allowed), slack.refused, slack.opens)
}
