package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// demoPolicy is written beside the demo database so that console and serve see the same
// admins, limits and model weights.
const demoPolicy = `# Policy of the tokenpay demo organisation (written by 'tokenpay demo').
org:
  name: Northwind Advisory
  time_zone: Europe/London
baseline:
  default: 400000
  rules:
    - {role: engineer, amount: 600000}
    - {role: manager, amount: 300000}
rollover:
  max: 100000
unlock:
  manager_limit: 500000
  max_request: 3000000
  expires_after: 168h
models:
  default: {input: 1, output: 4}
  weights:
    large: {input: 1, output: 4}
    small: {input: 0.2, output: 0.8}
admins: [hana.okafor@northwind.example]
`

// demoAdmin is the demo's admin, named in demoPolicy.
const demoAdmin = "hana.okafor@northwind.example"

// demoMarker in the audit log tells a demo database from a real one, so that running
// the demo again may replace the file but never a real ledger.
const demoMarker = "demo.created"

func (a *app) demoCommand() *cobra.Command {
	var dbFlag string
	cmd := &cobra.Command{
		Use:   "demo [--db FILE]",
		Short: "Create a fresh demo organisation with a month of usage, then show what to try",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := dbFlag
			if path == "" {
				path = "tokenpay-demo.db"
			}
			if isPostgresDSN(path) {
				return usageError("the demo makes its own SQLite file, which it replaces on each run; pass --db a file name, not a PostgreSQL URL")
			}
			return a.runDemo(cmd.Context(), path)
		},
	}
	// A local flag: the demo must not pick up TOKENPAY_DB and overwrite a real ledger.
	cmd.Flags().StringVar(&dbFlag, "db", "", "demo database file (default tokenpay-demo.db)")
	return cmd
}

// demoPerson is one person of the demo organisation and the story they tell.
type demoPerson struct {
	rec ledger.PersonRecord
	// behavior is how they use AI: adopter (steady use, outcomes logged: engaged), light
	// (barely: underuser), dormant (used it last month, not for weeks), heavy (a lot, no
	// outcomes logged), steady (regular use, no outcomes logged yet).
	behavior string
	// joined is when they joined the organisation: before any usage they have. Most joined
	// long ago; a few during the last period or this one, so prorating shows.
	joined time.Time
	// quietFrom is when a dormant person stopped using AI.
	quietFrom time.Time
}

var (
	demoFirst = []string{"Maya", "Leo", "Aisha", "Tom", "Priya", "Jonas", "Sofia", "Kenji", "Amara", "Luca", "Nina", "Omar",
		"Elena", "Sam", "Ines", "Ravi", "Chloe", "Mateo", "Zara", "Felix", "Lena", "Ade", "Yuki", "Noah"}
	demoLast = []string{"Chen", "Garcia", "Khan", "Muller", "Silva", "Novak", "Osei", "Rossi", "Tanaka", "Dubois", "Haddad",
		"Kowalski", "Nilsen", "Patel", "Moreau", "Ivanova", "Costa", "Lindqvist", "Mensah", "Sato"}
	demoTeams = []struct{ name, role string }{
		{"Research", "analyst"}, {"Engineering", "engineer"}, {"Client Services", "consultant"},
		{"Design", "designer"}, {"Sales", "sales"}, {"Operations", "operations"}, {"People", "hr"},
	}
)

