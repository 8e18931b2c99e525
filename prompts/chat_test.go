package prompts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/console"
	"github.com/tokenpay/tokenpay/ledger"
)

// render is a reply as the console shows it.
func render(r bot.Reply) string {
	s, _ := console.Render(r, 1)
	return s
}

func buttons(r bot.Reply) []bot.Button {
	_, bs := console.Render(r, 1)
	return bs
}

// button finds the button labelled label, failing the test when there is none.
func button(t *testing.T, r bot.Reply, label string) bot.Button {
	t.Helper()
	for _, b := range buttons(r) {
		if b.Label == label {
			return b
		}
	}
	t.Fatalf("no button %q in:\n%s", label, render(r))
	return bot.Button{}
}

func wantText(t *testing.T, r bot.Reply, wants ...string) {
	t.Helper()
	out := render(r)
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("reply lacks %q:\n%s", w, out)
		}
	}
}

// everyButtonRoundTrips checks that each button's action survives the trip through a
// platform: its id is parsed back to the same action.
func everyButtonRoundTrips(t *testing.T, r bot.Reply) {
	t.Helper()
	for _, b := range buttons(r) {
		a, ok := bot.ParseAction(b.Action.String())
		if !ok || a != b.Action {
			t.Errorf("button %q: action %q does not parse back (%+v, %v)", b.Label, b.Action, a, ok)
		}
	}
}

func (f *fixture) balance(email string) int64 {
	f.t.Helper()
	b, err := f.db.Balance(f.ctx, f.people[email].ID, f.pol.PeriodStart(testNow), f.pol.PeriodEnd(testNow))
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Available
}

func TestPromptsCommandPagesUseAndVote(t *testing.T) {
	f := newFixture(t)
	r := f.h.Command(f.ctx, f.people[eve], "prompts")
	wantText(t, r, "Prompts colleagues found useful", "Showing 1–5 of 53", "[1] Use  [2] Useful", "More", "starter library")
	everyButtonRoundTrips(t, r)

	more := button(t, r, "More")
	page2 := f.h.Act(f.ctx, f.people[eve], more.Action, nil)
	wantText(t, page2, "Showing 6–10 of 53")
	if render(page2) == render(r) {
		t.Error("page 2 shows the same prompts as page 1")
	}

	r = f.h.Command(f.ctx, f.people[eve], "prompts interview themes")
	wantText(t, r, "Prompts for “interview themes”", "Pull the themes out of interview notes")
	everyButtonRoundTrips(t, r)
	use := button(t, r, "Use")
	first := f.bySlug("research-synthesis-themes")
	if use.Action != (bot.Action{Kind: ActPromptUse, Value: fmt.Sprint(first.ID)}) {
		t.Fatalf("first Use button %v, want prompt %d", use.Action, first.ID)
	}
	shown := f.h.Act(f.ctx, f.people[eve], use.Action, nil)
	wantText(t, shown, "Pull the themes out of interview notes", "{{interview_notes}}", "replace each {{placeholder}}")
	f.h.Act(f.ctx, f.people[pat], use.Action, nil)
	if p := f.bySlug(first.Slug); p.Uses != 2 {
		t.Errorf("uses after two Use clicks: %d", p.Uses)
	}

	vote := button(t, shown, "Useful")
	wantText(t, f.h.Act(f.ctx, f.people[eve], vote.Action, nil), "Thanks! You marked “Pull the themes out of interview notes” as useful")
	wantText(t, f.h.Act(f.ctx, f.people[eve], vote.Action, nil), "You already marked")
	if p := f.bySlug(first.Slug); p.Votes != 1 {
		t.Errorf("votes after Eve clicked twice: %d", p.Votes)
	}
	wantText(t, f.h.Command(f.ctx, f.people[pat], "prompts interview themes"), "1 person found it useful · used 2 times")

	// Nothing found, and out-of-date buttons.
	wantText(t, f.h.Command(f.ctx, f.people[eve], "prompts xylophone quokka"), "No prompt matches those words yet", "Share a prompt")
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptUse, Value: "abc"}, nil), "That button is out of date")
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptVote, Value: "99999"}, nil), "no longer in the library")
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptPage, Value: "999:"}, nil), "past the last page")
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptPage, Value: "9223372036854775807:"}, nil), "past the last page")
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptPage, Value: "x:interview"}, nil), "Showing 1–")
}

