package prompts

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// The people every test starts from: Ada is the admin; Eve and Pat are analysts in
// Research; Ed is an engineer in Platform; Sam has a role no starter prompt names.
const (
	ada = "ada@example.com"
	eve = "eve@example.com"
	pat = "pat@example.com"
	ed  = "ed@example.com"
	sam = "sam@example.com"
)

// testNow is a fixed clock inside the November 2026 period.
var testNow = time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)

type fixture struct {
	t      *testing.T
	ctx    context.Context
	db     ledgertest.Store
	pol    *policy.Policy
	lib    *Library
	h      *bot.Handler
	people map[string]ledger.Person
}

// newFixture opens a fresh ledger with the people above, their baseline for the period,
// the starter library seeded, and a handler with the library registered.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	db.SetNow(func() time.Time { return testNow })
	pol := policy.Default()
	pol.Admins = []string{ada}

	recs := []ledger.PersonRecord{
		{Email: ada, Name: "Ada Admin", Team: "Ops", Role: "operations"},
		{Email: eve, Name: "Eve Analyst", Team: "Research", Role: "analyst"},
		{Email: pat, Name: "Pat Peer", Team: "Research", Role: "analyst"},
		{Email: ed, Name: "Ed Engineer", Team: "Platform", Role: "engineer"},
		{Email: sam, Name: "Sam Steward", Team: "Facilities", Role: "steward"},
	}
	for i := range recs {
		recs[i].Line = i + 2
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := period.Reset(ctx, db, pol, testNow); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, db: db, pol: pol, people: map[string]ledger.Person{}}
	f.lib = &Library{Store: db, Policy: pol, Now: func() time.Time { return testNow }, Log: zerolog.Nop()}
	if err := f.lib.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	f.h = &bot.Handler{Store: db, Policy: pol, Now: func() time.Time { return testNow }, Log: zerolog.Nop()}
	f.lib.Register(f.h)
	for _, r := range recs {
		p, err := db.PersonByEmail(ctx, r.Email)
		if err != nil {
			t.Fatal(err)
		}
		f.people[r.Email] = p
	}
	return f
}

// bySlug returns the id of a starter prompt.
func (f *fixture) bySlug(slug string) Prompt {
	f.t.Helper()
	for page := 1; ; page++ {
		res, err := f.lib.Search(f.ctx, "", page)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, p := range res.Prompts {
			if p.Slug == slug {
				return p
			}
		}
		if !res.More() {
			f.t.Fatalf("no prompt %s", slug)
		}
	}
}

func TestSeedTwiceNoDuplicates(t *testing.T) {
	f := newFixture(t)
	starters, err := StarterPrompts()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.lib.Seed(f.ctx); err != nil {
			t.Fatal(err)
		}
	}
	res, err := f.lib.Search(f.ctx, "", 1)
	if err != nil || res.Total != len(starters) {
		t.Fatalf("after seeding three times: %d prompts, want %d (%v)", res.Total, len(starters), err)
	}
	p := f.bySlug("research-synthesis-themes")
	if p.Title != "Pull the themes out of interview notes" || p.Workflow != "research synthesis" ||
		strings.Join(p.Roles, ",") != "analyst,consultant,designer" || strings.Join(p.Tags, ",") != "research,interviews,synthesis" {
		t.Errorf("seeded prompt: %+v", p)
	}
}

func TestSearchStarterLibrary(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		query, first string
	}{
		{"themes interview notes", "research-synthesis-themes"},
		{"review a diff", "code-review-diff"},
	}
	for _, tt := range tests {
		res, err := f.lib.Search(f.ctx, tt.query, 1)
		if err != nil || len(res.Prompts) == 0 || res.Prompts[0].Slug != tt.first {
			t.Errorf("search %q: first %v, want %s (%v)", tt.query, res.Prompts, tt.first, err)
		}
	}
	res, err := f.lib.Search(f.ctx, "", 1)
	if err != nil || len(res.Prompts) != PageSize || !res.More() {
		t.Fatalf("first page: %d prompts, more %v, %v", len(res.Prompts), res.More(), err)
	}
	last, err := f.lib.Search(f.ctx, "", (res.Total+PageSize-1)/PageSize)
	if err != nil || len(last.Prompts) == 0 || last.More() {
		t.Errorf("last page: %d prompts, more %v, %v", len(last.Prompts), last.More(), err)
	}
}