func demoOrg(rng *rand.Rand) []demoPerson {
	email := func(first, last string) string {
		return strings.ToLower(first + "." + last + "@northwind.example")
	}
	used := map[string]bool{}
	person := func(team, role, manager string) ledger.PersonRecord {
		for {
			f, l := demoFirst[rng.IntN(len(demoFirst))], demoLast[rng.IntN(len(demoLast))]
			e := email(f, l)
			if !used[e] {
				used[e] = true
				return ledger.PersonRecord{Email: e, Name: f + " " + l, Team: team, Role: role, ManagerEmail: manager}
			}
		}
	}
	ceo := ledger.PersonRecord{Email: "ruth.adeyemi@northwind.example", Name: "Ruth Adeyemi", Team: "Leadership", Role: "manager"}
	admin := ledger.PersonRecord{Email: demoAdmin, Name: "Hana Okafor", Team: "People", Role: "hr", ManagerEmail: ceo.Email}
	used[ceo.Email], used[admin.Email] = true, true
	people := []demoPerson{{rec: ceo, behavior: "steady"}, {rec: admin, behavior: "adopter"}}
	for _, t := range demoTeams {
		mgr := person(t.name, "manager", ceo.Email)
		people = append(people, demoPerson{rec: mgr, behavior: "adopter"})
		for i := 0; i < 17; i++ {
			people = append(people, demoPerson{rec: person(t.name, t.role, mgr.Email)})
		}
	}
	// The story in numbers, for the 119 people outside leadership: a third engaged, a
	// quarter barely using their allowance, some dormant, a few heavy users without
	// outcomes, the rest steady. Shuffled, so every team has some of each.
	staff := []int{}
	for i, p := range people {
		if p.behavior == "" {
			staff = append(staff, i)
		}
	}
	rng.Shuffle(len(staff), func(i, j int) { staff[i], staff[j] = staff[j], staff[i] })
	quota := []struct {
		behavior string
		n        int
	}{{"adopter", 38}, {"light", 30}, {"dormant", 10}, {"heavy", 9}}
	k := 0
	for _, q := range quota {
		for range q.n {
			people[staff[k]].behavior = q.behavior
			k++
		}
	}
	for _, i := range staff[k:] {
		people[i].behavior = "steady"
	}
	for i := range people {
		people[i].rec.Line = i + 2
	}
	return people
}

// demoJoinDates gives everyone a join date before the usage they have: leadership and
// managers years ago, most people months or years ago, and a few recent joiners during
// the last period and this one (never later than an hour before now). Dormant people
// stop using AI between 16 and 30 days before now.
func demoJoinDates(people []demoPerson, prevStart, start, now time.Time, rng *rand.Rand) {
	recent := 0
	for i := range people {
		p := &people[i]
		day := 24 * time.Hour
		switch {
		// Managers join before their reports, so each import finds the manager it names.
		case p.rec.ManagerEmail == "":
			p.joined = prevStart.Add(-1600 * day)
		case p.rec.Role == "manager" || p.rec.Email == demoAdmin:
			p.joined = prevStart.Add(-time.Duration(700+rng.IntN(800)) * day)
		case recent < 6 && p.behavior != "dormant" && rng.IntN(8) == 0:
			// Half in the last period, half in this one when it is old enough.
			from, to := prevStart.Add(3*day), start.Add(-3*day)
			if recent%2 == 1 && now.Sub(start) > 4*day {
				from, to = start.Add(day), now.Add(-2*day)
			}
			p.joined = from.Add(time.Duration(rng.Int64N(int64(to.Sub(from)))))
			recent++
		default:
			p.joined = prevStart.Add(-time.Duration(30+rng.IntN(660)) * day)
		}
		p.joined = p.joined.Truncate(time.Hour).Add(9 * time.Hour)
		if p.behavior == "dormant" {
			p.quietFrom = now.Add(-time.Duration(16+rng.IntN(15)) * day)
		}
	}
}

var demoImpacts = []string{
	"Summarised 30 customer interviews into five themes for the research readout",
	"Drafted the first version of the client proposal, then edited it by hand",
	"Reviewed a pull request with AI help and caught a missing error check",
	"Turned the weekly ops numbers into a one-page brief for leadership",
	"Cleaned up meeting notes into decisions and owners in ten minutes",
	"Built a reusable prompt for first-pass slide outlines",
}

