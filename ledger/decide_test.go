package ledger

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	decideNow = time.Date(2026, 11, 10, 12, 0, 0, 0, time.UTC)
	periodEnd = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

// People of the decision tests: 1 asks, 2 is their manager, 3 and 4 are admins, 5 is
// someone else.
func pendingRequest(needsAdmin bool, approver int64) Request {
	return Request{ID: 9, RequesterID: 1, ApproverID: approver, Amount: 5000, UseCase: "summarise tickets",
		Status: RequestPending, NeedsAdmin: needsAdmin, CreatedAt: decideNow.Add(-time.Hour), ExpiresAt: decideNow.Add(48 * time.Hour)}
}

func TestDecideRequest(t *testing.T) {
	mgr := func(id int64) Decision {
		return Decision{RequestID: 9, DeciderID: id, Approve: true, AsManager: true, GrantExpiresAt: periodEnd}
	}
	adm := func(id int64) Decision {
		return Decision{RequestID: 9, DeciderID: id, Approve: true, AsAdmin: true, GrantExpiresAt: periodEnd}
	}
	both := func(id int64) Decision { d := mgr(id); d.AsAdmin = true; return d }
	deny := Decision{RequestID: 9, DeciderID: 2, AsManager: true, Note: "not this quarter"}
	withApprovals := func(r Request, m, a int64) Request { r.ManagerApproval, r.AdminApproval = m, a; return r }
	decided := func(s RequestStatus) Request { r := pendingRequest(false, 2); r.Status = s; return r }
	expired := pendingRequest(false, 2)
	expired.ExpiresAt = decideNow

	tests := []struct {
		name     string
		r        Request
		d        Decision
		code     string // error code, "" for none
		changed  bool
		status   RequestStatus
		mgr, adm int64
		grant    bool
	}{
		{"manager approves", pendingRequest(false, 2), mgr(2), "", true, RequestApproved, 2, 0, true},
		{"admin approves alone", pendingRequest(false, 2), adm(3), "", true, RequestApproved, 0, 3, true},
		{"requester may not approve", pendingRequest(false, 2), mgr(1), Forbidden, false, RequestPending, 0, 0, false},
		{"requester may not deny", pendingRequest(false, 2), Decision{DeciderID: 1, AsAdmin: true}, Forbidden, false, RequestPending, 0, 0, false},
		{"deny decides at once", pendingRequest(true, 2), deny, "", true, RequestDenied, 0, 0, false},
		{"expired at its instant, whatever the click", expired, mgr(2), "", true, RequestExpired, 0, 0, false},
		{"second click on approved", decided(RequestApproved), mgr(2), "", false, RequestApproved, 0, 0, false},
		{"click on denied", decided(RequestDenied), adm(3), "", false, RequestDenied, 0, 0, false},
		{"click on cancelled, even by the requester", decided(RequestCancelled), mgr(1), "", false, RequestCancelled, 0, 0, false},
		{"needs admin: manager first", pendingRequest(true, 2), mgr(2), "", true, RequestPending, 2, 0, false},
		{"needs admin: admin completes", withApprovals(pendingRequest(true, 2), 2, 0), adm(3), "", true, RequestApproved, 2, 3, true},
		{"needs admin: admin first", pendingRequest(true, 2), adm(3), "", true, RequestPending, 0, 3, false},
		{"needs admin: manager completes", withApprovals(pendingRequest(true, 2), 0, 3), mgr(2), "", true, RequestApproved, 2, 3, true},
		{"needs admin: manager clicks again", withApprovals(pendingRequest(true, 2), 2, 0), mgr(2), "", false, RequestPending, 2, 0, false},
		{"needs admin: manager who is admin takes one side", pendingRequest(true, 2), both(2), "", true, RequestPending, 2, 0, false},
		{"needs admin: ... and not the other", withApprovals(pendingRequest(true, 2), 2, 0), both(2), "", false, RequestPending, 2, 0, false},
		{"needs admin: an admin who approved may not take the manager's side", withApprovals(pendingRequest(true, 2), 0, 2), both(2), "", false, RequestPending, 0, 2, false},
		{"needs admin: same admin twice", withApprovals(pendingRequest(true, 2), 0, 3), adm(3), "", false, RequestPending, 0, 3, false},
		{"needs admin, no manager: first admin takes the manager's side", pendingRequest(true, 0), adm(3), "", true, RequestPending, 3, 0, false},
		{"needs admin, no manager: the same admin again", withApprovals(pendingRequest(true, 0), 3, 0), adm(3), "", false, RequestPending, 3, 0, false},
		{"needs admin, no manager: a second admin completes", withApprovals(pendingRequest(true, 0), 3, 0), adm(4), "", true, RequestApproved, 3, 4, true},
		{"someone in no capacity changes nothing", pendingRequest(false, 2), Decision{DeciderID: 5, Approve: true}, "", false, RequestPending, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := DecideRequest(tc.r, tc.d, decideNow)
			if ErrorCode(err) != tc.code && !(err == nil && tc.code == "") {
				t.Fatalf("error %v (code %q), want code %q", err, ErrorCode(err), tc.code)
			}
			r := out.Request
			if out.Changed != tc.changed || r.Status != tc.status || r.ManagerApproval != tc.mgr || r.AdminApproval != tc.adm || (out.Grant != nil) != tc.grant {
				t.Fatalf("changed=%v status=%s approvals %d/%d grant=%v; want changed=%v %s %d/%d grant=%v",
					out.Changed, r.Status, r.ManagerApproval, r.AdminApproval, out.Grant != nil, tc.changed, tc.status, tc.mgr, tc.adm, tc.grant)
			}
			if !out.Changed && r != tc.r {
				t.Fatalf("nothing changed, but the request went from %+v to %+v", tc.r, r)
			}
			switch r.Status {
			case RequestApproved, RequestDenied:
				if out.Changed && (r.DecidedBy != tc.d.DeciderID || !r.DecidedAt.Equal(decideNow) || r.Note != tc.d.Note) {
					t.Fatalf("decided by %d at %v with note %q", r.DecidedBy, r.DecidedAt, r.Note)
				}
			case RequestExpired:
				if r.DecidedBy != 0 || !r.DecidedAt.Equal(tc.r.ExpiresAt) {
					t.Fatalf("expired: decided by %d at %v, want nobody at its expiry %v", r.DecidedBy, r.DecidedAt, tc.r.ExpiresAt)
				}
			}
			if g := out.Grant; g != nil {
				want := GrantInput{Key: "request:9", PersonID: 1, Kind: GrantUnlock, Amount: 5000, EffectiveAt: decideNow, ExpiresAt: periodEnd,
					Reason: "unlock: summarise tickets", Actor: "person:" + strconv.FormatInt(tc.d.DeciderID, 10)}
				if *g != want {
					t.Fatalf("grant %+v, want %+v", *g, want)
				}
			}
		})
	}
}

