package teams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/bottest"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/nudges"
)

// The browser render test draws every card with the official Adaptive Cards renderer
// (npm adaptivecards, with markdown-it standing in for Teams' markdown) in headless
// Chromium, from a page served on the loopback interface: nothing reaches the network.
// .ci/run installs Chromium and the npm packages (npm ci in testdata/render).
//
// Screenshots for review: TOKENPAY_CARD_SCREENSHOTS=DIR go test ./bot/teams -run
// TestCardsInBrowser (or testdata/render/screenshots.sh) writes one PNG per card.

const renderDir = "testdata/render"

// browserOrSkip returns Chromium's path, or skips when it or the renderer is missing on a
// developer's machine; under CI=true a missing piece fails the test.
func browserOrSkip(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing; .ci/run installs it", what)
		}
		t.Skipf("%s is missing (run .ci/run, or install chromium and `npm ci --prefix bot/teams/%s`)", what, renderDir)
	}
	if _, err := os.Stat(filepath.Join(renderDir, "node_modules", "adaptivecards", "dist", "adaptivecards.min.js")); err != nil {
		missing("the adaptivecards npm package")
	}
	if _, err := os.Stat(filepath.Join(renderDir, "node_modules", "markdown-it", "dist", "browser", "markdown-it.umd.min.js")); err != nil {
		missing("the markdown-it npm package")
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing("Chromium")
	return ""
}

// rendered is what the page reports for one card (testdata/render/index.html).
type rendered struct {
	Events []struct {
		Phase, Level int
		Message      string
	} `json:"events"`
	Rendered bool       `json:"rendered"`
	Body     []element  `json:"body"`
	Actions  []acAction `json:"actions"`
}

type element struct {
	Type    string     `json:"type"`
	Text    string     `json:"text"`
	Weight  any        `json:"weight"`
	Shown   string     `json:"shown"`
	HTML    string     `json:"html"`
	Inlines []inline   `json:"inlines"`
	Items   []element  `json:"items"`
	Actions []acAction `json:"actions"`
	Facts   [][]string `json:"facts"`
	ID      string     `json:"id"`
}

type inline struct {
	Text         string
	Bold, Italic bool
}

type acAction struct {
	Type    string         `json:"type"`
	Title   string         `json:"title"`
	Verb    string         `json:"verb"`
	Data    map[string]any `json:"data"`
	Button  bool           `json:"button"`
	Pressed *struct {
		Type string         `json:"type"`
		Verb string         `json:"verb"`
		Data map[string]any `json:"data"`
	} `json:"pressed"`
}

// each calls fn on every element under els, depth first.
func each(els []element, fn func(element)) {
	for _, e := range els {
		fn(e)
		each(e.Items, fn)
	}
}

