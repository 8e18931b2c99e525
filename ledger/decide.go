package ledger

import (
	"fmt"
	"strings"
	"time"
)

// The unlock request's state machine: who may decide, when an admin is also needed,
// expiry, and the grant on completion. Pure rules, once; a store reads the request inside
// its write transaction (so concurrent clicks are serialized), calls them, and writes
// what they return. Only the requester's manager (or a delegate or an admin, as the caller
// authorised) decides; the requester never; a second click changes nothing.

// RequestOutcome is what one click or cancellation does to a request.
type RequestOutcome struct {
	// Request is the request after it (as it was when Changed is false).
	Request Request
	// Changed is whether anything is to be stored.
	Changed bool
	// Grant, when not nil, is the unlock the approval completes: the store makes it in
	// the same transaction and sets Request.GrantID to it. At most one per request: its
	// key is the request's, and only a pending request is approved.
	Grant *GrantInput
}

// CheckRequest checks a request to file as given: a positive amount up to MaxAmount and
// a use case (Invalid).
func CheckRequest(in RequestInput) error {
	if err := CheckAmount(in.Amount); err != nil {
		return err
	}
	if strings.TrimSpace(in.UseCase) == "" {
		return Errorf(Invalid, "describe the use case")
	}
	return nil
}

// CheckOpenRequests decides whether in may be filed while open, the requester's pending
// requests that have not expired (oldest first), wait: not when one of them has the same
// use case (SameUseCase), whatever the limit, nor when in.MaxPending (> 0) of them wait
// already. Both refusals are *OpenRequestsError (Conflict).
func CheckOpenRequests(in RequestInput, open []Request) error {
	for i := range open {
		if SameUseCase(open[i].UseCase, in.UseCase) {
			return &OpenRequestsError{Duplicate: &open[i], Open: open, Max: in.MaxPending}
		}
	}
	if in.MaxPending > 0 && len(open) >= in.MaxPending {
		return &OpenRequestsError{Open: open, Max: in.MaxPending}
	}
	return nil
}

// Expired reports whether a pending request can no longer be decided at now: its expiry
// instant has come.
func Expired(r Request, now time.Time) bool {
	return r.Status == RequestPending && !now.Before(r.ExpiresAt)
}

// ExpireRequest marks a pending request past its expiry as expired, decided at its expiry
// instant (by nobody); anything else is unchanged.
func ExpireRequest(r Request, now time.Time) RequestOutcome {
	if !Expired(r, now) {
		return RequestOutcome{Request: r}
	}
	r.Status, r.DecidedAt = RequestExpired, r.ExpiresAt
	return RequestOutcome{Request: r, Changed: true}
}

// DecideRequest applies d, one click taken at now by someone the caller authorised in the
// capacities d says (AsManager, AsAdmin), to r as stored:
//
//   - a request no longer pending changes nothing (a repeated click; the caller says who
//     decided and when);
//   - its requester may not decide it: Forbidden;
//   - past its expiry it becomes expired, whatever the click;
//   - a deny decides it at once;
//   - an approval fills the manager's or the admin's side. A request that NeedsAdmin
//     needs both, by two different people (separation of duties, even when one person is
//     both manager and admin); with no manager on file (ApproverID 0), a first admin takes
//     the manager's side and a second admin the admin's. Any other request needs one. A
//     click that fills no side changes nothing. The approval that completes the request
//     approves it and asks for the unlock grant, until d.GrantExpiresAt.
func DecideRequest(r Request, d Decision, now time.Time) (RequestOutcome, error) {
	if r.Status != RequestPending {
		return RequestOutcome{Request: r}, nil
	}
	if d.DeciderID == r.RequesterID {
		return RequestOutcome{Request: r}, Errorf(Forbidden, "nobody may decide their own request")
	}
	if Expired(r, now) {
		return ExpireRequest(r, now), nil
	}
	if !d.Approve {
		r.Status, r.DecidedBy, r.DecidedAt, r.Note = RequestDenied, d.DeciderID, now, d.Note
		return RequestOutcome{Request: r, Changed: true}, nil
	}
	mgr, adm := r.ManagerApproval, r.AdminApproval
	var done bool
	if r.NeedsAdmin {
		firstSide := d.AsManager || (r.ApproverID == 0 && d.AsAdmin)
		switch {
		case mgr == 0 && firstSide && adm != d.DeciderID:
			mgr = d.DeciderID
		case adm == 0 && d.AsAdmin && mgr != d.DeciderID:
			adm = d.DeciderID
		}
		done = mgr != 0 && adm != 0
	} else {
		switch {
		case d.AsManager && mgr == 0:
			mgr = d.DeciderID
		case d.AsAdmin && adm == 0:
			adm = d.DeciderID
		}
		done = mgr != 0 || adm != 0
	}
	if mgr == r.ManagerApproval && adm == r.AdminApproval && !done {
		return RequestOutcome{Request: r}, nil
	}
	r.ManagerApproval, r.AdminApproval = mgr, adm
	if !done {
		return RequestOutcome{Request: r, Changed: true}, nil
	}
	r.Status, r.DecidedBy, r.DecidedAt, r.Note = RequestApproved, d.DeciderID, now, d.Note
	g := &GrantInput{Key: fmt.Sprintf("request:%d", r.ID), PersonID: r.RequesterID, Kind: GrantUnlock,
		Amount: r.Amount, EffectiveAt: now, ExpiresAt: d.GrantExpiresAt, Reason: "unlock: " + truncateRunes(r.UseCase, 200),
		Actor: fmt.Sprintf("person:%d", d.DeciderID)}
	return RequestOutcome{Request: r, Changed: true, Grant: g}, nil
}

// CancelRequest withdraws a pending request at now; only its requester (by) may, and
// anything else changes nothing.
func CancelRequest(r Request, by int64, now time.Time) RequestOutcome {
	if r.Status != RequestPending || by != r.RequesterID {
		return RequestOutcome{Request: r}
	}
	r.Status, r.DecidedBy, r.DecidedAt = RequestCancelled, by, now
	return RequestOutcome{Request: r, Changed: true}
}

// truncateRunes cuts s to n runes, marking the cut with an ellipsis.
func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
