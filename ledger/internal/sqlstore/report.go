package sqlstore

import (
	"context"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// TeamStats aggregates allocation, use and request decisions per team for [start, end).
func (db *Store) TeamStats(ctx context.Context, start, end time.Time) ([]ledger.TeamStat, error) {
	rows, err := db.read.QueryContext(ctx, `WITH per AS (SELECT p.team AS team,
			(SELECT `+WideSum("amount")+` FROM grants g WHERE g.person_id = p.id AND g.effective_at >= ?1 AND g.effective_at < ?2) AS granted,
			(SELECT `+WideSum("credits")+` FROM usage_events u WHERE u.person_id = p.id AND u.occurred_at >= ?1 AND u.occurred_at < ?2 AND u.reversed = 0) AS spent,
			(SELECT count(*) FROM requests r WHERE r.requester_id = p.id AND r.status = 'approved' AND r.decided_at >= ?1 AND r.decided_at < ?2) AS approved,
			(SELECT count(*) FROM requests r WHERE r.requester_id = p.id AND r.status = 'denied' AND r.decided_at >= ?1 AND r.decided_at < ?2) AS denied
			FROM people p)
		SELECT team, count(*), `+WideSum("granted")+`, `+WideSum("spent")+`, COALESCE(SUM(approved), 0), COALESCE(SUM(denied), 0)
		FROM per GROUP BY team ORDER BY team`, ms(start), ms(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.TeamStat
	for rows.Next() {
		var s ledger.TeamStat
		if err := rows.Scan(&s.Team, &s.People, Sat(&s.Granted), Sat(&s.Spent), &s.Approved, &s.Denied); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
