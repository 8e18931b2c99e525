package ledger

import "time"

// Outbox statuses.
const (
	OutboxPending     = "pending"
	OutboxSending     = "sending"
	OutboxSent        = "sent"
	OutboxDead        = "dead"
	OutboxUnreachable = "unreachable"
)

// OutboxMessage is a message to queue for one person.
type OutboxMessage struct {
	// Kind, PersonID and PeriodKey are the dedupe key: a message with the key of one
	// already queued is dropped.
	Kind      string
	PersonID  int64
	PeriodKey string
	Payload   []byte // the reply as JSON
	// NotBefore holds the message until then (business clock); HoldReason says why.
	NotBefore  time.Time
	HoldReason string
	// TipPromptID, when set, is a prompt the message offers: it is recorded as shown to
	// the person in the same transaction that queues the message.
	TipPromptID int64
	// Priority orders delivery, lower first (0..9; see the nudges kinds).
	Priority int
}

// OutboxRow is a queued message and its delivery state.
type OutboxRow struct {
	ID         int64
	Kind       string
	Priority   int
	PersonID   int64
	PeriodKey  string
	Payload    []byte
	Status     string
	NotBefore  time.Time // business clock
	HoldReason string
	RetryAt    time.Time // wall clock
	Attempts   int
	Owner      string
	LastError  string
	Ref        Delivered
	CreatedAt  time.Time // business clock
	SentAt     time.Time // business clock
}

// Delivered is where a platform put a message, so that it can be updated later.
type Delivered struct {
	Platform  string
	Channel   string
	MessageID string
}

// NudgeRecord notes that a person was nudged, or held out, at a nudge run.
type NudgeRecord struct {
	PersonID int64
	RunKey   string
	At       time.Time
	Segment  string
	HeldOut  bool
}

// OutboxWait summarises what is queued but cannot go yet.
type OutboxWait struct {
	Due        int       // may go now
	Held       int       // held for quiet hours (or another hold) on the business clock
	HeldUntil  time.Time // the earliest hold end
	Retrying   int       // waiting after a failure or a 429 (wall clock)
	RetryAt    time.Time // the earliest retry
	InFlight   int       // being sent by a worker now
	HoldReason string    // the reason of the earliest hold
}
