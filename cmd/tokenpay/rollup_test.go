package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"maps"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// runAt is cliEnv.run with TOKENPAY_NOW at now.
func (c *cliEnv) runAt(now, stdin string, args ...string) cliResult {
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "TOKENPAY_NOW" {
			return now
		}
		return ""
	}
	code := Run(context.Background(), append(args, "--db", c.db), strings.NewReader(stdin), &out, &errOut, getenv)
	return cliResult{code, out.String(), errOut.String()}
}

// TestCLILedgerRollup: `ledger rollup --dry-run` says what the roll-up would do and changes
// nothing; `ledger rollup` rolls up usage older than 13 months (the default retention) into
// one row per person, model and day, verify holds, a second run and the usage-rollup job
// find nothing left, and the old events sent again are refused as too late.
func TestCLILedgerRollup(t *testing.T) {
	c := withPeople(t)
	old := c.file(t, "old.jsonl", `{"id":"o1","email":"ana@example.com","model":"m","input_tokens":100,"occurred_at":"2025-06-10T08:00:00Z"}
{"id":"o2","email":"ana@example.com","model":"m","input_tokens":200,"occurred_at":"2025-06-10T12:00:00Z"}
{"id":"o3","email":"ana@example.com","model":"m","input_tokens":300,"occurred_at":"2025-06-10T18:00:00Z"}
{"id":"o4","email":"bo@example.com","model":"m","input_tokens":50,"occurred_at":"2025-06-11T09:00:00Z"}
`)
	if r := c.runAt("2025-06-12T00:00:00Z", "", "usage", "import", old); r.code != 0 {
		t.Fatalf("import old usage: %+v", r)
	}
	c.ok(t, "usage", "import", c.file(t, "new.jsonl", `{"id":"n1","email":"ana@example.com","model":"m","input_tokens":70,"occurred_at":"2026-11-27T10:00:00Z"}`+"\n"))
	export := c.ok(t, "ledger", "export")
	before := c.counts(t)

	if out := c.ok(t, "ledger", "rollup", "--dry-run"); out != "Would roll up 3 usage rows (3 events) dated before 2025-10-01 into 1; 2 rows fewer.\n" {
		t.Errorf("dry run: %q", out)
	}
	if got := c.counts(t); !maps.Equal(got, before) {
		t.Errorf("the dry run changed the ledger: %v, was %v", got, before)
	}
	if out := c.ok(t, "ledger", "rollup"); out != "Rolled up 3 usage rows (3 events) dated before 2025-10-01 into 1; 2 rows fewer.\n" {
		t.Errorf("rollup: %q", out)
	}
	after := c.counts(t)
	if after["usage_events"] != before["usage_events"]-2 || after["transactions"] != before["transactions"]-2 {
		t.Errorf("after the roll-up: %v, was %v", after, before)
	}
	if out := c.ok(t, "ledger", "verify"); !strings.HasPrefix(out, "ledger verified") {
		t.Errorf("verify: %q", out)
	}
	var credits, events int64
	if err := c.sql(t).QueryRow(`SELECT credits, events FROM usage_events WHERE event_id = 'rollup:2025-06-10'`).Scan(&credits, &events); err != nil || credits != 600 || events != 3 {
		t.Errorf("the rolled-up row: %d credits for %d events, %v; want 600 for 3", credits, events, err)
	}
	if now := c.ok(t, "ledger", "export"); sumAccounts(t, now) != sumAccounts(t, export) {
		t.Errorf("account sums in the export changed:\n%s\nwas\n%s", sumAccounts(t, now), sumAccounts(t, export))
	}
	if out := c.ok(t, "ledger", "rollup"); out != "Usage dated before 2025-10-01 is already rolled up.\n" {
		t.Errorf("second rollup: %q", out)
	}
	if out := c.ok(t, "jobs", "run", "usage-rollup"); !strings.Contains(out, "already rolled up") {
		t.Errorf("jobs run usage-rollup: %q", out)
	}
	// The old events again: too late, so the keys the roll-up forgot are never booked twice.
	r := c.run(t, "", "usage", "import", old)
	if !strings.Contains(r.stdout+r.stderr, "too_late") && !strings.Contains(r.stdout+r.stderr, "closed more than") {
		t.Errorf("re-importing rolled-up events: %+v, want them refused as too late", r)
	}
	if got := c.counts(t)["usage_events"]; got != after["usage_events"] {
		t.Errorf("re-importing rolled-up events booked them again: %d usage rows, want %d", got, after["usage_events"])
	}
}

// sumAccounts sums an export (the CSV of ledger export) per account, as "account=sum" lines.
func sumAccounts(t *testing.T, csvText string) string {
	t.Helper()
	lines, err := csv.NewReader(strings.NewReader(csvText)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]int64{}
	for _, l := range lines[1:] {
		n, err := strconv.ParseInt(l[6], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		sums[l[5]] += n
	}
	var out []string
	for a, n := range sums {
		out = append(out, a+"="+strconv.FormatInt(n, 10))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
