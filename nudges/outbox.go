package nudges

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Drainer delivers the outbox. Up to the policy's concurrency messages are in flight at
// once, each to its own channel; each is marked sending before the platform is called and
// sent after, so a process killed mid-delivery leaves at most that many messages in doubt,
// which the next start sends again. Pace: one message a second per channel (Slack; Teams
// per conversation as the policy says) and, across the workspace or tenant, a bot.Budget
// that learns the platform's ceiling from its 429s; higher priority first (DueOutbox).
type Drainer struct {
	Store    ledger.Store
	Policy   *policy.Policy
	Notifier bot.Notifier
	Worker   *Worker
	// Now is the business clock (quiet hours); the worker's Wall times retries.
	Now func() time.Time
	Log zerolog.Logger
	// Unreachable, when set, is given each message that had nowhere to go (`jobs run`
	// prints it: the console for trials).
	Unreachable func(ledger.Person, bot.Reply)
	// BackoffBase and BackoffMax bound the wait after a failed attempt (defaults 1 s
	// and 5 min), doubled per attempt, with jitter.
	BackoffBase, BackoffMax time.Duration
	// SendTimeout bounds one delivery, platform retries included (default 3 min).
	SendTimeout time.Duration
	// Poll is how often Run looks for due messages when not woken (default 5 s).
	Poll time.Duration
	// Budgets paces each platform ("slack", "teams") as a whole; shared with the
	// platform's adapter so that approvals and replies take their slots first. Missing
	// ones are made from the policy.
	Budgets map[string]*bot.Budget

	once   sync.Once
	limits *limiters
	wake   chan struct{}
}

// Budgets returns the per-platform budgets the policy asks for: Slack with no fixed
// ceiling unless slack_per_workspace_per_minute is set, Teams under teams_per_app_per_second.
func Budgets(p policy.OutboxPolicy) map[string]*bot.Budget {
	return map[string]*bot.Budget{
		"slack": bot.NewBudget(bot.BudgetConfig{Max: float64(p.SlackPerWorkspacePerMinute) / 60}),
		"teams": bot.NewBudget(bot.BudgetConfig{Max: float64(p.TeamsPerAppPerSecond)}),
	}
}

// DrainReport counts what one drain did and what is left waiting.
type DrainReport struct {
	Sent        int
	Unreachable int
	Dead        int
	Retried     int // attempts that failed and will be retried
	RateLimited int // attempts the platform asked to repeat later (429)
	Recovered   int // messages left in flight by a gone worker, sent again
	Waiting     ledger.OutboxWait
}

func (d *Drainer) init() {
	d.once.Do(func() {
		budgets := Budgets(d.Policy.Outbox)
		for name, b := range d.Budgets {
			budgets[name] = b
		}
		d.limits = newLimiters(d.Policy.Outbox, budgets)
		d.wake = make(chan struct{}, 1)
	})
}

// Wake makes Run look at the outbox now (a job just queued messages).
func (d *Drainer) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Drain delivers every message that is due, waiting out retries, and returns when
// nothing is left but messages held on the business clock (quiet hours) or in flight in
// another live process.
func (d *Drainer) Drain(ctx context.Context) (DrainReport, error) {
	d.init()
	var rep DrainReport
	if err := d.Worker.Beat(ctx); err != nil {
		return rep, err
	}
	for {
		if err := d.drainDue(ctx, &rep); err != nil {
			return rep, err
		}
		w, err := d.Store.OutboxWaiting(ctx, d.Now(), d.Worker.Wall())
		if err != nil {
			return rep, err
		}
		rep.Waiting = w
		if w.Due > 0 {
			continue // came due while the last page went out
		}
		if w.Retrying == 0 {
			return rep, nil
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-time.After(max(w.RetryAt.Sub(d.Worker.Wall()), 10*time.Millisecond)):
		}
		if err := d.Worker.Beat(ctx); err != nil {
			return rep, err
		}
	}
}

// Retention is how long finished messages stay in the outbox: longer than any dedupe
// period (a month) and the admin report's look back at dead letters.
const Retention = 90 * day

