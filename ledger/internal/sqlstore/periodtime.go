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

// closePostings are the postings of a period close that ends unspent credits and carries
// carried of them (minting from the pool what a minimum rollover adds).
func closePostings(personID, unspent, carried int64) []ledger.Posting {
	return []ledger.Posting{
		{Account: ledger.AvailableAccount(personID), Amount: carried - unspent},
		{Account: ledger.AccountExpired, Amount: max(0, unspent-carried)},
		{Account: ledger.AccountPool, Amount: -max(0, carried-unspent)},
	}
}

// usageLine is a usage event with its effective overage (its row's plus adjustments).
type usageLine struct {
	txID    int64
	at      int64
	credits int64
	overage int64
}

// usageLines reads a person's unreversed events dated in [from, to), oldest first.
func usageLines(ctx context.Context, tx *Tx, personID, from, to int64) ([]usageLine, error) {
	rows, err := tx.QueryContext(ctx, `SELECT u.tx_id, u.occurred_at, u.credits,
		u.overage + COALESCE((SELECT SUM(a.overage) FROM usage_adjustments a WHERE a.usage_tx_id = u.tx_id), 0)
		FROM usage_events u WHERE u.person_id = ? AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0
		ORDER BY u.occurred_at, u.tx_id`, personID, from, to)
	if err != nil {
		return nil, fmt.Errorf("read usage to settle: %w", err)
	}
	defer rows.Close()
	var out []usageLine
	for rows.Next() {
		var l usageLine
		if err := rows.Scan(&l.txID, &l.at, &l.credits, &l.overage); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// personGrant is an open grant of one person with what is needed to burn or restore it.
type personGrant struct {
	openGrant
	amount   int64
	priority int
	kind     ledger.GrantKind
}

// personOpenGrants reads a person's open grants in burn order.
func personOpenGrants(ctx context.Context, tx *Tx, personID int64) ([]*personGrant, error) {
	rows, err := tx.QueryContext(ctx, `SELECT g.id, g.amount, r.remaining, g.priority, g.kind, g.effective_at, g.expires_at FROM `+grantTables+`
		WHERE g.person_id = ? AND g.closed_tx_id IS NULL ORDER BY g.priority, g.expires_at, g.id`, personID)
	if err != nil {
		return nil, fmt.Errorf("read open grants: %w", err)
	}
	defer rows.Close()
	var out []*personGrant
	for rows.Next() {
		g := &personGrant{}
		if err := rows.Scan(&g.id, &g.amount, &g.remaining, &g.priority, &g.kind, &g.effective, &g.expires); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// settleEarlyUsage books a person's usage dated in [from, to) as if the grants that take
// effect at from (the new period's baseline and carry-over) had existed when it arrived.
// Usage that arrived before them is overage, or burned a grant that lasts across the
// boundary (an unlock with a minimum validity) that in time order would have been spent
// after the new baseline: that burn is given back to those grants (latest in burn order
// first), then every event of the period is burned again in time order. One balanced
// "settle" transaction records the difference and usage_adjustments each event's part.
// It returns the overage turned into spending.
func settleEarlyUsage(ctx context.Context, tx *Tx, now, personID int64, newKey string, from, to time.Time) (int64, error) {
	lines, err := usageLines(ctx, tx, personID, ms(from), ms(to))
	if err != nil || len(lines) == 0 {
		return 0, err
	}
	grants, err := personOpenGrants(ctx, tx, personID)
	if err != nil {
		return 0, err
	}
	isNew := func(g *personGrant) bool {
		return g.effective == ms(from) && (g.kind == ledger.GrantBaseline || g.kind == ledger.GrantRollover)
	}
	var burned int64
	for _, l := range lines {
		burned += l.credits - l.overage
	}
	// Give back what the early usage took from older grants, in reverse burn order.
	restore := burned
	for i := len(grants) - 1; i >= 0 && restore > 0; i-- {
		g := grants[i]
		if isNew(g) {
			continue
		}
		back := min(restore, g.amount-g.remaining)
		if back > 0 {
			g.remaining += back
			g.touched = true
			restore -= back
		}
	}
	rebook := restore == 0 // else something else burned them: leave what was burned as it is
	if !rebook {
		for _, g := range grants {
			g.touched = false
		}
		grants, err = personOpenGrants(ctx, tx, personID)
		if err != nil {
			return 0, err
		}
	}
	var adjustments [][]any
	var delta, settled int64 // delta: change of overage over all events
	for _, l := range lines {
		need := l.overage
		if rebook {
			need = l.credits
		}
		left := need
		for _, g := range grants {
			if left == 0 {
				break
			}
			if g.remaining == 0 || g.effective > l.at || g.expires <= l.at {
				continue
			}
			take := min(left, g.remaining)
			g.remaining -= take
			g.touched = true
			left -= take
		}
		if d := left - l.overage; d != 0 {
			adjustments = append(adjustments, []any{l.txID, personID, l.at, d})
			delta += d
			if d < 0 {
				settled -= d
			}
		}
	}
	var burn [][]any
	for _, g := range grants {
		if g.touched {
			burn = append(burn, []any{g.id, g.remaining})
		}
	}
	if len(adjustments) == 0 {
		// No overage changed: at most the same credits now come from other grants (the
		// baseline instead of an unlock), which moves nothing between accounts.
		return 0, burnGrants(ctx, tx, burn)
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
	grants     []*closedGrant
	// adjust and adjusted: the period's usage burned again in time order (replayClosed).
	adjust   [][]any
	adjusted int64
}

// closedGrant is a grant a close ended, with what it still held (late usage deducted).
type closedGrant struct {
	id, remaining, effective, expires int64
	amount                            int64
	priority                          int
	touched                           bool
}

// latestCloseBoundary is the latest boundary any close recorded: usage dated before it may
// belong to a closed period; usage after it (nearly all) needs no further look.
func latestCloseBoundary(ctx context.Context, tx *Tx) (int64, bool, error) {
	var b sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(boundary) FROM period_closes`).Scan(&b); err != nil {
		return 0, false, fmt.Errorf("latest period close: %w", err)
	}
	return b.Int64, b.Valid, nil
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
	rows, err := tx.QueryContext(ctx, `SELECT g.id, cg.remaining, g.effective_at, g.expires_at, g.priority FROM closed_grants cg
		JOIN grants g ON g.id = cg.grant_id WHERE cg.reset_tx_id = ? AND cg.remaining > 0 ORDER BY g.priority, g.expires_at, g.id`, c.resetTx)
	if err != nil {
		return nil, fmt.Errorf("read closed grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		g := &closedGrant{}
		if err := rows.Scan(&g.id, &g.remaining, &g.effective, &g.expires, &g.priority); err != nil {
			return nil, err
		}
		c.grants = append(c.grants, g)
	}
	return c, rows.Err()
}

// applyLateUsage recomputes a close after late events burned c.burned of the grants it
// ended: unspent' = unspent - burned, carried' = min(max, max(unspent', min)). One
// "late-usage" transaction posts the difference between the two closes (less expired,
// less carried, or more minted when a minimum rollover applies), and what is no longer
// carried is taken back in the next period as if it had never been carried: from the
// carry-over grant while it holds it, then from the next grants in burn order (open holds
// the batch's view of them), then by turning that period's latest spending back into
// overage.
func applyLateUsage(ctx context.Context, tx *Tx, now int64, c *periodClose, open []*openGrant) error {
	if c.burned == 0 && len(c.adjust) == 0 {
		return nil // the late usage found nothing left of what was open when it happened
	}
	unspent := c.unspent - c.burned
	carried := c.limits.Carry(unspent)
	takeBack := c.carried - carried
	// From the carry-over grant first, then the next grants in burn order.
	order := make([]*openGrant, 0, len(open))
	for _, g := range open {
		if g.id == c.rolloverGrant {
			order = append([]*openGrant{g}, order...)
		} else if g.expires > c.boundary && g.effective < c.nextEnd {
			order = append(order, g)
		}
	}
	for _, g := range order {
		if takeBack == 0 {
			break
		}
		take := min(takeBack, g.remaining)
		g.remaining -= take
		g.touched = take > 0 || g.touched
		takeBack -= take
	}
	var adjustments [][]any
	var moved int64 // spending of the next period turned back into overage
	if takeBack > 0 {
		lines, err := usageLines(ctx, tx, c.personID, c.boundary, c.nextEnd)
		if err != nil {
			return err
		}
		for i := len(lines) - 1; i >= 0 && takeBack > 0; i-- {
			l := lines[i]
			d := min(takeBack, l.credits-l.overage)
			if d > 0 {
				adjustments = append(adjustments, []any{l.txID, c.personID, l.at, d})
				moved += d
				takeBack -= d
			}
		}
	}
	// What could not be taken back anywhere (the carried credits went to usage since
	// reversed) stays carried: the close then carries that much more than the formula.
	carried += takeBack

	before := closePostings(c.personID, c.unspent, c.carried)
	after := closePostings(c.personID, unspent, carried)
	diff := make(map[string]int64, 4)
	for i := range before {
		diff[after[i].Account] += after[i].Amount - before[i].Amount
	}
	diff[ledger.AvailableAccount(c.personID)] += moved + c.adjusted
	diff[ledger.OverageAccount(c.personID)] -= moved + c.adjusted
	adjustments = append(adjustments, c.adjust...)
	// Credits already reallocated from the reclaimed pool cannot be taken back from it;
	// what is missing there comes from the organisation's pool.
	if de := diff[ledger.AccountExpired]; de < 0 {
		var expired int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT balance FROM accounts WHERE name = ?), 0)`, ledger.AccountExpired).Scan(&expired); err != nil {
			return err
		}
		if short := -de - max(0, expired); short > 0 {
			diff[ledger.AccountExpired] += short
			diff[ledger.AccountPool] -= short
		}
	}
	w := &txWrite{key: "late:" + strconv.FormatInt(c.resetTx, 10) + ":" + strconv.FormatInt(c.firstUsage, 10),
		hash: inputHash("late", c.resetTx, c.firstUsage, c.burned), kind: ledger.TxLateUsage, personID: c.personID, actor: "usage",
		reason: fmt.Sprintf("usage dated in %s arrived after it closed: %s credits charged to %s, taken back from what its close expired or carried", c.key, ledger.FormatCredits(c.burned), c.key)}
	for _, acc := range []string{ledger.AvailableAccount(c.personID), ledger.OverageAccount(c.personID), ledger.AccountExpired, ledger.AccountPool} {
		if d, ok := diff[acc]; ok {
			w.postings = append(w.postings, ledger.Posting{Account: acc, Amount: d})
		}
	}
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
		if g.touched {
			if _, err := tx.ExecContext(ctx, `UPDATE closed_grants SET remaining = ? WHERE grant_id = ?`, g.remaining, g.id); err != nil {
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
		if (eff > at && eff <= latest) || (exp > at && exp <= latest) {
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
		if g.effective < from {
			return nil
		}
		cur[g.id] = g.remaining
		held += g.remaining
		g.remaining = g.amount
		if rollover.Valid && g.id == rollover.Int64 {
			g.remaining = carried.Int64 // less what late usage took back
		}
	}
	lines, err := usageLines(ctx, tx, personID, from, 1<<62)
	if err != nil {
		return err
	}
	var start, burned int64
	for _, g := range grants {
		start += g.remaining
	}
	for _, l := range lines {
		burned += l.credits - l.overage
	}
	if start-held != burned {
		return nil // grants and usage do not tell one story (an older correction): leave them
	}
	var adjustments [][]any
	var delta int64
	for _, l := range lines {
		left := burnOpen(openGrants(grants), l.at, l.credits)
		if d := left - l.overage; d != 0 {
			adjustments = append(adjustments, []any{l.txID, personID, l.at, d})
			delta += d
		}
	}
	var burn [][]any
	for _, g := range grants {
		if g.remaining != cur[g.id] {
			burn = append(burn, []any{g.id, g.remaining})
		}
	}
	if len(adjustments) > 0 {
		w := &txWrite{key: fmt.Sprintf("rebook:%d:%d:%d", personID, now, lines[len(lines)-1].txID), hash: inputHash("rebook", personID, now),
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

// openGrants views person grants as burnable grants, sharing their state.
func openGrants(gs []*personGrant) []*openGrant {
	out := make([]*openGrant, len(gs))
	for i, g := range gs {
		out[i] = &g.openGrant
	}
	return out
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
	rows, err := tx.QueryContext(ctx, `SELECT g.id, g.amount, cg.remaining, g.priority, g.effective_at, g.expires_at FROM closed_grants cg
		JOIN grants g ON g.id = cg.grant_id WHERE cg.reset_tx_id = ? ORDER BY g.priority, g.expires_at, g.id`, c.resetTx)
	if err != nil {
		return fmt.Errorf("replay closed period: %w", err)
	}
	var all []*closedGrant
	for rows.Next() {
		g := &closedGrant{}
		if err := rows.Scan(&g.id, &g.amount, &g.remaining, &g.priority, &g.effective, &g.expires); err != nil {
			rows.Close()
			return err
		}
		all = append(all, g)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	inBatch := make(map[int64]*closedGrant, len(c.grants))
	for _, g := range c.grants {
		inBatch[g.id] = g
	}
	burnable := make([]*openGrant, len(all))
	var start, held int64
	for i, g := range all {
		if b, ok := inBatch[g.id]; ok {
			g.remaining = b.remaining // this batch's first allocation
		}
		if g.effective < from {
			return nil // started before the period: its state at the start is unknown
		}
		held += g.remaining
		first := g.amount
		if rollover.Valid && g.id == rollover.Int64 {
			first = carried.Int64
		}
		start += first
		burnable[i] = &openGrant{id: g.id, priority: g.priority, remaining: first, effective: g.effective, expires: g.expires}
	}
	lines, err := usageLines(ctx, tx, c.personID, from, c.boundary)
	if err != nil {
		return err
	}
	var burned int64
	for _, l := range lines {
		burned += l.credits - l.overage
	}
	if start-held != burned {
		return nil // grants and usage do not tell one story (an older correction): leave them
	}
	for _, l := range lines {
		left := burnOpen(burnable, l.at, l.credits)
		if d := left - l.overage; d != 0 {
			c.adjust = append(c.adjust, []any{l.txID, c.personID, l.at, d})
			c.adjusted += d
		}
	}
	c.grants = c.grants[:0]
	var after int64
	for i, g := range all {
		if burnable[i].remaining != g.remaining || inBatch[g.id] != nil {
			c.grants = append(c.grants, &closedGrant{id: g.id, remaining: burnable[i].remaining, touched: true})
		}
		after += burnable[i].remaining
	}
	c.burned = c.unspent - after
	return nil
}
