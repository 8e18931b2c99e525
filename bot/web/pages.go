package web

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/nudges"
)

// How far back the charts look.
const (
	chartPeriods = 6 // allowance periods
	chartWeeks   = 8 // weekly segment snapshots
)

// Panel is one section of a page: a heading, a headline sentence, and a chart with its
// table and CSV download.
type Panel struct {
	Heading string
	Lead    string
	Chart   *Chart
	CSV     string // URL of the chart's CSV
	// Table, for a panel without a chart, is shown as it is, under Caption.
	Table   *Table
	Caption string
}

// Anchor is the id of the panel's heading: the chart's id, or the heading as a slug.
func (p Panel) Anchor() string {
	if p.Chart != nil {
		return p.Chart.ID + "-h"
	}
	return strings.ToLower(strings.ReplaceAll(p.Heading, " ", "-")) + "-h"
}

// periodRef is one allowance period.
type periodRef struct {
	Key, Name  string
	Start, End time.Time
	Closed     bool // its reset ran: expired credits are known
}

// periods lists the last n periods up to the one holding now, oldest first.
func periods(pol *policy.Policy, now time.Time, n int) []periodRef {
	loc := pol.Location()
	var out []periodRef
	t := now
	for range n {
		start, end := pol.PeriodStart(t), pol.PeriodEnd(t)
		name := start.In(loc).Format("Jan 2006")
		if pol.Period == policy.PeriodWeekly {
			name = start.In(loc).Format("2 Jan")
		}
		out = append(out, periodRef{Key: pol.PeriodKey(t), Name: name, Start: start, End: end, Closed: !end.After(now)})
		t = start.Add(-time.Nanosecond)
	}
	slices.Reverse(out)
	return out
}

// periodFigures is a group's totals in one period.
type periodFigures struct {
	Period                  periodRef
	Granted, Spent, Expired int64
	Logged, Validated       int
	Minutes                 int64
	ByTeam                  map[string]*teamFigures
}

type teamFigures struct {
	People                  int
	Granted, Spent, Expired int64
	Logged, Validated       int
	Minutes                 int64
}

// figures reads the last periods' figures of the people in group (nil: everyone),
// dropping leading periods with nothing in them.
func (s *Server) figures(ctx context.Context, now time.Time, people []ledger.Person, group []int64) ([]periodFigures, error) {
	team := map[int64]string{}
	heads := map[string]int{}
	for _, p := range people {
		team[p.ID] = p.Team
	}
	for _, id := range group {
		heads[team[id]]++
	}
	if group == nil {
		for _, p := range people {
			heads[p.Team]++
		}
	}
	var out []periodFigures
	for _, pr := range periods(s.Policy, now, chartPeriods) {
		rows, err := s.Store.PeriodStats(ctx, pr.Key, pr.Start, pr.End, group...)
		if err != nil {
			return nil, err
		}
		f := periodFigures{Period: pr, ByTeam: map[string]*teamFigures{}}
		for t, n := range heads {
			f.ByTeam[t] = &teamFigures{People: n}
		}
		for _, r := range rows {
			t := f.ByTeam[team[r.PersonID]]
			if t == nil {
				t = &teamFigures{}
				f.ByTeam[team[r.PersonID]] = t
			}
			// Saturating: one absurd figure must not wrap a team's or the organisation's.
			t.Granted, t.Spent, t.Expired = ledger.SatAdd(t.Granted, r.Granted), ledger.SatAdd(t.Spent, r.Spent), ledger.SatAdd(t.Expired, r.Expired)
			t.Logged += r.Logged
			t.Validated += r.Validated
			t.Minutes = ledger.SatAdd(t.Minutes, r.Minutes)
			f.Granted, f.Spent, f.Expired = ledger.SatAdd(f.Granted, r.Granted), ledger.SatAdd(f.Spent, r.Spent), ledger.SatAdd(f.Expired, r.Expired)
			f.Logged += r.Logged
			f.Validated += r.Validated
			f.Minutes = ledger.SatAdd(f.Minutes, r.Minutes)
		}
		if len(out) == 0 && f.Granted == 0 && f.Spent == 0 && f.Logged == 0 {
			continue
		}
		out = append(out, f)
	}
	return out, nil
}

