// Package ledger is tokenpay's domain. It owns every type that services and storage
// exchange (people, grants, double-entry transactions and postings, usage, unlock requests,
// impact, prompts and lessons, outbox messages, job runs, API keys, sessions, the audit
// log), the rules (amount bounds, burn-down order, rollover and period close, the unlock
// request's state machine) as pure functions, and the ports: the interfaces of store.go
// that storage implements, composed as Store. It imports no SQL driver and no chat
// platform.
//
// The house: ledger/sqlite (the embedded default, one file) and ledger/postgres (several
// replicas on one database) implement the ports through one shared SQL implementation,
// ledger/internal/sqlstore; ledger/ledgertest holds both to the same behaviour; bot,
// nudges, prompts, ledger/usage, ledger/period and ledger/api take a Store; only
// cmd/tokenpay chooses the driver.
package ledger

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Accounts. Every posting moves integer credits between two or more of these; the postings
// of one transaction always sum to zero.
const (
	// AccountPool is where every credit is minted from; its balance is minus what is issued.
	AccountPool = "org:pool"
	// AccountExpired collects unspent credits at period end: the reclaimable pool an admin
	// may reallocate.
	AccountExpired = "expired"
)

// AvailableAccount holds a person's unspent credits (the sum of their open grants).
func AvailableAccount(personID int64) string { return fmt.Sprintf("person:%d:available", personID) }

// SpentAccount accumulates everything a person consumed.
func SpentAccount(personID int64) string { return fmt.Sprintf("person:%d:spent", personID) }

// OverageAccount goes negative by what a person consumed beyond their balance; reported,
// never lost.
func OverageAccount(personID int64) string { return fmt.Sprintf("person:%d:overage", personID) }

// IsPersonAccount reports whether an account belongs to one person.
func IsPersonAccount(name string) bool { return strings.HasPrefix(name, "person:") }

// GrantKind says why credits were granted; it also fixes the burn-down priority.
type GrantKind string

const (
	GrantBaseline   GrantKind = "baseline"
	GrantUnlock     GrantKind = "unlock"
	GrantLesson     GrantKind = "lesson"
	GrantRollover   GrantKind = "rollover"
	GrantAdjustment GrantKind = "adjustment"
)

// Priority orders burn-down: lower is spent first. Carried-over and baseline credits go
// before anything earned, so unlocks last longest.
func (k GrantKind) Priority() int {
	switch k {
	case GrantRollover, GrantBaseline:
		return 1
	case GrantAdjustment, GrantLesson:
		return 5
	case GrantUnlock:
		return 10
	}
	return 5
}

// Valid reports whether k is a known kind.
func (k GrantKind) Valid() bool {
	switch k {
	case GrantBaseline, GrantUnlock, GrantLesson, GrantRollover, GrantAdjustment:
		return true
	}
	return false
}

// Person is someone in the directory.
type Person struct {
	ID                int64
	Email             string
	Name              string
	Team              string
	Role              string
	ManagerID         int64 // 0 when none
	ManagerEmail      string
	SlackUserID       string
	TeamsUserID       string
	TimeZone          string // IANA zone; empty means the org's
	NudgesOff         bool
	DigestsOff        bool
	PreferredPlatform string // "slack", "teams" or ""
	JoinedAt          time.Time
	// Forgotten people keep their ledger amounts under a pseudonym and get nothing new.
	Forgotten bool
}

// Grant is a block of credits with a lifetime; spending burns grants down in priority order.
type Grant struct {
	ID          int64
	TxID        int64
	PersonID    int64
	Kind        GrantKind
	Amount      int64
	Remaining   int64
	Priority    int
	EffectiveAt time.Time
	ExpiresAt   time.Time
	Reason      string
	Closed      bool
}

// Posting moves Amount credits into Account (negative: out of it).
type Posting struct {
	Account string
	Amount  int64
}

