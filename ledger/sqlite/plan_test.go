package sqlite

import (
	"context"
	"strings"
	"testing"
)

// TestPerPersonReadsUseTheirIndexes: the reads a command or a digest makes for one person
// (or a page of people), in the shapes the store writes them, seek an index rather than walk
// a table: a person's grants newest first (grants_person, migration 184: without it every
// /tokens balance walked all grants), a person's usage over the days of a range and a page's
// usage day by day (usage_day_person, migration 183), everyone's usage in a range of days,
// and reversed usage (usage_reversed). A plan that scans the table fails.
func TestPerPersonReadsUseTheirIndexes(t *testing.T) {
	db := newTestDB(t)
	for _, c := range []struct{ query, index string }{
		{`SELECT g.id FROM grants g JOIN grant_remaining r ON r.grant_id = g.id WHERE g.person_id = 7 ORDER BY g.id DESC LIMIT 20`, "grants_person"},
		{`SELECT SUM(credits) FROM usage_events u WHERE u.occurred_at / 86400000 IN (20400,20401,20402) AND u.person_id = 7
			AND u.occurred_at >= 1762560000000 AND u.occurred_at < 1762819200000 AND u.reversed = 0`, "usage_day_person"},
		{`SELECT u.person_id, MAX(u.occurred_at) FROM usage_events u WHERE u.occurred_at / 86400000 IN (20400,20401) AND u.person_id > 100
			AND u.person_id <= 2100 AND u.reversed = 0 GROUP BY u.person_id`, "usage_day_person"},
		{`SELECT SUM(u.credits) FROM usage_events u WHERE u.occurred_at / 86400000 BETWEEN 20400 AND 20430 AND u.occurred_at >= 1762560000000`, "usage_day_person"},
		{`SELECT tx_id FROM usage_events u WHERE u.occurred_at / 86400000 IN (20400,20401) AND person_id = 7 ORDER BY occurred_at DESC, tx_id DESC LIMIT 20`, "usage_day_person"},
		{`SELECT EXISTS (SELECT 1 FROM usage_events WHERE person_id = 7 AND occurred_at >= 0 AND reversed = 1)`, "usage_reversed"},
	} {
		rows, err := db.read.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+c.query)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if !strings.Contains(all, "INDEX "+c.index) || strings.Contains(all, "SCAN g") || strings.Contains(all, "SCAN u") || strings.Contains(all, "SCAN usage_events") {
			t.Errorf("%s\nplan: %s\nwant a search of %s", c.query, all, c.index)
		}
	}
}
