package sqlstore

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"io"
	"sort"
	"strconv"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Balance returns what a person has now and consumed in the period [start, end).
func (db *Store) Balance(ctx context.Context, personID int64, start, end time.Time) (ledger.Balance, error) {
	b := ledger.Balance{PersonID: personID, PeriodStart: start, PeriodEnd: end}
	now := ms(db.now())
	days, err := usageDays(ctx, db.read, "u", ms(start), ms(end))
	if err != nil {
		return b, err
	}
	// The period's usage in one pass over its days (credits and overage together).
	err = db.read.QueryRowContext(ctx, `SELECT p.email,
		(SELECT `+WideSum("r.remaining")+` FROM `+grantTables+` WHERE g.person_id = p.id AND g.closed_tx_id IS NULL
			AND g.effective_at <= ? AND g.expires_at > ?),
		s.credits, s.overage + `+adjustedOverage("p.id", "?", "?")+`
		FROM people p CROSS JOIN (SELECT `+WideSum("credits")+` AS credits, `+WideSum("overage")+` AS overage FROM usage_events u
			WHERE `+days+` AND u.person_id = ? AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0) s
		WHERE p.id = ?`, now, now, ms(start), ms(end), personID, ms(start), ms(end), personID).
		Scan(&b.Email, Sat(&b.Available), Sat(&b.Spent), Sat(&b.Overage))
	return b, notFound(err, "person %d is not in the directory", personID)
}

// adjustedOverage is an SQL expression: the change of overage, after booking, of a
// person's unreversed usage dated in [from, to) (usage_adjustments).
func adjustedOverage(person, from, to string) string {
	return `(SELECT ` + WideSum("a.overage") + ` FROM usage_adjustments a JOIN usage_events ua ON ua.tx_id = a.usage_tx_id
		WHERE a.person_id = ` + person + ` AND a.occurred_at >= ` + from + ` AND a.occurred_at < ` + to + ` AND ua.reversed = 0)`
}

// historyDays is how many days of usage History reads per statement.
const historyDays = 32

// History lists the latest grants, spending and corrections of a person, newest first.
// Usage comes from usage_events (usage_day_person), everything else from
// transactions, and the two are merged by time.
func (db *Store) History(ctx context.Context, personID int64, limit int) ([]ledger.Activity, error) {
	var out []ledger.Activity
	rows, err := db.read.QueryContext(ctx, `SELECT t.id, t.created_at, t.kind, t.reason,
		(SELECT `+WideSum("amount")+` FROM postings p WHERE p.tx_id = t.id AND p.account IN (?, ?))
		FROM transactions t WHERE t.person_id = ? AND t.kind <> 'usage' ORDER BY t.id DESC LIMIT ?`,
		ledger.AvailableAccount(personID), ledger.OverageAccount(personID), personID, limit)
	if err != nil {
		return nil, err
	}
	if out, err = appendActivities(out, rows, ""); err != nil {
		return nil, err
	}
	// Usage newest first, historyDays UTC days at a time (usage_day_person), back to the
	// first day with usage or until limit rows.
	first, last, found, err := usageSpan(ctx, db.read)
	if err != nil {
		return nil, err
	}
	for hi, usage := last, 0; found && hi >= first && usage < limit; hi -= historyDays {
		rows, err := db.read.QueryContext(ctx, `SELECT tx_id, occurred_at, model, -credits FROM usage_events u
			WHERE `+dayCondition("u", max(first, hi-historyDays+1), hi)+` AND person_id = ? ORDER BY occurred_at DESC, tx_id DESC LIMIT ?`,
			personID, limit-usage)
		if err != nil {
			return nil, err
		}
		n := len(out)
		if out, err = appendActivities(out, rows, ledger.TxUsage); err != nil {
			return nil, err
		}
		usage += len(out) - n
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.After(out[j].At)
		}
		return out[i].TxID > out[j].TxID
	})
	return out[:min(limit, len(out))], nil
}

