package prompts

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Prompt is a prompt of the shared library, starter or shared by a colleague.
type Prompt = ledger.Prompt

// PageSize is how many prompts one page of search results shows.
const PageSize = 5

// maxPage bounds a page number that comes back on a button, so the offset cannot overflow.
const maxPage = 100_000

// Library is the shared prompt library and the fluency path: search, sharing, votes,
// tips for nudges and digests, and lessons with their bonus.
type Library struct {
	Store  ledger.Store
	Policy *policy.Policy
	Now    func() time.Time
	Log    zerolog.Logger
}

// Seed loads the starter library. It is safe on every start: prompts are keyed by slug,
// so a known one is never duplicated (its text follows the release; votes stay).
func (l *Library) Seed(ctx context.Context) error {
	starters, err := StarterPrompts()
	if err != nil {
		return fmt.Errorf("seed prompt library: %w", err)
	}
	in := make([]ledger.PromptInput, len(starters))
	for i, s := range starters {
		in[i] = ledger.PromptInput{Slug: s.Slug, Title: s.Title, Body: s.Body, Tags: s.Tags, Roles: s.Roles, Workflow: s.Workflow}
	}
	added, updated, err := l.Store.SeedPrompts(ctx, in)
	if err != nil {
		return fmt.Errorf("seed prompt library: %w", err)
	}
	if added > 0 || updated > 0 {
		l.Log.Debug().Int("added", added).Int("updated", updated).Msg("starter prompts loaded")
	}
	return nil
}

// Page is one page of search results.
type Page struct {
	Prompts []Prompt
	Number  int // from 1
	Total   int // matching prompts across all pages
}

// More reports whether another page follows.
func (p Page) More() bool { return p.Number*PageSize < p.Total }

// Search returns page number (from 1) of the prompts matching query, ranked by relevance,
// then votes, then the author's logged impact, featured first. Any text is a valid query.
func (l *Library) Search(ctx context.Context, query string, number int) (Page, error) {
	number = min(max(1, number), maxPage)
	res, err := l.Store.SearchPrompts(ctx, query, (number-1)*PageSize, PageSize)
	if err != nil {
		return Page{}, err
	}
	return Page{Prompts: res.Prompts, Number: number, Total: res.Total}, nil
}

// TipFor picks the prompt to suggest to person in a nudge or digest: one that fits their
// role (and their team, by tag), featured first, then by votes weighted by the author's
// logged impact; never one they were shown or used before. ok is false when none is left.
func (l *Library) TipFor(ctx context.Context, person ledger.Person) (Prompt, bool, error) {
	cands, err := l.Store.TipCandidates(ctx, person.ID)
	if err != nil {
		return Prompt{}, false, err
	}
	p, ok := bestTip(cands, person)
	return p, ok, nil
}

// MarkShown records that a prompt was offered to a person, so it is not offered again.
func (l *Library) MarkShown(ctx context.Context, personID, promptID int64) error {
	return l.Store.MarkPromptShown(ctx, personID, promptID)
}

// roleFit is 2 when a prompt names the person's role, 1 when it fits anyone, 0 when it
// is meant for other roles.
func roleFit(p Prompt, role string) int {
	role = strings.TrimSpace(role)
	if len(p.Roles) == 0 {
		return 1
	}
	fit := 0
	for _, r := range p.Roles {
		switch {
		case role != "" && strings.EqualFold(r, role):
			return 2
		case strings.EqualFold(r, anyRole):
			fit = 1
		}
	}
	return fit
}

// teamFit reports whether a tag names the person's team ("Data Science" matches the tag
// data-science, or data, or science).
func teamFit(p Prompt, team string) bool {
	words := strings.FieldsFunc(strings.ToLower(team), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(words) == 0 {
		return false
	}
	names := append(words, strings.Join(words, "-"))
	return slices.ContainsFunc(p.Tags, func(t string) bool { return slices.Contains(names, strings.ToLower(t)) })
}

// weightedVotes counts votes more when the author logs outcomes: a prompt from someone
// whose work shows results is a better bet, but never by more than a modest factor.
func weightedVotes(p Prompt) float64 {
	return float64(p.Votes) * (1 + math.Log1p(float64(p.AuthorImpacts)))
}

func bestTip(cands []Prompt, person ledger.Person) (Prompt, bool) {
	var fit []Prompt
	for _, p := range cands {
		if !p.Hidden && roleFit(p, person.Role) > 0 {
			fit = append(fit, p)
		}
	}
	if len(fit) == 0 {
		return Prompt{}, false
	}
	boolRank := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	best := slices.MinFunc(fit, func(a, b Prompt) int {
		return cmp.Or(
			cmp.Compare(boolRank(b.Featured), boolRank(a.Featured)),
			cmp.Compare(roleFit(b, person.Role), roleFit(a, person.Role)),
			cmp.Compare(boolRank(teamFit(b, person.Team)), boolRank(teamFit(a, person.Team))),
			cmp.Compare(weightedVotes(b), weightedVotes(a)),
			cmp.Compare(a.ID, b.ID),
		)
	})
	return best, true
}
