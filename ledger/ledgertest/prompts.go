package ledgertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func testSearchPromptsRelevance(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _, _ := promptDB(t, open, 1, corpus)
	tests := []struct {
		query string
		want  []string
	}{
		// A title hit outranks a tag hit, which outranks the body.
		{"themes", []string{"themes-title", "themes-tag", "themes-body"}},
		// Every word must match when some prompt has them all.
		{"interview themes", []string{"themes-title", "themes-body"}},
		// The last word is a prefix.
		{"interv", []string{"themes-title", "themes-body"}},
		{"REVIEW", []string{"code-review"}},
		{"code-review!", []string{"code-review"}},
		// No prompt has both words: prompts with either come back.
		{"outline decided", []string{"slides", "themes-tag"}},
		{"quantum", nil},
		// No words at all lists the library.
		{`""`, []string{"themes-title", "themes-body", "themes-tag", "code-review", "slides"}},
	}
	for _, tt := range tests {
		page, err := db.SearchPrompts(ctx, tt.query, 0, 10)
		if err != nil {
			t.Fatalf("search %q: %v", tt.query, err)
		}
		if got := slugs(page.Prompts); !slices.Equal(got, tt.want) || page.Total != len(tt.want) {
			t.Errorf("search %q = %v (total %d), want %v", tt.query, got, page.Total, tt.want)
		}
	}

	// Pages slice the same ranking.
	var paged []string
	for off := 0; off < 5; off += 2 {
		page, err := db.SearchPrompts(ctx, "", off, 2)
		if err != nil || page.Total != 5 {
			t.Fatalf("page at %d: %+v %v", off, page, err)
		}
		paged = append(paged, slugs(page.Prompts)...)
	}
	if want := []string{"themes-title", "themes-body", "themes-tag", "code-review", "slides"}; !slices.Equal(paged, want) {
		t.Errorf("paged listing = %v, want %v", paged, want)
	}
	if page, err := db.SearchPrompts(ctx, "themes", 50, 10); err != nil || len(page.Prompts) != 0 || page.Total != 3 {
		t.Errorf("page past the end: %+v %v", page, err)
	}
}

func testSearchPromptsHostileQueries(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _, _ := promptDB(t, open, 1, corpus)
	queries := []string{
		`"`, `""`, `"themes`, `(`, `)`, `(themes`, `OR`, `themes OR`, `AND`, `NOT themes`, `*`, `themes*`, `^themes`,
		`NEAR`, `themes NEAR review`, `NEAR/2`, `-`, `-themes`, `:`, `title:themes`, `docid:1`, `'; DROP TABLE prompts; --`,
		strings.Repeat("themes ", 2000), strings.Repeat("x", 10_000), strings.Repeat(`"(*:-`, 2000),
		"🙂🙃🎉", "\x00", "themes\x00review", "\xff\xfe", "ʹ", "日本語", "İstanbul",
	}
	for _, q := range queries {
		if _, err := db.SearchPrompts(ctx, q, 0, 5); err != nil {
			t.Errorf("search %.40q: %v", q, err)
		}
	}
	page, err := db.SearchPrompts(ctx, `"themes" OR (review*`, 0, 10)
	if err != nil || page.Total != 4 {
		t.Errorf("operators are words: %v (total %d), %v", slugs(page.Prompts), page.Total, err)
	}
}

