package policy

import (
	"fmt"
	"time"
)

// PeriodStart returns the start of the allowance period holding t, in the org
// time zone: the 1st of the month at 00:00, or Monday at 00:00 for weekly
// periods. Where a DST jump skips midnight, the period starts at the jump.
func (p *Policy) PeriodStart(t time.Time) time.Time {
	loc := p.Location()
	lt := t.In(loc)
	y, m, d := lt.Date()
	if p.Period == PeriodWeekly {
		sinceMonday := (int(lt.Weekday()) + 6) % 7
		return wallInstant(y, m, d-sinceMonday, 0, loc)
	}
	return wallInstant(y, m, 1, 0, loc)
}

// PeriodEnd returns the end of the period holding t, which is the start of
// the next one.
func (p *Policy) PeriodEnd(t time.Time) time.Time {
	start := p.PeriodStart(t)
	y, m, d := start.Date()
	if p.Period == PeriodWeekly {
		return wallInstant(y, m, d+7, 0, p.Location())
	}
	return wallInstant(y, m+1, 1, 0, p.Location())
}

// PeriodKey names the period holding t: "2026-11" for a month, "2026-W48"
// for a week (ISO 8601 week numbering, whose weeks also start on Monday).
func (p *Policy) PeriodKey(t time.Time) string {
	start := p.PeriodStart(t)
	if p.Period == PeriodWeekly {
		year, week := start.ISOWeek()
		return fmt.Sprintf("%04d-W%02d", year, week)
	}
	return start.Format("2006-01")
}
