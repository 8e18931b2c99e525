package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Grant grants credits idempotently.
func (db *Store) Grant(ctx context.Context, in ledger.GrantInput) (ledger.Grant, error) {
	var g ledger.Grant
	err := db.inTx(ctx, func(tx *Tx) error {
		var err error
		g, err = db.grantTx(ctx, tx, in)
		return err
	})
	return g, err
}

func (db *Store) grantTx(ctx context.Context, tx *Tx, in ledger.GrantInput) (ledger.Grant, error) {
	now := db.now()
	in, err := ledger.PrepareGrant(in)
	if err != nil {
		return ledger.Grant{}, err
	}
	// The hash covers the input as given, so a retry later in time is still the same request.
	hash := inputHash("grant", in.PersonID, in.Kind, in.Amount, ms(in.EffectiveAt), ms(in.ExpiresAt), in.From)
	if id, err := lookupKey(ctx, tx, in.Key, hash); err != nil || id != 0 {
		if err != nil {
			return ledger.Grant{}, err
		}
		return grantByTx(ctx, tx, id)
	}
	if in.EffectiveAt, err = ledger.GrantStarts(in, now); err != nil {
		return ledger.Grant{}, err
	}
	if err := personExists(ctx, tx, in.PersonID); err != nil {
		return ledger.Grant{}, err
	}
	kind := ledger.TxGrant
	if in.From == ledger.AccountExpired {
		kind = ledger.TxReallocate
		var reclaimable int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT balance FROM accounts WHERE name = ?), 0)`, ledger.AccountExpired).Scan(&reclaimable); err != nil {
			return ledger.Grant{}, err
		}
		if err := ledger.CheckReallocation(in.Amount, reclaimable); err != nil {
			return ledger.Grant{}, err
		}
	}
	w := &txWrite{key: in.Key, hash: hash, kind: kind, personID: in.PersonID, reason: in.Reason, actor: in.Actor,
		postings: []ledger.Posting{{Account: in.From, Amount: -in.Amount}, {Account: ledger.AvailableAccount(in.PersonID), Amount: in.Amount}}}
	if err := writeTxs(ctx, tx, ms(now), []*txWrite{w}); err != nil {
		return ledger.Grant{}, err
	}
	g := ledger.Grant{TxID: w.id, PersonID: in.PersonID, Kind: in.Kind, Amount: in.Amount, Remaining: in.Amount,
		Priority: in.Kind.Priority(), EffectiveAt: in.EffectiveAt.UTC(), ExpiresAt: in.ExpiresAt.UTC(), Reason: in.Reason}
	id, err := insertGrant(ctx, tx, g)
	if err != nil {
		return ledger.Grant{}, err
	}
	g.ID = id
	return g, nil
}

// insertGrant stores a new grant with all of its amount remaining and returns its id.
func insertGrant(ctx context.Context, tx *Tx, g ledger.Grant) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO grants(tx_id, person_id, kind, amount, priority, effective_at, expires_at, reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, g.TxID, g.PersonID, g.Kind, g.Amount, g.Kind.Priority(), ms(g.EffectiveAt), ms(g.ExpiresAt), g.Reason).Scan(&id); err != nil {
		return 0, fmt.Errorf("insert %s grant: %w", g.Kind, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO grant_remaining(grant_id, remaining) VALUES (?, ?)`, id, g.Amount); err != nil {
		return 0, fmt.Errorf("insert %s grant: %w", g.Kind, err)
	}
	return id, nil
}

// closeGrant ends a grant: nothing of it remains, and closedBy says which transaction
// closed it.
func closeGrant(ctx context.Context, tx *Tx, id, closedBy int64) error {
	if _, err := tx.ExecContext(ctx, `UPDATE grants SET closed_tx_id = ? WHERE id = ?`, closedBy, id); err != nil {
		return fmt.Errorf("close grant %d: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE grant_remaining SET remaining = 0 WHERE grant_id = ?`, id); err != nil {
		return fmt.Errorf("close grant %d: %w", id, err)
	}
	return nil
}

func personExists(ctx context.Context, tx *Tx, id int64) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM people WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ledger.Errorf(ledger.NotFound, "person %d does not exist", id)
	}
	return nil
}

