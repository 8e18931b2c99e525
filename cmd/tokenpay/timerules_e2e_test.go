package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The time rules from the command line, in Europe/Paris with the reset at a custom 02:30:
// `usage import` charges a late event to November after December opened, rejects one from
// October as too_late, and `jobs list` shows the real next run on the day clocks spring
// forward (02:30 does not exist on 29 March 2026: it runs at 03:00).
func TestCLITimeRules(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pol := write("policy.yaml", "org: {time_zone: Europe/Paris}\nschedules: {period_reset: \"30 2 * * *\"}\n")
	env := func(now string) map[string]string {
		return map[string]string{"TOKENPAY_NOW": now, "TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_POLICY": pol}
	}
	run := func(now string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", env(now), args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out
	}
	run("2026-11-02T10:00:00Z", "people", "import", write("people.csv", "email,name,team,role,manager_email\nana@example.com,Ana,Eng,engineer,\n"))
	run("2026-12-01T01:30:00Z", "jobs", "run", "period-reset")
	usage := write("usage.csv", "id,email,model,input_tokens,output_tokens,occurred_at\n"+
		"late,ana@example.com,m,1000,0,2026-11-30T22:00:00Z\n"+ // 23:00 in Paris on the 30th
		"old,ana@example.com,m,1000,0,2026-10-31T12:00:00Z\n")
	code, out, _ := runCLI(t, "", env("2026-12-02T10:00:00Z"), "usage", "import", usage)
	if code != 1 || !strings.HasPrefix(out, "1 accepted, 0 duplicate, 0 quarantined, 1 rejected.") ||
		!strings.Contains(out, `line 3 (id "old"): rejected: occurred_at is in a period that closed more than 72 hours ago`) {
		t.Fatalf("usage import: exit %d\n%s", code, out)
	}
	// November had 200,000 open at 23:00 on the 30th: 199,000 were left, 50,000 carried.
	var b struct{ Available, Spent, Overage int64 }
	if err := json.Unmarshal([]byte(run("2026-12-02T10:00:00Z", "balance", "ana@example.com", "--json")), &b); err != nil {
		t.Fatal(err)
	}
	if b.Available != 250_000 || b.Spent != 0 || b.Overage != 0 {
		t.Errorf("December balance %+v, want 250,000 available, nothing spent", b)
	}
	run("2026-12-02T10:00:00Z", "ledger", "verify")
	if export := run("2026-12-02T10:00:00Z", "ledger", "export"); !strings.Contains(export, ",late-usage,ana@example.com,expired,-1000,") {
		t.Errorf("the export shows no late-usage transaction taking 1,000 back from expired:\n%s", export)
	}

	// 00:10 on 29 March in Paris: the next 02:30 is skipped by the clocks, so 03:00 CEST.
	var row string
	for _, line := range strings.Split(run("2026-03-28T23:10:00Z", "jobs", "list"), "\n") {
		if strings.HasPrefix(line, "period-reset ") {
			row = strings.Join(strings.Fields(line), " ")
		}
	}
	if !strings.Contains(row, "2026-03-29 03:00") {
		t.Errorf("jobs list period-reset row %q, want the next run at 2026-03-29 03:00", row)
	}
}