// shownText is what the element shows, white space collapsed as HTML collapses it.
func (e element) shownText() string { return squash(e.Shown) }

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// everyCard is every card the bot sends: each command's answer, the approval card before
// and after a decision, the forms, the scheduled messages (digests, nudges, the manager
// digest, the admin report) and a manager's team with eight pending requests.
func everyCard(t *testing.T) map[string]bot.Reply {
	t.Helper()
	out := everyReply(t)
	ctx := context.Background()

	// A manager with eight requests waiting and outcomes to validate.
	f := bottest.New(t)
	f.Handler.Policy.Unlock.MaxPending = 10
	eve, mia := f.People["eve@x.io"], f.People["mia@x.io"]
	for i := 1; i <= 8; i++ {
		r := f.Handler.Command(ctx, eve, fmt.Sprintf("request %dk idea %d: summarise **the** [notes](http://x)\nand more", i, i))
		if !strings.Contains(fmt.Sprint(r.Blocks[0]), fmt.Sprintf("Request #%d", i)) {
			t.Fatalf("request %d not filed: %+v", i, r.Blocks[0])
		}
	}
	f.Handler.Command(ctx, eve, "impact drafted the _readout_ in an hour --hours 3")
	f.Handler.Command(ctx, eve, "impact cut the survey analysis from two days to one --hours 8")
	out["team-8"] = f.Handler.Command(ctx, mia, "team")
	out["history-long"] = f.Handler.Command(ctx, eve, "history")
	out["ask-question"] = func() bot.Reply {
		f.Handler.Act(ctx, mia, bot.Action{Kind: bot.ActAsk, Value: "3"}, map[string]string{"question": "Which notes?\nAll of them?"})
		return f.Sent.Directs[len(f.Sent.Directs)-1]
	}()
	out["ask-form"] = f.Handler.Act(ctx, mia, bot.Action{Kind: bot.ActAsk, Value: "3"}, nil)
	out["impact-form"] = f.Handler.Act(ctx, eve, bot.Action{Kind: bot.ActOpenImpact}, nil)

	// The scheduled messages, with realistic data.
	person := ledger.Person{ID: 2, Email: "eve@x.io", Name: "Eve Analyst", Role: "analyst", Team: "Research", ManagerID: 1}
	tip := ledger.Prompt{ID: 7, Title: "Pull the themes out of interview notes", Body: "I ran {{n}} interviews about {{question}}.\nFind the themes.",
		Roles: []string{"analyst"}, Workflow: "research-synthesis"}
	act := ledger.PersonActivity{PersonID: 2, SpentPeriod: 170_000, SpentWindow: 80_000, Available: 30_000, ImpactsPeriod: 2, MinutesPeriod: 150}
	m := nudges.Member{Person: person, Activity: act, Segment: nudges.Underuser, Expected: 120_000}
	dormant := m
	dormant.Segment, dormant.Activity.Available = nudges.Dormant, 200_000
	reports := []nudges.Member{dormant, {Person: ledger.Person{ID: 3, Name: "Pat Peer"}, Segment: nudges.Engaged},
		{Person: ledger.Person{ID: 4, Name: "Ann New"}, Segment: nudges.Underuser, Hoarding: true}}
	var pending []ledger.Request
	for i := int64(1); i <= 8; i++ {
		pending = append(pending, ledger.Request{ID: 20 + i, RequesterID: 2, Amount: 5_000 * i, UseCase: fmt.Sprintf("idea %d with **stars** and a [link](http://x)", i)})
	}
	report := nudges.AdminReport{Org: "Example Org", Period: "October 2026", Attempts: 8, Dead: 2, Gini: 0.18,
		Teams:   []ledger.TeamStat{{Team: "Research", People: 4, Granted: 800_000, Spent: 420_000, Approved: 3, Denied: 1}, {Team: "People", People: 1, Granted: 200_000}},
		Closing: ledger.Closing{Expired: 350_000, Carried: 100_000, Reclaimed: 50_000, Hoarders: 1, Hoarded: 190_000},
		Lift:    nudges.ComputeLift(ledger.LiftCounts{Nudged: 120, NudgedActive: 54, HeldOut: 40, HeldOutActive: 10})}
	out["nudge"] = nudges.NudgeReply(m, &tip, 11)
	out["nudge-dormant"] = nudges.NudgeReply(dormant, &tip, 11)
	out["quality-tip"] = nudges.QualityReply(nudges.Member{Person: person, Segment: nudges.HeavyNoGains}, 3)
	out["heads-up"] = nudges.HeadsUpReply(m, 9, "November")
	out["digest"] = nudges.DigestReply(m, &tip, 9, "November")
	out["manager-digest"] = nudges.ManagerDigestReply(ledger.Person{ID: 1, Name: "Mia Boss"}, reports, pending, map[int64]string{2: "Eve Analyst"})
	out["admin-report-monthly"] = report.Reply()
	out["request-expired"] = nudges.ExpiredReply(ledger.Request{ID: 12, Amount: 50_000, ExpiresAt: bottest.Now}, time.UTC)
	return out
}

// expectedLines is each line the reply shows, as plain text, in order: every line of a
// Text or Context and every entry of a List must be its own element in the card.
func expectedLines(r bot.Reply) []string {
	var out []string
	plain := func(s string) string {
		var b strings.Builder
		for _, sp := range spans(s) {
			b.WriteString(sp.text)
		}
		return strings.TrimSpace(b.String())
	}
	for _, b := range r.Blocks {
		switch x := b.(type) {
		case *bot.Text:
			for _, l := range strings.Split(x.Text, "\n") {
				if p := squash(plain(l)); p != "" {
					out = append(out, p)
				}
			}
		case *bot.List:
			for _, it := range x.Items {
				out = append(out, squash(plain(it.Text)+" "+it.Quote))
			}
		}
	}
	return out
}

