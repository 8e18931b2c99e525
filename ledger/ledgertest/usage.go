package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/internal/sqlstore"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Usage batches posted at once by one process share write transactions (sqlstore's
// usageGroup); each still gets exactly what posting it alone after the ones before would
// give: an event id sent in two batches is accepted once and a duplicate the other time,
// a rejected event stays rejected, and a caller whose context is already cancelled fails
// alone, whether or not it led a group.
func testConcurrentUsageBatches(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	recs := []ledger.PersonRecord{{Line: 2, Email: "a@example.com", Name: "A"}, {Line: 3, Email: "b@example.com", Name: "B"}}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	const clients, size = 12, 40
	batch := func(c int) []ledger.UsagePosting {
		out := make([]ledger.UsagePosting, size)
		for i := range out {
			n := c*size/2 + i // each id is in two neighbouring batches
			email := []string{"a@example.com", "b@example.com", "nobody@example.com"}[n%3]
			out[i] = ledger.UsagePosting{Credits: 10, Event: ledger.UsageEvent{EventID: fmt.Sprintf("ev-%d", n), Email: email,
				Model: "m", InputTokens: 5, OutputTokens: 5, OccurredAt: now.Add(-time.Duration(n) * time.Second)}}
		}
		return out
	}
	results := make([][]ledger.UsageResult, clients)
	errs := make([]error, clients)
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx := ctx
			if c%4 == 3 {
				cctx = cancelled
			}
			results[c], errs[c] = db.PostUsage(cctx, batch(c))
		}()
	}
	wg.Wait()
	count := map[string]map[string]int{}
	for c := range clients {
		if c%4 == 3 {
			if !errors.Is(errs[c], context.Canceled) {
				t.Errorf("client %d with a cancelled context: err %v, want context.Canceled", c, errs[c])
			}
			continue
		}
		if errs[c] != nil {
			t.Fatalf("client %d: %v", c, errs[c])
		}
		for i, r := range results[c] {
			want := batch(c)[i].Event
			if r.EventID != want.EventID {
				t.Fatalf("client %d result %d is for %s, want %s", c, i, r.EventID, want.EventID)
			}
			if count[r.EventID] == nil {
				count[r.EventID] = map[string]int{}
			}
			count[r.EventID][r.Status]++
			if want.Email == "nobody@example.com" && r.Status != ledger.UsageQuarantined {
				t.Errorf("%s for nobody: %s, want quarantined", r.EventID, r.Status)
			}
		}
	}
	for id, c := range count {
		if c[ledger.UsageQuarantined] > 0 {
			continue
		}
		if c[ledger.UsageAccepted] != 1 || c[ledger.UsageAccepted]+c[ledger.UsageDuplicate] != sumOf(c) {
			t.Errorf("%s: %v, want accepted once and duplicate otherwise", id, c)
		}
		if _, err := db.UsageTxID(ctx, id); err != nil {
			t.Errorf("%s accepted but not in the ledger: %v", id, err)
		}
	}
	if len(count) == 0 {
		t.Fatal("no results")
	}
}