var demoUseCases = []string{
	"Analyse three years of support tickets to find the top causes of churn for the Q3 review",
	"Generate first drafts of 12 client case studies from interview transcripts",
	"Automate the weekly pipeline summary for the sales leadership meeting",
	"Prototype test generation for the billing service before the migration",
	"Synthesise the employee survey comments into themes for the people team",
}

func (a *app) runDemo(ctx context.Context, path string) error {
	started := time.Now()
	if err := removeOldDemo(ctx, path); err != nil {
		return err
	}
	pol, err := policy.Parse(strings.NewReader(demoPolicy))
	if err != nil {
		return fmt.Errorf("demo policy: %w", err)
	}
	policyPath := strings.TrimSuffix(path, filepath.Ext(path)) + ".policy.yaml"
	if err := os.WriteFile(policyPath, []byte(demoPolicy), 0o644); err != nil {
		return fmt.Errorf("write demo policy: %w", err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()

	now := a.now()
	clock := now
	db.SetNow(func() time.Time { return clock })
	rng := rand.New(rand.NewPCG(2026, 11))
	people := demoOrg(rng)
	// A month of history: the previous period in full, then this one up to now, each
	// opened by the same reset the scheduler runs.
	prevStart := pol.PeriodStart(pol.PeriodStart(now).Add(-time.Hour))
	demoJoinDates(people, prevStart, pol.PeriodStart(now), now, rng)
	slices.SortStableFunc(people, func(x, y demoPerson) int { return x.joined.Compare(y.joined) })
	for i := range people {
		people[i].rec.Line = i + 2
	}
	// joinUntil adds everyone who joined by t, each on their own date (the directory
	// records when a person was first imported), and opens the period for them.
	joinedSoFar := 0
	joinUntil := func(t time.Time) error {
		for joinedSoFar < len(people) && !people[joinedSoFar].joined.After(t) {
			clock = people[joinedSoFar].joined
			recs := make([]ledger.PersonRecord, 0, joinedSoFar+1)
			for _, p := range people[:joinedSoFar+1] {
				recs = append(recs, p.rec)
			}
			if _, err := db.ImportPeople(ctx, recs); err != nil {
				return fmt.Errorf("demo directory: %w", err)
			}
			if !clock.Before(prevStart) {
				if _, err := period.Reset(ctx, db, pol, clock); err != nil {
					return err
				}
			}
			joinedSoFar++
		}
		return nil
	}
	if err := joinUntil(prevStart); err != nil {
		return err
	}
	clock = prevStart
	if err := db.Audit(ctx, "demo", demoMarker, path, ""); err != nil {
		return err
	}
	ing := &usage.Ingestor{Store: db, Policy: pol, Now: func() time.Time { return clock }, Credits: func(m string, in, out int64) (int64, error) {
		return pol.WeightFor(m).Credits(in, out)
	}, Period: func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) }}
	events := 0
	for _, start := range []time.Time{prevStart, pol.PeriodStart(now)} {
		clock = start
		if _, err := period.Reset(ctx, db, pol, start); err != nil {
			return err
		}
		end := pol.PeriodEnd(start)
		if now.Before(end) {
			end = now
		}
		n, err := demoUsage(ctx, ing, people, pol, start, end, rng, &clock, joinUntil)
		if err != nil {
			return err
		}
		events += n
	}
	if err := joinUntil(now); err != nil {
		return err
	}
	clock = now
	if err := demoImpactsAndRequests(ctx, db, pol, a, people, rng, &clock); err != nil {
		return err
	}
	if v, err := db.Verify(ctx); err != nil || len(v) > 0 {
		return fmt.Errorf("demo ledger failed verification: %v %v", err, v)
	}

	run := commandPrefix()
	fmt.Fprintf(a.stdout, "Demo organisation ready in %.1fs: %s\n", time.Since(started).Seconds(), path)
	fmt.Fprintf(a.stdout, "  %d people in %d teams, %s usage events over two periods, pending and decided unlock requests.\n",
		len(people), len(demoTeams)+1, ledger.FormatCredits(int64(events)))
	// Someone engaged in Research to play first, and their manager.
	adopter, manager := "", ""
	for _, p := range people {
		if p.rec.Role == "manager" && p.rec.Team == "Research" {
			manager = p.rec.Email
		}
		if adopter == "" && p.rec.Team == "Research" && p.rec.Role != "manager" && p.behavior == "adopter" && p.joined.Before(prevStart) {
			adopter = p.rec.Email
		}
	}
	fmt.Fprintf(a.stdout, `
Try it in the terminal (no Slack or Teams needed):
  %[1]s console --db %[2]s --policy %[3]s --as %[4]s
    balance                       your allowance as a bar
    request 50k summarise the Q3 interviews for the readout
    :as %[5]s      switch to their manager, who sees the request
    1                             press button [1]: Approve
    :as %[4]s
    balance                       the unlock is there

  As a manager (their team's use, requests to decide, outcomes to validate):
  %[1]s console --db %[2]s --policy %[3]s --as %[5]s
    team
  As the admin (requests above the manager limit, the allocation report):
  %[1]s console --db %[2]s --policy %[3]s --as %[6]s
    team
    admin report

Who is in which fluency segment (underusers, dormant, heavy without outcomes, engaged):
  %[1]s segments --db %[2]s --policy %[3]s

Serve the API, health, metrics and the dashboard on :8080:
  TOKENPAY_DB=%[2]s TOKENPAY_POLICY=%[3]s %[1]s serve
Then open the dashboard as the admin (or anyone: a manager such as %[5]s sees their team),
with a one-time link that works for 10 minutes:
  %[1]s login-link --db %[2]s %[6]s
Check the books:
  %[1]s ledger verify --db %[2]s
`, run, path, policyPath, adopter, manager, pol.Admins[0])
	return nil
}

