package ledger

import "time"

// RequestInput files an unlock request.
type RequestInput struct {
	RequesterID int64
	ApproverID  int64 // the requester's manager; 0 when only admins can decide
	Amount      int64
	UseCase     string
	NeedsAdmin  bool
	ExpiresAt   time.Time
	// MaxPending refuses the request when the requester already has this many pending
	// (0: no limit). A pending request with the same use case is refused whatever the
	// limit. Both answer *OpenRequestsError.
	MaxPending int
}

// Decision is one click on a request, already authorised by the caller.
type Decision struct {
	RequestID int64
	DeciderID int64
	Approve   bool
	// AsManager and AsAdmin say in which capacity the decider acts (both for an admin who is
	// also the manager).
	AsManager bool
	AsAdmin   bool
	Note      string
	// GrantExpiresAt is when approved credits expire (the end of the period).
	GrantExpiresAt time.Time
}