// Transaction is an append-only, balanced set of postings.
type Transaction struct {
	ID         int64
	Key        string
	Kind       string
	PersonID   int64
	Reason     string
	Actor      string
	ReversesID int64
	CreatedAt  time.Time
	Postings   []Posting
}

// Transaction kinds.
const (
	TxGrant      = "grant"
	TxUsage      = "usage"
	TxReset      = "reset"
	TxReversal   = "reversal"
	TxReallocate = "reallocate"
	// TxSettle turns overage of usage booked before its period's grants existed into
	// spending of those grants, once the period reset creates them.
	TxSettle = "settle"
	// TxLateUsage charges a late event to the closed period it happened in: it takes back
	// from what that period's close expired or carried over.
	TxLateUsage = "late-usage"
)

// RolloverLimits bound what a period close carries into the next period.
type RolloverLimits struct {
	Max int64 // credits
	Min int64 // credits; at most Max
}

// Carry returns the credits carried over from unspent: min(Max, max(unspent, Min)), never
// negative.
func (r RolloverLimits) Carry(unspent int64) int64 {
	return max(0, min(r.Max, max(unspent, r.Min)))
}

// ValidatePostings checks that postings are non-empty, name an account, and sum to zero
// without overflow. The index of the first bad posting is in the error.
func ValidatePostings(ps []Posting) error {
	if len(ps) == 0 {
		return Errorf(Invalid, "a transaction needs at least one posting")
	}
	var sum int64
	for i, p := range ps {
		if strings.TrimSpace(p.Account) == "" {
			return Errorf(Invalid, "posting %d has no account", i)
		}
		next, ok := AddChecked(sum, p.Amount)
		if !ok {
			return Errorf(Invalid, "posting %d overflows the transaction total", i)
		}
		sum = next
	}
	if sum != 0 {
		return Errorf(Invalid, "postings sum to %d, not zero", sum)
	}
	return nil
}

// AddChecked adds two int64 values, reporting overflow instead of wrapping.
func AddChecked(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}

// MaxAmount caps any single grant or request: large enough for any real allowance, small
// enough that sums over millions of rows cannot overflow int64.
const MaxAmount int64 = 1_000_000_000_000

// CheckAmount rejects amounts that are zero, negative or absurdly large.
func CheckAmount(amount int64) error {
	if amount <= 0 {
		return Errorf(Invalid, "amount must be a positive whole number of credits")
	}
	if amount > MaxAmount {
		return Errorf(Invalid, "amount must be at most %s credits", FormatCredits(MaxAmount))
	}
	return nil
}

// Balance is what a person has in the current period.
type Balance struct {
	PersonID    int64
	Email       string
	Available   int64 // what is left of active grants
	Spent       int64 // consumed this period, overage included
	Overage     int64 // consumed this period beyond the balance
	PeriodStart time.Time
	PeriodEnd   time.Time
}

// UsedRatio is spent over what the person had this period, in [0, 1].
func (b Balance) UsedRatio() float64 {
	used := SatSub(b.Spent, b.Overage)
	total := SatAdd(used, b.Available)
	if total <= 0 {
		if b.Spent > 0 {
			return 1
		}
		return 0
	}
	r := float64(used) / float64(total)
	return math.Max(0, math.Min(1, r))
}

// UsageEvent is tokens one person consumed, as an AI gateway reports it.
type UsageEvent struct {
	EventID      string
	Email        string
	SlackUserID  string
	TeamsUserID  string
	Model        string
	InputTokens  int64
	OutputTokens int64
	// CachedInputTokens is the part of InputTokens read from or written to a prompt cache
	// (connectors report it); it costs the model's cached_input weight when one is set.
	CachedInputTokens int64 `json:",omitempty"`
	OccurredAt        time.Time
	Source            string
}

// Usage outcomes, per event.
const (
	UsageAccepted    = "accepted"
	UsageDuplicate   = "duplicate"
	UsageQuarantined = "quarantined"
	UsageRejected    = "rejected"
)

