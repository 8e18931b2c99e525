package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoTellsItsStory: after `tokenpay demo`, `tokenpay segments` shows every segment
// the demo promises with believable counts, whatever day of the period it runs; nothing
// is dated after the moment the demo ran; everyone joined before their first usage; and
// the output names an admin and a manager to try (issue 16).
func TestDemoTellsItsStory(t *testing.T) {
	for _, now := range []string{"2026-11-20T10:00:00Z", "2026-12-02T09:00:00Z", "2026-11-30T23:00:00Z"} {
		t.Run(now, func(t *testing.T) {
			dir := t.TempDir()
			db := filepath.Join(dir, "tokenpay-demo.db")
			env := map[string]string{"TOKENPAY_NOW": now}
			code, out, errOut := runCLI(t, "", env, "demo", "--db", db)
			if code != 0 {
				t.Fatalf("demo: exit %d %s", code, errOut)
			}
			for _, want := range []string{"--as hana.okafor@northwind.example", "As the admin", "As a manager", "segments --db " + db} {
				if !strings.Contains(out, want) {
					t.Errorf("demo output lacks %q:\n%s", want, out)
				}
			}
			policy := filepath.Join(dir, "tokenpay-demo.policy.yaml")
			code, out, errOut = runCLI(t, "", env, "segments", "--db", db, "--policy", policy, "--json")
			if code != 0 {
				t.Fatalf("segments: exit %d %s", code, errOut)
			}
			var seg struct {
				Counts map[string]int `json:"counts"`
			}
			if err := json.Unmarshal([]byte(out), &seg); err != nil {
				t.Fatal(err)
			}
			// 128 people: a good number barely using their allowance, some dormant, a few
			// heavy users without outcomes, many engaged; no segment swallows the rest.
			bounds := map[string][2]int{"underuser": {12, 40}, "dormant": {5, 25}, "heavy-without-gains": {4, 15}, "engaged": {30, 60}, "steady": {15, 55}}
			total := 0
			for name, b := range bounds {
				n := seg.Counts[name]
				total += n
				if n < b[0] || n > b[1] {
					t.Errorf("%s: %d people, want %d to %d (counts %v)", name, n, b[0], b[1], seg.Counts)
				}
			}
			if total != 128 {
				t.Errorf("segments hold %d people, want 128: %v", total, seg.Counts)
			}

			at, _ := time.Parse(time.RFC3339, now)
			limit := at.UnixMilli()
			sqlDB, err := sql.Open("sqlite3", "file:"+db+"?mode=ro")
			if err != nil {
				t.Fatal(err)
			}
			defer sqlDB.Close()
			for _, q := range []string{
				"SELECT max(created_at) FROM transactions", "SELECT max(occurred_at) FROM usage_events",
				"SELECT max(joined_at) FROM people", "SELECT max(created_at) FROM requests", "SELECT max(decided_at) FROM requests",
				"SELECT max(created_at) FROM impacts", "SELECT max(at) FROM audit_log", "SELECT max(effective_at) FROM grants",
			} {
				var max sql.NullInt64
				if err := sqlDB.QueryRow(q).Scan(&max); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if max.Int64 > limit {
					t.Errorf("%s: %s, after the demo ran at %s", q, time.UnixMilli(max.Int64).UTC(), now)
				}
			}
			var early, joiners int
			if err := sqlDB.QueryRow(`SELECT count(*) FROM people p WHERE EXISTS (SELECT 1 FROM usage_events u WHERE u.person_id = p.id AND u.occurred_at < p.joined_at)`).Scan(&early); err != nil || early != 0 {
				t.Errorf("%d people have usage from before they joined (%v)", early, err)
			}
			start := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).UnixMilli()
			if err := sqlDB.QueryRow(`SELECT count(*) FROM people WHERE joined_at >= ?`, start).Scan(&joiners); err != nil || joiners < 2 || joiners > 10 {
				t.Errorf("%d recent joiners (%v), want a few", joiners, err)
			}
			var distinct int
			if err := sqlDB.QueryRow(`SELECT count(DISTINCT joined_at) FROM people`).Scan(&distinct); err != nil || distinct < 100 {
				t.Errorf("%d distinct join dates (%v): people should have joined on their own dates", distinct, err)
			}
			fmt.Fprintf(testOutput{t}, "%s: %v, %d recent joiners\n", now, seg.Counts, joiners)
		})
	}
}

type testOutput struct{ t *testing.T }

func (w testOutput) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}
