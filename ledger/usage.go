package ledger

import "time"

// UsagePosting is a validated usage event with its weighted credit cost.
type UsagePosting struct {
	Event   UsageEvent
	Credits int64
	// PeriodStart and PeriodEnd are the allowance period holding the event; when set, the
	// event is rejected if it would take its person's usage in that period past
	// MaxPeriodCredits.
	PeriodStart, PeriodEnd time.Time
	// KeyID is the API key that sent the event (0: a file import or a connector); its
	// waiting quarantine is bounded by MaxQuarantinePerKey.
	KeyID int64
}

// QuarantinedEvent is a usage event waiting for its person to appear in the directory.
type QuarantinedEvent struct {
	ID        int64
	Event     UsageEvent
	Reason    string
	CreatedAt time.Time
	KeyID     int64 // the API key that sent it; 0 for imports and connectors
}
