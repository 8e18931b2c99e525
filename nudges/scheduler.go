package nudges

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Run is one run of a job. Slot is the schedule's latest fire time at or before the
// run's time, and names its period (Key); At is the time the run computes as.
type Run struct {
	Job  string
	Key  string
	Slot time.Time
	At   time.Time
}

// JobFunc performs one run and returns a one-line result. It must be idempotent: a run
// whose worker died is run again from the start.
type JobFunc func(ctx context.Context, run Run) (string, error)

// Outcome is what RunJob did.
type Outcome struct {
	Run    Run
	Claim  ledger.Claim
	Result string
	// Previous is the stored run when the period had already run or is running elsewhere.
	Previous ledger.JobRun
}

// Scheduler runs the policy's jobs on their cron schedules in the org's time zone. Each
// run is claimed by (job, slot) in the database first, so a slot runs once however many
// processes share the database, and the latest slot missed while none was running is
// caught up at start.
type Scheduler struct {
	Policy *policy.Policy
	Store  ledger.Store
	Worker *Worker
	Job    JobFunc
	// Now is the business clock (TOKENPAY_NOW in trials).
	Now func() time.Time
	Log zerolog.Logger
	// After waits real time (tests replace it); nil means time.After.
	After func(time.Duration) <-chan time.Time
	// Ran, when set, is called after each successful run (serve wakes the outbox).
	Ran func(Outcome)

	schedules map[string]cron.Schedule
}

// MaxSleep bounds the wait between ticks, so failed runs are retried and a changed
// clock is noticed.
const MaxSleep = time.Minute

// schedule returns a job's parsed schedule, in the org's time zone.
func (s *Scheduler) schedule(job string) (cron.Schedule, error) {
	if sch, ok := s.schedules[job]; ok {
		return sch, nil
	}
	expr, ok := s.Policy.Schedule(job)
	if !ok {
		return nil, fmt.Errorf("unknown job %q (jobs: %v)", job, policy.Jobs())
	}
	sch, err := WallSchedule(expr, s.Policy.Location())
	if err != nil {
		return nil, fmt.Errorf("schedule of %s %q: %w", job, expr, err)
	}
	if s.schedules == nil {
		s.schedules = map[string]cron.Schedule{}
	}
	s.schedules[job] = sch
	return sch, nil
}

// WallSchedule parses a robfig/cron expression (5 fields or a descriptor) to fire on the
// wall clock of loc, correctly on the days clocks change: a slot in the hour skipped when
// clocks spring forward runs once, at the jump (02:30 on the last Sunday of March in Paris
// runs at 03:00 CEST), and a slot in the hour repeated when they fall back runs once, the
// first time that wall time comes (02:30 CEST, not again at 02:30 CET). robfig/cron alone
// skips the first and runs the second twice. "@every" intervals are elapsed time and keep
// their own meaning.
func WallSchedule(expr string, loc *time.Location) (cron.Schedule, error) {
	sch, err := cron.ParseStandard(expr)
	if err != nil {
		return nil, err
	}
	if _, every := sch.(cron.ConstantDelaySchedule); every {
		return sch, nil
	}
	return wallSchedule{wall: sch, loc: loc}, nil
}

// wallSchedule walks the expression's slots as wall times (a UTC-labelled clock, which
// never jumps) and maps each to the instant it first shows in loc, or to the jump when it
// never does. The mapping never goes backwards, so slots stay in order, and two slots that
// map to one instant run once.
type wallSchedule struct {
	wall cron.Schedule
	loc  *time.Location
}

func (s wallSchedule) Next(t time.Time) time.Time {
	lt := t.In(s.loc)
	// Start a little before t's wall time: when clocks fell back, t's wall time is behind
	// slots that already ran, which map to instants before t and are passed over.
	w := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), lt.Nanosecond(), time.UTC).Add(-3 * time.Hour)
	for range 100_000 {
		w = s.wall.Next(w)
		if w.IsZero() {
			return time.Time{}
		}
		if at := policy.WallInstant(w, s.loc); at.After(t) {
			return at
		}
	}
	return time.Time{}
}

// lookbacks are the spans searched for a schedule's latest fire time, shortest first, so
// that frequent schedules cost a few steps and monthly ones are still found.
var lookbacks = []time.Duration{time.Hour, 25 * time.Hour, 8 * 24 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour}

// Slot returns the latest fire time of job at or before at; false when it did not fire
// in the past year.
func (s *Scheduler) Slot(job string, at time.Time) (time.Time, bool, error) {
	sch, err := s.schedule(job)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, back := range lookbacks {
		var last time.Time
		for t := sch.Next(at.Add(-back)); !t.IsZero() && !t.After(at); t = sch.Next(t) {
			last = t
		}
		if !last.IsZero() {
			return last, true, nil
		}
	}
	return time.Time{}, false, nil
}

// Next returns the next fire time of job after at.
func (s *Scheduler) Next(job string, at time.Time) (time.Time, error) {
	sch, err := s.schedule(job)
	if err != nil {
		return time.Time{}, err
	}
	return sch.Next(at), nil
}

