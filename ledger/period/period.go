// Package period applies the policy's period rules to the ledger: closing a period (expiry
// and rollover) and granting the new baseline.
package period

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Summary totals one reset run.
type Summary struct {
	Period   string
	People   int
	Expired  int64
	Carried  int64
	Baseline int64
}

// Reset closes the period before the one containing at and opens the one containing at
// for everyone in the directory. It is idempotent per person and period, so it also serves
// to give people who joined mid-period their baseline: prorated for the days left when
// baseline.prorate_joiners is on (policy.ProratedBaseline), except in the organisation's
// first period, which opens in full for everyone. Someone recorded as joining after the
// period (a reset run for a past period) gets it in full.
func Reset(ctx context.Context, db ledger.Store, pol *policy.Policy, at time.Time) (Summary, error) {
	start := pol.PeriodStart(at)
	end := pol.PeriodEnd(at)
	prevKey := pol.PeriodKey(start.Add(-time.Nanosecond))
	key := pol.PeriodKey(at)
	// The organisation's first period opens in full for everyone imported into it; from
	// the next one on, someone who joins mid-period is a joiner.
	established, err := db.BaselineBefore(ctx, start)
	if err != nil {
		return Summary{}, fmt.Errorf("period reset %s: %w", key, err)
	}
	limits := ledger.RolloverLimits{Max: pol.RolloverLimits.Max, Min: pol.RolloverLimits.Min}
	sum := Summary{Period: key}
	// A page of the directory at a time, so that memory stays flat however many people
	// there are (ResetPeriods commits every 500 anyway; each person's reset is idempotent).
	const page = 5000
	for after := int64(0); ; {
		people, err := db.PeopleAfter(ctx, after, page)
		if err != nil {
			return Summary{}, fmt.Errorf("period reset %s: %w", key, err)
		}
		if len(people) == 0 {
			return sum, nil
		}
		after = people[len(people)-1].ID
		if err := resetPage(ctx, db, pol, people, &sum, established, limits, start, end, at, prevKey, key); err != nil {
			return Summary{}, err
		}
		if len(people) < page {
			return sum, nil
		}
	}
}

func resetPage(ctx context.Context, db ledger.Store, pol *policy.Policy, people []ledger.Person, sum *Summary, established bool,
	limits ledger.RolloverLimits, start, end, at time.Time, prevKey, key string) error {
	ins := make([]ledger.ResetInput, 0, len(people))
	for _, p := range people {
		baseline := pol.BaselineFor(p.Team, p.Role)
		if established && p.JoinedAt.Before(end) {
			baseline = pol.ProratedBaseline(baseline, p.JoinedAt, at)
		}
		in := ledger.ResetInput{PersonID: p.ID, Boundary: start, OldKey: prevKey, NewKey: key, NextEnd: end,
			Baseline: baseline, Rollover: &limits}
		if p.Forgotten {
			// Their period still closes (what is left expires), but nothing new is granted.
			in.Baseline, in.Rollover = 0, nil
		}
		ins = append(ins, in)
	}
	res, err := db.ResetPeriods(ctx, ins)
	if err != nil {
		return fmt.Errorf("period reset %s: %w", key, err)
	}
	sum.People += len(res)
	for _, r := range res {
		sum.Expired += r.Expired
		sum.Carried += r.Carried
		sum.Baseline += r.Baseline
	}
	return nil
}

// Bounds returns the period containing t.
func Bounds(pol *policy.Policy, t time.Time) (time.Time, time.Time) {
	return pol.PeriodStart(t), pol.PeriodEnd(t)
}
