package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
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
