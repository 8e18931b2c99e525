package ledger

import "time"

// Usage connectors: where usage comes from besides tokenpay's own API. The name is also the
// Source of every usage event a connector books.
const (
	ConnectorLiteLLM   = "litellm"   // LiteLLM proxy, generic_api callback (push)
	ConnectorOTLP      = "otlp"      // OpenTelemetry GenAI spans over OTLP/HTTP (push)
	ConnectorOpenAI    = "openai"    // OpenAI organization usage report (pull)
	ConnectorAnthropic = "anthropic" // Anthropic organization usage report (pull)
)

// Connectors lists every connector, push first.
func Connectors() []string {
	return []string{ConnectorLiteLLM, ConnectorOTLP, ConnectorOpenAI, ConnectorAnthropic}
}

// UsageBucket is one aggregate a vendor reports: the tokens of one identity and model in
// one time bucket (an hour). Vendors keep adding to a recent bucket, so it is read again
// and only what it grew by is booked.
type UsageBucket struct {
	// Key names the bucket across reads (start, identity, model); stable and unique per
	// connector.
	Key string
	// Event carries the bucket's totals so far (InputTokens includes CachedInputTokens),
	// its model, its start as OccurredAt, and its person when known (Email).
	Event UsageEvent
	// Identity is the vendor id waiting for a mapping when Event names no person, such as
	// "api_key:key_abc"; empty otherwise.
	Identity string
}

// PendingUsage is an event a connector has decided to book that ingestion has not taken
// yet: waiting to be posted, or for its vendor identity to be mapped to a person.
type PendingUsage struct {
	Connector string
	Event     UsageEvent
	Identity  string // "" when the event names its person
	CreatedAt time.Time
}

// ConnectorState is what a connector remembers between runs. Times are UTC; zero means
// never.
type ConnectorState struct {
	Connector string
	// Cursor is the end of what the pull job has read: the next run reads from it, less
	// the reread window. Zero before the first run (which backfills).
	Cursor      time.Time
	LastRunAt   time.Time
	LastOKAt    time.Time
	LastError   string // what went wrong in the last failed run, for operators
	LastErrorAt time.Time
}

// ConnectorStats is what a connector has booked, from the ledger itself.
type ConnectorStats struct {
	Events      int64     // usage events in the ledger with this connector as source
	Credits     int64     // their credits
	LastEventAt time.Time // when the newest of them was received
	Quarantined int64     // events waiting for their person in the directory
	// Unmapped counts pending events by the vendor identity no mapping names yet.
	Unmapped map[string]int64
}
