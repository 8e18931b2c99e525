package ledgertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// testDecideFollowsTheRules: the store applies ledger.DecideRequest as stored, and writes
// what it says: the requester's click is refused and changes nothing; a two-step request
// takes its manager's and an admin's approval, two people; the completing click grants
// the unlock once, a repeated click changes nothing; a click after expiry expires it at
// its expiry instant; only the requester cancels; ExpireRequests expires what is due.
func testDecideFollowsTheRules(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := testNow
	db.SetNow(func() time.Time { return now })
	people := seedPeople(t, db, 4)
	asker, mgr, admin, other := people[0].ID, people[1].ID, people[2].ID, people[3].ID
	end := now.Add(96 * time.Hour)
	file := func(useCase string, needsAdmin bool, expires time.Time) ledger.Request {
		t.Helper()
		r, err := db.CreateRequest(ctx, ledger.RequestInput{RequesterID: asker, ApproverID: mgr, Amount: 4000, UseCase: useCase,
			NeedsAdmin: needsAdmin, ExpiresAt: expires})
		if err != nil {
			t.Fatalf("file %q: %v", useCase, err)
		}
		return r
	}
	click := func(r ledger.Request, by int64, approve, asManager, asAdmin bool) (ledger.Request, bool, error) {
		return db.Decide(ctx, ledger.Decision{RequestID: r.ID, DeciderID: by, Approve: approve, AsManager: asManager, AsAdmin: asAdmin,
			Note: "ok", GrantExpiresAt: end})
	}
	unlocks := func() int {
		t.Helper()
		var n int
		if err := rawSQL(t, db).QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE person_id = ? AND kind = ?`, asker, ledger.GrantUnlock).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	big := file("train a model on support tickets", true, now.Add(48*time.Hour))
	if got, changed, err := click(big, asker, true, true, true); ledger.ErrorCode(err) != ledger.Forbidden || changed || got.Status != "" {
		t.Fatalf("the requester's own click: %+v changed=%v %v; want Forbidden", got, changed, err)
	}
	if r, _ := db.Request(ctx, big.ID); r.ManagerApproval != 0 || r.AdminApproval != 0 || r.Status != ledger.RequestPending {
		t.Fatalf("the requester's refused click changed the request: %+v", r)
	}
	r, changed, err := click(big, mgr, true, true, true)
	if err != nil || !changed || r.Status != ledger.RequestPending || r.ManagerApproval != mgr || r.AdminApproval != 0 || !r.DecidedAt.IsZero() {
		t.Fatalf("manager (also an admin) approves first: %+v changed=%v %v", r, changed, err)
	}
	if r, changed, err = click(big, mgr, true, true, true); err != nil || changed || r.AdminApproval != 0 {
		t.Fatalf("the same person on the other side: %+v changed=%v %v; want no change (two people)", r, changed, err)
	}
	if unlocks() != 0 {
		t.Fatalf("granted before both sides approved")
	}
	r, changed, err = click(big, admin, true, false, true)
	if err != nil || !changed || r.Status != ledger.RequestApproved || r.AdminApproval != admin || r.DecidedBy != admin || r.GrantID == 0 || r.Note != "ok" {
		t.Fatalf("admin completes: %+v changed=%v %v", r, changed, err)
	}
	for _, by := range []int64{admin, mgr, other} {
		if again, changed, err := click(big, by, true, true, true); err != nil || changed || again.GrantID != r.GrantID {
			t.Fatalf("repeated click by %d: %+v changed=%v %v", by, again, changed, err)
		}
	}
	if n := unlocks(); n != 1 {
		t.Fatalf("%d unlock grants, want 1", n)
	}
	if b, err := db.Balance(ctx, asker, now.Add(-time.Hour), end); err != nil || b.Available != 4000 {
		t.Fatalf("balance after the unlock: %+v %v", b, err)
	}

	denied := file("draft release notes", false, now.Add(48*time.Hour))
	if r, changed, err := click(denied, mgr, false, true, false); err != nil || !changed || r.Status != ledger.RequestDenied || r.DecidedBy != mgr {
		t.Fatalf("deny: %+v changed=%v %v", r, changed, err)
	}

	late := file("translate the handbook", false, now.Add(time.Hour))
	now = now.Add(time.Hour)
	if r, changed, err := click(late, mgr, true, true, false); err != nil || !changed || r.Status != ledger.RequestExpired ||
		!r.DecidedAt.Equal(late.ExpiresAt) || r.DecidedBy != 0 || r.GrantID != 0 {
		t.Fatalf("click at the expiry instant: %+v changed=%v %v", r, changed, err)
	}

	mine := file("summarise incident reviews", false, now.Add(time.Hour))
	if r, changed, err := db.CancelRequest(ctx, mine.ID, mgr); err != nil || changed || r.Status != ledger.RequestPending {
		t.Fatalf("cancel by the manager: %+v changed=%v %v", r, changed, err)
	}
	if r, changed, err := db.CancelRequest(ctx, mine.ID, asker); err != nil || !changed || r.Status != ledger.RequestCancelled || r.DecidedBy != asker {
		t.Fatalf("cancel by the requester: %+v changed=%v %v", r, changed, err)
	}

	due := file("write test plans", false, now.Add(2*time.Hour))
	waiting := file("review pull requests", false, now.Add(3*time.Hour))
	now = now.Add(2 * time.Hour)
	expired, err := db.ExpireRequests(ctx)
	if err != nil || len(expired) != 1 || expired[0].ID != due.ID || expired[0].Status != ledger.RequestExpired || !expired[0].DecidedAt.Equal(due.ExpiresAt) {
		t.Fatalf("expire: %+v %v; want only request %d, expired at its instant", expired, err, due.ID)
	}
	if r, _ := db.Request(ctx, due.ID); r.Status != ledger.RequestExpired || !r.DecidedAt.Equal(due.ExpiresAt) {
		t.Fatalf("stored after expiry: %+v", r)
	}
	if r, _ := db.Request(ctx, waiting.ID); r.Status != ledger.RequestPending {
		t.Fatalf("a request not due yet: %+v", r)
	}
	if again, err := db.ExpireRequests(ctx); err != nil || len(again) != 0 {
		t.Fatalf("expire again: %+v %v", again, err)
	}
}

// testDecideOnceUnderConcurrentClicks: managers clicking Approve at once on two stores
// over one database (two replicas) approve the request once: one click changes it, one
// unlock is granted.
func testDecideOnceUnderConcurrentClicks(t *testing.T, open Opener) {
	ctx := context.Background()
	first := open(t)
	second := reopen(t, first)
	people := seedPeople(t, first, 3)
	asker, mgr, admin := people[0].ID, people[1].ID, people[2].ID
	r, err := first.CreateRequest(ctx, ledger.RequestInput{RequesterID: asker, ApproverID: mgr, Amount: 2500, UseCase: "automate the weekly report",
		ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	changes := 0
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db := []Store{first, second}[i%2]
			d := ledger.Decision{RequestID: r.ID, DeciderID: []int64{mgr, admin}[i/2%2], Approve: true, AsManager: i/2%2 == 0, AsAdmin: i/2%2 == 1,
				GrantExpiresAt: time.Now().Add(24 * time.Hour)}
			_, changed, err := db.Decide(ctx, d)
			if err != nil {
				t.Error(err)
				return
			}
			if changed {
				mu.Lock()
				changes++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var grants int
	if err := rawSQL(t, first).QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE person_id = ? AND kind = ?`, asker, ledger.GrantUnlock).Scan(&grants); err != nil {
		t.Fatal(err)
	}
	got, err := first.Request(ctx, r.ID)
	if err != nil || changes != 1 || grants != 1 || got.Status != ledger.RequestApproved {
		t.Fatalf("8 concurrent approvals: %d changed it, %d unlocks, request %+v (%v); want 1, 1, approved", changes, grants, got, err)
	}
}
