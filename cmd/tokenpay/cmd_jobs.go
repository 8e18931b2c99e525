package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/console"
	slackbot "github.com/tokenpay/tokenpay/bot/slack"
	"github.com/tokenpay/tokenpay/bot/teams"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/nudges"
)

// nudgesService is what the scheduled jobs do, over db. With a handler, the expiry job also
// updates the approval messages of the requests it expires.
func (a *app) nudgesService(db ledger.Store, pol *policy.Policy, handler *bot.Handler) *nudges.Service {
	ing := newIngestor(db, pol, a.now)
	ing.Log, ing.OnBound = a.log, a.quarantineBound
	s := &nudges.Service{Store: db, Policy: pol, Tips: a.promptLibrary(db, pol), Ingestor: ing, Log: a.log,
		DashboardURL: a.publicURL()}
	if handler != nil {
		s.RefreshApproval = handler.RefreshApproval
	}
	return s
}

// outbound reaches people on every platform whose credentials allow sending, through the
// returned router and the handler behind it. Unlike serve it needs no signing secret or
// listener: `jobs run` only sends.
func (a *app) outbound(db ledger.Store, pol *policy.Policy) (*bot.Router, *bot.Handler, map[string]*bot.Budget) {
	get := a.getenv
	router := &bot.Router{Platforms: map[string]bot.Notifier{}, Order: []string{slackbot.Platform, teams.Platform}}
	handler := a.newHandler(db, pol, router)
	budgets := nudges.Budgets(pol.Outbox)
	if token := get("SLACK_BOT_TOKEN"); token != "" {
		app := slackbot.New(slackbot.Config{BotToken: token, APIURL: get("SLACK_API_URL"),
			ApprovalsChannel: pol.Slack.ApprovalsChannel}, handler, db, a.log)
		// A token Slack uninstalled or revoked sends nothing, whichever process saw it.
		if err := app.Restore(context.Background()); err != nil {
			a.log.Error().Err(err).Msg("could not read whether Slack delivery was stopped")
		}
		app.Budget = budgets[slackbot.Platform]
		router.Platforms[slackbot.Platform] = app
	}
	if id, password := get("TEAMS_APP_ID"), get("TEAMS_APP_PASSWORD"); id != "" && password != "" {
		router.Platforms[teams.Platform] = teams.New(teams.Config{AppID: id, AppPassword: password, TenantID: get("TEAMS_TENANT_ID"),
			MetadataURL: get("TEAMS_OPENID_METADATA_URL"), TokenURL: get("TEAMS_OAUTH_TOKEN_URL")}, handler, db, a.log)
	}
	return router, handler, budgets
}

// newWorker names this process for heartbeats, job runs and messages in flight: host,
// pid, pid namespace and a random part, unique across machines (nudges.NewWorker).
func (a *app) newWorker(db ledger.Store) *nudges.Worker {
	w := nudges.NewWorker(db, a.log)
	w.StaleAfter = a.replicaTimeout
	return w
}

// startNudges runs the scheduler and the outbox under serve until ctx ends; wait on the
// returned group after cancelling it.
func (s *server) startNudges(ctx context.Context, p *platforms) *sync.WaitGroup {
	a := s.app
	worker := a.newWorker(s.db)
	drainer := &nudges.Drainer{Store: s.db, Policy: s.pol, Notifier: p.router, Worker: worker, Now: a.now, Log: a.log, Budgets: p.budgets,
		Unreachable: func(p ledger.Person, _ bot.Reply) {
			a.log.Debug().Str("person", p.Email).Msg("message not sent: the person is on no configured chat platform")
		}}
	sched := &nudges.Scheduler{Policy: s.pol, Store: s.db, Worker: worker, Job: a.jobFunc(s.db, s.pol, p.handler, s.connMetrics), Now: a.now,
		Log: a.log, Ran: func(nudges.Outcome) { drainer.Wake() }}
	// Before serve says it is ready, so a process stopped at once has still recorded its
	// first start.
	if err := sched.SkipFirst(ctx); err != nil && ctx.Err() == nil {
		a.log.Error().Err(err).Msg("scheduler start")
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){worker.Run, sched.Loop, drainer.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}
	return &wg
}

