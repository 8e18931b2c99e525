package ledger

import (
	"context"
	"io"
	"time"
)

// The ports: what the domain needs from storage, grouped by concern. ledger/sqlite (the
// embedded default) and ledger/postgres (several replicas on one database) implement all of
// them through one shared SQL implementation; the conformance suite in ledger/ledgertest
// holds both to the same behaviour. Errors a person can act on are *Error values with an
// ErrorCode (NotFound, Invalid, Conflict, Forbidden, ...); others are wrapped driver errors.
// Implementations are safe for concurrent use, also from several processes on one
// PostgreSQL database: each write is one transaction, and writes are serialized.

// Directory is the people of the organisation and their chat identities. A person is found by id, email (its key: ledger.NormalizeEmail), Slack or Teams user id; a missing one is a NotFound error.
type Directory interface {
	ImportPeople(ctx context.Context, recs []PersonRecord) (ImportResult, error)
	BeginPeopleImport(ctx context.Context) (PeopleImport, error)
	PersonByID(ctx context.Context, id int64) (Person, error)
	PersonByEmail(ctx context.Context, email string) (Person, error)
	PersonBySlackID(ctx context.Context, id string) (Person, error)
	PersonByTeamsID(ctx context.Context, id string) (Person, error)
	People(ctx context.Context) ([]Person, error)
	PeopleAfter(ctx context.Context, afterID int64, limit int) ([]Person, error)
	Reports(ctx context.Context, managerID int64) ([]Person, error)
	LinkChat(ctx context.Context, personID int64, platform, userID, timeZone string) error
	SetPreferredPlatform(ctx context.Context, personID int64, platform string) error
	SetNudges(ctx context.Context, personID int64, nudgesOff, digestsOff bool) error
	ExportPerson(ctx context.Context, email, actor string) (PersonData, error)
	Forget(ctx context.Context, email, actor string) (ForgetResult, error)
}

// Accounts is the double-entry ledger: grants, usage, reversals and what they leave per person and period. Amounts are credits; times are UTC. Every write is one balanced transaction, idempotent by its key.
type Accounts interface {
	Balance(ctx context.Context, personID int64, start, end time.Time) (Balance, error)
	History(ctx context.Context, personID int64, limit int) ([]Activity, error)
	Grant(ctx context.Context, in GrantInput) (Grant, error)
	Grants(ctx context.Context, personID int64, limit int) ([]Grant, error)
	Reverse(ctx context.Context, in ReverseInput) (Transaction, error)
	Transaction(ctx context.Context, id int64) (Transaction, error)
	AccountBalance(ctx context.Context, account string) (int64, error)
	PostUsage(ctx context.Context, batch []UsagePosting) ([]UsageResult, error)
	UsageTxID(ctx context.Context, eventID string) (int64, error)
	BaselineBefore(ctx context.Context, t time.Time) (bool, error)
	ResetPeriod(ctx context.Context, in ResetInput) (ResetResult, error)
	ResetPeriods(ctx context.Context, ins []ResetInput) ([]ResetResult, error)
	Verify(ctx context.Context) ([]string, error)
	ExportPostings(ctx context.Context, w io.Writer) error
	// RollUpUsage replaces old usage rows by per-person, per-model, per-day sums with the
	// same postings (see RollupInput); a second run over the same range changes nothing.
	RollUpUsage(ctx context.Context, in RollupInput) (RollupResult, error)
}

// Quarantine is usage events that named nobody in the directory, kept (bounded per API key) until the directory can place them.
type Quarantine interface {
	QuarantineWaiting(ctx context.Context) (int, error)
	ExpireQuarantine(ctx context.Context, cutoff time.Time) (map[int64]int, error)
	ReplayNeeded(ctx context.Context) (string, bool, error)
	MarkReplayed(ctx context.Context, directory string) error
	Replayable(ctx context.Context, after int64, limit int) ([]QuarantinedEvent, error)
	Quarantined(ctx context.Context, limit int) ([]QuarantinedEvent, error)
	ResolveQuarantine(ctx context.Context, eventIDs []string) error
}

// PullState is what pull connectors (gateways and vendor usage APIs) have booked and where they stopped.
type PullState interface {
	BookBuckets(ctx context.Context, connector string, buckets []UsageBucket) (int, error)
	AddPending(ctx context.Context, events []PendingUsage) error
	PendingUsage(ctx context.Context, connector string) ([]PendingUsage, error)
	SettlePending(ctx context.Context, eventIDs []string) error
	ConnectorState(ctx context.Context, connector string) (ConnectorState, error)
	SaveConnectorState(ctx context.Context, st ConnectorState) error
	ConnectorStats(ctx context.Context, connector string) (ConnectorStats, error)
}