func TestCardsInBrowser(t *testing.T) {
	chromium := browserOrSkip(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(renderDir)))
	defer srv.Close()

	alloc, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(640, 900),
		chromedp.Flag("no-proxy-server", true))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+"/index.html")); err != nil {
		t.Fatalf("render page: %v", err)
	}
	if ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.ready === true`)); err != nil || !ready {
		t.Fatalf("render page did not load the renderer (ready %v): %v", ready, err)
	}
	shots := os.Getenv("TOKENPAY_CARD_SCREENSHOTS")

	cards := everyCard(t)
	names := make([]string, 0, len(cards))
	for n := range cards {
		names = append(names, n)
	}
	slices.Sort(names)
	results := map[string]rendered{}
	for _, name := range names {
		raw, err := json.Marshal(Card(cards[name]))
		if err != nil {
			t.Fatal(err)
		}
		quoted, _ := json.Marshal(name)
		res, err := chromedp.Run(ctx, chromedp.Evaluate[rendered](fmt.Sprintf("renderCard(%s, %s)", quoted, raw)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		results[name] = res
		if shots != "" {
			png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("#card")))
			if err != nil {
				t.Fatalf("%s: screenshot: %v", name, err)
			}
			if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, name := range names {
		res, reply := results[name], cards[name]
		t.Run(name, func(t *testing.T) {
			if !res.Rendered || len(res.Body) == 0 {
				t.Fatalf("the renderer drew nothing: %+v", res)
			}
			for _, e := range res.Events {
				t.Errorf("renderer parse event (level %d): %s", e.Level, e.Message)
			}
			var shown []string
			each(res.Body, func(e element) {
				switch e.Type {
				case "TextBlock":
					if strings.Contains(e.Text, "\n") {
						t.Errorf("TextBlock holds a line break: %q", e.Text)
					}
					if strings.Contains(e.Shown, `\`) || strings.Contains(e.HTML, "<strong>") || strings.Contains(e.HTML, "<em>") || strings.Contains(e.HTML, "<a ") {
						t.Errorf("TextBlock text became markdown or kept its escapes: %q -> %s", e.Text, e.HTML)
					}
					shown = append(shown, e.shownText())
				case "RichTextBlock":
					for _, in := range e.Inlines {
						if strings.Contains(in.Text, "\n") {
							t.Errorf("TextRun holds a line break: %q", in.Text)
						}
					}
					if strings.Contains(e.HTML, "<a ") || strings.Contains(e.HTML, "<strong>") {
						t.Errorf("rich text became a link or markdown: %s", e.HTML)
					}
					shown = append(shown, e.shownText())
				}
			})
			// One element per line and per list entry, in order.
			next := 0
			for _, want := range expectedLines(reply) {
				at := slices.Index(shown[next:], want)
				if at < 0 {
					t.Errorf("no element shows exactly %q (elements: %q)", want, shown)
					continue
				}
				next += at + 1
			}
			// Every button does what its action says when pressed.
			check := func(a acAction) {
				if !a.Button {
					t.Errorf("action %q was not drawn as a button", a.Title)
					return
				}
				if a.Pressed == nil {
					if reply.Modal == nil {
						t.Errorf("pressing %q executed nothing", a.Title)
					}
					return
				}
				if a.Pressed.Type != a.Type || a.Pressed.Data["tokenpay"] != a.Data["tokenpay"] || a.Pressed.Verb != a.Verb {
					t.Errorf("pressing %q executed %+v, want %s %v", a.Title, a.Pressed, a.Type, a.Data)
				}
			}
			each(res.Body, func(e element) {
				for _, a := range e.Actions {
					check(a)
				}
			})
			for _, a := range res.Actions {
				check(a)
			}
		})
	}

	t.Run("team card: every pending request has its own approve action", func(t *testing.T) {
		res := results["team-8"]
		if len(res.Actions) != 0 {
			t.Errorf("buttons gathered at the bottom of the card: %+v", res.Actions)
		}
		for id := 1; id <= 8; id++ {
			var found []acAction
			var entries int
			each(res.Body, func(e element) {
				if e.Type != "Container" || len(e.Items) != 2 || e.Items[0].Type != "RichTextBlock" || e.Items[1].Type != "ActionSet" {
					return
				}
				if !strings.HasPrefix(e.Items[0].shownText(), fmt.Sprintf("#%d · Eve Analyst asks for", id)) {
					return
				}
				entries++
				for _, a := range e.Items[1].Actions {
					if a.Title == "Approve" {
						found = append(found, a)
					}
				}
			})
			want := fmt.Sprintf("approve:%d", id)
			if entries != 1 || len(found) != 1 || found[0].Type != "Action.Execute" || found[0].Verb != want || found[0].Data["tokenpay"] != want ||
				found[0].Pressed == nil || found[0].Pressed.Data["tokenpay"] != want {
				t.Errorf("request #%d: %d entries, approve actions %+v; want one entry with one Action.Execute carrying %s", id, entries, found, want)
			}
		}
		var validate int
		each(res.Body, func(e element) {
			for _, a := range e.Actions {
				if a.Title == "Validate" && strings.HasPrefix(fmt.Sprint(a.Data["tokenpay"]), "validate:") {
					validate++
				}
			}
		})
		if validate != 2 {
			t.Errorf("%d Validate actions, want one for each of the 2 outcomes", validate)
		}
	})

	t.Run("what people type shows as typed", func(t *testing.T) {
		var typed bool
		each(results["team-8"].Body, func(e element) {
			typed = typed || strings.Contains(e.Shown, "summarise **the** [notes](http://x) and more")
		})
		if !typed {
			t.Error("a use case with markdown characters is not shown as typed")
		}
	})

	t.Run("headings are their own bold elements", func(t *testing.T) {
		for name, heading := range map[string]string{"digest": "Tip of the week", "team-8": "8 requests waiting for a decision",
			"approval-pending": "Use case", "help": "tokenpay: AI tokens as a capability to grow"} {
			var ok bool
			each(results[name].Body, func(e element) {
				ok = ok || (e.Type == "TextBlock" && e.shownText() == heading && fmt.Sprint(e.Weight) != "0")
			})
			if !ok {
				t.Errorf("%s: no bold TextBlock %q", name, heading)
			}
		}
	})
}
