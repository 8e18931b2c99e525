package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Activity reads the activity of the people in w's page (everyone when w.Limit is 0),
// ordered by person id. Usage is read a day at a time for the page's range of people
// (usageDays), so the cost grows with the page's rows in the days read, not with the whole
// history.
func (db *Store) Activity(ctx context.Context, w ledger.ActivityWindow) ([]ledger.PersonActivity, error) {
	at, ps, ws := ms(w.At), ms(w.PeriodStart), ms(w.WindowStart)
	limit := int64(w.Limit)
	if limit <= 0 {
		limit = math.MaxInt64 // both engines read it as no limit
	}
	through := w.ThroughID
	if through <= 0 {
		through = math.MaxInt64
	}
	quiet := int64(math.MinInt64)
	if !w.QuietSince.IsZero() {
		quiet = ms(w.QuietSince)
	}
	from := min(ps, ws, quiet)
	days, err := usageDays(ctx, db.read, "u", from, at)
	if err != nil {
		return nil, err
	}
	// The page's usage in one pass: each day of [from, at), the page's range of people in
	// it (usage_day_person), rather than a seek per person, day and figure.
	rows, err := db.read.QueryContext(ctx, `WITH page AS (SELECT id FROM people WHERE id > ?4 AND id <= ?5 ORDER BY id LIMIT ?6),
		pu AS (SELECT u.person_id,
			`+WideSum("CASE WHEN u.occurred_at >= ?1 THEN u.credits ELSE 0 END")+` AS spent_period,
			`+WideSum("CASE WHEN u.occurred_at >= ?1 THEN u.overage ELSE 0 END")+` AS overage_period,
			`+WideSum("CASE WHEN u.occurred_at >= ?2 THEN u.credits ELSE 0 END")+` AS spent_window,
			MAX(CASE WHEN u.occurred_at >= ?7 THEN u.occurred_at END) AS last_use
			FROM usage_events u WHERE `+days+` AND u.person_id > ?4 AND u.person_id <= (SELECT MAX(id) FROM page)
				AND u.occurred_at >= ?8 AND u.occurred_at < ?3 AND u.reversed = 0
			GROUP BY u.person_id)
		SELECT p.id, COALESCE(pu.spent_period, 0), COALESCE(pu.overage_period, 0) + `+adjustedOverage("p.id", "?1", "?3")+`,
		COALESCE(pu.spent_window, 0), COALESCE(pu.last_use, 0),
		(SELECT `+WideSum("r.remaining")+` FROM `+grantTables+` WHERE g.person_id = p.id AND g.closed_tx_id IS NULL AND g.effective_at <= ?3 AND g.expires_at > ?3),
		(SELECT count(*) FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?2 AND i.created_at < ?3),
		(SELECT count(*) FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?1 AND i.created_at < ?3),
		(SELECT `+WideSum("minutes")+` FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?1 AND i.created_at < ?3),
		COALESCE((SELECT MAX(at) FROM nudge_log n WHERE n.person_id = p.id AND n.at <= ?3), 0)
		FROM page p LEFT JOIN pu ON pu.person_id = p.id ORDER BY p.id`, ps, ws, at, w.AfterID, through, limit, quiet, from)
	if err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	defer rows.Close()
	var out []ledger.PersonActivity
	for rows.Next() {
		var a ledger.PersonActivity
		var last, nudged int64
		if err := rows.Scan(&a.PersonID, Sat(&a.SpentPeriod), Sat(&a.OveragePeriod), Sat(&a.SpentWindow), &last, Sat(&a.Available),
			&a.ImpactsWindow, &a.ImpactsPeriod, Sat(&a.MinutesPeriod), &nudged); err != nil {
			return nil, fmt.Errorf("read activity: %w", err)
		}
		a.LastUse, a.LastNudge = fromMs(last), fromMs(nudged)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read activity: %w", err)
	}
	return out, nil
}

