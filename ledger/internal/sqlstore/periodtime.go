package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// The ledger's state for a moment is a function of what happened up to that moment, not of
// when the process learned it. Two things arrive "out of time" and are put right here:
//
//   - usage dated in a period booked before the reset created that period's grants (the
//     reset job runs at 00:05, or after downtime): the reset settles it against the new
//     grants, as if they had existed at the boundary (settleEarlyUsage);
//   - usage dated in a period whose close already ran (a gateway batches or retries): it
//     burns what was open when it happened, the grants the close ended included, and the
//     close is recomputed with the same rollover formula; the difference is taken back
//     from what the close expired or carried (applyLateUsage).

// usageLines reads a person's unreversed events dated in [from, to), oldest first: their
// transactions, and the events as the burn-down rules see them (overage: the row's plus
// its adjustments).
func usageLines(ctx context.Context, tx *Tx, personID, from, to int64) ([]int64, []ledger.UsageLine, error) {
	days, err := usageDays(ctx, tx, "u", from, to)
	if err != nil {
		return nil, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT u.tx_id, u.occurred_at, u.credits,
		u.overage + COALESCE((SELECT SUM(a.overage) FROM usage_adjustments a WHERE a.usage_tx_id = u.tx_id), 0)
		FROM usage_events u WHERE `+days+` AND u.person_id = ? AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0
		ORDER BY u.occurred_at, u.tx_id`, personID, from, to)
	if err != nil {
		return nil, nil, fmt.Errorf("read usage to settle: %w", err)
	}
	defer rows.Close()
	var ids []int64
	var out []ledger.UsageLine
	for rows.Next() {
		var id int64
		var l ledger.UsageLine
		if err := rows.Scan(&id, &l.At, &l.Credits, &l.Overage); err != nil {
			return nil, nil, err
		}
		ids, out = append(ids, id), append(out, l)
	}
	return ids, out, rows.Err()
}

// adjustmentRows are the usage_adjustments rows (usage tx, person, occurred_at, overage
// change) for the lines whose overage changes by deltas, and the sum of the changes.
func adjustmentRows(personID int64, ids []int64, lines []ledger.UsageLine, deltas []int64) (rows [][]any, sum int64) {
	for i, d := range deltas {
		if d != 0 {
			rows = append(rows, []any{ids[i], personID, lines[i].At, d})
			sum += d
		}
	}
	return rows, sum
}

// touchedGrants are the (id, remaining) rows of the grants a rule changed.
func touchedGrants(gs []*ledger.BurnGrant) [][]any {
	var out [][]any
	for _, g := range gs {
		if g.Touched {
			out = append(out, []any{g.ID, g.Remaining})
		}
	}
	return out
}

// personOpenGrants reads a person's open grants in burn order.
func personOpenGrants(ctx context.Context, tx *Tx, personID int64) ([]*ledger.BurnGrant, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+burnColumns+` FROM `+grantTables+`
		WHERE g.person_id = ? AND g.closed_tx_id IS NULL ORDER BY g.priority, g.expires_at, g.id`, personID)
	if err != nil {
		return nil, fmt.Errorf("read open grants: %w", err)
	}
	defer rows.Close()
	var out []*ledger.BurnGrant
	for rows.Next() {
		g, err := scanBurnGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	ledger.SortForBurn(out)
	return out, rows.Err()
}

// settleEarlyUsage books a person's usage dated in [from, to) as if the grants that take
// effect at from (the new period's baseline and carry-over) had existed when it arrived
// (ledger.SettleEarly decides how). One balanced "settle" transaction records the
// difference and usage_adjustments each event's part. It returns the overage turned into
// spending.
func settleEarlyUsage(ctx context.Context, tx *Tx, now, personID int64, newKey string, from, to time.Time) (int64, error) {
	ids, lines, err := usageLines(ctx, tx, personID, ms(from), ms(to))
	if err != nil || len(lines) == 0 {
		return 0, err
	}
	grants, err := personOpenGrants(ctx, tx, personID)
	if err != nil {
		return 0, err
	}
	deltas := ledger.SettleEarly(grants, ms(from), lines)
	adjustments, delta := adjustmentRows(personID, ids, lines, deltas)
	burn := touchedGrants(grants)
	if len(adjustments) == 0 {
		// No overage changed: at most the same credits now come from other grants (the
		// baseline instead of an unlock), which moves nothing between accounts.
		return 0, burnGrants(ctx, tx, burn)
	}
	var settled int64
	for _, d := range deltas {
		if d < 0 {
			settled -= d
		}
	}
	key := fmt.Sprintf("settle:%s:%d:%d", newKey, personID, now)
	w := &txWrite{key: key, hash: inputHash("settle", personID, newKey, now), kind: ledger.TxSettle, personID: personID, actor: "scheduler",
		reason:   "usage dated in " + newKey + " booked before its grants existed, settled against them",
		postings: []ledger.Posting{{Account: ledger.AvailableAccount(personID), Amount: delta}, {Account: ledger.OverageAccount(personID), Amount: -delta}}}
	if err := writeTxs(ctx, tx, now, []*txWrite{w}); err != nil {
		return 0, err
	}
	if err := insertAdjustments(ctx, tx, w.id, adjustments); err != nil {
		return 0, err
	}
	return settled, burnGrants(ctx, tx, burn)
}

// insertAdjustments stores (usage tx, person, occurred_at, overage change) rows under the
// transaction txID.
func insertAdjustments(ctx context.Context, tx *Tx, txID int64, rows [][]any) error {
	full := make([][]any, len(rows))
	for i, r := range rows {
		full[i] = append([]any{txID}, r...)
	}
	if err := insertRows(ctx, tx, `INSERT INTO usage_adjustments(tx_id, usage_tx_id, person_id, occurred_at, overage)`, 5, full); err != nil {
		return fmt.Errorf("record usage adjustments: %w", err)
	}
	return nil
}

// periodClose is a stored close of one person's period (period_closes).
type periodClose struct {
	resetTx, personID, boundary, nextEnd int64
	key                                  string
	unspent, carried                     int64
	limits                               ledger.RolloverLimits
	rolloverGrant                        int64
	// burned is what late events of the current batch took from the grants it ended.
	burned int64
	// firstUsage is the first late event's transaction, which names the correction.
	firstUsage int64
	// grants are the grants it ended that still held credits, in burn order, Remaining
	// what they held at the close less what late usage took.
	grants []*ledger.BurnGrant
	// adjust and adjusted: the period's usage burned again in time order (replayClosed).
	adjust   [][]any
	adjusted int64
}

// lastClose loads a person's latest close with the grants it ended that still hold
// credits; nil when they have none. Only the latest close takes late usage: an earlier one
// would change a period that is itself closed (the grace window, shorter than a period,
// keeps such events out).
func lastClose(ctx context.Context, tx *Tx, personID int64) (*periodClose, error) {
	c := &periodClose{personID: personID}
	var rollover sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT reset_tx_id, boundary, next_end, period_key, unspent, carried, rollover_max, rollover_min, rollover_grant_id
		FROM period_closes WHERE person_id = ? ORDER BY boundary DESC LIMIT 1`, personID).
		Scan(&c.resetTx, &c.boundary, &c.nextEnd, &c.key, &c.unspent, &c.carried, &c.limits.Max, &c.limits.Min, &rollover)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read period close: %w", err)
	}
	c.rolloverGrant = rollover.Int64
	c.grants, err = closedGrants(ctx, tx, c.resetTx, true)
	return c, err
}