// Codes of rejected usage events whose time is the problem, for gateways to act on.
const (
	// UsageFuture: occurred_at is more than MaxUsageFuture ahead of the ledger's clock.
	UsageFuture = "occurred_at_in_future"
	// UsageTooLate: occurred_at is in a period that closed more than the policy's
	// usage.late_grace ago.
	UsageTooLate = "too_late"
)

// MaxUsageFuture is how far ahead of the ledger's clock an event may be dated (gateway
// clock skew); later events are rejected with UsageFuture.
const MaxUsageFuture = 5 * time.Minute

// UsageResult is the outcome of one event in a batch.
type UsageResult struct {
	EventID string `json:"id"`
	Status  string `json:"status"`
	// Code is a stable identifier of the reason, for machines (UsageFuture, UsageTooLate);
	// empty for other reasons.
	Code    string `json:"code,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Credits int64  `json:"credits,omitempty"`
	// QuarantineFull marks an event rejected because its API key has
	// MaxQuarantinePerKey events waiting already (for metrics and the log).
	QuarantineFull bool `json:"-"`
}

// RequestStatus is the state of an unlock request.
type RequestStatus string

const (
	RequestPending   RequestStatus = "pending"
	RequestApproved  RequestStatus = "approved"
	RequestDenied    RequestStatus = "denied"
	RequestExpired   RequestStatus = "expired"
	RequestCancelled RequestStatus = "cancelled"
)

// Request asks for more credits for a stated use case.
type Request struct {
	ID              int64
	RequesterID     int64
	ApproverID      int64 // the manager at filing time; 0 means admins decide
	Amount          int64
	UseCase         string
	Status          RequestStatus
	NeedsAdmin      bool  // above the manager limit: an admin must also approve
	ManagerApproval int64 // manager or delegate who approved (two-step requests)
	AdminApproval   int64 // admin who approved (two-step requests)
	DecidedBy       int64
	DecidedAt       time.Time
	Note            string // deny reason or question
	CreatedAt       time.Time
	ExpiresAt       time.Time
	GrantID         int64
}

// OpenRequestsError says why a request was not filed: the same use case is already waiting
// for a decision (Duplicate), or the person already has Max requests waiting (Open, oldest
// first). Its code is Conflict; the chat core turns it into a sentence that points to the
// open request.
type OpenRequestsError struct {
	Duplicate *Request
	Open      []Request
	Max       int
}

func (e *OpenRequestsError) Error() string {
	if e.Duplicate != nil {
		return fmt.Sprintf("request #%d for the same use case is still waiting for a decision", e.Duplicate.ID)
	}
	return fmt.Sprintf("%d requests are already waiting for a decision (at most %d at once)", len(e.Open), e.Max)
}

// Unwrap gives the error its Conflict code and its message for people.
func (e *OpenRequestsError) Unwrap() error { return &Error{Code: Conflict, Message: e.Error()} }

// SameUseCase compares use cases as a person would: ignoring case, spacing and a final full stop.
func SameUseCase(a, b string) bool {
	norm := func(s string) string {
		return strings.TrimRight(strings.ToLower(strings.Join(strings.Fields(s), " ")), ".!")
	}
	return norm(a) == norm(b)
}

// Impact is an outcome a person logged.
type Impact struct {
	ID          int64
	PersonID    int64
	Text        string
	Minutes     int64 // time saved
	Link        string
	CreatedAt   time.Time
	ValidatedBy int64
	ValidatedAt time.Time
}

// AuditEntry records an administrative action.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string
	Action  string
	Subject string
	Detail  string
}

// APIKey is a named machine credential; only its hash is stored.
type APIKey struct {
	ID        int64
	Name      string
	CreatedAt time.Time
	LastUsed  time.Time
	Revoked   bool
}

// PersonRecord is one row of a directory import.
type PersonRecord struct {
	Line         int
	Email        string
	Name         string
	Team         string
	Role         string
	ManagerEmail string
	SlackUserID  string
	TeamsUserID  string
}

// ImportResult counts what a directory import changed.
type ImportResult struct {
	Created int
	Updated int
}
