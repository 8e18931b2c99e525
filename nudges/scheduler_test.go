package nudges

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// clock is a business clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// counter is a JobFunc that counts runs per job and period.
type counter struct {
	mu   sync.Mutex
	runs map[string]int
	fail map[string]int // job -> failures left before it succeeds
}

func newCounter() *counter { return &counter{runs: map[string]int{}, fail: map[string]int{}} }

func (c *counter) Run(_ context.Context, run Run) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail[run.Job] > 0 {
		c.fail[run.Job]--
		return "", errors.New("the job failed on purpose")
	}
	c.runs[run.Job+" "+run.Key]++
	return "ran", nil
}

func (c *counter) count(job, key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.runs[job+" "+key]
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.runs {
		n += v
	}
	return n
}

func openAt(t testing.TB, path string) ledgertest.Store {
	t.Helper()
	db, err := ledgertest.OpenFile(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newScheduler(db ledgertest.Store, pol *policy.Policy, clk *clock, job JobFunc, log zerolog.Logger) *Scheduler {
	return &Scheduler{Policy: pol, Store: db, Worker: NewWorker(db, log), Job: job, Now: clk.Now, Log: log}
}

func TestSlot(t *testing.T) {
	pol := policy.Default()
	pol.Org.TimeZone = "Europe/Paris"
	s := &Scheduler{Policy: pol}
	paris, _ := time.LoadLocation("Europe/Paris")
	at := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, paris) }
	tests := []struct {
		job  string
		at   time.Time
		want time.Time
	}{
		{policy.JobWeeklyDigest, at(2026, 11, 23, 8, 59), at(2026, 11, 16, 9, 0)},
		{policy.JobWeeklyDigest, at(2026, 11, 23, 9, 0), at(2026, 11, 23, 9, 0)},
		{policy.JobWeeklyDigest, at(2026, 11, 29, 23, 0), at(2026, 11, 23, 9, 0)},
		{policy.JobNudges, at(2026, 11, 27, 12, 0), at(2026, 11, 26, 10, 0)},
		{policy.JobPeriodReset, at(2026, 11, 1, 0, 4), at(2026, 10, 1, 0, 5)},
		{policy.JobAdminReport, at(2026, 11, 15, 0, 0), at(2026, 11, 1, 8, 0)},
		{policy.JobQuarantineReplay, at(2026, 11, 23, 10, 7), at(2026, 11, 23, 10, 0)},
		// Across the end of summer time in Paris (25 October 2026, 03:00 -> 02:00).
		{policy.JobExpireRequests, at(2026, 10, 25, 3, 30), at(2026, 10, 25, 3, 0)},
	}
	for _, tt := range tests {
		got, ok, err := s.Slot(tt.job, tt.at)
		if err != nil || !ok || !got.Equal(tt.want) {
			t.Errorf("Slot(%s, %s) = %s %v %v, want %s", tt.job, tt.at, got, ok, err, tt.want)
		}
	}
	if key := PeriodKey(at(2026, 11, 23, 9, 0)); key != "2026-11-23T08:00Z" {
		t.Errorf("period key %s", key)
	}
	if _, _, err := s.Slot("no-such-job", at(2026, 1, 1, 0, 0)); err == nil {
		t.Error("an unknown job has a slot")
	}
}