// hostileQueries are texts people (or fuzzers) type that would break a naive MATCH.
var hostileQueries = []string{
	`"`, `"unbalanced`, `(`, `)`, `OR`, `AND`, `NOT`, `a OR`, `*`, `**`, `NEAR`, `NEAR/5`, `x NEAR y`, `-`, `-x`, `:`,
	`title:x`, `^x`, `'`, `;`, `\`, "%", "_", strings.Repeat("a", 10_000), strings.Repeat(`"(`, 5_000),
	"😀", "👩‍💻 prompts", "\x00", "x\x00y", "\xff", "日本語のプロンプト", "\u200b", "ǅ", "Ⅻ",
}

func TestSearchHostileQueries(t *testing.T) {
	f := newFixture(t)
	for _, q := range hostileQueries {
		if _, err := f.lib.Search(f.ctx, q, 1); err != nil {
			t.Errorf("search %.30q: %v", q, err)
		}
		// Through the command too: always a reply, never the internal-error sentence.
		r := f.h.Command(f.ctx, f.people[eve], "prompts "+q)
		if strings.Contains(render(r), "Something went wrong") {
			t.Errorf("prompts %.30q: %s", q, render(r))
		}
	}
}

func FuzzSearchQuery(f *testing.F) {
	for _, q := range hostileQueries {
		f.Add(q)
	}
	f.Add("interview themes")
	ctx := context.Background()
	db := ledgertest.Open(f)
	defer db.Close()
	lib := &Library{Store: db, Policy: policy.Default(), Now: time.Now, Log: zerolog.Nop()}
	if err := lib.Seed(ctx); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		res, err := lib.Search(ctx, q, 1)
		if err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
		if len(res.Prompts) > PageSize || res.Total < len(res.Prompts) {
			t.Fatalf("Search(%q): %d prompts of %d", q, len(res.Prompts), res.Total)
		}
	})
}

func TestBestTip(t *testing.T) {
	analyst := ledger.Person{Role: "Analyst", Team: "Data Science"}
	p := func(id int64, roles string, mods ...func(*Prompt)) Prompt {
		pr := Prompt{ID: id, Roles: strings.Fields(roles)}
		for _, m := range mods {
			m(&pr)
		}
		return pr
	}
	votes := func(n, impacts int64) func(*Prompt) {
		return func(p *Prompt) { p.Votes, p.AuthorImpacts = n, impacts }
	}
	featured := func(p *Prompt) { p.Featured = true }
	hidden := func(p *Prompt) { p.Hidden = true }
	tags := func(ts ...string) func(*Prompt) { return func(p *Prompt) { p.Tags = ts } }

	tests := []struct {
		name  string
		cands []Prompt
		want  int64 // 0: none
	}{
		{"nothing left", nil, 0},
		{"only other roles", []Prompt{p(1, "engineer"), p(2, "sales hr")}, 0},
		{"any fits everyone", []Prompt{p(1, "engineer"), p(2, "any")}, 2},
		{"no roles fits everyone", []Prompt{p(1, "engineer"), p(2, "")}, 2},
		{"own role beats any", []Prompt{p(1, "any", votes(9, 0)), p(2, "engineer analyst")}, 2},
		{"featured first", []Prompt{p(1, "analyst", votes(50, 9)), p(2, "any", featured)}, 2},
		{"featured for another role never", []Prompt{p(1, "analyst"), p(2, "engineer", featured)}, 1},
		{"hidden never", []Prompt{p(1, "any"), p(2, "analyst", hidden, featured)}, 1},
		{"team tag", []Prompt{p(1, "analyst", votes(1, 0)), p(2, "analyst", tags("data-science"))}, 2},
		{"team word tag", []Prompt{p(1, "analyst"), p(2, "analyst", tags("science"))}, 2},
		{"more votes", []Prompt{p(1, "analyst", votes(1, 0)), p(2, "analyst", votes(3, 0))}, 2},
		{"votes weighted by the author's impact", []Prompt{p(1, "analyst", votes(3, 0)), p(2, "analyst", votes(2, 20))}, 2},
		{"impact without votes weighs nothing", []Prompt{p(1, "analyst", votes(1, 0)), p(2, "analyst", votes(0, 50))}, 1},
		{"ties go to the oldest", []Prompt{p(3, "analyst"), p(2, "analyst")}, 2},
	}
	for _, tt := range tests {
		got, ok := bestTip(tt.cands, analyst)
		if (tt.want == 0) == ok || (ok && got.ID != tt.want) {
			t.Errorf("%s: got %d (ok %v), want %d", tt.name, got.ID, ok, tt.want)
		}
	}
}