// TipExclusions lists, per person with an id in (afterID, throughID], the prompts
// TipCandidates leaves out for them (shown, used or written by them), in ascending order.
// People with none are absent. Jobs read it a page of the directory at a time.
func (db *Store) TipExclusions(ctx context.Context, afterID, throughID int64) (map[int64][]int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT person_id, prompt_id FROM prompt_shown WHERE person_id > ?1 AND person_id <= ?2
		UNION SELECT person_id, prompt_id FROM prompt_uses WHERE person_id > ?1 AND person_id <= ?2
		UNION SELECT author_id, id FROM prompts WHERE author_id > ?1 AND author_id <= ?2
		ORDER BY 1, 2`, afterID, throughID)
	if err != nil {
		return nil, fmt.Errorf("read tip exclusions: %w", err)
	}
	defer rows.Close()
	out := map[int64][]int64{}
	for rows.Next() {
		var person, prompt int64
		if err := rows.Scan(&person, &prompt); err != nil {
			return nil, fmt.Errorf("read tip exclusions: %w", err)
		}
		out[person] = append(out[person], prompt)
	}
	return out, rows.Err()
}

// NudgeLift counts, for each person whose first nudge record for one of segments falls
// in [start, end) and at least within before until, whether they used any credits in
// the window after that record.
func (db *Store) NudgeLift(ctx context.Context, start, end, until time.Time, within time.Duration, segments ...string) (ledger.LiftCounts, error) {
	var c ledger.LiftCounts
	if len(segments) == 0 {
		return c, nil
	}
	args := []any{ms(start), ms(end)}
	in := ""
	for i, s := range segments {
		if i > 0 {
			in += ","
		}
		in += "?"
		args = append(args, s)
	}
	args = append(args, within.Milliseconds(), within.Milliseconds(), ms(until))
	// Each first record's usage is in (at, at + within], and at + within <= until.
	days, err := usageDays(ctx, db.read, "u", ms(start)+1, min(ms(end)+within.Milliseconds(), ms(until))+1)
	if err != nil {
		return c, err
	}
	rows, err := db.read.QueryContext(ctx, `WITH first AS (
			SELECT person_id, held_out, MIN(at) AS at FROM nudge_log
			WHERE at >= ? AND at < ? AND segment IN (`+in+`) GROUP BY person_id, held_out)
		SELECT f.held_out, count(*), COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM usage_events u WHERE `+days+` AND u.person_id = f.person_id
			AND u.occurred_at > f.at AND u.occurred_at <= f.at + ? AND u.reversed = 0) THEN 1 ELSE 0 END), 0)
		FROM first f WHERE f.at + ? <= ? GROUP BY f.held_out`, args...)
	if err != nil {
		return c, fmt.Errorf("nudge lift: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var held bool
		var n, active int
		if err := rows.Scan(&held, &n, &active); err != nil {
			return c, fmt.Errorf("nudge lift: %w", err)
		}
		if held {
			c.HeldOut, c.HeldOutActive = n, active
		} else {
			c.Nudged, c.NudgedActive = n, active
		}
	}
	return c, rows.Err()
}

// PeriodClosing reads the reset that closed the period key (over [start, end)); a person
// counts as a hoarder when what expired exceeds hoardRatio of what they were granted in
// the period.
func (db *Store) PeriodClosing(ctx context.Context, key string, start, end time.Time, hoardRatio float64) (ledger.Closing, error) {
	var c ledger.Closing
	// Reset transactions are keyed "reset:<period>:<person>": a range of the unique index.
	prefix := "reset:" + key + ":"
	upper := prefix[:len(prefix)-1] + ";"
	// One row per person closed: what expired, and what they were granted in the period;
	// ledger.Hoarding classifies them.
	rows, err := db.read.QueryContext(ctx, `SELECT `+WideSum("CASE WHEN p.account = ? THEN p.amount END")+`,
			(SELECT `+WideSum("amount")+` FROM grants g WHERE g.person_id = t.person_id AND g.effective_at >= ? AND g.effective_at < ?)
		FROM transactions t JOIN postings p ON p.tx_id = t.id
		WHERE t.idem_key >= ? AND t.idem_key < ? GROUP BY t.person_id`,
		ledger.AccountExpired, ledger.AccountExpired, ms(start), ms(end), prefix, upper)
	if err != nil {
		return c, fmt.Errorf("period %s closing: %w", key, err)
	}
	for rows.Next() {
		var expired, granted int64
		if err := rows.Scan(Sat(&expired), Sat(&granted)); err != nil {
			rows.Close()
			return c, fmt.Errorf("period %s closing: %w", key, err)
		}
		c.Expired = ledger.SatAdd(c.Expired, expired)
		if ledger.Hoarding(expired, granted, hoardRatio) {
			c.Hoarders++
			c.Hoarded = ledger.SatAdd(c.Hoarded, expired)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return c, fmt.Errorf("period %s closing: %w", key, err)
	}
	// Carried credits are the rollover grants the same resets wrote.
	if err := db.read.QueryRowContext(ctx, `SELECT `+WideSum("g.amount")+` FROM grants g JOIN transactions t ON t.id = g.tx_id
		WHERE t.idem_key >= ? AND t.idem_key < ? AND g.kind = ?`, prefix, upper, ledger.GrantRollover).Scan(Sat(&c.Carried)); err != nil {
		return c, fmt.Errorf("period %s closing: %w", key, err)
	}
	if err := db.read.QueryRowContext(ctx, `SELECT `+WideSum("-p.amount")+` FROM transactions t JOIN postings p ON p.tx_id = t.id
		WHERE t.kind = ? AND t.created_at >= ? AND t.created_at < ? AND p.account = ? AND p.amount < 0`,
		ledger.TxReallocate, ms(start), ms(end), ledger.AccountExpired).Scan(Sat(&c.Reclaimed)); err != nil {
		return c, fmt.Errorf("period %s reallocations: %w", key, err)
	}
	return c, nil
}