func TestDecideRequestGrantReasonIsBounded(t *testing.T) {
	r := pendingRequest(false, 2)
	r.UseCase = strings.Repeat("é", 300)
	out, err := DecideRequest(r, Decision{DeciderID: 2, Approve: true, AsManager: true, GrantExpiresAt: periodEnd}, decideNow)
	if err != nil || out.Grant == nil {
		t.Fatalf("approve: %v %+v", err, out)
	}
	if want := "unlock: " + strings.Repeat("é", 200) + "…"; out.Grant.Reason != want {
		t.Fatalf("reason of %d runes, want 200 runes and an ellipsis", len([]rune(out.Grant.Reason)))
	}
}

func TestCancelAndExpire(t *testing.T) {
	r := pendingRequest(false, 2)
	if out := CancelRequest(r, 2, decideNow); out.Changed || out.Request != r {
		t.Fatalf("the manager cancelled someone's request: %+v", out)
	}
	out := CancelRequest(r, 1, decideNow)
	if !out.Changed || out.Request.Status != RequestCancelled || out.Request.DecidedBy != 1 || !out.Request.DecidedAt.Equal(decideNow) {
		t.Fatalf("the requester's cancel: %+v", out)
	}
	if again := CancelRequest(out.Request, 1, decideNow); again.Changed {
		t.Fatalf("a cancelled request was cancelled again")
	}
	if out := ExpireRequest(r, r.ExpiresAt.Add(-time.Millisecond)); out.Changed {
		t.Fatalf("expired a millisecond early")
	}
	out = ExpireRequest(r, r.ExpiresAt)
	if !out.Changed || out.Request.Status != RequestExpired || !out.Request.DecidedAt.Equal(r.ExpiresAt) {
		t.Fatalf("expire at its instant: %+v", out)
	}
	if again := ExpireRequest(out.Request, r.ExpiresAt.Add(time.Hour)); again.Changed {
		t.Fatalf("an expired request expired again")
	}
}