func sumOf(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// Usage batches for many people, posted at once by several clients while grants are
// written beside them: every event is accepted once (an id sent twice, with the same
// content, is a duplicate the other time), each person's spending is the sum of their
// events, every grant lands, and verify finds nothing. On PostgreSQL the batches are
// written by partitions of people at once (sqlstore.Partitioner); the grants are not.
func testConcurrentUsageAcrossPeople(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	pol := policy.Default()
	people := Directory(t, db, pol, 40, now)
	const clients, batches, size = 6, 5, 60
	// Event n is for person n%len(people) and costs 1+n%7 credits; neighbouring clients
	// send half of each other's ids.
	event := func(n int) ledger.UsagePosting {
		return ledger.UsagePosting{Credits: int64(1 + n%7), PeriodStart: pol.PeriodStart(now), PeriodEnd: pol.PeriodEnd(now),
			Event: ledger.UsageEvent{EventID: fmt.Sprintf("ev-%d", n), Email: people[n%len(people)].Email, Model: "m",
				InputTokens: 1, OutputTokens: 1, OccurredAt: now.Add(-time.Duration(n) * time.Second)}}
	}
	accepted := make([]map[string]int, clients)
	errs := make(chan error, clients+1)
	var wg sync.WaitGroup
	for c := range clients {
		accepted[c] = map[string]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				batch := make([]ledger.UsagePosting, size)
				for i := range batch {
					batch[i] = event((c*batches+b)*size/2 + i)
				}
				res, err := db.PostUsage(ctx, batch)
				if err != nil {
					errs <- fmt.Errorf("client %d batch %d: %w", c, b, err)
					return
				}
				for _, r := range res {
					accepted[c][r.EventID+" "+r.Status]++
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 30 {
			if _, err := db.Grant(ctx, ledger.GrantInput{Key: fmt.Sprint("beside-", i), PersonID: people[i%len(people)].ID,
				// Effective before every event: a grant that starts inside the batches' window
				// has usage rebooked around it, which takes every writer's lock.
				Kind: ledger.GrantUnlock, Amount: 5, EffectiveAt: now.Add(-time.Hour), ExpiresAt: now.Add(72 * time.Hour), Reason: "beside usage"}); err != nil {
				errs <- fmt.Errorf("grant %d: %w", i, err)
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	status := map[string]map[string]int{}
	for _, m := range accepted {
		for k, n := range m {
			id, st, _ := strings.Cut(k, " ")
			if status[id] == nil {
				status[id] = map[string]int{}
			}
			status[id][st] += n
		}
	}
	spent := map[int64]int64{}
	for id, st := range status {
		if st[ledger.UsageAccepted] != 1 || st[ledger.UsageAccepted]+st[ledger.UsageDuplicate] != sumOf(st) {
			t.Errorf("%s: %v, want accepted once and duplicate otherwise", id, st)
		}
		var n int
		fmt.Sscanf(id, "ev-%d", &n)
		spent[people[n%len(people)].ID] += int64(1 + n%7)
	}
	for _, p := range people {
		b, err := db.Balance(ctx, p.ID, pol.PeriodStart(now), pol.PeriodEnd(now))
		if err != nil {
			t.Fatal(err)
		}
		if b.Spent != spent[p.ID] {
			t.Errorf("%s spent %d, want the sum of their events, %d", p.Email, b.Spent, spent[p.ID])
		}
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %q %v", v, err)
	}
	if s, ok := db.(interface {
		Dialect() sqlstore.Dialect
		PartitionedUsageWrites() int64
	}); ok {
		if _, partitions := s.Dialect().(sqlstore.Partitioner); partitions && s.PartitionedUsageWrites() == 0 {
			t.Fatal("no batch was written by partition of people: the test exercised only the serialized path")
		}
	}
}

// One event id sent at once by several clients for different people (a gateway reusing
// ids): on PostgreSQL the people fall in different partitions, written at once, so the
// ids are claimed concurrently by the inserts of their transaction rows. Each id is
// accepted exactly once, for one person; every other send of it is rejected as used for a
// different event, none is an error; each person's spending is the sum of the events
// accepted for them, and verify finds nothing.
func testConcurrentReusedEventIDs(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	pol := policy.Default()
	people := Directory(t, db, pol, 8, now)
	const clients, ids = 4, 200
	// Client c sends every id for person c, in its own order, so that inserts of the
	// same keys cross.
	results := make([][]ledger.UsageResult, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]ledger.UsagePosting, ids)
			for i := range batch {
				n := i
				if c%2 == 1 {
					n = ids - 1 - i
				}
				batch[i] = ledger.UsagePosting{Credits: int64(1 + c), PeriodStart: pol.PeriodStart(now), PeriodEnd: pol.PeriodEnd(now),
					Event: ledger.UsageEvent{EventID: fmt.Sprintf("reused-%d", n), Email: people[c].Email, Model: "m",
						InputTokens: 1, OutputTokens: int64(c), OccurredAt: now.Add(-time.Minute)}}
			}
			res, err := db.PostUsage(ctx, batch)
			if err != nil {
				errs <- fmt.Errorf("client %d: %w", c, err)
				return
			}
			results[c] = res
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	accepted := map[string]int{}
	spent := map[int64]int64{}
	for c, res := range results {
		for _, r := range res {
			switch {
			case r.Status == ledger.UsageAccepted:
				accepted[r.EventID]++
				spent[people[c].ID] += int64(1 + c)
			case r.Status != ledger.UsageRejected || !strings.Contains(r.Reason, "already used for a different event"):
				t.Errorf("client %d, %s: %+v, want accepted or rejected as used for a different event", c, r.EventID, r)
			}
		}
	}
	if len(accepted) != ids {
		t.Errorf("%d ids accepted, want all %d", len(accepted), ids)
	}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	for c := range clients {
		b, err := db.Balance(ctx, people[c].ID, pol.PeriodStart(now), pol.PeriodEnd(now))
		if err != nil {
			t.Fatal(err)
		}
		if b.Spent != spent[people[c].ID] {
			t.Errorf("%s spent %d, want %d, the events accepted for them", people[c].Email, b.Spent, spent[people[c].ID])
		}
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		t.Fatalf("verify: %q %v", v, err)
	}
}
