package ledgertest

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func testOutboxEnqueueDedupes(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	people := seedPeople(t, db, 3)
	if _, _, err := db.SeedPrompts(ctx, []ledger.PromptInput{{Slug: "a", Title: "A", Body: "body a"}, {Slug: "b", Title: "B", Body: "body b"}}); err != nil {
		t.Fatal(err)
	}
	ps, err := db.TipCandidates(ctx, people[0].ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("prompts: %v %v", ps, err)
	}
	msg := func(p int, kind, period string, tip int64) ledger.OutboxMessage {
		return ledger.OutboxMessage{Kind: kind, PersonID: people[p].ID, PeriodKey: period, Payload: []byte(`{"header":"x"}`), TipPromptID: tip}
	}
	added, err := db.Enqueue(ctx, []ledger.OutboxMessage{msg(0, "digest", "2026-W48", ps[0].ID), msg(1, "digest", "2026-W48", 0), msg(0, "nudge", "run1", 0)})
	if err != nil || added != 3 {
		t.Fatalf("first enqueue: %d %v", added, err)
	}
	// Same keys again (one with a different tip), plus one new: only the new one is added,
	// and only its tip is marked shown.
	added, err = db.Enqueue(ctx, []ledger.OutboxMessage{msg(0, "digest", "2026-W48", ps[1].ID), msg(1, "digest", "2026-W48", 0), msg(2, "digest", "2026-W48", ps[1].ID)})
	if err != nil || added != 1 {
		t.Fatalf("second enqueue: %d %v", added, err)
	}
	ex, err := db.TipExclusions(ctx, 0, math.MaxInt64)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ex[people[0].ID], []int64{ps[0].ID}) || !slices.Equal(ex[people[2].ID], []int64{ps[1].ID}) || len(ex[people[1].ID]) != 0 {
		t.Fatalf("tips shown: %v", ex)
	}
	// A page of ids reads only its people's.
	if ex, err := db.TipExclusions(ctx, people[0].ID, people[2].ID); err != nil || len(ex) != 1 || !slices.Equal(ex[people[2].ID], []int64{ps[1].ID}) {
		t.Fatalf("tips shown to the people after %d: %v %v", people[0].ID, ex, err)
	}
	rows, err := db.OutboxMessages(ctx, "digest", "2026-W48")
	if err != nil || len(rows) != 3 || rows[0].Status != ledger.OutboxPending || string(rows[0].Payload) != `{"header":"x"}` {
		t.Fatalf("queued digests: %+v %v", rows, err)
	}
	if _, err := db.Enqueue(ctx, []ledger.OutboxMessage{{Kind: "digest", PersonID: people[0].ID}}); err == nil {
		t.Fatal("a message without a period key must be refused")
	}
}

