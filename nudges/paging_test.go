package nudges

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// pageWatch is the real store, recording how much of the directory each read returns:
// a job that read everyone at once (People, or Activity, PeopleAfter or TipExclusions
// without a page bound) is caught here.
type pageWatch struct {
	ledger.Store
	mu        sync.Mutex
	whole     []string // reads of the whole directory
	largest   int      // the most people one read returned
	pagesRead int
}

func (w *pageWatch) saw(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.largest = max(w.largest, n)
	w.pagesRead++
}

func (w *pageWatch) wholeRead(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.whole = append(w.whole, what)
}

func (w *pageWatch) People(ctx context.Context) ([]ledger.Person, error) {
	w.wholeRead("People")
	return w.Store.People(ctx)
}

func (w *pageWatch) PeopleAfter(ctx context.Context, afterID int64, limit int) ([]ledger.Person, error) {
	ps, err := w.Store.PeopleAfter(ctx, afterID, limit)
	w.saw(len(ps))
	return ps, err
}

func (w *pageWatch) Activity(ctx context.Context, win ledger.ActivityWindow) ([]ledger.PersonActivity, error) {
	if win.Limit == 0 && win.ThroughID == 0 {
		w.wholeRead("Activity without a page bound")
	}
	acts, err := w.Store.Activity(ctx, win)
	w.saw(len(acts))
	return acts, err
}

func (w *pageWatch) TipExclusions(ctx context.Context, afterID, throughID int64) (map[int64][]int64, error) {
	if throughID-afterID > 1000 {
		w.wholeRead(fmt.Sprintf("TipExclusions over ids (%d, %d]", afterID, throughID))
	}
	return w.Store.TipExclusions(ctx, afterID, throughID)
}

// oldSegments is how everyone was placed before jobs read the directory in pages: all
// the people, all the activity, one threshold. The pages must place everyone the same.
func oldSegments(t *testing.T, s *Service, at time.Time) []Member {
	t.Helper()
	ctx := context.Background()
	people, err := s.Store.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := s.Store.Activity(ctx, s.window(at))
	if err != nil {
		t.Fatal(err)
	}
	c := NewClassifier(s.Policy, at, HeavyThreshold(acts, s.Policy.Segments.HeavyTopPercent))
	var out []Member
	for i, p := range people {
		if acts[i].PersonID != p.ID {
			t.Fatalf("activity %d is person %d, not %d", i, acts[i].PersonID, p.ID)
		}
		out = append(out, c.Classify(p, acts[i]))
	}
	return out
}

// TestJobsReadTheDirectoryInPages runs the digest, manager digest and nudge jobs with
// pages of 2 people on one copy of the fixture and with the default page (everyone in
// one) on another: the same messages are queued, and no read returned more than a page.
func TestJobsReadTheDirectoryInPages(t *testing.T) {
	paged, whole := newJobsFixture(t), newJobsFixture(t)
	if _, err := paged.db.CreateRequest(paged.ctx, ledger.RequestInput{RequesterID: paged.people["pat"].ID, ApproverID: paged.people["mia"].ID,
		Amount: 50_000, UseCase: "Summarise the interviews", ExpiresAt: utcTime(12, 1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := whole.db.CreateRequest(whole.ctx, ledger.RequestInput{RequesterID: whole.people["pat"].ID, ApproverID: whole.people["mia"].ID,
		Amount: 50_000, UseCase: "Summarise the interviews", ExpiresAt: utcTime(12, 1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	watch := &pageWatch{Store: paged.db}
	paged.svc.Store, paged.svc.PageSize = watch, 2

	monday := utcTime(11, 23, 9, 0)
	want := oldSegments(t, whole.svc, monday)
	snap, err := paged.svc.Segments(paged.ctx, monday)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Members) != len(want) || len(want) != 9 {
		t.Fatalf("paged segments placed %d people, want %d", len(snap.Members), len(want))
	}
	for i := range want {
		g, w := snap.Members[i], want[i]
		if g.Person.ID != w.Person.ID || g.Segment != w.Segment || g.Hoarding != w.Hoarding || g.Expected != w.Expected || g.Activity != w.Activity {
			t.Errorf("%s: paged %s/%v/%d, whole %s/%v/%d", w.Person.Email, g.Segment, g.Hoarding, g.Expected, w.Segment, w.Hoarding, w.Expected)
		}
	}
	if snap.HeavyFrom == 0 || snap.HeavyFrom != HeavyThreshold(func() []ledger.PersonActivity {
		var a []ledger.PersonActivity
		for _, m := range want {
			a = append(a, m.Activity)
		}
		return a
	}(), paged.pol.Segments.HeavyTopPercent) {
		t.Errorf("heavy threshold %d from pages", snap.HeavyFrom)
	}

	for _, job := range []struct {
		name, kind, period string
		at                 time.Time
	}{
		{policy.JobWeeklyDigest, KindDigest, "2026-W48", monday},
		{policy.JobManagerDigest, KindManagerDigest, "2026-W48", utcTime(11, 23, 9, 30)},
		{policy.JobNudges, KindNudge, "", utcTime(11, 24, 10, 0)},
		{policy.JobNudges, KindHeadsUp, "2026-11", utcTime(11, 24, 10, 0)},
	} {
		gotResult, wantResult := "", ""
		if job.kind != KindHeadsUp {
			gotResult, wantResult = paged.run(t, job.name, job.at), whole.run(t, job.name, job.at)
			if gotResult != wantResult {
				t.Errorf("%s in pages: %q, in one read: %q", job.name, gotResult, wantResult)
			}
		}
		period := job.period
		if period == "" {
			slot, _, err := (&Scheduler{Policy: paged.pol}).Slot(job.name, job.at)
			if err != nil {
				t.Fatal(err)
			}
			period = PeriodKey(slot)
		}
		g, w := paged.messages(t, job.kind, period), whole.messages(t, job.kind, period)
		if len(w) == 0 {
			t.Fatalf("%s queued no %s in one read: the comparison would prove nothing", job.name, job.kind)
		}
		if !slices.Equal(names(g), names(w)) {
			t.Fatalf("%s to %v in pages, %v in one read", job.kind, names(g), names(w))
		}
		for who, row := range w {
			if string(g[who].Payload) != string(row.Payload) || !g[who].NotBefore.Equal(row.NotBefore) || g[who].HoldReason != row.HoldReason {
				t.Errorf("%s to %s differs:\npaged %s\nwhole %s", job.kind, who, g[who].Payload, row.Payload)
			}
		}
	}
	if len(watch.whole) > 0 {
		t.Errorf("jobs read the whole directory at once: %v", watch.whole)
	}
	if watch.largest > 2 || watch.pagesRead < 10 {
		t.Errorf("largest read %d people over %d reads; pages of 2 were asked for", watch.largest, watch.pagesRead)
	}
}