// grantColumns are read FROM grantTables (a grant with what remains of it).
const (
	grantColumns = `g.id, g.tx_id, g.person_id, g.kind, g.amount, r.remaining, g.priority, g.effective_at, g.expires_at, g.reason, g.closed_tx_id IS NOT NULL`
	grantTables  = `grants g JOIN grant_remaining r ON r.grant_id = g.id`
)

type scanner interface{ Scan(dest ...any) error }

func scanGrant(s scanner) (ledger.Grant, error) {
	var g ledger.Grant
	var eff, exp int64
	err := s.Scan(&g.ID, &g.TxID, &g.PersonID, &g.Kind, &g.Amount, &g.Remaining, &g.Priority, &eff, &exp, &g.Reason, &g.Closed)
	g.EffectiveAt, g.ExpiresAt = fromMs(eff), fromMs(exp)
	return g, err
}

func grantByTx(ctx context.Context, tx *Tx, txID int64) (ledger.Grant, error) {
	g, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM `+grantTables+` WHERE g.tx_id = ?`, txID))
	return g, notFound(err, "transaction %d granted nothing", txID)
}

// Grants lists a person's grants, newest first.
func (db *Store) Grants(ctx context.Context, personID int64, limit int) ([]ledger.Grant, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+grantColumns+` FROM `+grantTables+` WHERE g.person_id = ? ORDER BY g.id DESC LIMIT ?`, personID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var gs []ledger.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, rows.Err()
}

// Reverse appends a transaction that negates every posting of another. A grant can be
// reversed while it is untouched; usage gives its burned credits back as a refund grant.
func (db *Store) Reverse(ctx context.Context, in ledger.ReverseInput) (ledger.Transaction, error) {
	if in.Key == "" {
		in.Key = fmt.Sprintf("reverse:%d", in.TxID)
	}
	var revID int64
	err := db.inTx(ctx, func(tx *Tx) error {
		hash := inputHash("reverse", in.TxID)
		id, err := lookupKey(ctx, tx, in.Key, hash)
		if err != nil || id != 0 {
			revID = id
			return err
		}
		var kind string
		var person sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT kind, person_id FROM transactions WHERE id = ?`, in.TxID).Scan(&kind, &person); err != nil {
			return notFound(err, "transaction %d does not exist", in.TxID)
		}
		var reversed int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM transactions WHERE reverses_id = ?`, in.TxID).Scan(&reversed); err != nil {
			return err
		}
		if err := ledger.CheckReversible(in.TxID, kind, reversed > 0); err != nil {
			return err
		}
		postings, err := postingsOf(ctx, tx, in.TxID)
		if err != nil {
			return err
		}
		w := &txWrite{key: in.Key, hash: hash, kind: ledger.TxReversal, personID: person.Int64, reason: in.Reason, actor: in.Actor, reversesID: in.TxID}
		if kind == ledger.TxUsage {
			// Usage is reversed as it stands now: a settlement or a late event may have
			// changed its overage since it was booked (usage_adjustments).
			if postings, err = usagePostingsNow(ctx, tx, in.TxID); err != nil {
				return err
			}
		}
		w.postings = ledger.ReversalPostings(postings)
		switch kind {
		case ledger.TxGrant, ledger.TxReallocate:
			g, err := grantByTx(ctx, tx, in.TxID)
			if err != nil {
				return err
			}
			if err := ledger.CheckGrantReversible(g); err != nil {
				return err
			}
			if err := writeTxs(ctx, tx, ms(db.now()), []*txWrite{w}); err != nil {
				return err
			}
			if err := closeGrant(ctx, tx, g.ID, w.id); err != nil {
				return err
			}
		case ledger.TxUsage:
			if err := writeTxs(ctx, tx, ms(db.now()), []*txWrite{w}); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE usage_events SET reversed = 1 WHERE tx_id = ?`, in.TxID); err != nil {
				return fmt.Errorf("mark usage reversed: %w", err)
			}
			now := db.now()
			refund, err := ledger.UsageRefund(person.Int64, w.postings, in.RefundExpiresAt, now)
			if err != nil {
				return err
			}
			if refund > 0 {
				if _, err := insertGrant(ctx, tx, ledger.Grant{TxID: w.id, PersonID: person.Int64, Kind: ledger.GrantAdjustment,
					Amount: refund, EffectiveAt: now, ExpiresAt: in.RefundExpiresAt, Reason: "refund: " + in.Reason}); err != nil {
					return err
				}
			}
		}
		revID = w.id
		return nil
	})
	if err != nil {
		return ledger.Transaction{}, err
	}
	return db.Transaction(ctx, revID)
}