func (a *app) jobsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "Run scheduled jobs by hand and see when they ran"}
	var at string
	run := &cobra.Command{
		Use:   "run NAME",
		Short: "Run one job as if at a time, deliver what it queued, and say what is still waiting",
		Long: "Run one job (" + strings.Join(policy.Jobs(), ", ") + ") for the schedule slot at or before the given time.\n" +
			"A slot that already ran is not run again. Queued messages are delivered before the command returns;\n" +
			"messages held for quiet hours are listed. People on no chat platform get their message printed here.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(policy.Jobs(), args[0]) {
				return usageError(fmt.Sprintf("unknown job %q; jobs: %s", args[0], strings.Join(policy.Jobs(), ", ")))
			}
			if at != "" {
				t, err := time.Parse(time.RFC3339, at)
				if err != nil {
					return usageError(fmt.Sprintf("--at %q is not an RFC 3339 time such as 2026-11-23T09:00:00Z", at))
				}
				a.now = func() time.Time { return t }
			}
			return a.runJob(cmd.Context(), args[0])
		},
	}
	run.Flags().StringVar(&at, "at", "", "run as if at this RFC 3339 time (default: now, or $TOKENPAY_NOW)")
	list := &cobra.Command{
		Use:   "list",
		Short: "Show each job's schedule, last run and next run, and the outbox",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.requireDB(); err != nil {
				return err
			}
			return a.listJobs(cmd.Context())
		},
	}
	cmd.AddCommand(run, list)
	return cmd
}