func testOutboxDeliveryStates(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	people := seedPeople(t, db, 4)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // the real clock runs on its own
	db.SetNow(func() time.Time { return now })
	var msgs []ledger.OutboxMessage
	for i, p := range people {
		m := ledger.OutboxMessage{Kind: "digest", PersonID: p.ID, PeriodKey: "w", Payload: []byte("{}")}
		if i == 3 {
			m.NotBefore, m.HoldReason = now.Add(23*time.Hour), "quiet hours"
		}
		msgs = append(msgs, m)
	}
	if _, err := db.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	due, err := db.DueOutbox(ctx, now, wall, 10)
	if err != nil || len(due) != 3 {
		t.Fatalf("due: %d %v", len(due), err)
	}
	ids := []int64{due[0].ID, due[1].ID, due[2].ID}

	// 0 is sent and remembers where it landed.
	if ok, err := db.ClaimOutbox(ctx, ids[0], "w1"); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if ok, _ := db.ClaimOutbox(ctx, ids[0], "w2"); ok {
		t.Fatal("a message being sent was claimed twice")
	}
	if ok, err := db.ClaimOutbox(ctx, ids[0], "w1"); !ok || err != nil {
		t.Fatalf("its owner's claim is not confirmed: %v %v", ok, err)
	}
	if err := db.OutboxSentTo(ctx, ids[0], ledger.Delivered{Platform: "slack", Channel: "D1", MessageID: "1.2"}, now); err != nil {
		t.Fatal(err)
	}
	// 1 fails twice with max 2 attempts: dead; a 429 before does not count.
	if dead, err := db.OutboxRetry(ctx, ids[1], wall.Add(time.Second), false, "rate limited", 2); dead || err != nil {
		t.Fatalf("429: %v %v", dead, err)
	}
	if dead, _ := db.OutboxRetry(ctx, ids[1], wall.Add(time.Second), true, "boom", 2); dead {
		t.Fatal("dead after one failure of two")
	}
	if due, _ := db.DueOutbox(ctx, now, wall, 10); len(due) != 1 || due[0].ID != ids[2] {
		t.Fatalf("a message waiting for its retry time is not due: %+v", due)
	}
	if due, _ := db.DueOutbox(ctx, now, wall.Add(time.Second), 10); len(due) != 2 {
		t.Fatalf("at its retry time it is due again: %+v", due)
	}
	if dead, _ := db.OutboxRetry(ctx, ids[1], wall.Add(time.Second), true, "boom", 2); !dead {
		t.Fatal("not dead after the last attempt")
	}
	// 2 is claimed by a worker that dies; recovery puts it back, for gone owners only.
	if ok, _ := db.ClaimOutbox(ctx, ids[2], "killed"); !ok {
		t.Fatal("claim")
	}
	if n, err := db.RecoverOutbox(ctx, func(string, time.Time) bool { return false }); n != 0 || err != nil {
		t.Fatalf("recover with every owner alive: %d %v", n, err)
	}
	w, err := db.OutboxWaiting(ctx, now, wall)
	if err != nil || w.InFlight != 1 || w.Held != 1 || w.HoldReason != "quiet hours" || !w.HeldUntil.Equal(now.Add(23*time.Hour)) {
		t.Fatalf("waiting: %+v %v", w, err)
	}
	if n, err := db.RecoverOutbox(ctx, func(owner string, _ time.Time) bool { return owner == "killed" }); n != 1 || err != nil {
		t.Fatalf("recover: %d %v", n, err)
	}
	if ok, _ := db.ClaimOutbox(ctx, ids[2], "w3"); !ok {
		t.Fatal("a recovered message can be claimed again")
	}
	if ok, _ := db.ClaimOutbox(ctx, ids[2], "killed"); ok {
		t.Fatal("the gone owner's claim was confirmed after another worker took the message")
	}
	if err := db.OutboxUnreachable(ctx, ids[2], "no platform"); err != nil {
		t.Fatal(err)
	}

	counts, err := db.OutboxCounts(ctx, time.Time{}, now.Add(time.Hour))
	want := map[string]int{ledger.OutboxSent: 1, ledger.OutboxDead: 1, ledger.OutboxUnreachable: 1, ledger.OutboxPending: 1}
	if err != nil || len(counts) != len(want) {
		t.Fatalf("counts %v %v", counts, err)
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: %d, want %d", k, counts[k], v)
		}
	}
	rows, _ := db.OutboxMessages(ctx, "digest", "w")
	byID := map[int64]ledger.OutboxRow{}
	for _, r := range rows {
		byID[r.ID] = r
	}
	if r := byID[ids[0]]; r.Ref != (ledger.Delivered{Platform: "slack", Channel: "D1", MessageID: "1.2"}) || !r.SentAt.Equal(now) {
		t.Errorf("sent row: %+v", r)
	}
	if r := byID[ids[1]]; r.Attempts != 2 || r.LastError != "boom" {
		t.Errorf("dead row: %+v", r)
	}
	// Pruning drops finished messages queued before the cut-off, never pending ones.
	if n, err := db.PruneOutbox(ctx, now.Add(time.Minute)); err != nil || n != 3 {
		t.Fatalf("pruned %d: %v", n, err)
	}
	if counts, _ := db.OutboxCounts(ctx, time.Time{}, now.Add(time.Hour)); len(counts) != 1 || counts[ledger.OutboxPending] != 1 {
		t.Fatalf("after pruning: %v", counts)
	}
	// The held message is due once its hold has passed on the business clock.
	if due, _ := db.DueOutbox(ctx, now.Add(23*time.Hour), wall, 10); len(due) != 1 || due[0].PersonID != people[3].ID {
		t.Fatalf("after quiet hours: %+v", due)
	}
}

