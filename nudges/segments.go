// Package nudges cultivates fluency: it places people in segments, and runs the scheduled
// jobs that send weekly digests, nudges, heads-ups and the admin report through a durable
// outbox, rate limited per platform.
//
// Everything takes its time as an argument or from an injected clock ("business" time,
// which TOKENPAY_NOW fixes), so a month can be played in a test. Only waiting (rate
// limits, retries, heartbeats) uses the real clock.
package nudges

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Segment is where a person's use of their allowance puts them. Each person is in one of
// these; hoarding risk is reported alongside (it is about the balance, not the use).
type Segment string

const (
	// Dormant: no use in segments.dormant_days (and in the directory at least that long).
	Dormant Segment = "dormant"
	// Underuser: well under the allowance prorated for the part of the period passed.
	Underuser Segment = "underuser"
	// HeavyNoGains: among the top consumers of the window, with little or no logged impact.
	HeavyNoGains Segment = "heavy-without-gains"
	// Engaged: steady use with outcomes logged.
	Engaged Segment = "engaged"
	// Steady: regular use that fits none of the above.
	Steady Segment = "steady"
)

// HoardingRisk names the hoarding flag where segments are listed.
const HoardingRisk = "hoarding-risk"

// Segments lists the segments in display order.
func Segments() []Segment { return []Segment{Dormant, Underuser, HeavyNoGains, Engaged, Steady} }

// Member is one person's place in the segments at a given time.
type Member struct {
	Person   ledger.Person
	Activity ledger.PersonActivity
	Segment  Segment
	// Hoarding: a large share of the period's credits left close to their expiry.
	Hoarding bool
	// Expected is the allowance prorated for the part of the period that has passed
	// (for a joiner, of the part since they joined).
	Expected int64
}

// Used is what the person consumed this period within their balance.
func (m Member) Used() int64 { return ledger.SatSub(m.Activity.SpentPeriod, m.Activity.OveragePeriod) }

// UsedRatio is Used over the period's allowance, in [0, 1].
func (m Member) UsedRatio() float64 {
	total := m.Activity.Allowance()
	if total <= 0 {
		return 0
	}
	return math.Min(1, math.Max(0, float64(m.Used())/float64(total)))
}

// Snapshot is everyone's segment at one time.
type Snapshot struct {
	At          time.Time
	PeriodStart time.Time
	PeriodEnd   time.Time
	// HeavyFrom is the window spend from which a person is among the top consumers
	// (0: nobody is).
	HeavyFrom int64
	Members   []Member
}

// DaysLeft is the number of days, rounded up, until the period ends.
func (s *Snapshot) DaysLeft() int { return daysUntil(s.At, s.PeriodEnd) }

func daysUntil(from, to time.Time) int {
	d := to.Sub(from)
	if d <= 0 {
		return 0
	}
	return int((d + 24*time.Hour - 1) / (24 * time.Hour))
}

// Counts returns how many people are in each segment, and the hoarding flag's count under
// HoardingRisk.
func (s *Snapshot) Counts() map[string]int {
	out := map[string]int{}
	for _, m := range s.Members {
		out[string(m.Segment)]++
		if m.Hoarding {
			out[HoardingRisk]++
		}
	}
	return out
}

// Classifier holds what segmentation needs besides the person: the policy and the time.
type Classifier struct {
	Policy      *policy.Policy
	At          time.Time
	PeriodStart time.Time
	PeriodEnd   time.Time
	HeavyFrom   int64
}

// NewClassifier returns a classifier for the period holding at; heavyFrom comes from
// HeavyThreshold over everyone's activity.
func NewClassifier(pol *policy.Policy, at time.Time, heavyFrom int64) Classifier {
	return Classifier{Policy: pol, At: at, PeriodStart: pol.PeriodStart(at), PeriodEnd: pol.PeriodEnd(at), HeavyFrom: heavyFrom}
}

const day = 24 * time.Hour

// Classify places one person.
//
// Underuse is measured against a steady pace through the period: the allowance spread
// over the period (for a joiner, over the part since they joined). A person is an
// underuser when well under that pace both for the period so far and over the rolling
// window, so that someone who used plenty last week is not flagged on the 1st.
func (c Classifier) Classify(p ledger.Person, a ledger.PersonActivity) Member {
	s := c.Policy.Segments
	window := time.Duration(s.WindowDays) * day
	m := Member{Person: p, Activity: a}
	windowExpected := c.pace(p, a.Allowance(), c.At.Add(-window))
	m.Expected = c.pace(p, a.Allowance(), c.PeriodStart)
	tenure := c.At.Sub(p.JoinedAt)
	quietSince := c.At.Add(-time.Duration(s.DormantDays) * day)
	switch {
	case tenure >= time.Duration(s.DormantDays)*day && a.LastUse.Before(quietSince):
		m.Segment = Dormant
	case m.Expected > 0 && float64(a.SpentPeriod) < s.UnderuserRatio*float64(m.Expected) &&
		float64(a.SpentWindow) < s.UnderuserRatio*float64(windowExpected):
		m.Segment = Underuser
	case c.HeavyFrom > 0 && a.SpentWindow >= c.HeavyFrom && a.ImpactsWindow <= s.HeavyMaxImpacts:
		m.Segment = HeavyNoGains
	case a.SpentWindow > 0 && a.ImpactsWindow >= s.EngagedMinImpacts:
		m.Segment = Engaged
	default:
		m.Segment = Steady
	}
	// Hoarding: most of the credits left close to expiry, by someone who had the time to
	// use them (a steady pace would have spent more than what they hold back), so that
	// a joiner of last week is not counted.
	total := float64(a.Allowance())
	m.Hoarding = total > 0 && c.PeriodEnd.Sub(c.At) <= time.Duration(s.HoardingDaysLeft)*day &&
		float64(a.Available) > s.HoardingBalanceRatio*total && float64(m.Expected) >= (1-s.HoardingBalanceRatio)*total
	return m
}

