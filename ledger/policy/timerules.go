package policy

import (
	"math/big"
	"time"
)

// Limits of the time rules' durations.
const (
	// MaxLateGrace keeps the grace window shorter than the shortest period (a week), so a
	// late event only ever reopens the period just closed.
	MaxLateGrace = 7 * 24 * time.Hour
	// MaxMinValidity bounds how long unlocked credits must at least last.
	MaxMinValidity = 366 * 24 * time.Hour
	// MaxRetentionMonths bounds usage.retention_months (a century).
	MaxRetentionMonths = 1200
)

// RollupBefore is the instant before which usage is rolled up at now (ledger.RollupInput):
// the start of the period holding now less usage.retention_months, so only whole periods
// that ended at least that long ago are touched; zero when retention is off. Any event
// dated before it is too late at now (LateDeadline: its period ended a month or more ago,
// the grace is at most a week), so the event ids the roll-up forgets can never be booked
// again.
func (p *Policy) RollupBefore(now time.Time) time.Time {
	if p.Usage.RetentionMonths <= 0 {
		return time.Time{}
	}
	return p.PeriodStart(now.In(p.Location()).AddDate(0, -p.Usage.RetentionMonths, 0)).UTC()
}

// LateDeadline is the instant from which usage dated at t is too late to be charged to
// its period: the end of that period plus usage.late_grace. Usage arriving before it is
// charged to the period it happened in.
func (p *Policy) LateDeadline(t time.Time) time.Time {
	return p.PeriodEnd(t).Add(p.Usage.LateGrace)
}

// UnlockExpiry is when credits unlocked at t expire: the end of the period holding t, or
// unlock.min_validity after t when that is later.
func (p *Policy) UnlockExpiry(t time.Time) time.Time {
	end := p.PeriodEnd(t)
	if least := t.Add(p.Unlock.MinValidity); least.After(end) {
		return least
	}
	return end
}

// JoinDay is the start of the day (in the org's time zone) someone who joined at joined
// counts from: the whole day they join is theirs.
func (p *Policy) JoinDay(joined time.Time) time.Time {
	lt := joined.In(p.Location())
	y, m, d := lt.Date()
	return wallInstant(y, m, d, 0, p.Location())
}

// ProratedBaseline is the baseline of someone who joined at joined, for the period
// holding at: the full amount when they joined before the period started (or proration
// is off), else amount × days left counting the join day ÷ days in the period, rounded
// half up to whole credits. Days are calendar days in the org's time zone, so a 23- or
// 25-hour day on a DST change counts as one.
func (p *Policy) ProratedBaseline(amount int64, joined, at time.Time) int64 {
	if !p.Baseline.ProrateJoiners || amount <= 0 {
		return amount
	}
	start, end := p.PeriodStart(at), p.PeriodEnd(at)
	day := p.JoinDay(joined)
	if !day.After(start) {
		return amount
	}
	if !day.Before(end) {
		return 0
	}
	total, left := calendarDays(start, end, p.Location()), calendarDays(day, end, p.Location())
	// amount × left fits in int64 for any valid baseline, but big.Int costs nothing here
	// and keeps the rounding exact for any amount.
	n := new(big.Int).Mul(big.NewInt(amount), big.NewInt(int64(left)))
	n.Add(n, big.NewInt(int64(total/2)))
	n.Quo(n, big.NewInt(int64(total)))
	return n.Int64()
}

// calendarDays counts the days from one local midnight to another.
func calendarDays(from, to time.Time, loc *time.Location) int {
	a, b := from.In(loc), to.In(loc)
	da := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	db := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int(db.Sub(da).Hours()/24 + 0.5)
}