// usagePostingsNow are the postings a usage event amounts to with its adjustments.
func usagePostingsNow(ctx context.Context, tx *Tx, txID int64) ([]ledger.Posting, error) {
	var person, credits, overage int64
	if err := tx.QueryRowContext(ctx, `SELECT person_id, credits,
		overage + COALESCE((SELECT SUM(a.overage) FROM usage_adjustments a WHERE a.usage_tx_id = u.tx_id), 0)
		FROM usage_events u WHERE tx_id = ?`, txID).Scan(&person, &credits, &overage); err != nil {
		return nil, notFound(err, "usage transaction %d has no usage row", txID)
	}
	return []ledger.Posting{{Account: ledger.SpentAccount(person), Amount: credits},
		{Account: ledger.AvailableAccount(person), Amount: overage - credits},
		{Account: ledger.OverageAccount(person), Amount: -overage}}, nil
}

func postingsOf(ctx context.Context, tx *Tx, txID int64) ([]ledger.Posting, error) {
	rows, err := tx.QueryContext(ctx, `SELECT account, amount FROM ledger_postings WHERE tx_id = ?`, txID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ps []ledger.Posting
	for rows.Next() {
		var p ledger.Posting
		if err := rows.Scan(&p.Account, &p.Amount); err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, rows.Err()
}

// BaselineBefore reports whether any baseline took effect before t: whether the
// organisation had a period before the one starting at t.
func (db *Store) BaselineBefore(ctx context.Context, t time.Time) (bool, error) {
	var found bool
	err := db.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM grants WHERE kind = ? AND effective_at < ?)`, ledger.GrantBaseline, ms(t)).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("earlier baselines: %w", err)
	}
	return found, nil
}

// ResetPeriod expires grants that ended at the boundary (carrying part of them over) and
// grants the new baseline. Keys per person and period make a repeated run a no-op.
func (db *Store) ResetPeriod(ctx context.Context, in ledger.ResetInput) (ledger.ResetResult, error) {
	res, err := db.ResetPeriods(ctx, []ledger.ResetInput{in})
	if err != nil {
		return ledger.ResetResult{PersonID: in.PersonID}, err
	}
	return res[0], nil
}

// ResetPeriods is ResetPeriod for many people, a few hundred per write transaction.
func (db *Store) ResetPeriods(ctx context.Context, ins []ledger.ResetInput) ([]ledger.ResetResult, error) {
	out := make([]ledger.ResetResult, 0, len(ins))
	const chunk = 500
	for start := 0; start < len(ins); start += chunk {
		part := ins[start:min(start+chunk, len(ins))]
		err := db.inBulkTx(ctx, func(tx *Tx) error {
			for _, in := range part {
				res, err := db.resetTx(ctx, tx, in)
				if err != nil {
					return fmt.Errorf("reset person %d: %w", in.PersonID, err)
				}
				out = append(out, res)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// resetTx closes and opens one person's period. Everything it grants takes effect at the
// boundary, whenever it runs; usage dated in the new period that arrived before it is
// then settled against the new grants, as if the reset had run at the boundary.
func (db *Store) resetTx(ctx context.Context, tx *Tx, in ledger.ResetInput) (ledger.ResetResult, error) {
	res := ledger.ResetResult{PersonID: in.PersonID}
	now := ms(db.now())
	resetKey := fmt.Sprintf("reset:%s:%d", in.OldKey, in.PersonID)
	resetHash := inputHash("reset", in.PersonID, ms(in.Boundary))
	done, err := lookupKey(ctx, tx, resetKey, resetHash)
	if err != nil {
		return res, err
	}
	changed := false
	if done == 0 && in.OldKey != "" {
		rows, err := tx.QueryContext(ctx, `SELECT g.id, r.remaining FROM `+grantTables+`
			WHERE g.person_id = ? AND g.closed_tx_id IS NULL AND g.expires_at <= ?`, in.PersonID, ms(in.Boundary))
		if err != nil {
			return res, err
		}
		var ids, rems []int64
		for rows.Next() {
			var id, rem int64
			if err := rows.Scan(&id, &rem); err != nil {
				rows.Close()
				return res, err
			}
			ids, rems = append(ids, id), append(rems, rem)
		}
		if err := rows.Close(); err != nil {
			return res, err
		}
		out := ledger.ClosePeriod(in.PersonID, rems, in.Rollover)
		res.Expired, res.Carried = out.Unspent, out.Carried
		if out.Record {
			changed = true
			w := &txWrite{key: resetKey, hash: resetHash, kind: ledger.TxReset, personID: in.PersonID,
				reason: "period " + in.OldKey + " closed", actor: "scheduler", postings: out.Postings}
			if err := writeTxs(ctx, tx, now, []*txWrite{w}); err != nil {
				return res, err
			}
			var rolloverID int64
			if out.Carried > 0 {
				if rolloverID, err = insertGrant(ctx, tx, ledger.Grant{TxID: w.id, PersonID: in.PersonID, Kind: ledger.GrantRollover,
					Amount: out.Carried, EffectiveAt: in.Boundary, ExpiresAt: in.NextEnd, Reason: "carried over from " + in.OldKey}); err != nil {
					return res, err
				}
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO period_closes(reset_tx_id, person_id, period_key, boundary, next_end,
				unspent, carried, rollover_max, rollover_min, rollover_grant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				w.id, in.PersonID, in.OldKey, ms(in.Boundary), ms(in.NextEnd), out.Unspent, out.Carried, out.Limits.Max, out.Limits.Min, nullID(rolloverID)); err != nil {
				return res, fmt.Errorf("record the close of %s: %w", in.OldKey, err)
			}
			for i, id := range ids {
				if _, err := tx.ExecContext(ctx, `INSERT INTO closed_grants(grant_id, reset_tx_id, remaining) VALUES (?, ?, ?)`, id, w.id, rems[i]); err != nil {
					return res, fmt.Errorf("record closed grant %d: %w", id, err)
				}
				if err := closeGrant(ctx, tx, id, w.id); err != nil {
					return res, err
				}
			}
		}
	}
	baselineKey := fmt.Sprintf("baseline:%s:%d", in.NewKey, in.PersonID)
	// A baseline already granted for this period stands, even if the policy changed since.
	granted, err := lookupKeys(ctx, tx, []string{baselineKey})
	if err != nil {
		return res, err
	}
	if in.Baseline > 0 && len(granted) == 0 {
		g, err := db.grantTx(ctx, tx, ledger.GrantInput{
			Key: baselineKey, PersonID: in.PersonID, Kind: ledger.GrantBaseline,
			Amount: in.Baseline, EffectiveAt: in.Boundary, ExpiresAt: in.NextEnd, Reason: "baseline for " + in.NewKey, Actor: "scheduler",
		})
		if err != nil {
			return res, err
		}
		res.Baseline = g.Amount
		changed = true
	}
	if changed {
		settled, err := settleEarlyUsage(ctx, tx, now, in.PersonID, in.NewKey, in.Boundary, in.NextEnd)
		if err != nil {
			return res, err
		}
		res.Settled = settled
	}
	return res, openPeriodTotal(ctx, tx, in.PersonID, ms(in.Boundary), ms(in.NextEnd))
}

// openPeriodTotal starts the running total of a person's usage in the period [start, end)
// (usage_totals) unless usage started it already: with what is dated in it so far, which
// at the boundary is nothing. The period's first usage batch then finds it instead of
// summing the person's rows, a seek per day of the period.
func openPeriodTotal(ctx context.Context, tx *Tx, personID, start, end int64) error {
	days, err := usageDays(ctx, tx, "u", start, end)
	if err != nil {
		return err
	}
	var credits int64
	if err := tx.QueryRowContext(ctx, `SELECT `+WideSum("credits")+` FROM usage_events u
		WHERE `+days+` AND u.person_id = ? AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0`, personID, start, end).Scan(Sat(&credits)); err != nil {
		return fmt.Errorf("sum the usage of the new period: %w", err)
	}
	// Capped as loadPeriodTotals caps a total, so that adding a batch cannot overflow.
	if _, err := tx.ExecContext(ctx, `INSERT INTO usage_totals(person_id, period_start, credits) VALUES (?, ?, ?)
		ON CONFLICT (person_id, period_start) DO NOTHING`, personID, start, min(max(credits, 0), ledger.MaxPeriodCredits+1)); err != nil {
		return fmt.Errorf("open the usage total of the new period: %w", err)
	}
	return nil
}