func testSearchOrdersByVotesThenAuthorImpact(t *testing.T, open Opener) {
	ctx := context.Background()
	// Same words, same lengths: the relevance is equal, so votes and then the author's
	// logged impact decide.
	same := func(slug string) ledger.PromptInput {
		return ledger.PromptInput{Slug: slug, Title: "Budget check", Body: "Check the budget sheet for errors.", Tags: []string{"finance"}}
	}
	db, people, _ := promptDB(t, open, 4, nil)
	add := func(in ledger.PromptInput, author int64) int64 {
		in.AuthorID = author
		p, err := db.AddPrompt(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	plain := add(same("plain"), 0)
	byImpactful := add(same("by-impactful"), people[0].ID)
	voted := add(same("voted"), people[1].ID)
	if _, err := db.LogImpact(ctx, people[0].ID, "saved a day", 480, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.VotePrompt(ctx, voted, people[2].ID); err != nil {
		t.Fatal(err)
	}
	page, err := db.SearchPrompts(ctx, "budget", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := slugs(page.Prompts), []string{"voted", "by-impactful", "plain"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	if page.Prompts[1].AuthorImpacts != 1 || page.Prompts[1].AuthorName != people[0].Name {
		t.Errorf("author of %d: %+v", byImpactful, page.Prompts[1])
	}

	// Featured comes first, whatever its votes; hidden never shows.
	if _, _, err := db.FeaturePrompt(ctx, plain, true, "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.HidePrompt(ctx, voted, true, "admin@example.com"); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"budget", ""} {
		page, err = db.SearchPrompts(ctx, q, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := slugs(page.Prompts), []string{"plain", "by-impactful"}; !slices.Equal(got, want) || page.Total != 2 {
			t.Errorf("search %q after moderation = %v (total %d), want %v", q, got, page.Total, want)
		}
	}
}

func testSeedPromptsIdempotent(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _, _ := promptDB(t, open, 1, nil)
	added, updated, err := db.SeedPrompts(ctx, corpus)
	if err != nil || added != len(corpus) || updated != 0 {
		t.Fatalf("first seed: added %d updated %d, %v", added, updated, err)
	}
	added, updated, err = db.SeedPrompts(ctx, corpus)
	if err != nil || added != 0 || updated != 0 {
		t.Fatalf("second seed: added %d updated %d, %v", added, updated, err)
	}
	page, err := db.SearchPrompts(ctx, "", 0, 100)
	if err != nil || page.Total != len(corpus) {
		t.Fatalf("after two seeds: %d prompts, %v", page.Total, err)
	}

	// A new release rewrites a starter: its text and index follow, its votes stay.
	id := page.Prompts[0].ID
	if _, _, err := db.VotePrompt(ctx, id, 1); err != nil {
		t.Fatal(err)
	}
	changed := slices.Clone(corpus)
	changed[0].Body = "Cluster the transcripts into kaleidoscopic findings."
	if added, updated, err = db.SeedPrompts(ctx, changed); err != nil || added != 0 || updated != 1 {
		t.Fatalf("reseed with a change: added %d updated %d, %v", added, updated, err)
	}
	if page, err := db.SearchPrompts(ctx, "kaleidoscopic", 0, 10); err != nil || page.Total != 1 || page.Prompts[0].Votes != 1 {
		t.Errorf("updated starter: %+v %v", page, err)
	}
	if page, err := db.SearchPrompts(ctx, "group below", 0, 10); err != nil || page.Total != 0 {
		t.Errorf("old text still indexed: %+v %v", page, err)
	}
	if _, _, err := db.SeedPrompts(ctx, []ledger.PromptInput{{Title: "no slug", Body: "x"}}); ledger.ErrorCode(err) != ledger.Invalid {
		t.Errorf("seed without a slug: %v", err)
	}
}

func testVotePromptOncePerPerson(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people, _ := promptDB(t, open, 3, nil)
	p, err := db.AddPrompt(ctx, ledger.PromptInput{Title: "Shared", Body: "A prompt", AuthorID: people[0].ID, Tags: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 20 {
		wg.Go(func() {
			_, changed, err := db.VotePrompt(ctx, p.ID, people[1].ID)
			if err != nil {
				t.Error(err)
			}
			if changed {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, err := db.Prompt(ctx, p.ID)
	if err != nil || got.Votes != 1 || firsts != 1 {
		t.Fatalf("after 20 concurrent votes: %d votes, %d counted as first, %v", got.Votes, firsts, err)
	}
	if _, _, err := db.VotePrompt(ctx, p.ID, people[0].ID); ledger.ErrorCode(err) != ledger.Forbidden {
		t.Errorf("author voting for their own prompt: %v", err)
	}
	if _, _, err := db.VotePrompt(ctx, 999, people[1].ID); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("vote for a missing prompt: %v", err)
	}
	if _, err := db.UsePrompt(ctx, p.ID, people[2].ID); err != nil {
		t.Fatal(err)
	}
	if got, err := db.UsePrompt(ctx, p.ID, people[2].ID); err != nil || got.Uses != 2 {
		t.Errorf("two uses: %d, %v", got.Uses, err)
	}
	if _, _, err := db.HidePrompt(ctx, p.ID, true, "a@x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.VotePrompt(ctx, p.ID, people[2].ID); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("vote for a hidden prompt: %v", err)
	}
	if _, err := db.UsePrompt(ctx, p.ID, people[2].ID); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("use of a hidden prompt: %v", err)
	}
}

func testModerationIsAudited(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _, ids := promptDB(t, open, 1, corpus[:1])
	id := ids["themes-title"]
	steps := []struct {
		do      func() (ledger.Prompt, bool, error)
		changed bool
	}{
		{func() (ledger.Prompt, bool, error) { return db.HidePrompt(ctx, id, true, "ada@x") }, true},
		{func() (ledger.Prompt, bool, error) { return db.HidePrompt(ctx, id, true, "ada@x") }, false},
		{func() (ledger.Prompt, bool, error) { return db.FeaturePrompt(ctx, id, true, "ada@x") }, true},
		{func() (ledger.Prompt, bool, error) { return db.HidePrompt(ctx, id, false, "ada@x") }, true},
	}
	for i, s := range steps {
		if _, changed, err := s.do(); err != nil || changed != s.changed {
			t.Fatalf("step %d: changed %v, %v", i, changed, err)
		}
	}
	p, err := db.Prompt(ctx, id)
	if err != nil || p.Hidden || !p.Featured {
		t.Fatalf("after moderation: %+v %v", p, err)
	}
	log, err := db.AuditLog(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action+" "+e.Subject)
	}
	if want := []string{"prompt show prompt 1", "prompt feature prompt 1", "prompt hide prompt 1"}; !slices.Equal(actions, want) {
		t.Errorf("audit = %q, want %q", actions, want)
	}
	if _, _, err := db.FeaturePrompt(ctx, 404, true, "ada@x"); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("feature a missing prompt: %v", err)
	}
}

func testTipCandidatesSkipShownUsedOwnHidden(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people, _ := promptDB(t, open, 2, nil)
	me, other := people[0].ID, people[1].ID
	add := func(title string, author int64) int64 {
		p, err := db.AddPrompt(ctx, ledger.PromptInput{Title: title, Body: "body", AuthorID: author})
		if err != nil {
			t.Fatal(err)
		}
		return p.ID
	}
	fresh, shown, used, hidden := add("fresh", 0), add("shown", 0), add("used", other), add("hidden", 0)
	add("own", me)
	if err := db.MarkPromptShown(ctx, me, shown); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkPromptShown(ctx, me, shown); err != nil {
		t.Errorf("showing twice: %v", err)
	}
	if _, err := db.UsePrompt(ctx, used, me); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.HidePrompt(ctx, hidden, true, "a@x"); err != nil {
		t.Fatal(err)
	}
	ps, err := db.TipCandidates(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, p := range ps {
		got = append(got, p.ID)
	}
	if !slices.Equal(got, []int64{fresh}) {
		t.Errorf("candidates for me = %v, want only %d", got, fresh)
	}
	// What one person saw or used does not hide it from another; their own prompt does.
	ps, err = db.TipCandidates(ctx, other)
	if err != nil || len(ps) != 3 {
		t.Errorf("candidates for another person: %d, %v", len(ps), err)
	}
	if err := db.MarkPromptShown(ctx, me, 999); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("showing a missing prompt: %v", err)
	}
	if err := db.MarkPromptShown(ctx, 999, fresh); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("showing to a missing person: %v", err)
	}
}

func testCompleteLessonGrantsOnce(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people, _ := promptDB(t, open, 2, nil)
	who := people[0].ID
	in := ledger.LessonCompletion{PersonID: who, LessonID: "what-is-a-token", Reflection: "summaries", Bonus: 10_000,
		ExpiresAt: testNow.Add(72 * time.Hour), Reason: "lesson completed"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	for range 16 {
		wg.Go(func() {
			res, err := db.CompleteLesson(ctx, in)
			if err != nil {
				t.Error(err)
				return
			}
			if res.First {
				mu.Lock()
				firsts++
				mu.Unlock()
				if res.Grant.Amount != 10_000 || res.Grant.Kind != ledger.GrantLesson {
					t.Errorf("first completion granted %+v", res.Grant)
				}
			} else if res.Grant.ID != 0 || !res.CompletedAt.Equal(testNow) {
				t.Errorf("repeat completion: %+v", res)
			}
		})
	}
	wg.Wait()
	if firsts != 1 {
		t.Fatalf("%d completions counted as first, want 1", firsts)
	}
	b, err := db.Balance(ctx, who, testNow.Add(-time.Hour), testNow.Add(72*time.Hour))
	if err != nil || b.Available != 10_000 {
		t.Fatalf("balance after 16 completions: %+v %v", b, err)
	}
	gs, err := db.Grants(ctx, who, 10)
	if err != nil || len(gs) != 1 {
		t.Fatalf("grants: %+v %v", gs, err)
	}
	tx, err := db.Transaction(ctx, gs[0].TxID)
	if err != nil || tx.Key != fmt.Sprintf("lesson:what-is-a-token:%d", who) {
		t.Errorf("grant transaction key %q, %v", tx.Key, err)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Errorf("verify: %v %v", v, err)
	}
	done, err := db.LessonProgress(ctx, who)
	if err != nil || len(done) != 1 || !done["what-is-a-token"].Equal(testNow) {
		t.Errorf("progress: %v %v", done, err)
	}
	if done, _ := db.LessonProgress(ctx, people[1].ID); len(done) != 0 {
		t.Errorf("another person's progress: %v", done)
	}

	// A policy without a bonus still records the lesson.
	res, err := db.CompleteLesson(ctx, ledger.LessonCompletion{PersonID: who, LessonID: "giving-context", Reflection: "r"})
	if err != nil || !res.First || res.Grant.ID != 0 {
		t.Errorf("completion without a bonus: %+v %v", res, err)
	}
	for _, bad := range []ledger.LessonCompletion{
		{PersonID: who, Reflection: "r"},
		{PersonID: who, LessonID: "x", Bonus: -1},
		{PersonID: 999, LessonID: "x"},
	} {
		if _, err := db.CompleteLesson(ctx, bad); ledger.ErrorCode(err) == ledger.Internal {
			t.Errorf("CompleteLesson(%+v): %v", bad, err)
		}
	}
	// A failed grant (expiry before now) leaves the lesson open, so it can be completed later.
	if _, err := db.CompleteLesson(ctx, ledger.LessonCompletion{PersonID: who, LessonID: "late", Bonus: 5, ExpiresAt: testNow.Add(-time.Hour)}); err == nil {
		t.Fatal("grant expiring in the past was accepted")
	}
	if done, _ := db.LessonProgress(ctx, who); !done["late"].IsZero() {
		t.Error("lesson recorded although its grant failed")
	}
}

// promptDB opens a ledger with people p0..p(n-1) and the given prompts, indexed by slug.
func promptDB(t *testing.T, open Opener, people int, in []ledger.PromptInput) (Store, []ledger.Person, map[string]int64) {
	t.Helper()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	ps := seedPeople(t, db, people)
	ids := map[string]int64{}
	for _, p := range in {
		got, err := db.AddPrompt(context.Background(), p)
		if err != nil {
			t.Fatalf("add %s: %v", p.Slug, err)
		}
		ids[p.Slug] = got.ID
	}
	return db, ps, ids
}

func slugs(ps []ledger.Prompt) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Slug
	}
	return out
}

var corpus = []ledger.PromptInput{
	{Slug: "themes-title", Title: "Interview themes", Body: "Group the notes below into findings.", Tags: []string{"research"}, Workflow: "research synthesis"},
	{Slug: "themes-body", Title: "Research notes", Body: "Read the interview notes and list the themes with quotes from each interview.", Tags: []string{"research"}, Workflow: "research synthesis"},
	{Slug: "themes-tag", Title: "Summarise a workshop", Body: "Summarise what the workshop decided and who owns each action.", Tags: []string{"themes", "workshop"}, Workflow: "meeting notes"},
	{Slug: "code-review", Title: "Review a pull request", Body: "Review this diff for bugs, missing tests and unclear names.", Tags: []string{"code-review"}, Workflow: "code review"},
	{Slug: "slides", Title: "Draft slides from an outline", Body: "Turn the outline into ten slides with one message each.", Tags: []string{"slides"}, Workflow: "slide drafting"},
}

// testSearchFoldsCaseAndDiacritics: a word is found whatever its case and accents, on
// either side, in Latin and beyond (SQLite's unicode61 tokenizer; PostgreSQL's
// prompts_fold), also as the last, half-typed word.
func testSearchFoldsCaseAndDiacritics(t *testing.T, open Opener) {
	ctx := context.Background()
	db, _, _ := promptDB(t, open, 1, []ledger.PromptInput{
		{Slug: "cafe", Title: "Café menu", Body: "Ünïcode notes for the ÉQUIPE", Tags: []string{"ΣΟΦΙΑ"}},
		{Slug: "plain", Title: "Plain menu", Body: "Nothing special", Tags: []string{"x"}},
	})
	for _, q := range []string{"cafe", "CAFÉ", "café menu", "unicode", "ÜNÏCODE", "ünïc", "équipe", "equipe", "σοφια", "Σοφια"} {
		page, err := db.SearchPrompts(ctx, q, 0, 10)
		if err != nil || !slices.Equal(slugs(page.Prompts), []string{"cafe"}) {
			t.Errorf("search %q = %v, %v; want [cafe]", q, slugs(page.Prompts), err)
		}
	}
}
