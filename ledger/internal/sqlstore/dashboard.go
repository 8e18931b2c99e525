package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// PeriodStats reads the figures for the period [start, end) whose key (for the reset that
// closed it) is key, of the given people or, with none given, of everyone. A period not
// closed yet has nothing expired.
func (db *Store) PeriodStats(ctx context.Context, key string, start, end time.Time, personIDs ...int64) ([]ledger.PersonPeriod, error) {
	s, e := ms(start), ms(end)
	args := []any{s, e, key, ledger.AccountExpired}
	where := ""
	if len(personIDs) > 0 {
		where = " WHERE p.id IN (" + strings.TrimSuffix(strings.Repeat("?,", len(personIDs)), ",") + ")"
		for _, id := range personIDs {
			args = append(args, id)
		}
	}
	days, err := usageDays(ctx, db.read, "u", s, e)
	if err != nil {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT p.id,
		(SELECT `+WideSum("amount")+` FROM grants g WHERE g.person_id = p.id AND g.effective_at >= ?1 AND g.effective_at < ?2),
		(SELECT `+WideSum("credits")+` FROM usage_events u WHERE `+days+` AND u.person_id = p.id AND u.occurred_at >= ?1 AND u.occurred_at < ?2 AND u.reversed = 0),
		(SELECT `+WideSum("po.amount")+` FROM transactions t JOIN postings po ON po.tx_id = t.id
			WHERE t.idem_key = 'reset:' || ?3 || ':' || p.id AND po.account = ?4),
		(SELECT count(*) FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?1 AND i.created_at < ?2),
		(SELECT count(*) FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?1 AND i.created_at < ?2 AND i.validated_at IS NOT NULL),
		(SELECT `+WideSum("minutes")+` FROM impacts i WHERE i.person_id = p.id AND i.created_at >= ?1 AND i.created_at < ?2)
		FROM people p`+where+` ORDER BY p.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("period %s figures: %w", key, err)
	}
	defer rows.Close()
	var out []ledger.PersonPeriod
	for rows.Next() {
		var p ledger.PersonPeriod
		if err := rows.Scan(&p.PersonID, Sat(&p.Granted), Sat(&p.Spent), Sat(&p.Expired), &p.Logged, &p.Validated, Sat(&p.Minutes)); err != nil {
			return nil, fmt.Errorf("period %s figures: %w", key, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// RequestsFiled lists the requests filed in [start, end), oldest first.
func (db *Store) RequestsFiled(ctx context.Context, start, end time.Time) ([]ledger.Request, error) {
	return db.requestsWhere(ctx, `created_at >= ? AND created_at < ? ORDER BY created_at, id`, ms(start), ms(end))
}

// ImpactsToValidate lists the outcomes not yet validated of the given people, newest first.
func (db *Store) ImpactsToValidate(ctx context.Context, personIDs []int64, limit int) ([]ledger.Impact, error) {
	var out []ledger.Impact
	for _, id := range personIDs {
		ims, err := db.impactsWhere(ctx, `person_id = ? AND validated_at IS NULL ORDER BY created_at DESC, id DESC LIMIT ?`, id, limit)
		if err != nil {
			return nil, err
		}
		out = append(out, ims...)
	}
	return out, nil
}

// PromptsBy lists the prompts a person shared, newest first.
func (db *Store) PromptsBy(ctx context.Context, personID int64, limit int) ([]ledger.Prompt, error) {
	return db.promptsWhere(ctx, `p.author_id = ? ORDER BY p.created_at DESC, p.id DESC LIMIT ?`, personID, limit)
}