// Two schedulers, as two processes would, tick on one database file through two weeks
// that hold every job's slots: each job period runs exactly once.
func TestTwoSchedulersOneDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	pol := policy.Default()
	clk := &clock{}
	jobs := newCounter()
	s1 := newScheduler(openAt(t, path), pol, clk, jobs.Run, zerolog.Nop())
	s2 := newScheduler(openAt(t, path), pol, clk, jobs.Run, zerolog.Nop())
	if s1.Worker.Owner == s2.Worker.Owner {
		t.Fatal("two workers share a name")
	}
	ctx := context.Background()
	want := map[string]bool{}
	for at := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC); at.Before(time.Date(2026, 12, 13, 0, 0, 0, 0, time.UTC)); at = at.Add(time.Hour) {
		clk.Set(at)
		for _, job := range policy.Jobs() {
			slot, ok, _ := s1.Slot(job, at)
			if ok {
				want[job+" "+PeriodKey(slot)] = true
			}
		}
		var wg sync.WaitGroup
		for _, s := range []*Scheduler{s1, s2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.Tick(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	for key := range want {
		if n := jobs.runs[key]; n != 1 {
			t.Errorf("%s ran %d times", key, n)
		}
	}
	if jobs.total() != len(want) {
		t.Errorf("%d runs for %d job periods", jobs.total(), len(want))
	}
	for _, key := range []string{"period-reset 2026-12-01T00:05Z", "admin-report 2026-12-01T08:00Z", "weekly-digest 2026-12-07T09:00Z", "nudges 2026-12-03T10:00Z"} {
		if !want[key] {
			t.Errorf("the two weeks lack the slot %s", key)
		}
	}
}

func TestCatchUpOnceAfterDowntime(t *testing.T) {
	ctx := context.Background()
	db := openAt(t, filepath.Join(t.TempDir(), "t.db"))
	clk := &clock{t: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)} // a Friday
	jobs := newCounter()
	s := newScheduler(db, policy.Default(), clk, jobs.Run, zerolog.Nop())

	// First start on a fresh database: the past slots are skipped, not run.
	if err := s.SkipFirst(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs.total() != 0 {
		t.Fatalf("a fresh start ran %v", jobs.runs)
	}
	// Monday 09:00: the digest's slot comes.
	clk.Set(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs.count(policy.JobWeeklyDigest, "2026-11-23T09:00Z") != 1 {
		t.Fatalf("the digest did not run at its slot: %v", jobs.runs)
	}
	// The process is down for three weeks; a new one starts and catches up once.
	s2 := newScheduler(db, policy.Default(), clk, jobs.Run, zerolog.Nop())
	clk.Set(time.Date(2026, 12, 16, 12, 0, 0, 0, time.UTC))
	if err := s2.SkipFirst(ctx); err != nil {
		t.Fatal(err)
	}
	before := jobs.total()
	if err := s2.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if jobs.count(policy.JobWeeklyDigest, "2026-12-14T09:00Z") != 1 || jobs.count(policy.JobWeeklyDigest, "2026-11-30T09:00Z") != 0 ||
		jobs.count(policy.JobWeeklyDigest, "2026-12-07T09:00Z") != 0 {
		t.Errorf("catch-up should run only the latest missed digest: %v", jobs.runs)
	}
	if jobs.count(policy.JobPeriodReset, "2026-12-01T00:05Z") != 1 {
		t.Errorf("the missed period reset was not caught up: %v", jobs.runs)
	}
	if got := jobs.total() - before; got != len(policy.Jobs()) {
		t.Errorf("catch-up ran %d runs, want one per job (%d)", got, len(policy.Jobs()))
	}
	if err := s2.Tick(ctx); err != nil || jobs.total()-before != len(policy.Jobs()) {
		t.Errorf("a second tick at the same time ran more: %v %v", jobs.runs, err)
	}
}

func TestResumeRunOfDeadWorker(t *testing.T) {
	ctx := context.Background()
	db := openAt(t, filepath.Join(t.TempDir(), "t.db"))
	at := time.Date(2026, 11, 23, 9, 30, 0, 0, time.UTC)
	clk := &clock{t: at}
	jobs := newCounter()
	s := newScheduler(db, policy.Default(), clk, jobs.Run, zerolog.Nop())
	key := "2026-11-23T09:00Z"
	claim := func(owner string) {
		t.Helper()
		if c, _, err := db.ClaimJobRun(ctx, ledger.JobRun{Job: policy.JobWeeklyDigest, Key: key, Slot: at, At: at, Owner: owner, StartedAt: time.Now()},
			func(string, time.Time) bool { return true }); err != nil || (c != ledger.ClaimNew && c != ledger.ClaimResumed) {
			t.Fatalf("claim by %s: %v %v", owner, c, err)
		}
	}
	// A live worker (beating now) holds the run: it is left alone.
	claim("elsewhere/1/live")
	if err := db.Heartbeat(ctx, "elsewhere/1/live", time.Now()); err != nil {
		t.Fatal(err)
	}
	out, err := s.RunJob(ctx, policy.JobWeeklyDigest, at)
	if err != nil || out.Claim != ledger.ClaimBusy || out.Previous.Owner != "elsewhere/1/live" || jobs.total() != 0 {
		t.Fatalf("run held by a live worker: %+v %v", out, err)
	}
	// Its heartbeat stops: the run is taken over and done.
	if err := db.Heartbeat(ctx, "elsewhere/1/live", time.Now().Add(-StaleAfter-time.Second)); err != nil {
		t.Fatal(err)
	}
	out, err = s.RunJob(ctx, policy.JobWeeklyDigest, at)
	if err != nil || out.Claim != ledger.ClaimResumed || jobs.count(policy.JobWeeklyDigest, key) != 1 {
		t.Fatalf("run of a silent worker: %+v %v", out, err)
	}
	// A worker on this host whose process is gone is taken over at once.
	key2 := "2026-11-30T09:00Z"
	parts := strings.Split(s.Worker.Owner, "/")
	dead := fmt.Sprintf("%s/%d/%s/x", parts[0], 1<<30, parts[2])
	if err := db.Heartbeat(ctx, dead, time.Now()); err != nil {
		t.Fatal(err)
	}
	next := at.Add(7 * 24 * time.Hour)
	if _, _, err := db.ClaimJobRun(ctx, ledger.JobRun{Job: policy.JobWeeklyDigest, Key: key2, Slot: next, At: next, Owner: dead, StartedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := s.RunJob(ctx, policy.JobWeeklyDigest, next); err != nil || out.Claim != ledger.ClaimResumed {
		t.Fatalf("run of an exited process: %+v %v", out, err)
	}
	// Done means done.
	if out, err := s.RunJob(ctx, policy.JobWeeklyDigest, next.Add(time.Hour)); err != nil || out.Claim != ledger.ClaimDone || jobs.count(policy.JobWeeklyDigest, key2) != 1 {
		t.Fatalf("second run of a done period: %+v %v", out, err)
	}
}

// The loop: a failing tick is logged and the loop goes on; cancel stops it.
func TestSchedulerLoop(t *testing.T) {
	db := openAt(t, filepath.Join(t.TempDir(), "t.db"))
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := zerolog.New(zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	})))
	clk := &clock{t: time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)}
	jobs := newCounter()
	jobs.fail[policy.JobWeeklyDigest] = 1
	s := newScheduler(db, policy.Default(), clk, jobs.Run, log)
	ticks := make(chan time.Time)
	waits := make(chan time.Duration, 10)
	s.After = func(d time.Duration) <-chan time.Time {
		waits <- d
		return ticks
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.SkipFirst(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Loop(ctx)
	}()
	<-waits // started: first slots skipped, first tick done
	clk.Set(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	ticks <- time.Time{}
	<-waits // the digest failed
	ticks <- time.Time{}
	if d := <-waits; d <= 0 || d > MaxSleep {
		t.Errorf("wait %s between ticks", d)
	}
	if jobs.count(policy.JobWeeklyDigest, "2026-11-23T09:00Z") != 1 {
		t.Errorf("the digest was not retried after failing: %v", jobs.runs)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the loop did not stop on cancel")
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "scheduler tick failed") || !strings.Contains(logs.String(), "the job failed on purpose") {
		t.Errorf("the failure was not logged:\n%s", logs.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
