package sqlstore

import (
	"context"
	"sort"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// TeamStats aggregates allocation, use and request decisions per team for [start, end).
// Each figure sums the rows themselves per team (WideSum needs BIGINT rows: on PostgreSQL
// a per-person subtotal is NUMERIC); usage is read by its range of days (dayRange).
func (db *Store) TeamStats(ctx context.Context, start, end time.Time) ([]ledger.TeamStat, error) {
	days := dayRange("u", ms(start), ms(end))
	rows, err := db.read.QueryContext(ctx, `WITH teams AS (SELECT team, count(*) AS people FROM people GROUP BY team),
		g AS (SELECT p.team, `+WideSum("g.amount")+` AS total FROM people p JOIN grants g ON g.person_id = p.id
			WHERE g.effective_at >= ?1 AND g.effective_at < ?2 GROUP BY p.team),
		u AS (SELECT p.team, `+WideSum("u.credits")+` AS total FROM usage_events u JOIN people p ON p.id = u.person_id
			WHERE `+days+` AND u.occurred_at >= ?1 AND u.occurred_at < ?2 AND u.reversed = 0 GROUP BY p.team),
		r AS (SELECT p.team, SUM(CASE WHEN r.status = 'approved' THEN 1 ELSE 0 END) AS approved, SUM(CASE WHEN r.status = 'denied' THEN 1 ELSE 0 END) AS denied
			FROM people p JOIN requests r ON r.requester_id = p.id
			WHERE r.status IN ('approved', 'denied') AND r.decided_at >= ?1 AND r.decided_at < ?2 GROUP BY p.team)
		SELECT t.team, t.people, COALESCE(g.total, 0), COALESCE(u.total, 0), COALESCE(r.approved, 0), COALESCE(r.denied, 0)
		FROM teams t LEFT JOIN g ON g.team = t.team LEFT JOIN u ON u.team = t.team LEFT JOIN r ON r.team = t.team
		ORDER BY t.team`, ms(start), ms(end))
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
	// In byte order, as SQLite's BINARY collation sorts: a PostgreSQL database's default
	// collation may order names otherwise.
	sort.SliceStable(out, func(i, j int) bool { return out[i].Team < out[j].Team })
	return out, rows.Err()
}