// closedGrantColumns are burnColumns with what each grant held at its close (less what
// late usage took), FROM closedGrantTables.
const (
	closedGrantColumns = `g.id, g.kind, g.priority, g.amount, cg.remaining, g.effective_at, g.expires_at`
	closedGrantTables  = `closed_grants cg JOIN grants g ON g.id = cg.grant_id`
)

// closedGrants reads the grants a close ended, in burn order; held: only those that still
// hold credits.
func closedGrants(ctx context.Context, tx *Tx, resetTx int64, held bool) ([]*ledger.BurnGrant, error) {
	cond := ``
	if held {
		cond = ` AND cg.remaining > 0`
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+closedGrantColumns+` FROM `+closedGrantTables+`
		WHERE cg.reset_tx_id = ?`+cond+` ORDER BY g.priority, g.expires_at, g.id`, resetTx)
	if err != nil {
		return nil, fmt.Errorf("read closed grants: %w", err)
	}
	defer rows.Close()
	var out []*ledger.BurnGrant
	for rows.Next() {
		g, err := scanBurnGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	ledger.SortForBurn(out)
	return out, rows.Err()
}

// applyLateUsage recomputes a close after late events burned c.burned of the grants it
// ended: unspent' = unspent - burned, carried' = min(max, max(unspent', min)). One
// "late-usage" transaction posts the difference between the two closes (less expired,
// less carried, or more minted when a minimum rollover applies), and what is no longer
// carried is taken back in the next period as if it had never been carried: from the
// carry-over grant while it holds it, then from the next grants in burn order (open holds
// the batch's view of them), then by turning that period's latest spending back into
// overage.
func applyLateUsage(ctx context.Context, tx *Tx, now int64, c *periodClose, open []*ledger.BurnGrant) error {
	if c.burned == 0 && len(c.adjust) == 0 {
		return nil // the late usage found nothing left of what was open when it happened
	}
	unspent, carried, takeBack := ledger.Recarry(c.unspent, c.carried, c.limits, c.burned)
	takeBack = ledger.TakeBackFromGrants(open, c.rolloverGrant, c.boundary, c.nextEnd, takeBack)
	var adjustments [][]any
	var moved int64 // spending of the next period turned back into overage
	if takeBack > 0 {
		ids, lines, err := usageLines(ctx, tx, c.personID, c.boundary, c.nextEnd)
		if err != nil {
			return err
		}
		var deltas []int64
		deltas, takeBack = ledger.TakeBackFromUsage(lines, takeBack)
		// Latest first, as they were taken.
		for i := len(deltas) - 1; i >= 0; i-- {
			if deltas[i] != 0 {
				adjustments = append(adjustments, []any{ids[i], c.personID, lines[i].At, deltas[i]})
				moved += deltas[i]
			}
		}
	}
	// What could not be taken back anywhere (the carried credits went to usage since
	// reversed) stays carried: the close then carries that much more than the formula.
	carried += takeBack
	adjustments = append(adjustments, c.adjust...)
	var expiredHeld int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT balance FROM accounts WHERE name = ?), 0)`, ledger.AccountExpired).Scan(&expiredHeld); err != nil {
		return err
	}
	w := &txWrite{key: "late:" + strconv.FormatInt(c.resetTx, 10) + ":" + strconv.FormatInt(c.firstUsage, 10),
		hash: inputHash("late", c.resetTx, c.firstUsage, c.burned), kind: ledger.TxLateUsage, personID: c.personID, actor: "usage",
		reason:   fmt.Sprintf("usage dated in %s arrived after it closed: %s credits charged to %s, taken back from what its close expired or carried", c.key, ledger.FormatCredits(c.burned), c.key),
		postings: ledger.LateUsagePostings(c.personID, c.unspent, c.carried, unspent, carried, moved+c.adjusted, expiredHeld)}
	if err := writeTxs(ctx, tx, now, []*txWrite{w}); err != nil {
		return err
	}
	if len(adjustments) > 0 {
		if err := insertAdjustments(ctx, tx, w.id, adjustments); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE period_closes SET unspent = ?, carried = ? WHERE reset_tx_id = ?`, unspent, carried, c.resetTx); err != nil {
		return fmt.Errorf("update period close: %w", err)
	}
	for _, g := range c.grants {
		if g.Touched {
			if _, err := tx.ExecContext(ctx, `UPDATE closed_grants SET remaining = ? WHERE grant_id = ?`, g.Remaining, g.ID); err != nil {
				return fmt.Errorf("update closed grant: %w", err)
			}
		}
	}
	return nil
}

