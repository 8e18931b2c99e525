package ledger

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Prompt is one entry of the shared prompt library.
type Prompt struct {
	ID       int64
	Slug     string // starter prompts only
	Title    string
	Body     string
	Tags     []string
	Roles    []string
	Workflow string
	AuthorID int64 // 0 for the starter library
	// AuthorName and AuthorImpacts describe the author: their name, and how many outcomes
	// they have logged, which weighs their prompts when votes are equal.
	AuthorName    string
	AuthorImpacts int64
	Featured      bool
	Hidden        bool
	Uses          int64
	Votes         int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// PromptInput is a prompt to add to the library.
type PromptInput struct {
	Slug     string // starter prompts: the key that makes seeding idempotent
	Title    string
	Body     string
	Tags     []string
	Roles    []string
	Workflow string
	AuthorID int64
}

// PromptPage is one page of search results.
type PromptPage struct {
	Prompts []Prompt
	Total   int // results across all pages
}

// LessonCompletion records that a person finished a lesson of the fluency path.
type LessonCompletion struct {
	PersonID   int64
	LessonID   string
	Reflection string
	// Bonus credits are granted once, with the key lesson:<lesson id>:<person id>; 0 grants
	// nothing.
	Bonus     int64
	ExpiresAt time.Time
	Reason    string // shown in the person's history
}

// LessonResult says what CompleteLesson did.
type LessonResult struct {
	First       bool // false: the lesson was already complete and nothing changed
	CompletedAt time.Time
	Grant       Grant // zero when no bonus was granted by this call
}

// LessonKey is the idempotency key of a lesson's bonus grant.
func LessonKey(lessonID string, personID int64) string {
	return fmt.Sprintf("lesson:%s:%d", lessonID, personID)
}

// SearchTerms splits a query into the words the search uses: runs of letters and digits,
// lower-cased, at most a dozen. Everything else (quotes, operators, punctuation, emoji,
// control characters) is a separator, so no query text reaches the MATCH syntax.
func SearchTerms(query string) []string {
	var terms []string
	for w := range strings.FieldsFuncSeq(query, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len(terms) == MaxSearchTerms {
			break
		}
		if utf8.RuneCountInString(w) > MaxSearchTermLen {
			w = string([]rune(w)[:MaxSearchTermLen])
		}
		terms = append(terms, strings.ToLower(w))
	}
	return terms
}

// Search limits. A query is a handful of words; the rest of a pasted paragraph adds cost
// and no precision.
const (
	MaxSearchTerms   = 12
	MaxSearchTermLen = 40 // runes
)
