package sqlite

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Balance returns what a person has now and consumed in the period [start, end).
func (db *DB) Balance(ctx context.Context, personID int64, start, end time.Time) (ledger.Balance, error) {
	b := ledger.Balance{PersonID: personID, PeriodStart: start, PeriodEnd: end}
	now := ms(db.now())
	err := db.read.QueryRowContext(ctx, `SELECT p.email,
		COALESCE((SELECT SUM(remaining) FROM grants g WHERE g.person_id = p.id AND g.closed_tx_id IS NULL
			AND g.effective_at <= ? AND g.expires_at > ?), 0),
		COALESCE((SELECT SUM(credits) FROM usage_events u WHERE u.person_id = p.id AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0), 0),
		COALESCE((SELECT SUM(overage) FROM usage_events u WHERE u.person_id = p.id AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0), 0)
		FROM people p WHERE p.id = ?`, now, now, ms(start), ms(end), ms(start), ms(end), personID).
		Scan(&b.Email, &b.Available, &b.Spent, &b.Overage)
	return b, notFound(err, "person %d is not in the directory", personID)
}

// Activity is one line of a person's history.
type Activity struct {
	TxID   int64
	At     time.Time
	Kind   string
	Amount int64 // credits into (positive) or out of (negative) the person's available balance
	Reason string
}

// History lists the latest grants, spending and corrections of a person, newest first.
func (db *DB) History(ctx context.Context, personID int64, limit int) ([]Activity, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT t.id, t.created_at, t.kind, t.reason,
		COALESCE((SELECT SUM(amount) FROM postings p WHERE p.tx_id = t.id AND p.account IN (?, ?)), 0)
		FROM transactions t WHERE t.person_id = ? ORDER BY t.id DESC LIMIT ?`,
		ledger.AvailableAccount(personID), ledger.OverageAccount(personID), personID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		var a Activity
		var at int64
		if err := rows.Scan(&a.TxID, &at, &a.Kind, &a.Reason, &a.Amount); err != nil {
			return nil, err
		}
		a.At = fromMs(at)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Verify checks every ledger invariant and returns one sentence per violation.
func (db *DB) Verify(ctx context.Context) ([]string, error) {
	checks := []struct {
		what  string
		query string
	}{
		{"transaction postings do not sum to zero",
			`SELECT 'transaction ' || tx_id || ': ' || SUM(amount) FROM postings GROUP BY tx_id HAVING SUM(amount) != 0`},
		{"account balance differs from its postings",
			`WITH s AS (SELECT account, SUM(amount) AS total FROM postings GROUP BY account)
			 SELECT COALESCE(a.name, s.account) || ': stored ' || COALESCE(a.balance, 0) || ', postings ' || COALESCE(s.total, 0)
			 FROM s FULL OUTER JOIN accounts a ON a.name = s.account WHERE COALESCE(a.balance, 0) != COALESCE(s.total, 0)`},
		{"all accounts together do not sum to zero",
			`SELECT 'total ' || SUM(balance) FROM accounts HAVING SUM(balance) != 0`},
		{"grant over-spent or inconsistent",
			`SELECT 'grant ' || id || ': remaining ' || remaining || ' of ' || amount FROM grants
			 WHERE remaining < 0 OR remaining > amount OR (closed_tx_id IS NOT NULL AND remaining != 0)`},
		{"available balance differs from open grants",
			`WITH g AS (SELECT person_id, SUM(remaining) AS total FROM grants GROUP BY person_id)
			 SELECT 'person ' || p.id || ': available ' || COALESCE(a.balance, 0) || ', grants ' || COALESCE(g.total, 0)
			 FROM people p LEFT JOIN g ON g.person_id = p.id LEFT JOIN accounts a ON a.name = 'person:' || p.id || ':available'
			 WHERE COALESCE(a.balance, 0) != COALESCE(g.total, 0)`},
		{"spent differs from recorded usage",
			`WITH u AS (SELECT person_id, SUM(credits) AS credits, SUM(overage) AS overage FROM usage_events WHERE reversed = 0 GROUP BY person_id)
			 SELECT 'person ' || p.id || ': spent ' || COALESCE(s.balance, 0) || ' vs usage ' || COALESCE(u.credits, 0)
			    || ', overage ' || -COALESCE(o.balance, 0) || ' vs usage ' || COALESCE(u.overage, 0)
			 FROM people p LEFT JOIN u ON u.person_id = p.id
			 LEFT JOIN accounts s ON s.name = 'person:' || p.id || ':spent'
			 LEFT JOIN accounts o ON o.name = 'person:' || p.id || ':overage'
			 WHERE COALESCE(s.balance, 0) != COALESCE(u.credits, 0) OR -COALESCE(o.balance, 0) != COALESCE(u.overage, 0)`},
		{"reclaimed credits are negative",
			`SELECT 'expired: ' || balance FROM accounts WHERE name = 'expired' AND balance < 0`},
	}
	var violations []string
	for _, c := range checks {
		rows, err := db.read.QueryContext(ctx, c.query)
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
func (db *DB) ExportPostings(ctx context.Context, w io.Writer) error {
	rows, err := db.read.QueryContext(ctx, `SELECT t.id, t.created_at, t.idem_key, t.kind, COALESCE(pe.email, ''), p.account, p.amount, t.reason
		FROM postings p JOIN transactions t ON t.id = p.tx_id LEFT JOIN people pe ON pe.id = t.person_id ORDER BY p.id`)
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

// Backup writes a consistent copy of the live database to path (VACUUM INTO reads one
// snapshot, so writers may keep going).
func (db *DB) Backup(ctx context.Context, path string) error {
	if _, err := db.read.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return fmt.Errorf("backup to %s: %w", path, err)
	}
	return nil
}