func teamName(t string) string {
	if t == "" {
		return "(no team)"
	}
	return t
}

func sortedTeams(m map[string]*teamFigures) []string {
	var out []string
	for t := range m {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func hoursText(minutes int64) string { return strconv.FormatFloat(float64(minutes)/60, 'f', 1, 64) }

// creditsOverTime is the allocated, used and expired credits of a group per period.
func creditsOverTime(id, who string, figs []periodFigures) *Chart {
	c := &Chart{ID: id, Title: "Credits per period, " + who, Kind: "line", Unit: "credits",
		Series: []Series{{Name: "Allocated"}, {Name: "Used"}, {Name: "Expired"}},
		Table:  Table{Head: []string{"Period", "Allocated", "Used", "Expired"}}}
	for _, f := range figs {
		c.Labels = append(c.Labels, f.Period.Name)
		c.Series[0].Values = append(c.Series[0].Values, float64(f.Granted))
		c.Series[1].Values = append(c.Series[1].Values, float64(f.Spent))
		c.Series[2].Values = append(c.Series[2].Values, float64(f.Expired))
		c.Table.Rows = append(c.Table.Rows, []string{f.Period.Name, itoa(f.Granted), itoa(f.Spent), itoa(f.Expired)})
	}
	if n := len(figs); n > 0 {
		last := figs[n-1]
		c.Desc = fmt.Sprintf("Over %d periods. In %s: %s credits allocated, %s used, %s expired.", n, last.Period.Name,
			credits(last.Granted), credits(last.Spent), credits(last.Expired))
	}
	return c
}

// segmentsOverTime snapshots the segments of a group (nil: everyone) weekly.
func (s *Server) segmentsOverTime(ctx context.Context, id string, now time.Time, group map[int64]bool) (*Chart, *nudges.Snapshot, error) {
	svc := &nudges.Service{Store: s.Store, Policy: s.Policy, Log: s.Log}
	segs := nudges.Segments()
	c := &Chart{ID: id, Title: "Segments week by week", Kind: "stack", Unit: "people"}
	c.Table.Head = []string{"Week of"}
	for _, sg := range segs {
		c.Series = append(c.Series, Series{Name: string(sg)})
		c.Table.Head = append(c.Table.Head, string(sg))
	}
	c.Table.Head = append(c.Table.Head, nudges.HoardingRisk)
	var last *nudges.Snapshot
	loc := s.Policy.Location()
	for k := chartWeeks - 1; k >= 0; k-- {
		at := now.Add(-time.Duration(k) * 7 * 24 * time.Hour)
		snap, err := svc.Segments(ctx, at)
		if err != nil {
			return nil, nil, err
		}
		counts := map[nudges.Segment]int{}
		hoard := 0
		for _, m := range snap.Members {
			if group != nil && !group[m.Person.ID] {
				continue
			}
			counts[m.Segment]++
			if m.Hoarding {
				hoard++
			}
		}
		label := at.In(loc).Format("2 Jan")
		c.Labels = append(c.Labels, label)
		row := []string{label}
		for i, sg := range segs {
			c.Series[i].Values = append(c.Series[i].Values, float64(counts[sg]))
			row = append(row, strconv.Itoa(counts[sg]))
		}
		row = append(row, strconv.Itoa(hoard))
		c.Table.Rows = append(c.Table.Rows, row)
		last = snap
	}
	if len(c.Table.Rows) > 0 {
		r := c.Table.Rows[len(c.Table.Rows)-1]
		c.Desc = fmt.Sprintf("People per segment, weekly over %d weeks. This week: %s dormant, %s underusing, %s heavy without logged gains, %s engaged, %s steady.",
			chartWeeks, r[1], r[2], r[3], r[4], r[5])
	}
	return c, last, nil
}

// requestsChart counts requests filed per period by what became of them, and the median
// time to a decision.
func (s *Server) requestsChart(ctx context.Context, id string, figs []periodFigures, group map[int64]bool) (*Chart, string, error) {
	statuses := []ledger.RequestStatus{ledger.RequestPending, ledger.RequestApproved, ledger.RequestDenied, ledger.RequestExpired, ledger.RequestCancelled}
	names := []string{"Open", "Approved", "Denied", "Expired", "Cancelled"}
	c := &Chart{ID: id, Title: "Unlock requests by outcome, per period filed", Kind: "stack", Unit: "requests",
		Table: Table{Head: []string{"Period", "Open", "Approved", "Denied", "Expired", "Cancelled", "Median hours to decision"}}}
	for _, n := range names {
		c.Series = append(c.Series, Series{Name: n})
	}
	var allWaits []float64
	for _, f := range figs {
		reqs, err := s.Store.RequestsFiled(ctx, f.Period.Start, f.Period.End)
		if err != nil {
			return nil, "", err
		}
		counts := map[ledger.RequestStatus]int{}
		var waits []float64
		for _, r := range reqs {
			if group != nil && !group[r.RequesterID] {
				continue
			}
			counts[r.Status]++
			if r.Status == ledger.RequestApproved || r.Status == ledger.RequestDenied {
				waits = append(waits, r.DecidedAt.Sub(r.CreatedAt).Hours())
			}
		}
		allWaits = append(allWaits, waits...)
		c.Labels = append(c.Labels, f.Period.Name)
		row := []string{f.Period.Name}
		for i, st := range statuses {
			c.Series[i].Values = append(c.Series[i].Values, float64(counts[st]))
			row = append(row, strconv.Itoa(counts[st]))
		}
		row = append(row, medianText(waits))
		c.Table.Rows = append(c.Table.Rows, row)
	}
	lead := "No request has been decided yet."
	if len(allWaits) > 0 {
		lead = fmt.Sprintf("Median time from request to decision: %s hours (over %d).", medianText(allWaits), len(allWaits))
		if len(allWaits) == 1 {
			lead = fmt.Sprintf("Time from request to decision: %s hours (one decision so far).", medianText(allWaits))
		}
	}
	c.Desc = "Requests filed in each period, stacked by what became of them. " + lead
	return c, lead, nil
}

func medianText(v []float64) string {
	if len(v) == 0 {
		return "–"
	}
	v = slices.Clone(v)
	slices.Sort(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return strconv.FormatFloat(m, 'f', 1, 64)
}

// orgData is the organisation page.
type orgData struct {
	Panels []Panel
}

func (s *Server) orgPanels(ctx context.Context) ([]Panel, error) {
	now := s.Now()
	people, err := s.Store.People(ctx)
	if err != nil {
		return nil, err
	}
	figs, err := s.figures(ctx, now, people, nil)
	if err != nil {
		return nil, err
	}
	csv := func(id string) string { return "/dashboard/org/csv/" + id }
	var panels []Panel

	// Per team: the latest closed period shows expiry too; before any reset, this one.
	var shown *periodFigures
	for i := len(figs) - 1; i >= 0 && shown == nil; i-- {
		if figs[i].Period.Closed {
			shown = &figs[i]
		}
	}
	if shown == nil && len(figs) > 0 {
		shown = &figs[len(figs)-1]
	}
	teams := &Chart{ID: "teams", Kind: "hbar", Unit: "credits", Series: []Series{{Name: "Allocated"}, {Name: "Used"}, {Name: "Expired"}},
		Table: Table{Head: []string{"Period", "Team", "People", "Allocated", "Used", "Expired", "Allocated per head"}}}
	if shown != nil {
		teams.Title = "Credits per team, " + shown.Period.Name
		for _, t := range sortedTeams(shown.ByTeam) {
			f := shown.ByTeam[t]
			teams.Labels = append(teams.Labels, teamName(t))
			teams.Series[0].Values = append(teams.Series[0].Values, float64(f.Granted))
			teams.Series[1].Values = append(teams.Series[1].Values, float64(f.Spent))
			teams.Series[2].Values = append(teams.Series[2].Values, float64(f.Expired))
		}
		teams.Desc = fmt.Sprintf("Allocated, used and expired credits of each of %d teams in %s; the table has every period.", len(teams.Labels), shown.Period.Name)
	}
	for _, f := range figs {
		for _, t := range sortedTeams(f.ByTeam) {
			tf := f.ByTeam[t]
			per := int64(0)
			if tf.People > 0 {
				per = tf.Granted / int64(tf.People)
			}
			teams.Table.Rows = append(teams.Table.Rows, []string{f.Period.Name, teamName(t), strconv.Itoa(tf.People), itoa(tf.Granted), itoa(tf.Spent), itoa(tf.Expired), itoa(per)})
		}
	}
	panels = append(panels, Panel{Heading: "Credits per team", Chart: teams, CSV: csv("teams"),
		Lead: "What each team was allocated, used and let expire."})
	panels = append(panels, Panel{Heading: "The organisation over time", Chart: creditsOverTime("org-credits", "whole organisation", figs), CSV: csv("org-credits")})

	segs, snap, err := s.segmentsOverTime(ctx, "segments", now, nil)
	if err != nil {
		return nil, err
	}
	panels = append(panels, Panel{Heading: "Segments over time", Chart: segs, CSV: csv("segments"),
		Lead: "How people use their allowance, week by week: dormant, underusing, heavy without logged gains, engaged, steady."})

	gini := &Chart{ID: "gini", Title: "Gini of access across teams, per period", Kind: "line", Unit: "",
		Series: []Series{{Name: "Gini (0 = equal per head)"}}, Table: Table{Head: []string{"Period", "Gini"}}}
	for _, f := range figs {
		var stats []ledger.TeamStat
		for t, tf := range f.ByTeam {
			stats = append(stats, ledger.TeamStat{Team: t, People: tf.People, Granted: tf.Granted, Spent: tf.Spent})
		}
		g := nudges.Gini(stats)
		gini.Labels = append(gini.Labels, f.Period.Name)
		gini.Series[0].Values = append(gini.Series[0].Values, math.Round(g*100)/100)
		gini.Table.Rows = append(gini.Table.Rows, []string{f.Period.Name, strconv.FormatFloat(g, 'f', 3, 64)})
	}
	giniLead := "No allocation yet."
	if n := len(gini.Table.Rows); n > 0 {
		giniLead = fmt.Sprintf("Gini of allocation per head across teams: %s in %s (0 means every team gets the same per head, 1 that one team gets everything).",
			gini.Table.Rows[n-1][1], gini.Table.Rows[n-1][0])
		if n > 1 {
			prev, _ := strconv.ParseFloat(gini.Table.Rows[n-2][1], 64)
			cur, _ := strconv.ParseFloat(gini.Table.Rows[n-1][1], 64)
			switch {
			case cur > prev+0.005:
				giniLead += " Access became less even than the period before."
			case cur < prev-0.005:
				giniLead += " Access became more even than the period before."
			default:
				giniLead += " About the same as the period before."
			}
		}
	}
	gini.Desc = giniLead
	panels = append(panels, Panel{Heading: "Fairness of access", Lead: giniLead, Chart: gini, CSV: csv("gini")})

	// Hoarding: now, by team (no names: this is about access, never about blame).
	hoard := &Chart{ID: "hoarding", Title: "People at risk of letting credits expire, by team", Kind: "hbar", Unit: "people",
		Series: []Series{{Name: "Hoarding risk now"}}, Table: Table{Head: []string{"Team", "People at risk", "Credits they hold"}}}
	byTeam := map[string][2]int64{}
	total := 0
	if snap != nil {
		for _, m := range snap.Members {
			if m.Hoarding {
				v := byTeam[m.Person.Team]
				v[0]++
				v[1] += m.Activity.Available
				byTeam[m.Person.Team] = v
				total++
			}
		}
	}
	var hteams []string
	for t := range byTeam {
		hteams = append(hteams, t)
	}
	sort.Strings(hteams)
	for _, t := range hteams {
		hoard.Labels = append(hoard.Labels, teamName(t))
		hoard.Series[0].Values = append(hoard.Series[0].Values, float64(byTeam[t][0]))
		hoard.Table.Rows = append(hoard.Table.Rows, []string{teamName(t), itoa(byTeam[t][0]), itoa(byTeam[t][1])})
	}
	seg := s.Policy.Segments
	hoardLead := fmt.Sprintf("%s more than %.0f%% of this period's credits with %d days or fewer left.",
		map[bool]string{true: "1 person holds", false: credits(int64(total)) + " people hold"}[total == 1], seg.HoardingBalanceRatio*100, seg.HoardingDaysLeft)
	if total == 0 {
		hoardLead = fmt.Sprintf("Nobody is at risk now (more than %.0f%% of the period's credits left with %d days or fewer to go).", seg.HoardingBalanceRatio*100, seg.HoardingDaysLeft)
		hoard.Note = "Nobody is at risk now."
	}
	for i := len(figs) - 1; i >= 0; i-- {
		if f := figs[i]; f.Period.Closed {
			cl, err := s.Store.PeriodClosing(ctx, f.Period.Key, f.Period.Start, f.Period.End, seg.HoardingBalanceRatio)
			if err != nil {
				return nil, err
			}
			hoardLead += fmt.Sprintf(" In %s, %s most of their credits expire (%s credits).", f.Period.Name,
				map[bool]string{true: "1 person let", false: credits(int64(cl.Hoarders)) + " people let"}[cl.Hoarders == 1], credits(cl.Hoarded))
			break
		}
	}
	hoard.Desc = hoardLead
	panels = append(panels, Panel{Heading: "Hoarding risks", Lead: hoardLead, Chart: hoard, CSV: csv("hoarding")})

	lift := &Chart{ID: "lift", Title: "Nudge lift against the holdout, per period", Kind: "interval", Unit: "points",
		Table: Table{Head: []string{"Period", "Nudged", "Nudged and active", "Held out", "Held out and active", "Lift (points)", "95% low", "95% high"}}}
	liftLead := ""
	for _, f := range figs {
		counts, err := s.Store.NudgeLift(ctx, f.Period.Start, f.Period.End, now, nudges.ActivationWindow, string(nudges.Dormant), string(nudges.Underuser))
		if err != nil {
			return nil, err
		}
		l := nudges.ComputeLift(counts)
		lift.Intervals = append(lift.Intervals, Interval{Label: f.Period.Name, Mid: l.Diff, Low: l.Low, High: l.High, Missing: !l.Enough})
		row := []string{f.Period.Name, strconv.Itoa(l.Nudged), strconv.Itoa(l.NudgedActive), strconv.Itoa(l.HeldOut), strconv.Itoa(l.HeldOutActive), "", "", ""}
		if l.Enough {
			row[5], row[6], row[7] = fmt.Sprintf("%+.1f", l.Diff*100), fmt.Sprintf("%+.1f", l.Low*100), fmt.Sprintf("%+.1f", l.High*100)
		}
		lift.Table.Rows = append(lift.Table.Rows, row)
		liftLead = f.Period.Name + ": " + l.Text()
	}
	lift.Desc = "Difference in the share of people getting started within a week, nudged minus held out, with its 95% interval. " + liftLead
	if lift.Empty() {
		lift.Note = "Not enough nudged and held-out people yet for an interval."
	}
	panels = append(panels, Panel{Heading: "What nudges change", Lead: liftLead, Chart: lift, CSV: csv("lift")})

	reqs, reqLead, err := s.requestsChart(ctx, "requests", figs, nil)
	if err != nil {
		return nil, err
	}
	pending, err := s.Store.PendingRequests(ctx)
	if err != nil {
		return nil, err
	}
	panels = append(panels, Panel{Heading: "Unlock requests", Lead: fmt.Sprintf("%d open now. %s", len(pending), reqLead), Chart: reqs, CSV: csv("requests")})

	pool, err := s.Store.AccountBalance(ctx, ledger.AccountExpired)
	if err != nil {
		return nil, err
	}
	panels = append(panels, Panel{Heading: "Reclaimable credits",
		Lead: fmt.Sprintf("%s credits expired unused and can be reallocated to a team or a person with an admin grant from the reclaimed pool.", credits(pool))})

	out := &Chart{ID: "outcomes", Kind: "hbar", Unit: "", Series: []Series{{Name: "Outcomes logged"}, {Name: "Validated"}, {Name: "Hours saved"}},
		Table: Table{Head: []string{"Period", "Team", "Credits used", "Outcomes logged", "Validated", "Hours saved", "Hours saved per 100k credits"}}}
	if n := len(figs); n > 0 {
		cur := figs[n-1]
		out.Title = "Outcomes per team, " + cur.Period.Name
		for _, t := range sortedTeams(cur.ByTeam) {
			f := cur.ByTeam[t]
			out.Labels = append(out.Labels, teamName(t))
			out.Series[0].Values = append(out.Series[0].Values, float64(f.Logged))
			out.Series[1].Values = append(out.Series[1].Values, float64(f.Validated))
			out.Series[2].Values = append(out.Series[2].Values, math.Round(float64(f.Minutes)/6)/10)
		}
		out.Desc = fmt.Sprintf("Outcomes logged, validated and hours saved per team in %s: %d logged, %d validated, %s hours saved for %s credits used. The table has every period with the credits used beside.",
			cur.Period.Name, cur.Logged, cur.Validated, hoursText(cur.Minutes), credits(cur.Spent))
	}
	for _, f := range figs {
		for _, t := range sortedTeams(f.ByTeam) {
			tf := f.ByTeam[t]
			per := "–"
			if tf.Spent > 0 {
				per = strconv.FormatFloat(float64(tf.Minutes)/60/(float64(tf.Spent)/100000), 'f', 1, 64)
			}
			out.Table.Rows = append(out.Table.Rows, []string{f.Period.Name, teamName(t), itoa(tf.Spent), strconv.Itoa(tf.Logged), strconv.Itoa(tf.Validated), hoursText(tf.Minutes), per})
		}
	}
	panels = append(panels, Panel{Heading: "Outcomes beside consumption", Chart: out, CSV: csv("outcomes"),
		Lead: "What people report the credits did for them, per team, next to what they used: results, not spend."})

	if s.Connectors != nil {
		list, err := s.Connectors(ctx)
		if err != nil {
			return nil, err
		}
		loc := s.Policy.Location()
		when := func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return t.In(loc).Format("2 Jan 2006 15:04")
		}
		tbl := &Table{Head: []string{"Connector", "Status", "Last run", "Last success", "Last event", "Events", "Credits", "Waiting for a person", "Last error"}}
		failing, working := 0, 0
		for _, c := range list {
			switch c.Status() {
			case "failing":
				failing++
			case "working":
				working++
			}
			tbl.Rows = append(tbl.Rows, []string{c.Name, c.Status(), when(c.LastRunAt), when(c.LastOKAt), when(c.LastEventAt),
				itoa(c.Events), itoa(c.Credits), itoa(c.Quarantined + c.Unmapped), c.LastError})
		}
		panels = append(panels, Panel{Heading: "Connectors' health", Table: tbl, Caption: "Usage connectors",
			Lead: fmt.Sprintf("%d of %d connectors bring usage in; %d failing. Details: tokenpay connectors.", working, len(list), failing)})
	}
	return panels, nil
}

func (s *Server) orgPage(w http.ResponseWriter, r *http.Request) {
	if !viewerOf(r).Admin {
		s.forbidden(w, r, "The organisation's page is for admins. Your own page is under My tokens.")
		return
	}
	panels, err := s.orgPanels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "panels.html", page{Title: "Organisation", Nav: "org", Data: orgData{Panels: panels}})
}

func (s *Server) orgCSV(w http.ResponseWriter, r *http.Request) {
	if !viewerOf(r).Admin {
		s.forbidden(w, r, "The organisation's figures are for admins.")
		return
	}
	panels, err := s.orgPanels(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.csv(w, r, panels)
}