// Run delivers messages as they come due until ctx ends, and once an hour drops finished
// messages older than Retention. A failing round is logged and the loop goes on.
func (d *Drainer) Run(ctx context.Context) {
	d.init()
	poll := d.Poll
	if poll == 0 {
		poll = 5 * time.Second
	}
	// Claims carry the worker's name; it must have beaten once for others to see it alive.
	if err := d.Worker.Beat(ctx); err != nil && ctx.Err() == nil {
		d.Log.Error().Err(err).Msg("outbox start")
	}
	var pruned time.Time
	for {
		if wall := d.Worker.Wall(); wall.Sub(pruned) >= time.Hour {
			pruned = wall
			if n, err := d.Store.PruneOutbox(ctx, d.Now().Add(-Retention)); err != nil && ctx.Err() == nil {
				d.Log.Error().Err(err).Msg("outbox pruning failed")
			} else if n > 0 {
				d.Log.Info().Int("messages", n).Msg("old delivered messages pruned from the outbox")
			}
		}
		var rep DrainReport
		if err := d.drainDue(ctx, &rep); err != nil && ctx.Err() == nil {
			d.Log.Error().Err(err).Msg("outbox delivery failed")
		}
		if rep.Sent+rep.Dead+rep.Unreachable > 0 {
			d.Log.Info().Int("sent", rep.Sent).Int("dead", rep.Dead).Int("unreachable", rep.Unreachable).Msg("outbox delivered")
		}
		wait := poll
		if w, err := d.Store.OutboxWaiting(ctx, d.Now(), d.Worker.Wall()); err == nil && w.Retrying > 0 {
			wait = min(wait, max(w.RetryAt.Sub(d.Worker.Wall()), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-time.After(wait):
		}
	}
}

// drainDue delivers what is due now, a page at a time, concurrency messages at once.
func (d *Drainer) drainDue(ctx context.Context, rep *DrainReport) error {
	n, err := d.Store.RecoverOutbox(ctx, d.Worker.Gone)
	if err != nil {
		return err
	}
	if n > 0 {
		d.Log.Warn().Int("messages", n).Msg("resending messages left in flight by a stopped process")
		rep.Recovered += n
	}
	workers := max(d.Policy.Outbox.Concurrency, 1)
	for {
		// A short page, so that a message of higher priority queued meanwhile waits for
		// at most a page, not for a whole digest. The page is claimed at once: workers of
		// other replicas claim other messages, instead of all pacing the same ones and
		// all but one losing the claim.
		rows, err := d.Store.ClaimDueOutbox(ctx, d.Now(), d.Worker.Wall(), d.Worker.Owner, 4*workers)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		if err := d.deliverAll(ctx, rows, workers, rep); err != nil {
			return err
		}
	}
}

// deliverAll delivers rows (claimed by this worker) with workers goroutines, in order of
// rows; it returns the first storage error, and the rest of the page goes back to the
// queue for the next round.
func (d *Drainer) deliverAll(ctx context.Context, rows []ledger.OutboxRow, workers int, rep *DrainReport) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan ledger.OutboxRow)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(workers, len(rows)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for row := range next {
				var one DrainReport
				err := d.deliver(ctx, row, &one)
				mu.Lock()
				rep.add(one)
				mu.Unlock()
				if err != nil {
					cancel(err)
				}
			}
		}()
	}
	fed := 0
