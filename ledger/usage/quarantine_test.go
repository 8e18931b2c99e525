package usage

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// TestReplayIsIncremental: a replay with nothing new in the directory reads nothing; after
// an import it reads only the events whose person arrived (matched by the email key); an
// event waiting longer than MaxQuarantineAge is given up, with the bound reported.
func TestReplayIsIncremental(t *testing.T) {
	ctx := context.Background()
	in := newIngestor(t)
	bounds := map[string]int{}
	in.OnBound = func(b string, n int) { bounds[b] += n }
	res, err := in.IngestFrom(ctx, 7, []Item{
		item("x1", "xavier@example.com", "m", 1, clock), item("x2", "xavier@example.com", "m", 2, clock),
		item("c1", "CARL@example.com", "m", 10, clock),
	})
	if err != nil || res[0].Status != ledger.UsageQuarantined {
		t.Fatalf("%+v %v", res, err)
	}
	if r, w, err := in.ReplayQuarantine(ctx); err != nil || r != 0 || w != 3 {
		t.Fatalf("first replay: %d %d %v", r, w, err)
	}
	if _, needed, err := in.Store.ReplayNeeded(ctx); err != nil || needed {
		t.Fatalf("replay needed with an unchanged directory: %v %v", needed, err)
	}
	if _, err := in.Store.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "carl@example.com", Name: "Carl"}}); err != nil {
		t.Fatal(err)
	}
	if _, needed, _ := in.Store.ReplayNeeded(ctx); !needed {
		t.Fatal("an import did not make a replay needed")
	}
	q, err := in.Store.Replayable(ctx, 0, 100)
	if err != nil || len(q) != 1 || q[0].Event.EventID != "c1" || q[0].KeyID != 7 {
		t.Fatalf("replayable: %+v %v; want only carl's", q, err)
	}
	if r, w, err := in.ReplayQuarantine(ctx); err != nil || r != 1 || w != 2 {
		t.Fatalf("replay after import: %d %d %v", r, w, err)
	}
	// A month later Xavier still has not arrived: his events are given up.
	in.Now = func() time.Time { return clock.Add(ledger.MaxQuarantineAge + time.Hour) }
	if r, w, err := in.ReplayQuarantine(ctx); err != nil || r != 0 || w != 0 || bounds["age"] != 2 {
		t.Fatalf("replay after the age bound: %d %d %v, bounds %v", r, w, err, bounds)
	}
}

// TestQuarantineBoundPerKey: one API key may have MaxQuarantinePerKey events waiting; the
// next is rejected with a reason and reported; another key, and file imports, are not
// affected by it.
func TestQuarantineBoundPerKey(t *testing.T) {
	ctx := context.Background()
	in := newIngestor(t)
	full := 0
	in.OnBound = func(b string, n int) {
		if b == "count" {
			full += n
		}
	}
	batch := func(prefix string, n int) []Item {
		items := make([]Item, n)
		for i := range items {
			items[i] = item(fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("ghost%d@example.com", i), "m", 1, clock)
		}
		return items
	}
	if res, err := in.IngestFrom(ctx, 1, batch("a", ledger.MaxQuarantinePerKey)); err != nil || res[len(res)-1].Status != ledger.UsageQuarantined {
		t.Fatalf("up to the bound: %v", err)
	}
	res, err := in.IngestFrom(ctx, 1, append(batch("b", 2), item("ana-1", "ana@example.com", "m", 3, clock)))
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != ledger.UsageRejected || !strings.Contains(res[0].Reason, "10,000 events from this API key already wait") || full != 2 {
		t.Errorf("past the bound: %+v, reported %d", res[0], full)
	}
	if res[2].Status != ledger.UsageAccepted {
		t.Errorf("a known person's event beside them: %+v", res[2])
	}
	if res, _ := in.IngestFrom(ctx, 2, batch("c", 1)); res[0].Status != ledger.UsageQuarantined {
		t.Errorf("another key: %+v", res[0])
	}
	if res, _ := in.Ingest(ctx, batch("d", 1)); res[0].Status != ledger.UsageQuarantined {
		t.Errorf("a file import: %+v", res[0])
	}
}
