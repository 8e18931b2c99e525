package ledgertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func testClaimJobRun(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	wall := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	slot := wall
	run := func(owner string) ledger.JobRun {
		return ledger.JobRun{Job: "weekly-digest", Key: "2026-11-23T09:00Z", Slot: slot, At: slot.Add(time.Minute), Owner: owner, StartedAt: wall}
	}
	gone := map[string]bool{}
	isGone := func(owner string, _ time.Time) bool { return gone[owner] }

	claim, r, err := db.ClaimJobRun(ctx, run("a"), isGone)
	if err != nil || claim != ledger.ClaimNew || r.Status != ledger.JobRunning || r.Attempts != 1 {
		t.Fatalf("first claim: %v %+v %v", claim, r, err)
	}
	if claim, r, _ := db.ClaimJobRun(ctx, run("b"), isGone); claim != ledger.ClaimBusy || r.Owner != "a" {
		t.Fatalf("claim while a live worker runs it: %v %+v", claim, r)
	}
	if claim, _, _ := db.ClaimJobRun(ctx, run("a"), isGone); claim != ledger.ClaimBusy {
		t.Fatalf("the owner claiming its own running run again: %v", claim)
	}
	gone["a"] = true
	claim, r, err = db.ClaimJobRun(ctx, run("b"), isGone)
	if err != nil || claim != ledger.ClaimResumed || r.Owner != "b" || r.Attempts != 2 {
		t.Fatalf("claim after the owner died: %v %+v %v", claim, r, err)
	}
	if err := db.FailJobRun(ctx, "weekly-digest", "2026-11-23T09:00Z", "disk full"); err != nil {
		t.Fatal(err)
	}
	if r, ok, _ := db.JobRunFor(ctx, "weekly-digest", "2026-11-23T09:00Z"); !ok || r.Status != ledger.JobFailed || r.Error != "disk full" {
		t.Fatalf("after a failure: %+v", r)
	}
	// A failed run is claimed again by anyone, even with its owner alive.
	if claim, _, _ := db.ClaimJobRun(ctx, run("c"), isGone); claim != ledger.ClaimResumed {
		t.Fatalf("claim after a failure: %v", claim)
	}
	if err := db.FinishJobRun(ctx, "weekly-digest", "2026-11-23T09:00Z", "queued 3", wall.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	claim, r, _ = db.ClaimJobRun(ctx, run("d"), isGone)
	if claim != ledger.ClaimDone || r.Status != ledger.JobDone || r.Result != "queued 3" || !r.FinishedAt.Equal(wall.Add(time.Second)) || r.Attempts != 3 {
		t.Fatalf("claim after done: %v %+v", claim, r)
	}

	// Skip only marks a job that never ran.
	if ok, err := db.SkipFirstJobRun(ctx, run("e"), "first start"); err != nil || ok {
		t.Fatalf("skip a job with history: %v %v", ok, err)
	}
	other := run("e")
	other.Job, other.Key = "nudges", "2026-11-24T10:00Z"
	if ok, err := db.SkipFirstJobRun(ctx, other, "first start"); err != nil || !ok {
		t.Fatalf("skip a new job: %v %v", ok, err)
	}
	if claim, r, _ := db.ClaimJobRun(ctx, other, isGone); claim != ledger.ClaimDone || r.Status != ledger.JobSkipped {
		t.Fatalf("a skipped slot counts as done: %v %+v", claim, r)
	}
	later := run("f")
	later.Key, later.Slot = "2026-11-30T09:00Z", slot.Add(7*24*time.Hour)
	if _, _, err := db.ClaimJobRun(ctx, later, isGone); err != nil {
		t.Fatal(err)
	}
	latest, err := db.LatestJobRuns(ctx)
	if err != nil || len(latest) != 2 || latest["weekly-digest"].Key != "2026-11-30T09:00Z" || latest["nudges"].Status != ledger.JobSkipped {
		t.Fatalf("latest runs: %+v %v", latest, err)
	}
}

// Two stores on one database (two processes) claim the same runs at once: each run is won
// exactly once.
func testClaimJobRunTwoProcesses(t *testing.T, open Opener) {
	ctx := context.Background()
	first := open(t)
	dbs := [2]Store{first, reopen(t, first)}
	never := func(string, time.Time) bool { return false }
	wins := make([]int, 2)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 50 {
				key := time.Date(2026, 1, 1, 0, k, 0, 0, time.UTC).Format(time.RFC3339)
				claim, _, err := db.ClaimJobRun(ctx, ledger.JobRun{Job: "j", Key: key, Owner: []string{"a", "b"}[i], StartedAt: time.Now()}, never)
				if err != nil {
					t.Error(err)
					return
				}
				if claim == ledger.ClaimNew {
					wins[i]++
				}
			}
		}()
	}
	wg.Wait()
	if wins[0]+wins[1] != 50 {
		t.Fatalf("50 runs claimed %d + %d times", wins[0], wins[1])
	}
}

func testHeartbeatAndRemoveWorker(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for _, w := range []string{"old", "live", "me"} {
		if err := db.Heartbeat(ctx, w, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Heartbeat(ctx, "live", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.Heartbeat(ctx, "me", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.RemoveWorker(ctx, "me", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// A job run owned by each shows who is still known, through the heartbeat ClaimJobRun reads.
	beats := map[string]time.Time{}
	for _, w := range []string{"old", "live", "me"} {
		if _, _, err := db.ClaimJobRun(ctx, ledger.JobRun{Job: "j", Key: w, Owner: w, StartedAt: t0}, nil); err != nil {
			t.Fatal(err)
		}
		_, _, err := db.ClaimJobRun(ctx, ledger.JobRun{Job: "j", Key: w, Owner: "other", StartedAt: t0}, func(_ string, hb time.Time) bool {
			beats[w] = hb
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !beats["old"].IsZero() || !beats["me"].IsZero() || !beats["live"].Equal(t0.Add(time.Hour)) {
		t.Fatalf("heartbeats after removing me and workers silent since t0+1m: %v", beats)
	}
}

func testActiveWorkers(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	wall := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for owner, at := range map[string]time.Time{"h/1/a": wall.Add(-10 * time.Second), "h/2/b": wall.Add(-time.Hour)} {
		if err := db.Heartbeat(ctx, owner, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.ActiveWorkers(ctx, wall.Add(-30*time.Second))
	if err != nil || len(got) != 1 || got[0] != "h/1/a" {
		t.Errorf("active workers: %v %v, want [h/1/a]", got, err)
	}
}