// Requests is unlock requests and the impacts that back them. Decide takes a click that the caller has authorised and applies the request rules (ledger.DecideRequest) once: a repeated click changes nothing.
type Requests interface {
	CreateRequest(ctx context.Context, in RequestInput) (Request, error)
	Request(ctx context.Context, id int64) (Request, error)
	PendingRequests(ctx context.Context, approverIDs ...int64) ([]Request, error)
	RequestsBy(ctx context.Context, requesterID int64, limit int) ([]Request, error)
	Decide(ctx context.Context, d Decision) (Request, bool, error)
	CancelRequest(ctx context.Context, requestID, requesterID int64) (Request, bool, error)
	ExpireRequests(ctx context.Context) ([]Request, error)
	RequestsFiled(ctx context.Context, start, end time.Time) ([]Request, error)
	LogImpact(ctx context.Context, personID int64, text string, minutes int64, link string) (Impact, error)
	Impact(ctx context.Context, id int64) (Impact, error)
	Impacts(ctx context.Context, personID int64, since time.Time, limit int) ([]Impact, error)
	ValidateImpact(ctx context.Context, impactID, validatorID int64) (Impact, bool, error)
	ImpactsToValidate(ctx context.Context, personIDs []int64, limit int) ([]Impact, error)
}

// Library is the shared prompt library and its lessons.
type Library interface {
	Prompt(ctx context.Context, id int64) (Prompt, error)
	PromptsBy(ctx context.Context, personID int64, limit int) ([]Prompt, error)
	SeedPrompts(ctx context.Context, in []PromptInput) (added, updated int, err error)
	AddPrompt(ctx context.Context, in PromptInput) (Prompt, error)
	VotePrompt(ctx context.Context, promptID, personID int64) (p Prompt, changed bool, err error)
	UsePrompt(ctx context.Context, promptID, personID int64) (Prompt, error)
	MarkPromptShown(ctx context.Context, personID, promptID int64) error
	TipCandidates(ctx context.Context, personID int64) ([]Prompt, error)
	HidePrompt(ctx context.Context, id int64, hidden bool, actor string) (Prompt, bool, error)
	FeaturePrompt(ctx context.Context, id int64, featured bool, actor string) (Prompt, bool, error)
	CompleteLesson(ctx context.Context, in LessonCompletion) (LessonResult, error)
	LessonProgress(ctx context.Context, personID int64) (map[string]time.Time, error)
	SearchPrompts(ctx context.Context, query string, offset, limit int) (PromptPage, error)
}

// Insights is read models for digests, nudges and reports over a period.
type Insights interface {
	Activity(ctx context.Context, w ActivityWindow) ([]PersonActivity, error)
	TipExclusions(ctx context.Context, afterID, throughID int64) (map[int64][]int64, error)
	NudgeLift(ctx context.Context, start, end, until time.Time, within time.Duration, segments ...string) (LiftCounts, error)
	PeriodClosing(ctx context.Context, key string, start, end time.Time, hoardRatio float64) (Closing, error)
	PeriodStats(ctx context.Context, key string, start, end time.Time, personIDs ...int64) ([]PersonPeriod, error)
	TeamStats(ctx context.Context, start, end time.Time) ([]TeamStat, error)
}

// Outbox is messages waiting to be delivered. A row is claimed by one worker at a time (ClaimDueOutbox takes the next due rows, disjoint between workers on any replica; ClaimOutbox one row); a claim whose owner is gone goes back to pending (RecoverOutbox).
type Outbox interface {
	Enqueue(ctx context.Context, msgs []OutboxMessage) (int, error)
	EnqueueNudges(ctx context.Context, msgs []OutboxMessage, log []NudgeRecord) (int, error)
	DueOutbox(ctx context.Context, now, wall time.Time, limit int) ([]OutboxRow, error)
	OutboxMessages(ctx context.Context, kind, periodKey string) ([]OutboxRow, error)
	ClaimDueOutbox(ctx context.Context, now, wall time.Time, owner string, limit int) ([]OutboxRow, error)
	ClaimOutbox(ctx context.Context, id int64, owner string) (bool, error)
	OutboxSentTo(ctx context.Context, id int64, ref Delivered, at time.Time) error
	OutboxRetry(ctx context.Context, id int64, retryAt time.Time, failed bool, errText string, maxAttempts int) (dead bool, err error)
	OutboxUnreachable(ctx context.Context, id int64, reason string) error
	OutboxRelease(ctx context.Context, id int64) error
	OutboxDeadLetter(ctx context.Context, id int64, reason string) error
	RecoverOutbox(ctx context.Context, gone OwnerGone) (int, error)
	OutboxWaiting(ctx context.Context, now, wall time.Time) (OutboxWait, error)
	OutboxCounts(ctx context.Context, since, until time.Time) (map[string]int, error)
	PruneOutbox(ctx context.Context, before time.Time) (int, error)
}

