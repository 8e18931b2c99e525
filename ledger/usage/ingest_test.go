package usage

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

var clock = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// newIngestor returns an Ingestor over a temp-file ledger that knows ana, charging one
// credit per token; model "broken" cannot be priced.
func newIngestor(t *testing.T) *Ingestor {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	db.SetNow(func() time.Time { return clock })
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "ana@example.com", Name: "Ana"}}); err != nil {
		t.Fatal(err)
	}
	return &Ingestor{Store: db, Now: func() time.Time { return clock },
		Credits: func(model string, in, out int64) (int64, error) {
			if model == "broken" {
				return 0, errors.New("no weight for model broken")
			}
			return in + out, nil
		}}
}

func item(id, email, model string, tokens int64, at time.Time) Item {
	return Item{Event: ledger.UsageEvent{EventID: id, Email: email, Model: model, InputTokens: tokens, OccurredAt: at}}
}

// In the default policy (UTC, monthly, 72h of grace) November's usage is taken until
// 4 December 00:00.
var (
	nov30 = time.Date(2026, 11, 30, 23, 0, 0, 0, time.UTC)
	dec4  = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
)

// at sets the ingestor's clock.
func at(now time.Time) func(*Ingestor) {
	return func(in *Ingestor) { in.Now = func() time.Time { return now } }
}

func TestIngestOutcomes(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*Ingestor)
		item      Item
		status    string
		reason    string
	}{
		{"accepted", nil, item("e", "ana@example.com", "m", 10, clock), ledger.UsageAccepted, ""},
		{"decoder rejected it", nil, Item{Event: ledger.UsageEvent{EventID: "e"}, Err: errors.New("model is required")}, ledger.UsageRejected, "model is required"},
		{"at the future limit", nil, item("e", "ana@example.com", "m", 1, clock.Add(5*time.Minute)), ledger.UsageAccepted, ""},
		{"past the future limit", nil, item("e", "ana@example.com", "m", 1, clock.Add(5*time.Minute+time.Millisecond)), ledger.UsageRejected, "in the future"},
		{"just inside the grace window", at(dec4.Add(-time.Millisecond)), item("e", "ana@example.com", "m", 1, nov30), ledger.UsageAccepted, ""},
		{"just outside the grace window", at(dec4), item("e", "ana@example.com", "m", 1, nov30), ledger.UsageRejected, "closed more than 72 hours ago"},
		{"the first instant of a period is in it", at(dec4), item("e", "ana@example.com", "m", 1, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)), ledger.UsageAccepted, ""},
		{"grace from the policy", func(in *Ingestor) {
			in.Policy = policy.Default()
			in.Policy.Usage.LateGrace = 0
			in.Now = func() time.Time { return time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC) }
		}, item("e", "ana@example.com", "m", 1, nov30), ledger.UsageRejected, "closed more than 0 seconds ago"},
		{"year 1", nil, item("e", "ana@example.com", "m", 1, time.Time{}), ledger.UsageRejected, "closed more than"},
		{"before 1970", nil, item("e", "ana@example.com", "m", 1, time.Unix(-86400*365, 0).UTC()), ledger.UsageRejected, "closed more than"},
		{"the epoch", nil, item("e", "ana@example.com", "m", 1, time.Unix(0, 0).UTC()), ledger.UsageRejected, "closed more than"},
		{"centuries ahead", nil, item("e", "ana@example.com", "m", 1, time.Date(2600, 1, 1, 0, 0, 0, 0, time.UTC)), ledger.UsageRejected, "in the future"},
		{"year 9999", nil, item("e", "ana@example.com", "m", 1, time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)), ledger.UsageRejected, "in the future"},
		{"cannot be priced", nil, item("e", "ana@example.com", "broken", 1, clock), ledger.UsageRejected, "no weight for model broken"},
		{"unknown person", nil, item("e", "carl@example.com", "m", 1, clock), ledger.UsageQuarantined, "no person with email carl@example.com"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newIngestor(t)
			if tc.configure != nil {
				tc.configure(in)
			}
			res, err := in.Ingest(context.Background(), []Item{tc.item})
			if err != nil {
				t.Fatal(err)
			}
			r := res[0]
			if r.EventID != "e" || r.Status != tc.status || !strings.Contains(r.Reason, tc.reason) || (tc.reason == "") != (r.Reason == "") {
				t.Errorf("got %+v, want status %s reason %q", r, tc.status, tc.reason)
			}
			// Time rejections carry a code gateways can act on.
			wantCode := ""
			switch {
			case strings.Contains(tc.reason, "in the future"):
				wantCode = ledger.UsageFuture
			case strings.Contains(tc.reason, "closed more than"):
				wantCode = ledger.UsageTooLate
			}
			if r.Code != wantCode {
				t.Errorf("code %q, want %q", r.Code, wantCode)
			}
		})
	}
}