// TestDecideRequestProperties: over random requests and random sequences of clicks by
// random people in random capacities (the requester among them, some after expiry), a
// request is granted at most once, never by or through its requester's click, only while
// pending and unexpired, and a two-step request only by two different people, one who
// clicked for the manager's side and one as an admin. Once decided, nothing changes it.
func TestDecideRequestProperties(t *testing.T) {
	var approvals, twoStep int
	for seed := range uint64(5000) {
		rng := rand.New(rand.NewPCG(seed, 53))
		var approver int64
		if rng.IntN(4) != 0 {
			approver = 2
		}
		r := pendingRequest(rng.IntN(2) == 0, approver)
		grants := 0
		clickedAs := map[int64][2]bool{} // who clicked approve as manager, as admin
		for range 1 + rng.IntN(8) {
			d := Decision{RequestID: r.ID, DeciderID: 1 + rng.Int64N(5), Approve: rng.IntN(5) != 0,
				AsManager: rng.IntN(2) == 0, AsAdmin: rng.IntN(2) == 0, GrantExpiresAt: periodEnd}
			at := decideNow.Add(time.Duration(rng.Int64N(int64(60 * time.Hour))))
			before := r
			out, err := DecideRequest(r, d, at)
			if err != nil {
				if d.DeciderID != r.RequesterID || ErrorCode(err) != Forbidden || out.Changed {
					t.Fatalf("seed %d: click %+v: %v (changed=%v)", seed, d, err, out.Changed)
				}
				continue
			}
			if !out.Changed && out.Request != before {
				t.Fatalf("seed %d: unchanged outcome with a different request", seed)
			}
			if before.Status != RequestPending && out.Changed {
				t.Fatalf("seed %d: a %s request changed", seed, before.Status)
			}
			if out.Changed && d.DeciderID == r.RequesterID && out.Request.Status != RequestExpired {
				t.Fatalf("seed %d: the requester's click changed their request", seed)
			}
			if d.Approve {
				c := clickedAs[d.DeciderID]
				clickedAs[d.DeciderID] = [2]bool{c[0] || d.AsManager || d.AsAdmin && approver == 0, c[1] || d.AsAdmin}
			}
			r = out.Request
			if out.Grant != nil {
				grants++
				r.GrantID = 100
				approvals++
				if r.Status != RequestApproved || !at.Before(before.ExpiresAt) || out.Grant.PersonID != r.RequesterID {
					t.Fatalf("seed %d: grant with status %s at %v (expires %v)", seed, r.Status, at, before.ExpiresAt)
				}
				m, a := r.ManagerApproval, r.AdminApproval
				if m == r.RequesterID || a == r.RequesterID {
					t.Fatalf("seed %d: the requester approved their own request", seed)
				}
				if r.NeedsAdmin {
					twoStep++
					if m == 0 || a == 0 || m == a {
						t.Fatalf("seed %d: two-step request granted with approvals %d and %d", seed, m, a)
					}
					if !clickedAs[m][0] || !clickedAs[a][1] {
						t.Fatalf("seed %d: approvals %d (clicked %v) and %d (clicked %v) not in their capacities", seed, m, clickedAs[m], a, clickedAs[a])
					}
				}
			} else if r.Status == RequestApproved && before.Status == RequestPending {
				t.Fatalf("seed %d: approved without a grant", seed)
			}
		}
		if grants > 1 {
			t.Fatalf("seed %d: granted %d times", seed, grants)
		}
	}
	if approvals == 0 || twoStep == 0 {
		t.Fatalf("the random clicks approved %d requests, %d of them two-step; want both", approvals, twoStep)
	}
}