// commandPrefix is how the reader should invoke tokenpay again: "go run ./cmd/tokenpay"
// when this process was started by go run.
func commandPrefix() string {
	exe, err := os.Executable()
	if err == nil && strings.Contains(exe, "go-build") {
		return "go run ./cmd/tokenpay"
	}
	return "tokenpay"
}

// removeOldDemo deletes a previous demo database at path; any other existing file is
// left alone and reported.
func removeOldDemo(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("%s exists and is not a tokenpay demo database; pass --db with a new file name", path)
	}
	entries, err := db.AuditLog(ctx, 1_000_000)
	db.Close()
	isDemo := false
	for _, e := range entries {
		isDemo = isDemo || e.Action == demoMarker
	}
	if err != nil || !isDemo {
		return fmt.Errorf("%s exists and is not a tokenpay demo database; pass --db with a new file name", path)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove old demo: %w", err)
		}
	}
	return nil
}

// demoUsage posts usage for [start, end) through the real ingestion path, day by day,
// shaped by each person's behaviour.
// joinUntil adds the people who joined by a time; usage is only ever for people already
// in the directory, after they joined.
func demoUsage(ctx context.Context, ing *usage.Ingestor, people []demoPerson, pol *policy.Policy, start, end time.Time, rng *rand.Rand, clock *time.Time,
	joinUntil func(time.Time) error) (int, error) {
	var batch []usage.Item
	total := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := ing.Ingest(ctx, batch)
		if err != nil {
			return err
		}
		for _, r := range res {
			if r.Status != ledger.UsageAccepted {
				return fmt.Errorf("demo usage %s: %s %s", r.EventID, r.Status, r.Reason)
			}
		}
		total += len(batch)
		batch = batch[:0]
		return nil
	}
	loc := pol.Location()
	for day := start.In(loc); day.Before(end); day = day.AddDate(0, 0, 1) {
		if err := flush(); err != nil {
			return total, err
		}
		if err := joinUntil(earliest(day.AddDate(0, 0, 1), end)); err != nil {
			return total, err
		}
		// The gateway reports each day's usage that evening, and never after now.
		*clock = earliest(day.AddDate(0, 0, 1).Add(-time.Minute), end)
		weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
		for i, p := range people {
			var n int
			switch p.behavior {
			case "adopter":
				n = 2 + rng.IntN(4)
			case "heavy":
				n = 3 + rng.IntN(4)
			case "steady", "dormant":
				n = 2 + rng.IntN(3)
			case "light":
				if rng.IntN(8) == 0 {
					n = 1
				}
			}
			if weekend && rng.IntN(4) != 0 {
				n = 0
			}
			for e := 0; e < n; e++ {
				model := "small"
				in, out := 1000+rng.Int64N(6000), 200+rng.Int64N(1200)
				if p.behavior == "heavy" || rng.IntN(3) == 0 {
					model = "large"
				}
				at := day.Add(time.Duration(8+rng.IntN(10))*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
				if !at.Before(end) || !at.After(p.joined) || !at.Before(*clock) || (p.behavior == "dormant" && !at.Before(p.quietFrom)) {
					continue
				}
				batch = append(batch, usage.Item{Event: ledger.UsageEvent{EventID: fmt.Sprintf("demo-%s-%d-%d", day.Format("20060102"), i, e),
					Email: p.rec.Email, Model: model, InputTokens: in, OutputTokens: out, OccurredAt: at, Source: "demo-gateway"}})
				if len(batch) == 500 {
					if err := flush(); err != nil {
						return total, err
					}
				}
			}
		}
	}
	return total, flush()
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func demoImpactsAndRequests(ctx context.Context, db ledger.Store, pol *policy.Policy, a *app, people []demoPerson, rng *rand.Rand, clock *time.Time) error {
	h := &bot.Handler{Store: db, Policy: pol, Now: func() time.Time { return *clock }, Log: a.log}
	if err := a.promptLibrary(db, pol).Seed(ctx); err != nil {
		return err
	}
	byEmail := map[string]ledger.Person{}
	all, err := db.People(ctx)
	if err != nil {
		return err
	}
	for _, p := range all {
		byEmail[p.Email] = p
	}
	now := *clock
	requests := 0
	for _, p := range people {
		if p.behavior != "adopter" || p.rec.ManagerEmail == "" {
			continue
		}
		person := byEmail[p.rec.Email]
		for k := 0; k < 1+rng.IntN(3); k++ {
			*clock = now.Add(-time.Duration(rng.IntN(72)+1) * time.Hour)
			text := fmt.Sprintf("%s --hours %d", demoImpacts[rng.IntN(len(demoImpacts))], 1+rng.IntN(6))
			h.Command(ctx, person, "impact "+text)
		}
		if requests >= 12 || rng.IntN(4) != 0 {
			continue
		}
		requests++
		// Filed at least three hours ago, so the decision two hours later is in the past too.
		*clock = now.Add(-time.Duration(rng.IntN(48)+3) * time.Hour)
		amount := []string{"50k", "100k", "250k", "750k"}[rng.IntN(4)]
		h.Command(ctx, person, fmt.Sprintf("request %s %s", amount, demoUseCases[rng.IntN(len(demoUseCases))]))
		reqs, err := db.RequestsBy(ctx, person.ID, 1)
		if err != nil || len(reqs) == 0 {
			return fmt.Errorf("demo request for %s was not filed: %v", person.Email, err)
		}
		manager := byEmail[p.rec.ManagerEmail]
		*clock = (*clock).Add(2 * time.Hour)
		switch requests % 3 {
		case 1:
			h.Act(ctx, manager, bot.Action{Kind: bot.ActApprove, Value: fmt.Sprint(reqs[0].ID)}, nil)
		case 2:
			h.Act(ctx, manager, bot.Action{Kind: bot.ActDeny, Value: fmt.Sprint(reqs[0].ID)},
				map[string]string{"reason": "Let's start with a smaller pilot and look at the results together."})
		}
	}
	*clock = now
	return nil
}