// appendActivities scans (id, time, kind, reason, amount) rows, or (id, time, reason,
// amount) when kind is given.
func appendActivities(out []ledger.Activity, rows *sql.Rows, kind string) ([]ledger.Activity, error) {
	defer rows.Close()
	for rows.Next() {
		a := ledger.Activity{Kind: kind}
		var at int64
		var err error
		if kind == "" {
			err = rows.Scan(&a.TxID, &at, &a.Kind, &a.Reason, Sat(&a.Amount))
		} else {
			err = rows.Scan(&a.TxID, &at, &a.Reason, Sat(&a.Amount))
		}
		if err != nil {
			return nil, err
		}
		a.At = fromMs(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Verify checks every ledger invariant and returns one sentence per violation: each
// transaction balances; the organisation's stored running balances equal their postings;
// each person's postings equal what the projections say (open grants for available, usage
// rows for spent and overage); no grant is over-spent; reclaimed credits are not negative.
func (db *Store) Verify(ctx context.Context) ([]string, error) {
	// One read transaction: every check sees the same snapshot (PostgreSQL's REPEATABLE
	// READ; SQLite's read transaction on its WAL), so writes committed meanwhile, by this
	// process or another replica, cannot show up as a violation between two checks. It
	// also keeps one connection (one session, even behind a transaction pooler) for the
	// temp table of per-account sums, computed once; the rollback drops it.
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer tx.Rollback()
	// Each account's sum is kept as its high and low 32-bit halves (see WideSum), so the
	// grand total below is exact whatever the accounts hold; total is the joined value
	// (NUMERIC: exact on PostgreSQL; on SQLite an INTEGER, or a REAL past int64). One
	// statement per Exec, and no engine-only table options, so both engines take it.
	for _, q := range []string{
		`DROP TABLE IF EXISTS verify_sums`,
		`CREATE TEMP TABLE verify_sums (account TEXT PRIMARY KEY, hi BIGINT NOT NULL, lo BIGINT NOT NULL, total NUMERIC NOT NULL)`,
		`INSERT INTO verify_sums SELECT account, COALESCE(SUM(amount >> 32), 0), COALESCE(SUM(amount & 4294967295), 0), ` + WideSum("amount") + `
		 FROM ledger_postings GROUP BY account`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("verify: sum postings: %w", err)
		}
	}
	sum := func(account string) string {
		return `COALESCE((SELECT total FROM verify_sums WHERE account = ` + account + `), 0)`
	}
	checks := []struct {
		what  string
		query string
	}{
		{"transaction postings do not sum to zero",
			`SELECT 'transaction ' || tx_id || ': ' || ` + WideSum("amount") + ` FROM postings GROUP BY tx_id HAVING ` + WideSum("amount") + ` != 0
			 UNION ALL SELECT 'transaction ' || tx_id || ': usage of ' || credits || ' with ' || overage || ' overage'
			 FROM usage_events WHERE credits < 0 OR overage < 0 OR overage > credits
			 UNION ALL SELECT 'transaction ' || u.tx_id || ': usage of ' || u.credits || ' with ' || (u.overage + a.total) || ' overage after adjustments'
			 FROM usage_events u JOIN (SELECT usage_tx_id, SUM(overage) AS total FROM usage_adjustments GROUP BY usage_tx_id) a ON a.usage_tx_id = u.tx_id
			 WHERE u.overage + a.total < 0 OR u.overage + a.total > u.credits
			 UNION ALL SELECT 'adjustment ' || a.id || ': person or date differs from its usage' FROM usage_adjustments a
			 JOIN usage_events u ON u.tx_id = a.usage_tx_id WHERE a.person_id != u.person_id OR a.occurred_at != u.occurred_at`},
		{"usage transaction and row do not match",
			`SELECT 'transaction ' || u.tx_id FROM usage_events u LEFT JOIN transactions t ON t.id = u.tx_id
			 WHERE t.id IS NULL OR t.kind <> 'usage' OR t.person_id IS DISTINCT FROM u.person_id
			 UNION ALL SELECT 'transaction ' || t.id FROM transactions t LEFT JOIN usage_events u ON u.tx_id = t.id
			 WHERE t.kind = 'usage' AND u.tx_id IS NULL`},
		{"all postings together do not sum to zero",
			`SELECT 'total ' || (SUM(hi) * 4294967296 + SUM(lo)) FROM verify_sums HAVING SUM(hi) * 4294967296 + SUM(lo) != 0`},
		{"account balance differs from its postings",
			`SELECT a.name || ': stored ' || a.balance || ', postings ' || ` + sum("a.name") + ` FROM accounts a
			 WHERE a.balance != ` + sum("a.name") + `
			 UNION ALL SELECT s.account || ': stored 0, postings ' || s.total FROM verify_sums s
			 WHERE substr(s.account, 1, 7) <> 'person:' AND s.total != 0 AND s.account NOT IN (SELECT name FROM accounts)`},
		{"grant over-spent or inconsistent",
			`SELECT 'grant ' || g.id || ': remaining ' || COALESCE(CAST(r.remaining AS TEXT), 'unrecorded') || ' of ' || g.amount
			 FROM grants g LEFT JOIN grant_remaining r ON r.grant_id = g.id
			 WHERE r.remaining IS NULL OR r.remaining < 0 OR r.remaining > g.amount OR (g.closed_tx_id IS NOT NULL AND r.remaining != 0)
			 UNION ALL SELECT 'remaining ' || r.remaining || ' recorded for grant ' || r.grant_id || ', which does not exist'
			 FROM grant_remaining r LEFT JOIN grants g ON g.id = r.grant_id WHERE g.id IS NULL`},
		{"available balance differs from open grants",
			`WITH g AS (SELECT g.person_id, ` + WideSum("r.remaining") + ` AS total FROM ` + grantTables + ` GROUP BY g.person_id)
			 SELECT 'person ' || p.id || ': available ' || ` + sum(`'person:' || p.id || ':available'`) + ` || ', grants ' || COALESCE(g.total, 0)
			 FROM people p LEFT JOIN g ON g.person_id = p.id
			 WHERE ` + sum(`'person:' || p.id || ':available'`) + ` != COALESCE(g.total, 0)`},
		{"spent differs from recorded usage",
			`WITH u AS (SELECT person_id, ` + WideSum("credits") + ` AS credits, ` + WideSum("overage") + ` AS overage FROM (
			     SELECT person_id, credits, overage FROM usage_events WHERE reversed = 0
			     UNION ALL SELECT a.person_id, 0, a.overage FROM usage_adjustments a JOIN usage_events ua ON ua.tx_id = a.usage_tx_id WHERE ua.reversed = 0) lines
			   GROUP BY person_id)
			 SELECT 'person ' || p.id || ': spent ' || ` + sum(`'person:' || p.id || ':spent'`) + ` || ' vs usage ' || COALESCE(u.credits, 0)
			    || ', overage ' || -` + sum(`'person:' || p.id || ':overage'`) + ` || ' vs usage ' || COALESCE(u.overage, 0)
			 FROM people p LEFT JOIN u ON u.person_id = p.id
			 WHERE ` + sum(`'person:' || p.id || ':spent'`) + ` != COALESCE(u.credits, 0)
			    OR -` + sum(`'person:' || p.id || ':overage'`) + ` != COALESCE(u.overage, 0)`},
		{"period close differs from the grants it ended",
			`SELECT 'close ' || c.reset_tx_id || ' of ' || c.period_key || ': unspent ' || c.unspent || ', grants ' || COALESCE(SUM(cg.remaining), 0)
			 FROM period_closes c LEFT JOIN closed_grants cg ON cg.reset_tx_id = c.reset_tx_id
			 GROUP BY c.reset_tx_id HAVING c.unspent != COALESCE(SUM(cg.remaining), 0)`},
		{"reclaimed credits are negative",
			`SELECT 'expired: ' || balance FROM accounts WHERE name = 'expired' AND balance < 0`},
	}
	var violations []string
	for _, c := range checks {
		rows, err := tx.QueryContext(ctx, c.query)
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", c.what, err)
		}
		for rows.Next() {
			var detail string
			if err := rows.Scan(&detail); err != nil {
				rows.Close()
				return nil, err
			}
			violations = append(violations, c.what+": "+detail)
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return violations, nil
}

// ExportPostings writes every posting as CSV, oldest first.
func (db *Store) ExportPostings(ctx context.Context, w io.Writer) error {
	rows, err := db.read.QueryContext(ctx, `SELECT t.id, t.created_at, t.idem_key, t.kind, COALESCE(pe.email, ''), p.account, p.amount, t.reason
		FROM ledger_postings p JOIN transactions t ON t.id = p.tx_id LEFT JOIN people pe ON pe.id = t.person_id ORDER BY p.tx_id`)
	if err != nil {
		return fmt.Errorf("export postings: %w", err)
	}
	defer rows.Close()
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"tx_id", "created_at", "key", "kind", "email", "account", "amount", "reason"}); err != nil {
		return err
	}
	for rows.Next() {
		var id, at, amount int64
		var key, kind, email, account, reason string
		if err := rows.Scan(&id, &at, &key, &kind, &email, &account, &amount, &reason); err != nil {
			return err
		}
		if err := cw.Write([]string{strconv.FormatInt(id, 10), fromMs(at).Format(time.RFC3339), key, kind, email, account,
			strconv.FormatInt(amount, 10), reason}); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return rows.Err()
}