// TestIngestKeepsOrder mixes items the Ingestor settles itself with items the store settles:
// every result must land in its item's slot.
func TestIngestKeepsOrder(t *testing.T) {
	in := newIngestor(t)
	items := []Item{
		{Event: ledger.UsageEvent{EventID: "bad"}, Err: errors.New("id is required")},
		item("a1", "ana@example.com", "m", 7, clock),
		item("late", "ana@example.com", "m", 1, clock.Add(time.Hour)),
		item("c1", "carl@example.com", "m", 1, clock),
		item("a2", "ana@example.com", "m", 5, clock),
		item("price", "ana@example.com", "broken", 1, clock),
	}
	res, err := in.Ingest(context.Background(), items)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id, status string
		credits    int64
	}{
		{"bad", ledger.UsageRejected, 0}, {"a1", ledger.UsageAccepted, 7}, {"late", ledger.UsageRejected, 0},
		{"c1", ledger.UsageQuarantined, 0}, {"a2", ledger.UsageAccepted, 5}, {"price", ledger.UsageRejected, 0},
	}
	if len(res) != len(want) {
		t.Fatalf("%d results for %d items", len(res), len(want))
	}
	for i, w := range want {
		if res[i].EventID != w.id || res[i].Status != w.status || res[i].Credits != w.credits {
			t.Errorf("result %d = %+v, want %+v", i, res[i], w)
		}
	}
	// Nothing to post at all still answers every item.
	res, err = in.Ingest(context.Background(), items[:1])
	if err != nil || len(res) != 1 || res[0].Status != ledger.UsageRejected {
		t.Errorf("all-rejected batch: %+v, %v", res, err)
	}
}

func TestIngestStorageFailure(t *testing.T) {
	in := newIngestor(t)
	in.Store.Close()
	res, err := in.Ingest(context.Background(), []Item{item("a1", "ana@example.com", "m", 1, clock)})
	if err == nil || res != nil {
		t.Fatalf("closed store: %+v, %v; want no results and an error", res, err)
	}
}

func spent(t *testing.T, in *Ingestor, email string) int64 {
	t.Helper()
	ctx := context.Background()
	p, err := in.Store.PersonByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	b, err := in.Store.Balance(ctx, p.ID, time.Time{}, clock.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return b.Spent
}

func TestReplayQuarantine(t *testing.T) {
	ctx := context.Background()
	in := newIngestor(t)
	res, err := in.Ingest(ctx, []Item{
		item("c1", "carl@example.com", "m", 10, clock.Add(-time.Hour)),
		item("c2", "carl@example.com", "m", 20, clock.Add(-time.Hour)),
		item("d1", "dana@example.com", "m", 40, clock.Add(-time.Hour)),
		item("e1", "eve@example.com", "m", 80, clock.Add(-time.Hour)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != ledger.UsageQuarantined {
			t.Fatalf("%+v, want quarantined", r)
		}
	}

	// Nobody arrived yet: everything keeps waiting.
	if replayed, waiting, err := in.ReplayQuarantine(ctx); err != nil || replayed != 0 || waiting != 4 {
		t.Fatalf("replay before import: %d replayed, %d waiting, %v; want 0, 4", replayed, waiting, err)
	}
	if _, err := in.Store.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "carl@example.com", Name: "Carl"}, {Line: 3, Email: "eve@example.com", Name: "Eve"},
	}); err != nil {
		t.Fatal(err)
	}
	// Eve's gateway resends her event once she exists: it is posted then and leaves the
	// quarantine, so the replay must not post it a second time.
	if res, err := in.Ingest(ctx, []Item{item("e1", "eve@example.com", "m", 80, clock.Add(-time.Hour))}); err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("resend of e1: %+v, %v", res, err)
	}
	replayed, waiting, err := in.ReplayQuarantine(ctx)
	if err != nil || replayed != 2 || waiting != 1 {
		t.Fatalf("replay: %d replayed, %d waiting, %v; want carl's 2 replayed, dana's 1 waiting", replayed, waiting, err)
	}
	if got := spent(t, in, "carl@example.com"); got != 30 {
		t.Errorf("carl spent %d, want 30", got)
	}
	if got := spent(t, in, "eve@example.com"); got != 80 {
		t.Errorf("eve spent %d, want 80 (her event once)", got)
	}
	q, err := in.Store.Quarantined(ctx, 100)
	if err != nil || len(q) != 1 || q[0].Event.EventID != "d1" {
		t.Fatalf("still quarantined: %+v, %v; want only d1", q, err)
	}

	// A second replay changes nothing.
	if replayed, waiting, err := in.ReplayQuarantine(ctx); err != nil || replayed != 0 || waiting != 1 {
		t.Fatalf("second replay: %d replayed, %d waiting, %v", replayed, waiting, err)
	}
	if got := spent(t, in, "carl@example.com"); got != 30 {
		t.Errorf("carl spent %d after a second replay, want 30", got)
	}

	// Dana arrives after her event became too late to post (November closed more than
	// 72h ago): it is settled, not retried forever, and charges nothing.
	in.Now = func() time.Time { return dec4 }
	if _, err := in.Store.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "dana@example.com", Name: "Dana"}}); err != nil {
		t.Fatal(err)
	}
	if replayed, waiting, err := in.ReplayQuarantine(ctx); err != nil || replayed != 0 || waiting != 0 {
		t.Fatalf("replay of a stale event: %d replayed, %d waiting, %v; want 0, 0", replayed, waiting, err)
	}
	if q, err := in.Store.Quarantined(ctx, 100); err != nil || len(q) != 0 {
		t.Fatalf("quarantine after settling: %+v, %v", q, err)
	}
	if got := spent(t, in, "dana@example.com"); got != 0 {
		t.Errorf("dana spent %d, want 0", got)
	}
}

// TestDurationText: the grace window in a rejection reads as words, never as Go's "72h0m0s".
func TestDurationText(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{72 * time.Hour, "72 hours"},
		{time.Hour, "1 hour"},
		{90 * time.Minute, "1 hour 30 minutes"},
		{25*time.Hour + time.Minute, "25 hours 1 minute"},
		{45 * time.Minute, "45 minutes"},
		{time.Minute, "1 minute"},
		{0, "0 seconds"},
		{90 * time.Second, "1m30s"},
	} {
		if got := durationText(tc.d); got != tc.want {
			t.Errorf("durationText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
