package nudges

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// fakeChat is a Notifier whose answers tests script per person: a list of errors to
// return in turn (nil delivers), then delivery. Each call takes latency; it notes how
// many calls were in flight at once and whether one person had two at once.
type fakeChat struct {
	mu                 sync.Mutex
	answers            map[string][]error
	sent               map[string][]bot.Reply
	times              []time.Time
	order              []string // first text block of each delivered message, in order
	latency            time.Duration
	inflight           int
	maxParallel        int
	busy               map[string]bool
	sameChannelOverlap bool
}

func newFakeChat() *fakeChat {
	return &fakeChat{answers: map[string][]error{}, sent: map[string][]bot.Reply{}, busy: map[string]bool{}}
}

func (f *fakeChat) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	f.inflight++
	f.maxParallel = max(f.maxParallel, f.inflight)
	if f.busy[to.Email] {
		f.sameChannelOverlap = true
	}
	f.busy[to.Email] = true
	f.mu.Unlock()
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inflight--
	delete(f.busy, to.Email)
	if to.SlackUserID == "" && to.TeamsUserID == "" {
		return fmt.Errorf("to %s: %w", to.Email, bot.ErrUnreachable)
	}
	if a := f.answers[to.Email]; len(a) > 0 {
		f.answers[to.Email] = a[1:]
		if a[0] != nil {
			return a[0]
		}
	}
	f.sent[to.Email] = append(f.sent[to.Email], r)
	if len(r.Blocks) > 0 {
		if txt, ok := r.Blocks[0].(*bot.Text); ok {
			f.order = append(f.order, txt.Text)
		}
	}
	bot.RecordDelivery(ctx, bot.Delivery{Platform: "slack", Channel: "D" + to.SlackUserID, MessageID: fmt.Sprint(len(f.times))})
	return nil
}

func (f *fakeChat) Approval(context.Context, bot.RequestView) error { return nil }

func (f *fakeChat) count(email string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent[email])
}

// outboxFixture is a ledger with people p0..pn-1 (p<i>@x.io, Slack user U<i>, except
// those listed as offline) and a drainer over a fake chat.
type outboxFixture struct {
	ctx    context.Context
	db     ledgertest.Store
	pol    *policy.Policy
	chat   *fakeChat
	d      *Drainer
	people []ledger.Person
	now    time.Time
	path   string // the ledger file, for a second process
}

func newOutboxFixture(t *testing.T, n int, offline ...int) *outboxFixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db := openAt(t, path)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	var recs []ledger.PersonRecord
	for i := range n {
		r := ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@x.io", i), Name: fmt.Sprintf("Person %d", i), SlackUserID: fmt.Sprintf("U%d", i)}
		for _, o := range offline {
			if o == i {
				r.SlackUserID = ""
			}
		}
		recs = append(recs, r)
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	// Fast limits, so that retries in one DM channel do not wait a second each; the rate
	// test sets Slack's real per-channel rate back.
	pol.Outbox.SlackPerWorkspacePerMinute = 60_000
	pol.Outbox.SlackPerChannelPerSecond = 1000
	chat := newFakeChat()
	d := &Drainer{Store: db, Policy: pol, Notifier: chat, Worker: NewWorker(db, zerolog.Nop()), Now: func() time.Time { return now },
		Log: zerolog.Nop(), BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}
	return &outboxFixture{ctx: ctx, db: db, pol: pol, chat: chat, d: d, people: people, now: now, path: path}
}

func (f *outboxFixture) enqueue(t *testing.T, kind string, who ...int) {
	t.Helper()
	var msgs []ledger.OutboxMessage
	for _, i := range who {
		payload, _ := bot.MarshalReply(bot.Reply{Blocks: []bot.Block{&bot.Text{Text: fmt.Sprintf("%s for %d", kind, i)}}})
		msgs = append(msgs, ledger.OutboxMessage{Kind: kind, PersonID: f.people[i].ID, PeriodKey: "w48", Payload: payload})
	}
	if _, err := f.db.Enqueue(f.ctx, msgs); err != nil {
		t.Fatal(err)
	}
}

func (f *outboxFixture) row(t *testing.T, kind string, i int) ledger.OutboxRow {
	t.Helper()
	rows, err := f.db.OutboxMessages(f.ctx, kind, "w48")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.PersonID == f.people[i].ID {
			return r
		}
	}
	t.Fatalf("no %s row for person %d", kind, i)
	return ledger.OutboxRow{}
}

