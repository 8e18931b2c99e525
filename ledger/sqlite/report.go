package sqlite

import (
	"context"
	"time"
)

// TeamStat is one team's allocation and use in a period.
type TeamStat struct {
	Team     string
	People   int
	Granted  int64 // credits granted with effect in the period
	Spent    int64
	Approved int
	Denied   int
}

// TeamStats aggregates allocation, use and request decisions per team for [start, end).
func (db *DB) TeamStats(ctx context.Context, start, end time.Time) ([]TeamStat, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT p.team, count(*),
		COALESCE(SUM((SELECT SUM(amount) FROM grants g WHERE g.person_id = p.id AND g.effective_at >= ? AND g.effective_at < ?)), 0),
		COALESCE(SUM((SELECT SUM(credits) FROM usage_events u WHERE u.person_id = p.id AND u.occurred_at >= ? AND u.occurred_at < ? AND u.reversed = 0)), 0),
		COALESCE(SUM((SELECT count(*) FROM requests r WHERE r.requester_id = p.id AND r.status = 'approved' AND r.decided_at >= ? AND r.decided_at < ?)), 0),
		COALESCE(SUM((SELECT count(*) FROM requests r WHERE r.requester_id = p.id AND r.status = 'denied' AND r.decided_at >= ? AND r.decided_at < ?)), 0)
		FROM people p GROUP BY p.team ORDER BY p.team`,
		ms(start), ms(end), ms(start), ms(end), ms(start), ms(end), ms(start), ms(end))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []TeamStat
	for rows.Next() {
		var s TeamStat
		if err := rows.Scan(&s.Team, &s.People, &s.Granted, &s.Spent, &s.Approved, &s.Denied); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