// outOfOrderPeople returns the people of a batch for whom arrival order may have changed
// what their usage burned: one of their open grants starts or ends after one of their
// events in the batch (minAt: each person's earliest) and no later than the latest
// instant usage may be dated (now plus the allowed skew). Usage dated in a closed period
// is the late path's; only grants starting or ending after the person's latest close
// count. Two index probes answer "nobody" for nearly every batch.
func outOfOrderPeople(ctx context.Context, tx *Tx, minAt map[int64]int64, latest int64) ([]int64, error) {
	first := latest
	for _, at := range minAt {
		first = min(first, at)
	}
	var any bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM grants WHERE closed_tx_id IS NULL AND effective_at > ?1 AND effective_at <= ?2)
		OR EXISTS (SELECT 1 FROM grants WHERE closed_tx_id IS NULL AND expires_at > ?1 AND expires_at <= ?2)`, first, latest).Scan(&any); err != nil {
		return nil, fmt.Errorf("grants starting or ending: %w", err)
	}
	if !any {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT person_id, effective_at, expires_at FROM grants WHERE closed_tx_id IS NULL
		AND ((effective_at > ?1 AND effective_at <= ?2) OR (expires_at > ?1 AND expires_at <= ?2))`, first, latest)
	if err != nil {
		return nil, fmt.Errorf("grants starting or ending: %w", err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	var out []int64
	for rows.Next() {
		var pid, eff, exp int64
		if err := rows.Scan(&pid, &eff, &exp); err != nil {
			return nil, err
		}
		at, ok := minAt[pid]
		if !ok || seen[pid] {
			continue
		}
		if ledger.ArrivalOrderMatters(eff, exp, at, latest) {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	return out, rows.Err()
}

// rebookOpenPeriod burns a person's usage of their open period (since their latest close)
// again in time order against the grants in effect at each event, as if every event had
// arrived when it happened, and records the difference: a "settle" transaction moving
// credits between available and overage, usage_adjustments for each event's share, and
// what each grant holds. It does nothing where the period's starting state is not known
// exactly from the ledger: a grant that started before the period (an unlock lasting
// into it), or usage reversed in it.
func rebookOpenPeriod(ctx context.Context, tx *Tx, now, personID int64) error {
	var from int64
	var carried, rollover sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT boundary, carried, rollover_grant_id FROM period_closes WHERE person_id = ? ORDER BY boundary DESC LIMIT 1`, personID).
		Scan(&from, &carried, &rollover)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("rebook: latest close: %w", err)
	}
	if err == sql.ErrNoRows {
		from = -1 << 62
	}
	var reversed bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM usage_events WHERE person_id = ? AND occurred_at >= ? AND reversed = 1)`, personID, from).Scan(&reversed); err != nil {
		return fmt.Errorf("rebook: reversals: %w", err)
	}
	if reversed {
		return nil
	}
	grants, err := personOpenGrants(ctx, tx, personID)
	if err != nil {
		return err
	}
	cur := make(map[int64]int64, len(grants))
	var held int64
	for _, g := range grants {
		cur[g.ID] = g.Remaining
		held += g.Remaining
	}
	ledger.AtPeriodStart(grants, rollover.Int64, carried.Int64)
	ids, lines, err := usageLines(ctx, tx, personID, from, 1<<62)
	if err != nil {
		return err
	}
	deltas, ok := ledger.Reburn(grants, from, held, lines)
	if !ok {
		return nil
	}
	adjustments, delta := adjustmentRows(personID, ids, lines, deltas)
	var burn [][]any
	for _, g := range grants {
		if g.Remaining != cur[g.ID] {
			burn = append(burn, []any{g.ID, g.Remaining})
		}
	}
	if len(adjustments) > 0 {
		w := &txWrite{key: fmt.Sprintf("rebook:%d:%d:%d", personID, now, ids[len(ids)-1]), hash: inputHash("rebook", personID, now),
			kind: ledger.TxSettle, personID: personID, actor: "usage",
			reason:   "usage that arrived out of time order burned again in time order",
			postings: []ledger.Posting{{Account: ledger.AvailableAccount(personID), Amount: delta}, {Account: ledger.OverageAccount(personID), Amount: -delta}}}
		if err := writeTxs(ctx, tx, now, []*txWrite{w}); err != nil {
			return err
		}
		if err := insertAdjustments(ctx, tx, w.id, adjustments); err != nil {
			return err
		}
	}
	return burnGrants(ctx, tx, burn)
}

// replayClosed burns the closed period's usage, the late events of this batch included,
// again in time order against the grants the close ended, as in-time processing would
// have: an event dated before an unlock took effect cannot use it, however late it
// arrives. It sets what each closed grant held at the close and c.burned from the result,
// and the change of each event's overage in c.adjust. It leaves the first allocation
// (burnWithClosed) when the period's starting state is not known exactly from the ledger:
// a grant that lasted across either end of the period, or usage reversed in it.
func replayClosed(ctx context.Context, tx *Tx, c *periodClose) error {
	var from int64 = -1 << 62
	var carried, rollover sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT boundary, carried, rollover_grant_id FROM period_closes WHERE person_id = ? AND boundary < ?
		ORDER BY boundary DESC LIMIT 1`, c.personID, c.boundary).Scan(&from, &carried, &rollover)
	if err != nil && err != sql.ErrNoRows {
		return fmt.Errorf("replay closed period: %w", err)
	}
	var blocked bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM usage_events WHERE person_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 AND reversed = 1)
		OR EXISTS (SELECT 1 FROM grants WHERE person_id = ?1 AND effective_at < ?3 AND expires_at > ?3 AND closed_tx_id IS NULL)`,
		c.personID, from, c.boundary).Scan(&blocked); err != nil {
		return fmt.Errorf("replay closed period: %w", err)
	}
	if blocked {
		return nil
	}
	all, err := closedGrants(ctx, tx, c.resetTx, false)
	if err != nil {
		return fmt.Errorf("replay closed period: %w", err)
	}
	inBatch := make(map[int64]*ledger.BurnGrant, len(c.grants))
	for _, g := range c.grants {
		inBatch[g.ID] = g
	}
	var held int64
	burnable := make([]*ledger.BurnGrant, len(all))
	for i, g := range all {
		if b, ok := inBatch[g.ID]; ok {
			g.Remaining = b.Remaining // this batch's first allocation
		}
		held += g.Remaining
		b := *g
		burnable[i] = &b
	}
	ledger.AtPeriodStart(burnable, rollover.Int64, carried.Int64)
	ids, lines, err := usageLines(ctx, tx, c.personID, from, c.boundary)
	if err != nil {
		return err
	}
	deltas, ok := ledger.Reburn(burnable, from, held, lines)
	if !ok {
		return nil
	}
	c.adjust, c.adjusted = adjustmentRows(c.personID, ids, lines, deltas)
	c.grants = c.grants[:0]
	var after int64
	for i, g := range all {
		if burnable[i].Remaining != g.Remaining || inBatch[g.ID] != nil {
			burnable[i].Touched = true
			c.grants = append(c.grants, burnable[i])
		}
		after += burnable[i].Remaining
	}
	c.burned = c.unspent - after
	return nil
}