func TestDrainDeliversRetriesAndRecords(t *testing.T) {
	f := newOutboxFixture(t, 5, 3)
	var printed []string
	f.d.Unreachable = func(p ledger.Person, r bot.Reply) {
		printed = append(printed, p.Email+": "+r.Blocks[0].(*bot.Text).Text)
	}
	f.chat.answers["p1@x.io"] = []error{errors.New("connection reset"), errors.New("502 bad gateway")}
	f.chat.answers["p2@x.io"] = []error{&bot.RetryAfterError{After: 30 * time.Millisecond, Err: errors.New("ratelimited")}}
	f.enqueue(t, "digest", 0, 1, 2, 3)

	rep, err := f.d.Drain(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 3 || rep.Unreachable != 1 || rep.Retried != 2 || rep.RateLimited != 1 || rep.Dead != 0 {
		t.Errorf("report %+v", rep)
	}
	if rep.Waiting != (ledger.OutboxWait{}) {
		t.Errorf("left waiting: %+v", rep.Waiting)
	}
	for i, want := range []int{1, 1, 1, 0} {
		if got := f.chat.count(fmt.Sprintf("p%d@x.io", i)); got != want {
			t.Errorf("p%d got %d messages, want %d", i, got, want)
		}
	}
	if r := f.row(t, "digest", 0); r.Status != ledger.OutboxSent || r.Ref.Platform != "slack" || r.Ref.Channel != "DU0" || r.Ref.MessageID == "" || !r.SentAt.Equal(f.now) {
		t.Errorf("sent row lacks where it landed: %+v", r)
	}
	if r := f.row(t, "digest", 1); r.Status != ledger.OutboxSent || r.Attempts != 2 || r.LastError != "" {
		t.Errorf("row sent on the third try: %+v", r)
	}
	if r := f.row(t, "digest", 2); r.Status != ledger.OutboxSent || r.Attempts != 0 {
		t.Errorf("a 429 is not a failed attempt: %+v", r)
	}
	if r := f.row(t, "digest", 3); r.Status != ledger.OutboxUnreachable || len(printed) != 1 || printed[0] != "p3@x.io: digest for 3" {
		t.Errorf("unreachable: %+v, printed %q", r, printed)
	}
	// Drained: a second drain sends nothing.
	if rep, err := f.d.Drain(f.ctx); err != nil || rep.Sent != 0 {
		t.Errorf("second drain: %+v %v", rep, err)
	}
}

func TestDrainGivesUpAfterMaxAttempts(t *testing.T) {
	f := newOutboxFixture(t, 2)
	f.pol.Outbox.MaxAttempts = 3
	boom := errors.New("channel_not_found")
	f.chat.answers["p0@x.io"] = []error{boom, boom, boom, boom}
	f.enqueue(t, "digest", 0, 1)
	rep, err := f.d.Drain(f.ctx)
	if err != nil || rep.Dead != 1 || rep.Sent != 1 || rep.Retried != 2 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if r := f.row(t, "digest", 0); r.Status != ledger.OutboxDead || r.Attempts != 3 || r.LastError != "channel_not_found" {
		t.Errorf("dead letter: %+v", r)
	}
	if got := len(f.chat.answers["p0@x.io"]); got != 1 {
		t.Errorf("tried %d times, want 3", 4-got)
	}
}

func TestDrainResendsWhatAKilledProcessLeftInFlight(t *testing.T) {
	f := newOutboxFixture(t, 3)
	f.enqueue(t, "digest", 0, 1, 2)
	rows, _ := f.db.OutboxMessages(f.ctx, "digest", "w48")
	host := strings.SplitN(f.d.Worker.Owner, "/", 2)[0]
	// One message was in flight in a process that no longer exists, one in a live one.
	if ok, err := f.db.ClaimOutbox(f.ctx, rows[0].ID, fmt.Sprintf("%s/%d/gone", host, 1<<30)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	live := "otherhost/1/live"
	if err := f.db.Heartbeat(f.ctx, live, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.db.ClaimOutbox(f.ctx, rows[1].ID, live); !ok || err != nil {
		t.Fatal(ok, err)
	}
	rep, err := f.d.Drain(f.ctx)
	if err != nil || rep.Recovered != 1 || rep.Sent != 2 || rep.Waiting.InFlight != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if f.chat.count("p0@x.io") != 1 || f.chat.count("p1@x.io") != 0 {
		t.Error("the gone process's message was not resent, or the live one's was taken")
	}
}

func TestDrainHoldsForQuietHours(t *testing.T) {
	f := newOutboxFixture(t, 1)
	payload, _ := bot.MarshalReply(bot.Reply{Header: "later"})
	held := f.now.Add(10 * time.Hour)
	if _, err := f.db.Enqueue(f.ctx, []ledger.OutboxMessage{{Kind: "nudge", PersonID: f.people[0].ID, PeriodKey: "r", Payload: payload,
		NotBefore: held, HoldReason: "quiet hours (19:00–08:00, Asia/Tokyo)"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := f.d.Drain(f.ctx)
	if err != nil || rep.Sent != 0 || rep.Waiting.Held != 1 || !rep.Waiting.HeldUntil.Equal(held) || !strings.Contains(rep.Waiting.HoldReason, "Asia/Tokyo") {
		t.Fatalf("report %+v %v", rep, err)
	}
	f.d.Now = func() time.Time { return held }
	if rep, err := f.d.Drain(f.ctx); err != nil || rep.Sent != 1 {
		t.Fatalf("after the hold: %+v %v", rep, err)
	}
}

func TestDrainRateLimits(t *testing.T) {
	f := newOutboxFixture(t, 13)
	f.pol.Outbox.SlackPerWorkspacePerMinute = 600 // a fixed ceiling of 10 a second
	f.pol.Outbox.SlackPerChannelPerSecond = 1
	f.pol.Outbox.Concurrency = 1 // one at a time, so that the order of calls is the order of sends
	f.d.Budgets = map[string]*bot.Budget{"slack": bot.NewBudget(bot.BudgetConfig{Start: 10, Max: 10})}
	f.enqueue(t, "digest", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
	f.enqueue(t, "nudge", 0) // a second message in p0's DM channel
	// A 429 on p1's message pauses the whole workspace for 300 ms.
	f.chat.answers["p1@x.io"] = []error{&bot.RetryAfterError{After: 300 * time.Millisecond, Err: errors.New("ratelimited")}}
	start := time.Now()
	rep, err := f.d.Drain(f.ctx)
	if err != nil || rep.Sent != 13 || rep.RateLimited != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("13 messages (two in one channel) at 10 a second took %s", took)
	}
	times := f.chat.times
	// After the pause, p2 to p11 go at the ceiling: nine intervals of 100 ms. Each call is
	// stamped after the database work that follows the wait, so the bound allows a few
	// milliseconds of scheduling on shared cores.
	if span := times[11].Sub(times[2]); span < 900*time.Millisecond-20*time.Millisecond {
		t.Errorf("ten sends took %s, faster than 10 a second (gaps %v)", span, gaps(times))
	}
	if gap := times[2].Sub(times[1]); gap < 290*time.Millisecond {
		t.Errorf("after a 429 asking for 300 ms the next call came after %s", gap)
	}
	if gap := times[13].Sub(times[0]); gap < time.Second {
		t.Errorf("two messages in one DM channel %s apart, under Slack's second per channel", gap)
	}
}

// TestDrainSendsByPriority: what a person waits for goes before heads-ups, those before
// digests, and nudges last, whatever the order they were queued in.
func TestDrainSendsByPriority(t *testing.T) {
	f := newOutboxFixture(t, 4)
	f.pol.Outbox.Concurrency = 1
	var msgs []ledger.OutboxMessage
	for i, kind := range []string{KindNudge, KindDigest, KindHeadsUp, KindRequestExpired} {
		payload, _ := bot.MarshalReply(bot.Reply{Blocks: []bot.Block{&bot.Text{Text: kind}}})
		msgs = append(msgs, ledger.OutboxMessage{Kind: kind, PersonID: f.people[i].ID, PeriodKey: "w48", Payload: payload, Priority: Priority(kind)})
	}
	if _, err := f.db.Enqueue(f.ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if rep, err := f.d.Drain(f.ctx); err != nil || rep.Sent != 4 {
		t.Fatalf("report %+v %v", rep, err)
	}
	if want := []string{KindRequestExpired, KindHeadsUp, KindDigest, KindNudge}; fmt.Sprint(f.chat.order) != fmt.Sprint(want) {
		t.Errorf("delivered in order %v, want %v", f.chat.order, want)
	}
}

// TestDrainConcurrentDeliversEachOnce: with many messages in flight at once, every one is
// delivered exactly once and no channel gets two at once.
func TestDrainConcurrentDeliversEachOnce(t *testing.T) {
	f := newOutboxFixture(t, 300)
	f.pol.Outbox.Concurrency = 16
	f.d.Budgets = map[string]*bot.Budget{"slack": bot.NewBudget(bot.BudgetConfig{Start: 2000, Max: 2000})}
	f.chat.latency = 5 * time.Millisecond
	var who []int
	for i := range 300 {
		who = append(who, i)
	}
	f.enqueue(t, KindDigest, who...)
	f.enqueue(t, KindNudge, 0, 1, 2)
	f.chat.answers["p7@x.io"] = []error{&bot.RetryAfterError{After: 50 * time.Millisecond, Err: errors.New("ratelimited")}}
	rep, err := f.d.Drain(f.ctx)
	if err != nil || rep.Sent != 303 || rep.RateLimited != 1 {
		t.Fatalf("report %+v %v", rep, err)
	}
	for i := range 300 {
		want := 1
		if i < 3 {
			want = 2
		}
		if got := f.chat.count(fmt.Sprintf("p%d@x.io", i)); got != want {
			t.Errorf("p%d got %d messages, want %d", i, got, want)
		}
	}
	if f.chat.maxParallel < 2 {
		t.Errorf("at most %d messages in flight at once with a concurrency of 16", f.chat.maxParallel)
	}
	if f.chat.sameChannelOverlap {
		t.Error("two messages were in flight in one channel at once")
	}
}

func gaps(times []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(times); i++ {
		out = append(out, times[i].Sub(times[i-1]).Round(time.Millisecond))
	}
	return out
}

func TestBackoff(t *testing.T) {
	d := &Drainer{BackoffBase: time.Second, BackoffMax: time.Minute}
	tests := []struct {
		attempt int
		ceiling time.Duration // the wait before jitter; the result is in [ceiling/2, ceiling]
	}{
		{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {6, 32 * time.Second}, {7, time.Minute}, {40, time.Minute},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			got := d.backoff(tt.attempt)
			if got < tt.ceiling/2 || got > tt.ceiling {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", tt.attempt, got, tt.ceiling/2, tt.ceiling)
			}
			seen[got] = true
		}
		if len(seen) < 50 {
			t.Errorf("attempt %d: only %d distinct waits in 200: too little jitter", tt.attempt, len(seen))
		}
	}
	if got := (&Drainer{}).backoff(1); got < 500*time.Millisecond || got > time.Second {
		t.Errorf("default first wait %s, want 0.5-1 s", got)
	}
}

// countingNotifier counts what one drainer delivered.
type countingNotifier struct {
	bot.Notifier
	mu   sync.Mutex
	sent int
}

func (c *countingNotifier) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	err := c.Notifier.Direct(ctx, to, r)
	if err == nil {
		c.mu.Lock()
		c.sent++
		c.mu.Unlock()
	}
	return err
}

// Two processes drain one outbox at once (replicas): each claims its own pages
// (ClaimDueOutbox), so every message goes out exactly once and the reports add up.
func TestTwoProcessesDrainOneOutbox(t *testing.T) {
	f := newOutboxFixture(t, 60)
	f.chat.latency = 2 * time.Millisecond
	who := make([]int, 60)
	for i := range who {
		who[i] = i
	}
	f.enqueue(t, "digest", who...)
	other := openAt(t, f.path)
	other.SetNow(func() time.Time { return f.now })
	counts := []*countingNotifier{{Notifier: f.chat}, {Notifier: f.chat}}
	f.d.Notifier = counts[0]
	d2 := &Drainer{Store: other, Policy: f.pol, Notifier: counts[1], Worker: NewWorker(other, zerolog.Nop()), Now: f.d.Now,
		Log: zerolog.Nop(), BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond}
	reps := make([]DrainReport, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, d := range []*Drainer{f.d, d2} {
		wg.Go(func() { reps[i], errs[i] = d.Drain(f.ctx) })
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil || reps[0].Sent+reps[1].Sent != 60 {
		t.Fatalf("reports %+v %v, %+v %v", reps[0], errs[0], reps[1], errs[1])
	}
	for i := range 60 {
		if n := f.chat.count(fmt.Sprintf("p%d@x.io", i)); n != 1 {
			t.Errorf("p%d got %d digests", i, n)
		}
	}
	if counts[0].sent != reps[0].Sent || counts[1].sent != reps[1].Sent {
		t.Errorf("delivered %d and %d, reported %d and %d", counts[0].sent, counts[1].sent, reps[0].Sent, reps[1].Sent)
	}
	t.Logf("the two processes sent %d and %d", reps[0].Sent, reps[1].Sent)
}
