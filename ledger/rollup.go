package ledger

import "time"

// RollupInput asks the store to roll up old usage (Accounts.RollUpUsage).
//
// A usage event is one transaction (kind usage, key "usage:<event id>") and one usage_events
// row that carries its postings (person:N:spent +credits, person:N:available
// -(credits-overage), person:N:overage -overage; they are implied, never stored in
// postings). The roll-up replaces the unreversed rows of one person, model and source on one
// day of the org's calendar (Zone), all dated before Before, by one row with their sums
// (tokens, credits, overage, events) and one transaction keyed "rollup:<its id>": the
// implied postings of each account sum to the same, so every balance, every period's
// figures and `ledger verify` stay exact. The kept row is the group's first transaction;
// the others, and their transactions, are deleted; the usage_adjustments of the group
// (settlements, late charges) point at the kept row. Reversed events keep their rows (their
// reversal names them). A group never spans a recorded period boundary (period_closes), so
// a row stays in the period its events were charged to.
//
// Idempotency is kept without the deleted keys because Before is the start of a period that
// ended longer ago than the retention (policy.Policy.RollupBefore): an event dated before it
// can arrive again only as too_late (usage.late_grace is at most a week), so it is refused
// before the store looks for its key.
type RollupInput struct {
	// Before is the instant (UTC) before which usage is rolled up: a period start.
	Before time.Time
	// Zone is the org time zone whose calendar days group the rows; nil is UTC.
	Zone *time.Location
	// DryRun counts what a roll-up would do and writes nothing.
	DryRun bool
	// Actor names who ran it, for the audit log ("scheduler", an admin's email).
	Actor string
}

// RollupResult says what a roll-up did (or, for a dry run, would do).
type RollupResult struct {
	// From and Before bound the usage read: [From, Before), UTC. From is where the last
	// roll-up stopped (zero the first time); a run with Before not after From does nothing.
	From, Before time.Time
	// Rows is how many usage rows were replaced; Summaries how many rows replaced them.
	// Rows - Summaries rows and transactions are gone.
	Rows, Summaries int64
	// Events is how many usage events the replaced rows stood for.
	Events int64
	DryRun bool
}
