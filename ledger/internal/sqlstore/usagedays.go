package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// dayMs is the width of the leading bucket of usage_day_person (migration 183), the index
// of usage by (UTC day of occurred_at, person, occurred_at): a day in ms.
const dayMs = 86_400_000

// A range of more than spanDays days is first narrowed to the days that hold usage at all
// (usageSpan: two index probes); more than maxDaySeeks days are read as one range of days
// instead of a seek per day (the statement's text stays under ~30 kB).
const (
	spanDays    = 92
	maxDaySeeks = 4000
)

// usageDays is the condition that lets a read of one person's usage rows (alias) dated in
// [from, to) (ms UTC) use usage_day_person: "alias.occurred_at / 86400000 IN (d, ...)",
// with each UTC day the range touches written out, so that the engine seeks (day, person)
// once per day. The expression is the index's own, character for character, so both
// engines match it. The caller keeps its own bounds on occurred_at: the days only find the
// rows. q is asked for the days holding usage when the range spans more than spanDays
// days (an unbounded lookback).
func usageDays(ctx context.Context, q querier, alias string, from, to int64) (string, error) {
	if to <= from {
		return "FALSE", nil
	}
	first, last := from/dayMs, (to-1)/dayMs
	if last-first >= spanDays {
		lo, hi, ok, err := usageSpan(ctx, q)
		if err != nil {
			return "", err
		}
		if !ok {
			return "FALSE", nil
		}
		first, last = max(first, lo), min(last, hi)
		if last < first {
			return "FALSE", nil
		}
	}
	return dayCondition(alias, first, last), nil
}

// dayCondition is usageDays for the UTC days first through last.
func dayCondition(alias string, first, last int64) string {
	if last-first >= maxDaySeeks {
		return dayBetween(alias, first, last)
	}
	var b strings.Builder
	b.WriteString(alias + ".occurred_at / 86400000 IN (")
	for d := first; d <= last; d++ {
		if d > first {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(')')
	return b.String()
}

// dayRange is the condition that reads everyone's usage rows (alias) dated in [from, to)
// (ms UTC) as one range of usage_day_person: "alias.occurred_at / 86400000 BETWEEN d AND e".
func dayRange(alias string, from, to int64) string {
	if to <= from {
		return "FALSE"
	}
	return dayBetween(alias, from/dayMs, (to-1)/dayMs)
}

func dayBetween(alias string, first, last int64) string {
	return alias + ".occurred_at / 86400000 BETWEEN " + strconv.FormatInt(first, 10) + " AND " + strconv.FormatInt(last, 10)
}

// usageSpan is the first and last UTC day that hold usage (ok false: none), from the two
// ends of usage_day_person.
func usageSpan(ctx context.Context, q querier) (first, last int64, ok bool, err error) {
	var lo, hi sql.NullInt64
	err = q.QueryRowContext(ctx, `SELECT (SELECT MIN(occurred_at / 86400000) FROM usage_events),
		(SELECT MAX(occurred_at / 86400000) FROM usage_events)`).Scan(&lo, &hi)
	if err != nil {
		return 0, 0, false, fmt.Errorf("read the days that hold usage: %w", err)
	}
	return lo.Int64, hi.Int64, lo.Valid && hi.Valid, nil
}