func TestTipForSkipsShownAndUsed(t *testing.T) {
	f := newFixture(t)
	for _, email := range []string{eve, ed, sam} {
		person := f.people[email]
		seen := map[int64]bool{}
		for i := range 4 {
			tip, ok, err := f.lib.TipFor(f.ctx, person)
			if err != nil || !ok {
				t.Fatalf("%s tip %d: ok %v, %v", email, i, ok, err)
			}
			if seen[tip.ID] {
				t.Fatalf("%s was offered %s twice", email, tip.Slug)
			}
			seen[tip.ID] = true
			if roleFit(tip, person.Role) == 0 {
				t.Errorf("%s (%s) got %s for %v", email, person.Role, tip.Slug, tip.Roles)
			}
			if person.Role == "engineer" && !strings.Contains(strings.Join(tip.Roles, " "), "engineer") {
				t.Errorf("engineer got %s for %v while engineering prompts remain", tip.Slug, tip.Roles)
			}
			if person.Role == "steward" && strings.Join(tip.Roles, " ") != anyRole {
				t.Errorf("a role no prompt names got %s for %v", tip.Slug, tip.Roles)
			}
			// Alternate the two ways a tip is used up: shown in a nudge, or used.
			if i%2 == 0 {
				err = f.lib.MarkShown(f.ctx, person.ID, tip.ID)
			} else {
				_, err = f.db.UsePrompt(f.ctx, tip.ID, person.ID)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestTipForFeaturedFirstHiddenNever(t *testing.T) {
	f := newFixture(t)
	person := f.people[ed]
	featured := f.bySlug("meeting-notes-actions")
	if _, _, err := f.db.FeaturePrompt(f.ctx, featured.ID, true, ada); err != nil {
		t.Fatal(err)
	}
	tip, ok, err := f.lib.TipFor(f.ctx, person)
	if err != nil || !ok || tip.ID != featured.ID {
		t.Fatalf("tip with a featured prompt: %s (ok %v, %v), want %s", tip.Slug, ok, err, featured.Slug)
	}
	if _, _, err := f.db.HidePrompt(f.ctx, featured.ID, true, ada); err != nil {
		t.Fatal(err)
	}
	// Hide the engineer's next picks one by one; a hidden prompt never comes back.
	hidden := map[int64]bool{featured.ID: true}
	for range 5 {
		tip, ok, err = f.lib.TipFor(f.ctx, person)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if hidden[tip.ID] {
			t.Fatalf("hidden prompt %s offered", tip.Slug)
		}
		hidden[tip.ID] = true
		if _, _, err := f.db.HidePrompt(f.ctx, tip.ID, true, ada); err != nil {
			t.Fatal(err)
		}
	}
}
