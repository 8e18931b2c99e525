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
	"github.com/tokenpay/tokenpay/ledger/sqlite"
	"golang.org/x/time/rate"
)

// Drainer delivers the outbox. Messages go one at a time: each is marked sending before
// the platform is called and sent after, so a process killed mid-delivery leaves at most
// one message in doubt, which the next start sends again.
type Drainer struct {
	Store    *sqlite.DB
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

	once   sync.Once
	limits *limiters
	wake   chan struct{}
}

// DrainReport counts what one drain did and what is left waiting.
type DrainReport struct {
	Sent        int
	Unreachable int
	Dead        int
	Retried     int // attempts that failed and will be retried
	RateLimited int // attempts the platform asked to repeat later (429)
	Recovered   int // messages left in flight by a gone worker, sent again
	Waiting     sqlite.OutboxWait
}

func (d *Drainer) init() {
	d.once.Do(func() {
		d.limits = newLimiters(d.Policy.Outbox)
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

// drainDue delivers what is due now, a page at a time.
func (d *Drainer) drainDue(ctx context.Context, rep *DrainReport) error {
	n, err := d.Store.RecoverOutbox(ctx, d.Worker.Gone)
	if err != nil {
		return err
	}
	if n > 0 {
		d.Log.Warn().Int("messages", n).Msg("resending messages left in flight by a stopped process")
		rep.Recovered += n
	}
	for {
		rows, err := d.Store.DueOutbox(ctx, d.Now(), d.Worker.Wall(), 200)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return nil
		}
		for _, row := range rows {
			if err := d.deliver(ctx, row, rep); err != nil {
				return err
			}
		}
	}
}

// deliver sends one message; only a storage failure or the end of ctx is an error.
func (d *Drainer) deliver(ctx context.Context, row sqlite.OutboxRow, rep *DrainReport) error {
	log := d.Log.With().Int64("outbox_id", row.ID).Str("kind", row.Kind).Logger()
	person, err := d.Store.PersonByID(ctx, row.PersonID)
	if ledger.ErrorCode(err) == ledger.NotFound {
		rep.Dead++
		return d.Store.OutboxDeadLetter(ctx, row.ID, "the person is no longer in the directory")
	}
	if err != nil {
		return err
	}
	reply, err := bot.UnmarshalReply(row.Payload)
	if err != nil {
		rep.Dead++
		log.Error().Err(err).Msg("unreadable outbox message")
		return d.Store.OutboxDeadLetter(ctx, row.ID, err.Error())
	}
	if err := d.limits.wait(ctx, person); err != nil {
		return err
	}
	claimed, err := d.Store.ClaimOutbox(ctx, row.ID, d.Worker.Owner)
	if err != nil || !claimed {
		return err
	}
	var landed bot.Delivery
	sendCtx := bot.WithDeliveryRecorder(ctx, func(dl bot.Delivery) { landed = dl })
	timeout := d.SendTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	sendCtx, cancel := context.WithTimeout(sendCtx, timeout)
	err = d.Notifier.Direct(sendCtx, person, reply)
	cancel()
	// The outcome is recorded even when ctx has just ended: the platform has answered.
	store := context.WithoutCancel(ctx)
	var retry *bot.RetryAfterError
	switch {
	case err == nil:
		rep.Sent++
		return d.Store.OutboxSentTo(store, row.ID, sqlite.Delivered(landed), d.Now())
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
		d.limits.pause(person, time.Now().Add(retry.After))
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

// limiters keeps the platforms' rates: Slack one message per second per channel (a DM is
// its own channel) and the policy's per-workspace cap; Teams per conversation. A 429
// pauses the whole platform for as long as it asked.
type limiters struct {
	mu        sync.Mutex
	cfg       policy.OutboxPolicy
	workspace *rate.Limiter
	channels  map[string]*channelLimit
	paused    map[string]time.Time
}

type channelLimit struct {
	lim  *rate.Limiter
	used time.Time
}

func newLimiters(cfg policy.OutboxPolicy) *limiters {
	return &limiters{cfg: cfg, workspace: rate.NewLimiter(rate.Limit(float64(cfg.SlackPerWorkspacePerMinute)/60), 1),
		channels: map[string]*channelLimit{}, paused: map[string]time.Time{}}
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

// maxIdleChannels bounds the per-channel limiters kept; an idle one is full again after a
// second, so forgetting it changes nothing.
const maxIdleChannels = 10_000

func (l *limiters) wait(ctx context.Context, p ledger.Person) error {
	platform, channel := platformOf(p)
	if platform == "" {
		return nil
	}
	l.mu.Lock()
	until := l.paused[platform]
	key := platform + ":" + channel
	c, ok := l.channels[key]
	if !ok {
		if len(l.channels) >= maxIdleChannels {
			for k, v := range l.channels {
				if time.Since(v.used) > 2*time.Second {
					delete(l.channels, k)
				}
			}
		}
		perSecond := l.cfg.SlackPerChannelPerSecond
		if platform == "teams" {
			perSecond = l.cfg.TeamsPerConversationPerSecond
		}
		c = &channelLimit{lim: rate.NewLimiter(rate.Limit(perSecond), 1)}
		l.channels[key] = c
	}
	c.used = time.Now()
	l.mu.Unlock()
	if d := time.Until(until); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	if err := c.lim.Wait(ctx); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if platform == "slack" {
		if err := l.workspace.Wait(ctx); err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
	}
	return nil
}

// pause holds every message to p's platform until the wall-clock time until.
func (l *limiters) pause(p ledger.Person, until time.Time) {
	platform, _ := platformOf(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if until.After(l.paused[platform]) {
		l.paused[platform] = until
	}
}