func TestPageActionFitsAnActionValue(t *testing.T) {
	terms := ledger.SearchTerms(strings.Repeat("abcdefghij ", 40))
	a := pageAction(12, terms)
	if len(a.Value) > bot.MaxActionValue || !strings.HasPrefix(a.Value, "12:abcdefghij abcdefghij") || strings.HasSuffix(a.Value, " ") {
		t.Errorf("page action %q (%d bytes)", a.Value, len(a.Value))
	}
	if _, ok := bot.ParseAction(a.String()); !ok {
		t.Errorf("page action %q does not parse", a)
	}
}

func TestVoteOncePerPersonUnderConcurrentClicks(t *testing.T) {
	f := newFixture(t)
	p := f.bySlug("research-synthesis-themes")
	vote := bot.Action{Kind: ActPromptVote, Value: fmt.Sprint(p.ID)}
	var wg sync.WaitGroup
	for range 10 {
		for _, who := range []string{eve, pat} {
			wg.Go(func() { f.h.Act(context.Background(), f.people[who], vote, nil) })
		}
	}
	wg.Wait()
	if got := f.bySlug(p.Slug); got.Votes != 2 {
		t.Errorf("votes after 10 clicks each from two people: %d, want 2", got.Votes)
	}
}

func TestShare(t *testing.T) {
	f := newFixture(t)
	r := f.h.Command(f.ctx, f.people[eve], "share")
	if r.Modal == nil || r.Modal.Action.Kind != ActShareSubmit || len(r.Modal.Inputs) != 3 || r.Modal.Inputs[1].Initial != "" {
		t.Fatalf("share opens %+v", r.Modal)
	}
	// The Slack "Save as prompt" shortcut and "/tokens share <text>" prefill the prompt.
	for _, r := range []bot.Reply{
		f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActShareOpen, Value: "Summarise <!channel> notes"}, nil),
		f.h.Command(f.ctx, f.people[eve], "share Summarise <!channel> notes"),
	} {
		if r.Modal == nil || r.Modal.Inputs[1].ID != "body" || r.Modal.Inputs[1].Initial != "Summarise <!channel> notes" {
			t.Errorf("prefilled share: %+v", r.Modal)
		}
	}
	long := f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActShareOpen, Value: strings.Repeat("é", maxBody+10)}, nil)
	if in := long.Modal.Inputs[1]; utf8.RuneCountInString(in.Initial) != maxBody || in.MaxLength != maxBody {
		t.Errorf("a long message prefills %d characters into an input of at most %d", utf8.RuneCountInString(in.Initial), in.MaxLength)
	}
	if a, ok := bot.ParseAction("share_open:Summarise: the notes"); !ok || a.Kind != ActShareOpen || a.Value != "Summarise: the notes" {
		t.Errorf("share_open with text parses to %+v, %v", a, ok)
	}

	submit := r.Modal.Action
	form := map[string]string{"title": "  Churn drivers from survey comments ", "body": "Group these {{comments}} by churn driver.",
		"tags": "Customer Success, churn; churn, #Q4 plan"}
	wantText(t, f.h.Act(f.ctx, f.people[eve], submit, form),
		"Thank you for sharing “Churn drivers from survey comments”", "Tags: customer-success, churn, q4-plan")
	found := f.h.Command(f.ctx, f.people[ed], "prompts churn drivers")
	wantText(t, found, "Churn drivers from survey comments", "customer-success, churn, q4-plan", "shared by Eve Analyst")
	res, err := f.lib.Search(f.ctx, "churn drivers", 1)
	if err != nil || len(res.Prompts) == 0 || res.Prompts[0].AuthorID != f.people[eve].ID || !slices.Equal(res.Prompts[0].Roles, []string{"analyst"}) {
		t.Fatalf("shared prompt: %+v %v", res.Prompts, err)
	}
	// The author's vote is implied; a colleague's counts.
	vote := bot.Action{Kind: ActPromptVote, Value: fmt.Sprint(res.Prompts[0].ID)}
	wantText(t, f.h.Act(f.ctx, f.people[eve], vote, nil), "You shared this prompt")
	wantText(t, f.h.Act(f.ctx, f.people[ed], vote, nil), "Thanks!")

	// A role the library does not know makes the prompt fit anyone.
	f.h.Act(f.ctx, f.people[sam], submit, map[string]string{"title": "Room booking", "body": "Book a room for {{people}}."})
	res, err = f.lib.Search(f.ctx, "room booking", 1)
	if err != nil || len(res.Prompts) != 1 || !slices.Equal(res.Prompts[0].Roles, []string{anyRole}) || len(res.Prompts[0].Tags) != 0 {
		t.Fatalf("prompt from an unknown role: %+v %v", res.Prompts, err)
	}

	for _, bad := range []struct {
		form map[string]string
		want string
	}{
		{map[string]string{"title": " ", "body": "x"}, "Give the prompt a title"},
		{map[string]string{"title": strings.Repeat("t", 81), "body": "x"}, "Give the prompt a title"},
		{map[string]string{"title": "t"}, "Paste the prompt itself"},
		{map[string]string{"title": "t", "body": strings.Repeat("b", maxBody+1)}, "Paste the prompt itself"},
		{map[string]string{"title": "t", "body": "\xff"}, "Paste the prompt itself"},
		{nil, "Give the prompt a title"},
	} {
		wantText(t, f.h.Act(f.ctx, f.people[eve], submit, bad.form), bad.want)
	}
	if res, _ := f.lib.Search(f.ctx, "", 1); res.Total != 53+2 {
		t.Errorf("library has %d prompts after two good shares and six bad ones, want 55", res.Total)
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{" , ;", nil},
		{"research", []string{"research"}},
		{"Code Review, code-review, CODE_REVIEW", []string{"code-review"}},
		{"#slides #Q3", []string{"slides", "q3"}},
		{"a,b,c,d,e,f,g,h,i,j", []string{"a", "b", "c", "d", "e", "f", "g", "h"}},
		{strings.Repeat("long", 20), []string{strings.Repeat("long", 20)[:maxTagLen]}},
		{"🙂, données", []string{"données"}},
	}
	for _, tt := range tests {
		if got := parseTags(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("parseTags(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAdminModeration(t *testing.T) {
	f := newFixture(t)
	p := f.bySlug("research-synthesis-themes")
	hide := fmt.Sprintf("admin prompts hide %d", p.ID)
	// Refused for anyone but an admin, and nothing changes.
	wantText(t, f.h.Command(f.ctx, f.people[eve], hide), "Admin commands are for the admins")
	wantText(t, f.lib.adminCommand(f.ctx, f.people[eve], bot.ParseCommand(fmt.Sprintf("hide %d", p.ID))), "for the admins named in the policy")
	if got := f.bySlug(p.Slug); got.Hidden {
		t.Fatal("a non-admin hid a prompt")
	}

	wantText(t, f.h.Command(f.ctx, f.people[ada], hide), fmt.Sprintf("Prompt #%d “%s” is hidden", p.ID, p.Title))
	wantText(t, f.h.Command(f.ctx, f.people[ada], hide), "is already hidden")
	for _, q := range []string{"prompts interview themes", "prompts"} {
		for page := 1; page <= 11; page++ {
			r := f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptPage, Value: fmt.Sprintf("%d:%s", page, strings.TrimPrefix(strings.TrimPrefix(q, "prompts"), " "))}, nil)
			if strings.Contains(render(r), p.Title) {
				t.Fatalf("hidden prompt in %q page %d", q, page)
			}
		}
	}
	for range 20 {
		tip, ok, err := f.lib.TipFor(f.ctx, f.people[eve])
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if tip.ID == p.ID {
			t.Fatal("hidden prompt offered as a tip")
		}
		if err := f.lib.MarkShown(f.ctx, f.people[eve].ID, tip.ID); err != nil {
			t.Fatal(err)
		}
	}
	wantText(t, f.h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActPromptUse, Value: fmt.Sprint(p.ID)}, nil), "no longer in the library")

	// Shown again, then featured: first in search, first in the listing.
	wantText(t, f.h.Command(f.ctx, f.people[ada], fmt.Sprintf("admin prompts show %d", p.ID)), "is back in search and tips")
	last := f.bySlug("automation-weekly-report")
	wantText(t, f.h.Command(f.ctx, f.people[ada], fmt.Sprintf("admin prompts feature #%d", last.ID)), "is featured")
	for _, q := range []string{"", "report"} {
		res, err := f.lib.Search(f.ctx, q, 1)
		if err != nil || res.Prompts[0].ID != last.ID {
			t.Errorf("search %q after featuring: first %v, want %s (%v)", q, res.Prompts[0].Slug, last.Slug, err)
		}
	}
	wantText(t, f.h.Command(f.ctx, f.people[eve], "prompts"), "⭐ featured")
	wantText(t, f.h.Command(f.ctx, f.people[ada], fmt.Sprintf("admin prompts unfeature %d", last.ID)), "no longer featured")

	for cmd, want := range map[string]string{
		"admin prompts":              "Usage: /tokens admin prompts",
		"admin prompts hide":         "Usage: /tokens admin prompts",
		"admin prompts hide x":       `"x" is not a prompt number`,
		"admin prompts destroy 3":    "Usage: /tokens admin prompts",
		"admin prompts hide 99999":   "prompt 99999 is not in the library",
		"admin prompts feature 1 2 ": "Usage: /tokens admin prompts",
	} {
		wantText(t, f.h.Command(f.ctx, f.people[ada], cmd), want)
	}
	log, err := f.db.AuditLog(f.ctx, 10)
	if err != nil || len(log) != 4 || log[0].Action != "prompt unfeature" || log[0].Actor != ada {
		t.Errorf("audit log: %+v %v", log, err)
	}
}