// testClaimDueOutboxSharesTheQueue: workers of three processes (replicas) on one
// database claim pages of the due queue at once; every due message is claimed exactly
// once, highest priority first within a page, held and retrying messages are not taken,
// and a claimed message released goes back to the queue.
func testClaimDueOutboxSharesTheQueue(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	wall := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	people := seedPeople(t, db, 120)
	var msgs []ledger.OutboxMessage
	for i, p := range people {
		m := ledger.OutboxMessage{Kind: "digest", PersonID: p.ID, PeriodKey: "w", Payload: []byte("{}"), Priority: 2, NotBefore: now}
		switch {
		case i == 0:
			m.NotBefore = now.Add(time.Hour) // held
		case i%10 == 9:
			m.Priority = 0
		}
		msgs = append(msgs, m)
	}
	if _, err := db.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	stores := []Store{db, reopen(t, db), reopen(t, db)}
	var mu sync.Mutex
	claimedBy := map[int64]string{}
	var wg sync.WaitGroup
	for s, store := range stores {
		for w := range 3 {
			owner := fmt.Sprintf("replica%d/worker%d", s, w)
			wg.Go(func() {
				for {
					rows, err := store.ClaimDueOutbox(ctx, now, wall, owner, 4)
					if err != nil {
						t.Error(err)
						return
					}
					if len(rows) == 0 {
						return
					}
					for i, r := range rows {
						if r.Status != ledger.OutboxSending || r.Owner != owner {
							t.Errorf("claimed row %+v", r)
						}
						if i > 0 && rows[i-1].Priority > r.Priority {
							t.Errorf("page out of priority order: %+v", rows)
						}
					}
					mu.Lock()
					for _, r := range rows {
						if other, dup := claimedBy[r.ID]; dup {
							t.Errorf("message %d claimed by %s and %s", r.ID, other, owner)
						}
						claimedBy[r.ID] = owner
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(claimedBy) != 119 {
		t.Fatalf("%d messages claimed, want the 119 due", len(claimedBy))
	}
	if n, err := db.ClaimDueOutbox(ctx, now, wall, "late", 10); err != nil || len(n) != 0 {
		t.Fatalf("claimed again: %+v %v", n, err)
	}
	held, err := db.OutboxMessages(ctx, "digest", "w")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range held {
		if r.PersonID == people[0].ID && r.Status != ledger.OutboxPending {
			t.Errorf("a held message was claimed: %+v", r)
		}
	}
	var some int64
	for id := range claimedBy {
		some = id
		break
	}
	if err := db.OutboxRelease(ctx, some); err != nil {
		t.Fatal(err)
	}
	if rows, err := stores[2].ClaimDueOutbox(ctx, now, wall, "again", 10); err != nil || len(rows) != 1 || rows[0].ID != some {
		t.Errorf("after a release: %+v %v", rows, err)
	}
	if rows, err := db.ClaimDueOutbox(ctx, now.Add(2*time.Hour), wall, "later", 10); err != nil || len(rows) != 1 || rows[0].PersonID != people[0].ID {
		t.Errorf("the held message once due: %+v %v", rows, err)
	}
}

// testClaimDueOutboxPriorityFirst: one page holds the most urgent messages, oldest first.
func testClaimDueOutboxPriorityFirst(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	people := seedPeople(t, db, 6)
	var msgs []ledger.OutboxMessage
	for i, p := range people {
		msgs = append(msgs, ledger.OutboxMessage{Kind: "nudge", PersonID: p.ID, PeriodKey: "r", Payload: []byte("{}"),
			Priority: []int{2, 0, 2, 1, 0, 2}[i], NotBefore: now.Add(-time.Duration(i) * time.Minute)})
	}
	if _, err := db.Enqueue(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	rows, err := db.ClaimDueOutbox(ctx, now, now, "w", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range rows {
		got = append(got, r.PersonID)
	}
	// Priority 0: people 4 (older) and 1; then priority 1: person 3.
	if want := []int64{people[4].ID, people[1].ID, people[3].ID}; !slices.Equal(got, want) {
		t.Errorf("first page = persons %v, want %v", got, want)
	}
}