feed:
	for _, row := range rows {
		select {
		case next <- row:
			fed++
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	var errs []error
	for _, row := range rows[fed:] {
		errs = append(errs, d.Store.OutboxRelease(context.WithoutCancel(ctx), row.ID))
	}
	return errors.Join(append([]error{context.Cause(ctx)}, errs...)...)
}

func (r *DrainReport) add(o DrainReport) {
	r.Sent += o.Sent
	r.Unreachable += o.Unreachable
	r.Dead += o.Dead
	r.Retried += o.Retried
	r.RateLimited += o.RateLimited
	r.Recovered += o.Recovered
}

// deliver sends one message this worker has claimed; only a storage failure or the end
// of ctx is an error.
func (d *Drainer) deliver(ctx context.Context, row ledger.OutboxRow, rep *DrainReport) error {
	log := d.Log.With().Int64("outbox_id", row.ID).Str("kind", row.Kind).Logger()
	person, err := d.Store.PersonByID(ctx, row.PersonID)
	if ledger.ErrorCode(err) == ledger.NotFound {
		rep.Dead++
		return d.Store.OutboxDeadLetter(ctx, row.ID, "the person is no longer in the directory")
	}
	if err != nil {
		return errors.Join(err, d.Store.OutboxRelease(context.WithoutCancel(ctx), row.ID))
	}
	reply, err := bot.UnmarshalReply(row.Payload)
	if err != nil {
		rep.Dead++
		log.Error().Err(err).Msg("unreadable outbox message")
		return d.Store.OutboxDeadLetter(ctx, row.ID, err.Error())
	}
	slot, err := d.limits.wait(ctx, person)
	if err != nil {
		// Not sent: back to the queue at once rather than when this worker is gone.
		return errors.Join(err, d.Store.OutboxRelease(context.WithoutCancel(ctx), row.ID))
	}
	defer slot.done()
	// The page was claimed before the pacing waits: confirm the message is still this
	// worker's, in case it stalled past its takeover and another replica sent it.
	if mine, err := d.Store.ClaimOutbox(ctx, row.ID, d.Worker.Owner); err != nil || !mine {
		return err
	}
	var landed bot.Delivery
	sendCtx := bot.WithDeliveryRecorder(bot.WithBulk(ctx), func(dl bot.Delivery) { landed = dl })
	timeout := d.SendTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	sendCtx, cancel := context.WithTimeout(sendCtx, timeout)
	started := time.Now()
	err = d.Notifier.Direct(sendCtx, person, reply)
	cancel()
	slot.answered(started, err)
	// The outcome is recorded even when ctx has just ended: the platform has answered.
	store := context.WithoutCancel(ctx)
	var retry *bot.RetryAfterError
	switch {
	case err == nil:
		rep.Sent++
		return d.Store.OutboxSentTo(store, row.ID, ledger.Delivered(landed), d.Now())
	case errors.Is(err, bot.ErrUnreachable):
		rep.Unreachable++
		if d.Unreachable != nil {
			d.Unreachable(person, reply)
		}
		return d.Store.OutboxUnreachable(store, row.ID, err.Error())
	case ctx.Err() != nil:
		// Stopping: the message goes back untouched (it may have been sent; the next
		// start sends it again, the one duplicate a restart may cause).
		if rerr := d.Store.OutboxRelease(store, row.ID); rerr != nil {
			return errors.Join(ctx.Err(), rerr)
		}
		return ctx.Err()
	case errors.As(err, &retry):
		rep.RateLimited++
		log.Warn().Dur("retry_after", retry.After).Msg("platform rate limit: waiting as asked")
		_, err := d.Store.OutboxRetry(store, row.ID, d.Worker.Wall().Add(retry.After), false, err.Error(), d.Policy.Outbox.MaxAttempts)
		return err
	}
	dead, serr := d.Store.OutboxRetry(store, row.ID, d.Worker.Wall().Add(d.backoff(row.Attempts+1)), true, err.Error(), d.Policy.Outbox.MaxAttempts)
	if serr != nil {
		return serr
	}
	if dead {
		rep.Dead++
		log.Error().Err(err).Int("attempts", row.Attempts+1).Msg("message given up after the policy's attempts")
	} else {
		rep.Retried++
		log.Warn().Err(err).Int("attempt", row.Attempts+1).Msg("delivery failed; will retry")
	}
	return nil
}

// backoff is the wait after the nth failed attempt: base·2^(n-1), capped, with half of it
// random ("equal jitter") so retries from many messages spread out.
func (d *Drainer) backoff(n int) time.Duration {
	base, ceiling := d.BackoffBase, d.BackoffMax
	if base == 0 {
		base = time.Second
	}
	if ceiling == 0 {
		ceiling = 5 * time.Minute
	}
	wait := base
	for i := 1; i < n && wait < ceiling; i++ {
		wait *= 2
	}
	wait = min(wait, ceiling)
	return wait/2 + rand.N(wait/2+1)
}

// limiters keeps the platforms' rates: one message at a time per channel, the next one
// no sooner than the policy's interval after the last answer there (Slack: a second per
// channel, a DM being its own channel; Teams: per conversation), and the platform's
// Budget across all channels.
type limiters struct {
	mu       sync.Mutex
	cfg      policy.OutboxPolicy
	budgets  map[string]*bot.Budget
	channels map[string]*channelLimit
}

// channelLimit is one channel's turn: sem holds it while a message is in flight there,
// ready is when the next may start (wall clock).
type channelLimit struct {
	sem   chan struct{}
	ready time.Time // guarded by holding sem
	used  time.Time // guarded by limiters.mu
}

func newLimiters(cfg policy.OutboxPolicy, budgets map[string]*bot.Budget) *limiters {
	return &limiters{cfg: cfg, budgets: budgets, channels: map[string]*channelLimit{}}
}

// platformOf guesses where the router will reach p, to apply that platform's limits.
func platformOf(p ledger.Person) (platform, channel string) {
	switch {
	case p.PreferredPlatform == "teams" && p.TeamsUserID != "":
		return "teams", p.TeamsUserID
	case p.SlackUserID != "":
		return "slack", p.SlackUserID
	case p.TeamsUserID != "":
		return "teams", p.TeamsUserID
	}
	return "", ""
}

// maxIdleChannels bounds the per-channel limiters kept; one idle for longer than its
// interval starts a new message at once anyway, so forgetting it changes nothing.
const maxIdleChannels = 10_000

// slot is one message's turn in its channel and on its platform.
type slot struct {
	c        *channelLimit
	interval time.Duration
	budget   *bot.Budget
}

// wait takes p's channel (waiting for a message in flight there and for the channel's
// interval) and then a slot of the platform's budget.
func (l *limiters) wait(ctx context.Context, p ledger.Person) (slot, error) {
	platform, channel := platformOf(p)
	if platform == "" {
		return slot{}, nil
	}
	perSecond := l.cfg.SlackPerChannelPerSecond
	if platform == "teams" {
		perSecond = l.cfg.TeamsPerConversationPerSecond
	}
	s := slot{interval: time.Second / time.Duration(max(perSecond, 1)), budget: l.budgets[platform]}
	l.mu.Lock()
	key := platform + ":" + channel
	c, ok := l.channels[key]
	if !ok {
		if len(l.channels) >= maxIdleChannels {
			for k, v := range l.channels {
				if time.Since(v.used) > 2*time.Second && len(v.sem) == 0 {
					delete(l.channels, k)
				}
			}
		}
		c = &channelLimit{sem: make(chan struct{}, 1)}
		l.channels[key] = c
	}
	c.used = time.Now()
	l.mu.Unlock()
	select {
	case <-ctx.Done():
		return slot{}, ctx.Err()
	case c.sem <- struct{}{}:
	}
	s.c = c
	if err := sleepUntil(ctx, c.ready); err != nil {
		s.done()
		return slot{}, err
	}
	if s.budget != nil {
		if err := s.budget.Wait(ctx); err != nil {
			s.done()
			return slot{}, fmt.Errorf("rate limit: %w", err)
		}
	}
	return s, nil
}

// answered tells the platform's budget how a send started at started went.
func (s slot) answered(started time.Time, err error) {
	if s.budget == nil {
		return
	}
	var retry *bot.RetryAfterError
	switch {
	case err == nil:
		s.budget.Accepted(started, time.Now())
	case errors.As(err, &retry):
		s.budget.Throttled(started, time.Now(), retry.After)
	}
}

// done releases the channel; its next message waits the interval from now.
func (s slot) done() {
	if s.c == nil {
		return
	}
	s.c.ready = time.Now().Add(s.interval)
	<-s.c.sem
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
