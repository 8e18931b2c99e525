package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Rolling up works on people in chunks and on time in windows, each chunk and window in its
// own bulk write transaction: memory stays bounded by one window's rows, and a person's
// command waits at most for one of these short writes (the writer's priority lane), never
// for the whole roll-up.
const (
	rollupPeople = 100
	rollupWindow = 32 // days
)

// querier reads inside a write transaction (Tx) or from the read pool (Reader, dry runs).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// rollupRow is a usage row as the roll-up reads it.
type rollupRow struct {
	txID, personID                     int64
	model, source                      string
	input, output, credits, overage, n int64
	at, received                       int64
}

// rollupGroup is the rows of one person, model and source on one day of the org's calendar,
// between two recorded period boundaries, and the row they become.
type rollupGroup struct {
	day  string
	ids  []int64 // ascending; ids[0] is kept
	sum  rollupRow
	fits bool // false when a sum would overflow: the rows stay as they are
}

// RollUpUsage replaces old usage rows by per-person, per-model (and source), per-day sums
// with the same implied postings: see ledger.RollupInput for the rule and why idempotency
// holds. It reads [where the last run stopped, in.Before) in windows of rollupWindow days
// per rollupPeople people, each window in its own bulk write, and records in usage_rollup
// how far it got, with an audit entry, only when every window is done: a run cut short is
// finished by the next, which finds the groups already rolled up as single rows.
func (db *Store) RollUpUsage(ctx context.Context, in ledger.RollupInput) (ledger.RollupResult, error) {
	zone := in.Zone
	if zone == nil {
		zone = time.UTC
	}
	res := ledger.RollupResult{Before: in.Before.UTC(), DryRun: in.DryRun}
	if !in.DryRun && strings.TrimSpace(in.Actor) == "" {
		return res, fmt.Errorf("roll up usage: no actor named")
	}
	before := ms(in.Before)
	var from int64
	if err := db.read.QueryRowContext(ctx, `SELECT rolled_before FROM usage_rollup WHERE id = 1`).Scan(&from); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return res, fmt.Errorf("roll up usage: read where the last run stopped: %w", err)
	}
	if from > 0 {
		res.From = fromMs(from)
	}
	if before <= from {
		return res, nil
	}
	days, err := usageDays(ctx, db.read, "u", from, before)
	if err != nil {
		return res, err
	}
	var after int64
	for {
		ids, err := db.peopleAfter(ctx, after, rollupPeople)
		if err != nil {
			return res, err
		}
		if len(ids) == 0 {
			break
		}
		after = ids[len(ids)-1]
		args := make([]any, 0, len(ids)+2)
		for _, id := range ids {
			args = append(args, id)
		}
		list := `(` + strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",") + `)`
		var first sql.NullInt64
		if err := db.read.QueryRowContext(ctx, `SELECT min(occurred_at) FROM usage_events u WHERE `+days+` AND person_id IN `+list+` AND occurred_at >= ? AND occurred_at < ?`,
			append(args, from, before)...).Scan(&first); err != nil {
			return res, fmt.Errorf("roll up usage: find the oldest usage: %w", err)
		}
		if !first.Valid {
			continue
		}
		for lo := dayStart(first.Int64, zone); lo < before; {
			hi := min(ms(fromMs(lo).In(zone).AddDate(0, 0, rollupWindow)), before)
			window := func(q querier, tx *Tx) error {
				return rollupWindowOf(ctx, q, tx, zone, list, args, lo, hi, &res)
			}
			var err error
			if res.DryRun {
				err = window(db.read, nil)
			} else {
				err = db.inBulkTx(ctx, func(tx *Tx) error { return window(tx, tx) })
			}
			if err != nil {
				return res, err
			}
			lo = hi
		}
	}
	if res.DryRun {
		return res, nil
	}
	now := db.now()
	return res, db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO usage_rollup(id, rolled_before, rolled_at) VALUES (1, ?, ?)
			ON CONFLICT(id) DO UPDATE SET rolled_before = excluded.rolled_before, rolled_at = excluded.rolled_at`, before, ms(now)); err != nil {
			return fmt.Errorf("roll up usage: record the run: %w", err)
		}
		return auditTx(ctx, tx, now, in.Actor, "usage.rollup", res.Before.Format(time.RFC3339),
			fmt.Sprintf("%d usage rows (%d events) dated before %s became %d", res.Rows, res.Events, res.Before.Format(time.RFC3339), res.Summaries))
	})
}

// peopleAfter lists up to n person ids after id, ascending.
func (db *Store) peopleAfter(ctx context.Context, after int64, n int) ([]int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id FROM people WHERE id > ? ORDER BY id LIMIT ?`, after, n)
	if err != nil {
		return nil, fmt.Errorf("roll up usage: list people: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// dayStart is the start of the org's calendar day holding at (ms UTC). Where a DST jump
// skips midnight it may land an hour off, which only splits a day's rows into two groups.
func dayStart(at int64, zone *time.Location) int64 {
	y, m, d := fromMs(at).In(zone).Date()
	return ms(time.Date(y, m, d, 0, 0, 0, 0, zone))
}

// rollupWindowOf rolls up the usage of people (args: their ids) dated in [lo, hi): it reads
// with q and, unless tx is nil (a dry run), writes with tx.
func rollupWindowOf(ctx context.Context, q querier, tx *Tx, zone *time.Location, in string, people []any, lo, hi int64, res *ledger.RollupResult) error {
	args := append(append([]any{}, people...), lo, hi)
	days, err := usageDays(ctx, q, "u", lo, hi)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, `SELECT tx_id, person_id, model, source, input_tokens, output_tokens, credits, overage, occurred_at, received_at, events
		FROM usage_events u WHERE `+days+` AND person_id IN `+in+` AND occurred_at >= ? AND occurred_at < ? AND reversed = 0
		ORDER BY person_id, occurred_at, tx_id`, args...)
	if err != nil {
		return fmt.Errorf("roll up usage: read usage: %w", err)
	}
	var all []rollupRow
	for rows.Next() {
		var r rollupRow
		if err := rows.Scan(&r.txID, &r.personID, &r.model, &r.source, &r.input, &r.output, &r.credits, &r.overage, &r.at, &r.received, &r.n); err != nil {
			rows.Close()
			return err
		}
		all = append(all, r)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("roll up usage: read usage: %w", err)
	}
	if len(all) < 2 {
		return nil
	}
	// The boundaries of the periods closed in the window, per person: a group never spans
	// one, so its row stays in the period its events were charged to, even if the org's
	// time zone changed since.
	bounds := map[int64][]int64{}
	rows, err = q.QueryContext(ctx, `SELECT person_id, boundary FROM period_closes WHERE person_id IN `+in+` AND boundary > ? AND boundary < ? ORDER BY boundary`, args...)
	if err != nil {
		return fmt.Errorf("roll up usage: read period boundaries: %w", err)
	}
	for rows.Next() {
		var pid, b int64
		if err := rows.Scan(&pid, &b); err != nil {
			rows.Close()
			return err
		}
		bounds[pid] = append(bounds[pid], b)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("roll up usage: read period boundaries: %w", err)
	}
	groups := groupUsage(all, zone, bounds)
	var rolled []*rollupGroup
	var gone [][]any
	for _, g := range groups {
		if len(g.ids) < 2 || !g.fits {
			continue
		}
		rolled = append(rolled, g)
		res.Rows += int64(len(g.ids))
		res.Summaries++
		res.Events += g.sum.n
		for _, id := range g.ids[1:] {
			gone = append(gone, []any{id})
		}
	}
	if tx == nil || len(rolled) == 0 {
		return nil
	}
	// Settlements and late charges of the group's events now belong to the kept row, dated
	// as it is (verify holds an adjustment to its row's person and date).
	var adjusted bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM usage_adjustments WHERE person_id IN `+in+` AND occurred_at >= ? AND occurred_at < ?)`,
		args...).Scan(&adjusted); err != nil {
		return fmt.Errorf("roll up usage: look for adjustments: %w", err)
	}
	if adjusted {
		var moves [][]any
		for _, g := range rolled {
			for _, id := range g.ids {
				moves = append(moves, []any{id, g.ids[0], g.sum.at})
			}
		}
		step := maxRowsPerInsert(3)
		for start := 0; start < len(moves); start += step {
			part := moves[start:min(start+step, len(moves))]
			margs := make([]any, 0, 3*len(part))
			for _, m := range part {
				margs = append(margs, m...)
			}
			if err := execBound(ctx, tx, `WITH m(old, kept, at) AS (VALUES `+intValues(len(part), 3)+`)
				UPDATE usage_adjustments SET usage_tx_id = m.kept, occurred_at = m.at FROM m WHERE usage_tx_id = m.old`, margs...); err != nil {
				return fmt.Errorf("roll up usage: move adjustments: %w", err)
			}
		}
	}
	for _, g := range rolled {
		s, kept := g.sum, g.ids[0]
		if _, err := tx.ExecContext(ctx, `UPDATE usage_events SET event_id = ?, input_tokens = ?, output_tokens = ?, credits = ?, overage = ?,
			occurred_at = ?, received_at = ?, events = ? WHERE tx_id = ?`,
			"rollup:"+g.day, s.input, s.output, s.credits, s.overage, s.at, s.received, s.n, kept); err != nil {
			return fmt.Errorf("roll up usage: write the sum of %s: %w", g.day, err)
		}
		reason := fmt.Sprintf("%d usage events of %s on %s, rolled up", s.n, s.model, g.day)
		if _, err := tx.ExecContext(ctx, `UPDATE transactions SET idem_key = ?, input_hash = ?, reason = ? WHERE id = ?`,
			"rollup:"+strconv.FormatInt(kept, 10), inputHash("rollup", s.personID, s.model, s.source, g.day, s.credits, s.overage, s.n), reason, kept); err != nil {
			return fmt.Errorf("roll up usage: rename transaction %d: %w", kept, err)
		}
	}
	// The rows first (they name their transactions), then the transactions; neither has
	// stored postings (a usage row carries its own, see ledger_postings).
	if err := deleteIn(ctx, tx, `DELETE FROM usage_events WHERE tx_id IN `, gone); err != nil {
		return fmt.Errorf("roll up usage: delete rolled-up rows: %w", err)
	}
	if err := deleteIn(ctx, tx, `DELETE FROM transactions WHERE id IN `, gone); err != nil {
		return fmt.Errorf("roll up usage: delete rolled-up transactions: %w", err)
	}
	return nil
}

// groupUsage groups rows (ordered by person, time, id) by person, model, source, the org's
// calendar day and the person's period (bounds: the period boundaries between them), in the
// order of their first rows, and sums each group.
func groupUsage(rows []rollupRow, zone *time.Location, bounds map[int64][]int64) []*rollupGroup {
	type key struct {
		person        int64
		model, source string
		day           string
		period        int
	}
	byKey := map[key]*rollupGroup{}
	var out []*rollupGroup
	for _, r := range rows {
		day := fromMs(r.at).In(zone).Format("2006-01-02")
		k := key{r.personID, r.model, r.source, day, sort.Search(len(bounds[r.personID]), func(i int) bool { return bounds[r.personID][i] > r.at })}
		g, ok := byKey[k]
		if !ok {
			g = &rollupGroup{day: day, fits: true, sum: rollupRow{personID: r.personID, model: r.model, source: r.source}}
			byKey[k] = g
			out = append(out, g)
		}
		g.ids = append(g.ids, r.txID)
		s := &g.sum
		for _, add := range []struct {
			into *int64
			v    int64
		}{{&s.input, r.input}, {&s.output, r.output}, {&s.credits, r.credits}, {&s.overage, r.overage}, {&s.n, r.n}} {
			v, ok := ledger.AddChecked(*add.into, add.v)
			g.fits = g.fits && ok
			*add.into = v
		}
		s.at, s.received = max(s.at, r.at), max(s.received, r.received)
	}
	for _, g := range out {
		sort.Slice(g.ids, func(i, j int) bool { return g.ids[i] < g.ids[j] })
	}
	return out
}

// deleteIn runs stmt + "(?,...)" over single-value rows in chunks.
func deleteIn(ctx context.Context, tx *Tx, stmt string, vals [][]any) error {
	const chunk = 500
	for start := 0; start < len(vals); start += chunk {
		part := vals[start:min(start+chunk, len(vals))]
		args := make([]any, len(part))
		for i, v := range part {
			args[i] = v[0]
		}
		if _, err := tx.ExecContext(ctx, stmt+"("+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+")", args...); err != nil {
			return err
		}
	}
	return nil
}