// pace is what a steady pace would have used of allowance between from and At: the
// allowance spread evenly over the period, or over the part of it since the person
// joined. Time before the period or before joining counts for nothing.
func (c Classifier) pace(p ledger.Person, allowance int64, from time.Time) int64 {
	start := c.PeriodStart
	if p.JoinedAt.After(start) {
		start = p.JoinedAt
	}
	if from.Before(start) {
		from = start
	}
	span := c.PeriodEnd.Sub(start)
	elapsed := c.At.Sub(from)
	if span <= 0 || elapsed <= 0 || allowance <= 0 {
		return 0
	}
	if elapsed >= span {
		return allowance
	}
	return ledger.SatFloat(float64(allowance) * float64(elapsed) / float64(span))
}

// HeavyThreshold returns the window spend that puts a person among the top percent of
// consumers (of everyone in the directory); 0 when nobody qualifies.
func HeavyThreshold(acts []ledger.PersonActivity, percent int) int64 {
	var spends []int64
	for _, a := range acts {
		if a.SpentWindow > 0 {
			spends = append(spends, a.SpentWindow)
		}
	}
	return heavyThreshold(len(acts), spends, percent)
}

// heavyThreshold is HeavyThreshold over people people, of whom those with a positive
// window spend spent spends (in any order; sorted in place).
func heavyThreshold(people int, spends []int64, percent int) int64 {
	n := int(math.Ceil(float64(people) * float64(percent) / 100))
	if n == 0 || len(spends) == 0 {
		return 0
	}
	slices.Sort(spends)
	slices.Reverse(spends)
	return spends[min(n, len(spends))-1]
}

// DefaultPageSize is how many people a job or a listing reads and places at a time.
const DefaultPageSize = 2000

func (s *Service) pageSize() int {
	if s.PageSize > 0 {
		return s.PageSize
	}
	return DefaultPageSize
}

func (s *Service) window(at time.Time) ledger.ActivityWindow {
	pol := s.Policy
	return ledger.ActivityWindow{At: at, PeriodStart: pol.PeriodStart(at),
		WindowStart: at.Add(-time.Duration(pol.Segments.WindowDays) * day),
		// Classify asks of LastUse only whether it is within dormant_days.
		QuietSince: at.Add(-time.Duration(pol.Segments.DormantDays) * day)}
}

// Segments places everyone in the directory at time at, in one snapshot: for views that
// need everyone at once. Jobs go through EachPage, whose memory does not grow with the
// directory.
func (s *Service) Segments(ctx context.Context, at time.Time) (*Snapshot, error) {
	var members []Member
	snap, err := s.EachPage(ctx, at, func(page []Member) error {
		members = append(members, page...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	snap.Members = members
	if snap.Members == nil {
		snap.Members = []Member{}
	}
	return snap, nil
}

// EachPage places everyone in the directory at time at and hands them to fn a page of
// at most PageSize people at a time, in id order; fn must not keep the slice. The
// returned snapshot has no Members. The directory is read twice, a page at a time:
// first for the window spend that makes a heavy user (keeping only the positive spends,
// 8 bytes a spender), then to place each person. A person added between the reads is
// placed with no activity.
func (s *Service) EachPage(ctx context.Context, at time.Time, fn func(page []Member) error) (*Snapshot, error) {
	pol := s.Policy
	size := s.pageSize()
	var spends []int64
	people := 0
	for after := int64(0); ; {
		w := s.window(at)
		w.AfterID, w.Limit = after, size
		acts, err := s.Store.Activity(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("segments: %w", err)
		}
		people += len(acts)
		for _, a := range acts {
			if a.SpentWindow > 0 {
				spends = append(spends, a.SpentWindow)
			}
		}
		if len(acts) < size {
			break
		}
		after = acts[len(acts)-1].PersonID
	}
	c := NewClassifier(pol, at, heavyThreshold(people, spends, pol.Segments.HeavyTopPercent))
	spends = nil
	snap := &Snapshot{At: at, PeriodStart: c.PeriodStart, PeriodEnd: c.PeriodEnd, HeavyFrom: c.HeavyFrom}
	page := make([]Member, 0, size)
	for after := int64(0); ; {
		ps, err := s.Store.PeopleAfter(ctx, after, size)
		if err != nil {
			return nil, fmt.Errorf("segments: %w", err)
		}
		if len(ps) == 0 {
			break
		}
		w := s.window(at)
		w.AfterID, w.ThroughID = after, ps[len(ps)-1].ID
		acts, err := s.Store.Activity(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("segments: %w", err)
		}
		page = page[:0]
		j := 0
		for _, p := range ps {
			for j < len(acts) && acts[j].PersonID < p.ID {
				j++
			}
			a := ledger.PersonActivity{PersonID: p.ID} // added between the reads: no activity yet
			if j < len(acts) && acts[j].PersonID == p.ID {
				a = acts[j]
			}
			page = append(page, c.Classify(p, a))
		}
		if err := fn(page); err != nil {
			return nil, err
		}
		if len(ps) < size {
			break
		}
		after = ps[len(ps)-1].ID
	}
	return snap, nil
}