// Jobs is scheduled job runs, one per job and period across every replica, and the workers' heartbeats.
type Jobs interface {
	ClaimJobRun(ctx context.Context, run JobRun, gone OwnerGone) (Claim, JobRun, error)
	FinishJobRun(ctx context.Context, job, key, result string, finished time.Time) error
	FailJobRun(ctx context.Context, job, key, errText string) error
	SkipFirstJobRun(ctx context.Context, run JobRun, result string) (bool, error)
	JobRunFor(ctx context.Context, job, key string) (JobRun, bool, error)
	LatestJobRuns(ctx context.Context) (map[string]JobRun, error)
	Heartbeat(ctx context.Context, owner string, wall time.Time) error
	RemoveWorker(ctx context.Context, owner string, silentSince time.Time) error
	ActiveWorkers(ctx context.Context, since time.Time) ([]string, error)
}

// Conversations is what the chat platforms need remembered: message references to update, delivered event ids, Slack uninstalls, Teams conversation references.
type Conversations interface {
	SaveMessageRef(ctx context.Context, platform, subject string, ref MessageRef) error
	MessageRefFor(ctx context.Context, platform, subject string) (MessageRef, bool, error)
	FirstDelivery(ctx context.Context, platform, id string) (bool, error)
	ForgetDeliveriesBefore(ctx context.Context, t time.Time) error
	MessageRefsWithPrefix(ctx context.Context, platform, prefix string) (map[string]MessageRef, error)
	StopSlack(ctx context.Context, tokenHash string, s SlackStop) error
	SlackStopped(ctx context.Context, tokenHash string) (SlackStop, bool, error)
	SaveTeamsConversation(ctx context.Context, c TeamsConversation) error
	TeamsConversationFor(ctx context.Context, aadObjectID string) (TeamsConversation, bool, error)
	DeleteTeamsConversation(ctx context.Context, conversationID string) (removed bool, err error)
}

// Access is API keys (stored hashed), the audit log of admin actions, dashboard sign-in links and sessions (stored hashed).
type Access interface {
	CreateAPIKey(ctx context.Context, name, actor string) (string, APIKey, error)
	CheckAPIKey(ctx context.Context, key string) (APIKey, error)
	APIKeys(ctx context.Context) ([]APIKey, error)
	RevokeAPIKey(ctx context.Context, name, actor string) (int64, error)
	Audit(ctx context.Context, actor, action, subject, detail string) error
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)
	CreateLoginLink(ctx context.Context, email, actor string) (string, time.Time, error)
	LoginLinkPerson(ctx context.Context, token string) (Person, error)
	UseLoginLink(ctx context.Context, token string) (Person, error)
	CreateSession(ctx context.Context, personID int64, via string, ttl time.Duration) (string, Session, error)
	SessionFor(ctx context.Context, token string) (Session, error)
	DeleteSession(ctx context.Context, token string) error
}

// ImportIdleLimit is how long a directory import may go without staging a chunk (wall
// clock) before the next import to begin takes it for dead (a killed process), drops what
// it staged and takes its place; the import taken over gets a Conflict error saying to
// run it again if it comes back. A live import stages a chunk every few milliseconds.
const ImportIdleLimit = 2 * time.Minute

// PeopleImport is a directory import in progress: Stage rows in chunks (bounded memory),
// then Apply checks and applies them all in one transaction, or Discard drops them. One
// import at a time per database, across processes: BeginPeopleImport waits (until its
// context ends) while another import is in progress, or idle for less than
// ImportIdleLimit.
type PeopleImport interface {
	Stage(ctx context.Context, recs []PersonRecord) error
	Apply(ctx context.Context) (ImportResult, error)
	Discard(ctx context.Context) error
}

// Store is every port: what tokenpay's services are given.
type Store interface {
	Directory
	Accounts
	Quarantine
	PullState
	Requests
	Library
	Insights
	Outbox
	Jobs
	Conversations
	Access
	// Ready reports whether the database answers and its schema is current.
	Ready(ctx context.Context) error
	Close() error
}
