package ledger

import "time"

// Job run statuses.
const (
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
	// JobSkipped marks the slot before a job's first scheduled start: a fresh install
	// does not send last week's digest the moment it starts.
	JobSkipped = "skipped"
)

// JobRun is one run of a scheduled job for one period (its schedule slot).
type JobRun struct {
	Job  string
	Key  string    // the period key, e.g. "2026-11-23T09:00Z"
	Slot time.Time // business clock
	At   time.Time // business clock: the time the run computed as
	// Owner is the worker that claimed the run last (see Heartbeat).
	Owner      string
	Status     string
	Attempts   int
	StartedAt  time.Time // wall clock
	FinishedAt time.Time // wall clock; zero unless done
	Result     string
	Error      string
}

// Claim says what ClaimJobRun found.
type Claim int

const (
	// ClaimNew: nobody ran this period yet; the caller now owns the run.
	ClaimNew Claim = iota
	// ClaimResumed: an earlier attempt failed or its owner is gone; the caller owns the
	// run again and repeats it (job effects are idempotent).
	ClaimResumed
	// ClaimDone: the period already ran (or was skipped); do nothing.
	ClaimDone
	// ClaimBusy: a live worker is running it now.
	ClaimBusy
)

// OwnerGone decides whether the worker that holds a claim is gone, from its name and its
// last heartbeat (zero when it never beat).
type OwnerGone func(owner string, heartbeat time.Time) bool