func TestRegisterKeepsOtherExtensions(t *testing.T) {
	f := newFixture(t)
	h := &bot.Handler{Store: f.db, Policy: f.pol, Now: f.lib.Now, Extra: map[string]bot.CommandFunc{
		"hello": func(context.Context, ledger.Person, bot.Command) bot.Reply { return text("hi") },
	}}
	h.ExtraActions = func(_ context.Context, _ ledger.Person, a bot.Action, _ map[string]string) (bot.Reply, bool) {
		if a.Kind == "wave" {
			return text("waved"), true
		}
		return bot.Reply{}, false
	}
	f.lib.Register(h)
	wantText(t, h.Command(f.ctx, f.people[eve], "hello"), "hi")
	wantText(t, h.Act(f.ctx, f.people[eve], bot.Action{Kind: "wave"}, nil), "waved")
	wantText(t, h.Act(f.ctx, f.people[eve], bot.Action{Kind: ActLearn}, nil), "Your fluency path")
	wantText(t, h.Act(f.ctx, f.people[eve], bot.Action{Kind: "unknown_kind"}, nil), "no longer supported")
	wantText(t, h.Command(f.ctx, f.people[eve], "help"), "/tokens learn", "/tokens prompts", "/tokens share")
}

func TestHelpDescribesLibraryCommands(t *testing.T) {
	f := newFixture(t)
	r := f.h.Command(f.ctx, f.people[eve], "help")
	wantText(t, r, "/tokens prompts [query]: find prompts colleagues found useful", "/tokens share: share a prompt",
		"/tokens learn: short lessons", "/tokens admin prompts hide|show|feature|unfeature <id>: for admins")
	if strings.Contains(render(r), "/tokens admin prompts hide|show|feature|unfeature <id>\n") {
		t.Error("the admin command must be listed with the admin commands only")
	}
}
