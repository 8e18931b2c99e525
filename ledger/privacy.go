package ledger

import (
	"fmt"
	"time"
)

// ErasedText replaces what a forgotten person wrote (impacts, use cases, reflections).
const ErasedText = "(erased on request)"

// PersonData is everything tokenpay stores about one person, as `tokenpay people export`
// prints it: the directory entry, the ledger seen from their side, and what they wrote.
type PersonData struct {
	ExportedAt time.Time        `json:"exported_at"`
	Person     PersonRecordJSON `json:"person"`
	Grants     []GrantJSON      `json:"grants"`
	Usage      []UsageJSON      `json:"usage"`
	Requests   []RequestJSON    `json:"requests"`
	Impacts    []ImpactJSON     `json:"impacts"`
	Prompts    []PromptJSON     `json:"prompts"`
	Lessons    []LessonJSON     `json:"lessons"`
}

// PersonRecordJSON is the directory entry of a person.
type PersonRecordJSON struct {
	ID                int64      `json:"id"`
	Email             string     `json:"email"`
	Name              string     `json:"name"`
	Team              string     `json:"team"`
	Role              string     `json:"role"`
	ManagerEmail      string     `json:"manager_email"`
	SlackUserID       string     `json:"slack_user_id"`
	TeamsUserID       string     `json:"teams_user_id"`
	TimeZone          string     `json:"time_zone"`
	NudgesOff         bool       `json:"nudges_off"`
	DigestsOff        bool       `json:"digests_off"`
	PreferredPlatform string     `json:"preferred_platform"`
	JoinedAt          time.Time  `json:"joined_at"`
	ForgottenAt       *time.Time `json:"forgotten_at,omitempty"`
}

// GrantJSON is one grant of credits.
type GrantJSON struct {
	ID          int64     `json:"id"`
	Kind        string    `json:"kind"`
	Amount      int64     `json:"amount"`
	Remaining   int64     `json:"remaining"`
	EffectiveAt time.Time `json:"effective_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	Reason      string    `json:"reason"`
	Closed      bool      `json:"closed"`
}

// UsageJSON is one usage event.
type UsageJSON struct {
	EventID      string    `json:"event_id"`
	Model        string    `json:"model"`
	InputTokens  int64     `json:"input_tokens"`
	OutputTokens int64     `json:"output_tokens"`
	Credits      int64     `json:"credits"`
	Overage      int64     `json:"overage"`
	OccurredAt   time.Time `json:"occurred_at"`
	Source       string    `json:"source"`
	Reversed     bool      `json:"reversed"`
	// Events is how many usage events the row stands for: 1, or more for a day's usage of
	// one model rolled up after usage.retention_months (its EventID is then "rollup:<day>").
	Events int64 `json:"events"`
}

// RequestJSON is one unlock request the person filed.
type RequestJSON struct {
	ID        int64      `json:"id"`
	Amount    int64      `json:"amount"`
	UseCase   string     `json:"use_case"`
	Status    string     `json:"status"`
	Note      string     `json:"note"`
	CreatedAt time.Time  `json:"created_at"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
}

// ImpactJSON is one outcome the person logged.
type ImpactJSON struct {
	ID          int64      `json:"id"`
	Text        string     `json:"text"`
	Minutes     int64      `json:"minutes"`
	Link        string     `json:"link"`
	CreatedAt   time.Time  `json:"created_at"`
	ValidatedAt *time.Time `json:"validated_at,omitempty"`
}

// PromptJSON is one prompt the person shared.
type PromptJSON struct {
	ID        int64     `json:"id"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
}

// LessonJSON is one lesson the person completed.
type LessonJSON struct {
	LessonID    string    `json:"lesson_id"`
	Reflection  string    `json:"reflection"`
	CompletedAt time.Time `json:"completed_at"`
}

// ForgetResult says what Forget erased.
type ForgetResult struct {
	PersonID  int64
	Pseudonym string // the email the person's row now carries
	Impacts   int64
	Requests  int64
	Lessons   int64
	Prompts   int64 // shared prompts kept in the library, now anonymous
	Messages  int64 // queued chat messages withdrawn
	// WALCleared is false when another connection kept the write-ahead log busy, so old
	// copies of the erased text stay in it until the log is next reset.
	WALCleared bool
}

// Pseudonym is the email a forgotten person's row carries: unique, and in the .invalid
// top-level domain that can never be delivered to.
func Pseudonym(personID int64) string { return fmt.Sprintf("forgotten-%d@invalid", personID) }
