package nudges

import (
	"fmt"
	"math"
	"strings"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// Gini returns the Gini coefficient of per-head allocation across teams, each team
// weighted by its headcount: 0 when every team gets the same per head, towards 1 when a
// few teams get everything. Teams without people are left out.
func Gini(teams []ledger.TeamStat) float64 {
	var people, total float64
	for _, t := range teams {
		if t.People > 0 {
			people += float64(t.People)
			total += float64(t.Granted)
		}
	}
	if people == 0 || total <= 0 {
		return 0
	}
	mean := total / people
	var diff float64
	for _, a := range teams {
		for _, b := range teams {
			if a.People > 0 && b.People > 0 {
				diff += float64(a.People) * float64(b.People) * math.Abs(perHead(a)-perHead(b))
			}
		}
	}
	return diff / (2 * people * people * mean)
}

func perHead(t ledger.TeamStat) float64 {
	if t.People == 0 {
		return 0
	}
	return float64(t.Granted) / float64(t.People)
}

// MinLiftGroup is the smallest group, nudged or held out, the lift is computed for: the
// normal approximation behind the interval is poor below it.
const MinLiftGroup = 30

// Lift compares how many underusers became active within a week of a nudge with the
// same share among those held out of nudges.
type Lift struct {
	ledger.LiftCounts
	// Enough is false when either group is under MinLiftGroup; the rest is then zero.
	Enough bool
	// Diff is the difference in activation rates (nudged minus held out), and [Low, High]
	// its 95% interval (difference of proportions, normal approximation).
	Diff, Low, High float64
}

// ComputeLift derives the lift and its interval from the counts.
func ComputeLift(c ledger.LiftCounts) Lift {
	l := Lift{LiftCounts: c}
	if c.Nudged < MinLiftGroup || c.HeldOut < MinLiftGroup {
		return l
	}
	p1 := float64(c.NudgedActive) / float64(c.Nudged)
	p0 := float64(c.HeldOutActive) / float64(c.HeldOut)
	se := math.Sqrt(p1*(1-p1)/float64(c.Nudged) + p0*(1-p0)/float64(c.HeldOut))
	l.Enough, l.Diff = true, p1-p0
	l.Low, l.High = l.Diff-1.96*se, l.Diff+1.96*se
	return l
}

// Text says the lift in one sentence.
func (l Lift) Text() string {
	if !l.Enough {
		return fmt.Sprintf("Not enough data yet: %d nudged and %d held out this period; %d in each group are needed.",
			l.Nudged, l.HeldOut, MinLiftGroup)
	}
	return fmt.Sprintf("%+.0f points (95%% interval %+.0f to %+.0f): %.0f%% of %d nudged were active within a week, against %.0f%% of %d held out.",
		l.Diff*100, l.Low*100, l.High*100, 100*float64(l.NudgedActive)/float64(l.Nudged), l.Nudged,
		100*float64(l.HeldOutActive)/float64(l.HeldOut), l.HeldOut)
}

// AdminReport is the monthly report's content.
type AdminReport struct {
	Org      string
	Period   string // e.g. "October 2026"
	Teams    []ledger.TeamStat
	Gini     float64
	Closing  ledger.Closing
	Lift     Lift
	Dead     int // messages of the period given up on after the policy's attempts
	Attempts int
}

// maxTeamLines keeps the team table within one message on every platform.
const maxTeamLines = 40

// Reply renders the report.
func (a AdminReport) Reply() bot.Reply {
	r := bot.Reply{Header: fmt.Sprintf("tokenpay report for %s: %s", a.Org, a.Period)}
	lines := []string{"*Per team:* people · allocation per head · used · approval rate"}
	for i, t := range a.Teams {
		if i == maxTeamLines {
			lines = append(lines, fmt.Sprintf("…and %d more teams (/tokens admin report lists them all)", len(a.Teams)-maxTeamLines))
			break
		}
		rate := "no decisions"
		if t.Approved+t.Denied > 0 {
			rate = fmt.Sprintf("%d%% of %d", t.Approved*100/(t.Approved+t.Denied), t.Approved+t.Denied)
		}
		name := t.Team
		if name == "" {
			name = "(no team)"
		}
		lines = append(lines, fmt.Sprintf("%s · %d · %s · %s · %s", name, t.People, credits(ledger.SatFloat(perHead(t))), credits(t.Spent), rate))
	}
	c := a.Closing
	r.Blocks = append(r.Blocks,
		&bot.Text{Text: strings.Join(lines, "\n")},
		&bot.Fields{Fields: []bot.Field{
			{Label: "Access across teams (Gini)", Value: fmt.Sprintf("%.2f (0 means every team gets the same per head)", a.Gini)},
			{Label: "Expired unused", Value: fmt.Sprintf("%s credits, back in the reclaimable pool", credits(c.Expired))},
			{Label: "Carried over", Value: credits(c.Carried) + " credits"},
			{Label: "Reclaimed and reallocated", Value: credits(c.Reclaimed) + " credits"},
			{Label: "Hoarding", Value: fmt.Sprintf("%s let most of their credits expire (%s credits)", plural(c.Hoarders, "person", "people"), credits(c.Hoarded))},
			{Label: "Undelivered messages", Value: fmt.Sprintf("%d (after %d attempts each)", a.Dead, a.Attempts)},
		}},
		&bot.Text{Text: "*Nudge lift* (people getting started, nudged against held out): " + a.Lift.Text()},
		&bot.Context{Text: "Teams with little access are a place to invest; expired credits can be reallocated to them with an admin grant from the reclaimed pool."})
	return r
}