func (a *app) runJob(ctx context.Context, job string) error {
	db, pol, err := a.env(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := a.promptLibrary(db, pol).Seed(ctx); err != nil {
		return err
	}
	// A job run by hand can grant (period-reset) and message everyone: it is attributed.
	if err := db.Audit(ctx, a.actor(), "jobs.run", job, "as of "+a.now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	worker := a.newWorker(db)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		worker.Run(ctx)
	}()
	defer func() {
		cancel()
		<-beating
	}()
	router, handler, budgets := a.outbound(db, pol)
	sched := &nudges.Scheduler{Policy: pol, Store: db, Worker: worker, Job: a.jobFunc(db, pol, handler, nil), Now: a.now, Log: a.log}
	out, err := sched.RunJob(ctx, job, a.now())
	if err != nil {
		return err
	}
	loc := pol.Location()
	switch out.Claim {
	case ledger.ClaimDone:
		fmt.Fprintf(a.stdout, "%s for %s already ran (%s): %s\nNothing to run again.\n", job, out.Run.Key, out.Previous.Status, out.Previous.Result)
	case ledger.ClaimBusy:
		fmt.Fprintf(a.stdout, "%s for %s is being run by another process (%s, started %s).\n", job, out.Run.Key, out.Previous.Owner,
			out.Previous.StartedAt.In(loc).Format(time.DateTime))
	default:
		fmt.Fprintf(a.stdout, "Ran %s for %s as of %s: %s\n", job, out.Run.Key, out.Run.At.In(loc).Format("2006-01-02 15:04 MST"), out.Result)
	}
	// The drainer delivers several messages at once; each printed one is printed whole.
	var printing sync.Mutex
	drainer := &nudges.Drainer{Store: db, Policy: pol, Notifier: router, Worker: worker, Now: a.now, Log: a.log, Budgets: budgets,
		Unreachable: func(p ledger.Person, r bot.Reply) {
			text, _ := console.Render(r, 1)
			printing.Lock()
			defer printing.Unlock()
			fmt.Fprintf(a.stdout, "\n── To %s <%s>, who is on no configured chat platform ──\n%s", p.Name, p.Email, text)
		}}
	rep, err := drainer.Drain(ctx)
	if err != nil {
		return err
	}
	a.printDrain(rep, loc)
	return nil
}

func (a *app) printDrain(rep nudges.DrainReport, loc *time.Location) {
	var done []string
	if rep.Recovered > 0 {
		done = append(done, fmt.Sprintf("%d left in flight by a stopped process were sent again", rep.Recovered))
	}
	done = append(done, fmt.Sprintf("delivered %d", rep.Sent))
	if rep.Unreachable > 0 {
		done = append(done, fmt.Sprintf("%d printed above (no chat platform)", rep.Unreachable))
	}
	if rep.RateLimited > 0 {
		done = append(done, fmt.Sprintf("%d delayed by platform rate limits", rep.RateLimited))
	}
	if rep.Dead > 0 {
		done = append(done, fmt.Sprintf("%d given up after failed attempts", rep.Dead))
	}
	fmt.Fprintf(a.stdout, "Outbox: %s.\n", strings.Join(done, ", "))
	w := rep.Waiting
	if w.Held == 0 && w.InFlight == 0 && w.Retrying == 0 {
		fmt.Fprintln(a.stdout, "Nothing is waiting.")
		return
	}
	if w.Held > 0 {
		fmt.Fprintf(a.stdout, "Waiting: %d held for %s, the first until %s; serve sends them then.\n", w.Held, w.HoldReason,
			w.HeldUntil.In(loc).Format("2006-01-02 15:04 MST"))
	}
	if w.InFlight > 0 {
		fmt.Fprintf(a.stdout, "Waiting: %d being delivered by another tokenpay process.\n", w.InFlight)
	}
	if w.Retrying > 0 {
		fmt.Fprintf(a.stdout, "Waiting: %d to retry after a failure, the first at %s.\n", w.Retrying, w.RetryAt.Local().Format(time.DateTime))
	}
}

func (a *app) listJobs(ctx context.Context) error {
	db, pol, err := a.env(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	runs, err := db.LatestJobRuns(ctx)
	if err != nil {
		return err
	}
	loc := pol.Location()
	now := a.now()
	sched := &nudges.Scheduler{Policy: pol, Store: db}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tSCHEDULE\tLAST RUN\tSTATUS\tNEXT RUN\tRESULT")
	const when = "2006-01-02 15:04"
	for _, job := range policy.Jobs() {
		expr, _ := pol.Schedule(job)
		next, err := sched.Next(job, now)
		if err != nil {
			return err
		}
		last, status, result := "never", "", ""
		if r, ok := runs[job]; ok {
			last, status, result = r.Slot.In(loc).Format(when), r.Status, r.Result
			if r.Status == ledger.JobFailed {
				result = r.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", job, expr, last, status, next.In(loc).Format(when), result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	forever := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	counts, err := db.OutboxCounts(ctx, time.Time{}, forever)
	if err != nil {
		return err
	}
	w, err := db.OutboxWaiting(ctx, now, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nTimes in %s. Outbox: %d pending (%d held for quiet hours), %d sent, %d given up, %d with no chat platform.\n",
		loc, counts[ledger.OutboxPending]+counts[ledger.OutboxSending], w.Held, counts[ledger.OutboxSent], counts[ledger.OutboxDead],
		counts[ledger.OutboxUnreachable])
	return nil
}

// segmentJSON is the --json output of `tokenpay segments`.
type segmentJSON struct {
	At       time.Time           `json:"at"`
	Period   string              `json:"period"`
	DaysLeft int                 `json:"days_left"`
	Counts   map[string]int      `json:"counts"`
	Members  map[string][]string `json:"members"`
}

func (a *app) segmentsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "segments",
		Short: "List how many people are in each fluency segment, and who",
		Long: "Segments (thresholds in the policy's segments section): dormant, underuser, heavy-without-gains,\n" +
			"engaged and steady (none of those); hoarding-risk is listed alongside, as it is about the balance.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, pol, err := a.existingEnv(cmd.Context())
			if err != nil {
				return err
			}
			defer db.Close()
			var names []string
			for _, seg := range nudges.Segments() {
				names = append(names, string(seg))
			}
			names = append(names, nudges.HoardingRisk)
			// A page of the directory at a time; what is kept is each member's email and
			// name, the listing's order being by email within a segment.
			type entry struct{ email, name string }
			lists := map[string][]entry{}
			for _, n := range names {
				lists[n] = []entry{}
			}
			counts := map[string]int{}
			people := 0
			snap, err := a.nudgesService(db, pol, nil).EachPage(cmd.Context(), a.now(), func(page []nudges.Member) error {
				for _, m := range page {
					e := entry{m.Person.Email, m.Person.Name}
					lists[string(m.Segment)] = append(lists[string(m.Segment)], e)
					counts[string(m.Segment)]++
					if m.Hoarding {
						lists[nudges.HoardingRisk] = append(lists[nudges.HoardingRisk], e)
						counts[nudges.HoardingRisk]++
					}
				}
				people += len(page)
				return nil
			})
			if err != nil {
				return err
			}
			for _, list := range lists {
				slices.SortFunc(list, func(x, y entry) int { return strings.Compare(x.email, y.email) })
			}
			if asJSON {
				members := map[string][]string{}
				for n, list := range lists {
					emails := make([]string, len(list))
					for i, e := range list {
						emails[i] = e.email
					}
					members[n] = emails
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(segmentJSON{At: snap.At, Period: pol.PeriodKey(snap.At), DaysLeft: snap.DaysLeft(), Counts: counts, Members: members})
			}
			fmt.Fprintf(a.stdout, "Segments on %s (period %s, %s left), %s:\n", snap.At.In(pol.Location()).Format("2006-01-02 15:04 MST"),
				pol.PeriodKey(snap.At), count(snap.DaysLeft(), "day", "days"), count(people, "person", "people"))
			for _, n := range names {
				fmt.Fprintf(a.stdout, "\n%s: %s (%s)\n", n, ledger.FormatCredits(int64(len(lists[n]))), nudges.SegmentLabel(n))
				for _, e := range lists[n] {
					fmt.Fprintf(a.stdout, "  %s <%s>\n", e.name, e.email)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: counts and member emails by segment")
	return cmd
}