// PeriodKey names a slot: its minute in UTC, unambiguous across DST changes.
func PeriodKey(slot time.Time) string { return slot.UTC().Format("2006-01-02T15:04Z") }

// RunJob runs job as if at time at, for the slot at or before at (at itself when the
// schedule never fired in the past year). A slot already done is not run again.
func (s *Scheduler) RunJob(ctx context.Context, job string, at time.Time) (Outcome, error) {
	slot, ok, err := s.Slot(job, at)
	if err != nil {
		return Outcome{}, err
	}
	if !ok {
		slot = at.Truncate(time.Minute)
	}
	run := Run{Job: job, Key: PeriodKey(slot), Slot: slot, At: at}
	return s.run(ctx, run)
}

func (s *Scheduler) run(ctx context.Context, run Run) (Outcome, error) {
	out := Outcome{Run: run}
	if err := s.Worker.Beat(ctx); err != nil {
		return out, err
	}
	claim, prev, err := s.Store.ClaimJobRun(ctx, ledger.JobRun{Job: run.Job, Key: run.Key, Slot: run.Slot, At: run.At,
		Owner: s.Worker.Owner, StartedAt: s.Worker.Wall()}, s.Worker.Gone)
	out.Claim = claim
	if err != nil {
		return out, err
	}
	if claim == ledger.ClaimDone || claim == ledger.ClaimBusy {
		out.Previous = prev
		return out, nil
	}
	log := s.Log.With().Str("job", run.Job).Str("period", run.Key).Logger()
	if claim == ledger.ClaimResumed {
		log.Info().Str("previous_owner", prev.Owner).Int("attempt", prev.Attempts).Msg("resuming job run")
	}
	start := s.Worker.Wall()
	result, err := s.Job(ctx, run)
	if err != nil {
		// Record the failure even when ctx ended, so the next start retries it.
		if ferr := s.Store.FailJobRun(context.WithoutCancel(ctx), run.Job, run.Key, err.Error()); ferr != nil {
			err = errors.Join(err, ferr)
		}
		return out, fmt.Errorf("job %s %s: %w", run.Job, run.Key, err)
	}
	out.Result = result
	if err := s.Store.FinishJobRun(ctx, run.Job, run.Key, result, s.Worker.Wall()); err != nil {
		return out, err
	}
	log.Info().Str("result", result).Dur("took", s.Worker.Wall().Sub(start)).Msg("job run done")
	if s.Ran != nil {
		s.Ran(out)
	}
	return out, nil
}

// Tick runs every job whose latest slot has not run yet: a slot that just came, or the
// one missed while no process was running.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.Now()
	var errs []error
	for _, job := range policy.Jobs() {
		if ctx.Err() != nil {
			break
		}
		slot, ok, err := s.Slot(job, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		run := Run{Job: job, Key: PeriodKey(slot), Slot: slot, At: now}
		// A read first: most ticks find every slot done and need no write.
		if prev, found, err := s.Store.JobRunFor(ctx, job, run.Key); err != nil {
			errs = append(errs, err)
			continue
		} else if found && (prev.Status == ledger.JobDone || prev.Status == ledger.JobSkipped) {
			continue
		}
		if _, err := s.run(ctx, run); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SkipFirst records, for each job that never ran, its latest slot as skipped: a fresh
// install starts with the next slot instead of sending last week's digest at once.
func (s *Scheduler) SkipFirst(ctx context.Context) error {
	if err := s.Worker.Beat(ctx); err != nil {
		return err
	}
	now := s.Now()
	for _, job := range policy.Jobs() {
		slot, ok, err := s.Slot(job, now)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		skipped, err := s.Store.SkipFirstJobRun(ctx, ledger.JobRun{Job: job, Key: PeriodKey(slot), Slot: slot, At: now,
			Owner: s.Worker.Owner, StartedAt: s.Worker.Wall()}, "skipped: before tokenpay's first scheduled start")
		if err != nil {
			return err
		}
		if skipped {
			s.Log.Info().Str("job", job).Str("period", PeriodKey(slot)).Msg("first start: this slot is skipped, the next one runs")
		}
	}
	return nil
}

// Loop catches up, then runs jobs as their slots come until ctx ends. A failing tick is
// logged and the loop goes on. Call SkipFirst before it: a process stopped before its loop
// got going must still have recorded its first start, or a later start would catch up
// slots from before tokenpay ran.
func (s *Scheduler) Loop(ctx context.Context) {
	after := s.After
	if after == nil {
		after = time.After
	}
	for {
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.Log.Error().Err(err).Msg("scheduler tick failed")
		}
		wait := MaxSleep
		now := s.Now()
		for _, job := range policy.Jobs() {
			if next, err := s.Next(job, now); err == nil && !next.IsZero() {
				wait = min(wait, max(next.Sub(now), time.Second))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-after(wait):
		}
	}
}
