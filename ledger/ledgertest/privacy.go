package ledgertest

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// EveSecrets are the texts that identify Eve or that she wrote in PrivacyLedger; none may
// survive Forget anywhere in the database.
var EveSecrets = []string{"eve@corp.example", "Eve Secretname", "U0EVESECRET", "aad-eve-secret",
	"churn model for the Kestrel account", "saved Kestrel 6 hours", "https://wiki/kestrel", "Kestrel reflection",
	"deny note about Kestrel"}

// PrivacyLedger fills an empty store with Mia (manager), Eve (her report) with every kind
// of personal data (usage, quarantined usage, requests approved, denied and pending, an
// impact, a lesson, a prompt, a Teams conversation, a queued digest, audit entries), and
// Bo, who is untouched; the clock is 2026-11-27 12:00 UTC. It returns Eve. Drivers use it
// for their own erasure checks (e.g. that no byte of EveSecrets is left in SQLite's file).
func PrivacyLedger(t testing.TB, db Store) ledger.Person {
	t.Helper()
	ctx := context.Background()
	db.SetNow(func() time.Time { return testNow })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A usage event for Eve's Slack id arrives before the directory knows it.
	_, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "early", SlackUserID: "U0EVESECRET", Model: "m",
		OccurredAt: testNow}, Credits: 5}})
	must(err)
	_, err = db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "mia@corp.example", Name: "Mia Boss", Team: "Research", Role: "manager"},
		{Line: 3, Email: "eve@corp.example", Name: "Eve Secretname", Team: "Research", Role: "analyst", ManagerEmail: "mia@corp.example",
			SlackUserID: "U0EVESECRET", TeamsUserID: "aad-eve-secret"},
		{Line: 4, Email: "bo@corp.example", Name: "Bo Other", Team: "Sales", Role: "analyst"},
	})
	must(err)
	eve, err := db.PersonByEmail(ctx, "eve@corp.example")
	must(err)
	mia, err := db.PersonByEmail(ctx, "mia@corp.example")
	must(err)
	end := testNow.Add(72 * time.Hour)
	_, err = db.Grant(ctx, ledger.GrantInput{Key: "base", PersonID: eve.ID, Kind: ledger.GrantBaseline, Amount: 1000, ExpiresAt: end, Reason: "baseline"})
	must(err)
	_, err = db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: eve.Email, Model: "m", OccurredAt: testNow}, Credits: 300}})
	must(err)
	r, err := db.CreateRequest(ctx, ledger.RequestInput{RequesterID: eve.ID, ApproverID: mia.ID, Amount: 500,
		UseCase: "churn model for the Kestrel account", ExpiresAt: end})
	must(err)
	_, _, err = db.Decide(ctx, ledger.Decision{RequestID: r.ID, DeciderID: mia.ID, Approve: true, AsManager: true, GrantExpiresAt: end})
	must(err)
	denied, err := db.CreateRequest(ctx, ledger.RequestInput{RequesterID: eve.ID, ApproverID: mia.ID, Amount: 9, UseCase: "more Kestrel", ExpiresAt: end})
	must(err)
	_, _, err = db.Decide(ctx, ledger.Decision{RequestID: denied.ID, DeciderID: mia.ID, Note: "deny note about Kestrel", GrantExpiresAt: end})
	must(err)
	_, err = db.CreateRequest(ctx, ledger.RequestInput{RequesterID: eve.ID, ApproverID: mia.ID, Amount: 7, UseCase: "pending Kestrel", ExpiresAt: end})
	must(err)
	_, err = db.LogImpact(ctx, eve.ID, "saved Kestrel 6 hours", 360, "https://wiki/kestrel")
	must(err)
	_, err = db.CompleteLesson(ctx, ledger.LessonCompletion{PersonID: eve.ID, LessonID: "01-what-is-a-token", Reflection: "Kestrel reflection",
		Bonus: 10, ExpiresAt: end, Reason: "lesson"})
	must(err)
	_, err = db.AddPrompt(ctx, ledger.PromptInput{Title: "Churn summary", Body: "Summarise churn drivers as a table.", AuthorID: eve.ID})
	must(err)
	must(db.SaveTeamsConversation(ctx, ledger.TeamsConversation{AADObjectID: "aad-eve-secret", UserID: "29:eve", ConversationID: "a:eve",
		ServiceURL: "https://smba.example/", BotID: "28:bot"}))
	_, err = db.Enqueue(ctx, []ledger.OutboxMessage{{Kind: "digest", PersonID: eve.ID, PeriodKey: "2026-W48",
		Payload: []byte(`{"header":"Hi Eve Secretname"}`), NotBefore: testNow}})
	must(err)
	must(db.Audit(ctx, "mia@corp.example", "grant", "eve@corp.example", "50 credits for eve@corp.example"))
	must(db.Audit(ctx, "eve@corp.example", "prompt.hide", "prompt 1", ""))
	return eve
}

func privacyLedger(t *testing.T, open Opener) (Store, ledger.Person) {
	t.Helper()
	db := open(t)
	return db, PrivacyLedger(t, db)
}

// tablesQuery lists the database's own tables (with search indexes' shadow tables), per
// engine: the catalogues differ.
var tablesQuery = map[string]string{
	"sqlite":   `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`,
	"postgres": `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`,
}

// findText returns the first table.column whose rows contain s (any column, as text,
// ignoring case), or "".
func findText(t *testing.T, db Store, s string) string {
	t.Helper()
	ctx := context.Background()
	raw := rawSQL(t, db)
	q, ok := tablesQuery[raw.Dialect]
	if !ok {
		t.Fatalf("no way to list the tables of engine %q: add one to tablesQuery", raw.Dialect)
	}
	rows, err := raw.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	rows.Close()
	if len(tables) == 0 {
		t.Fatal("the database lists no tables")
	}
	for _, table := range tables {
		rows, err := raw.QueryContext(ctx, `SELECT * FROM "`+table+`"`)
		if err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				var text string
				switch v := v.(type) {
				case string:
					text = v
				case []byte:
					text = string(v)
				}
				if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					rows.Close()
					return table + "." + cols[i]
				}
			}
		}
		rows.Close()
	}
	return ""
}

func testExportPerson(t *testing.T, open Opener) {
	db, eve := privacyLedger(t, open)
	ctx := context.Background()
	d, err := db.ExportPerson(ctx, "EVE@corp.example", "cli:ops")
	if err != nil {
		t.Fatal(err)
	}
	if d.Person.ID != eve.ID || d.Person.Name != "Eve Secretname" || d.Person.ManagerEmail != "mia@corp.example" ||
		d.Person.SlackUserID != "U0EVESECRET" || d.Person.ForgottenAt != nil {
		t.Errorf("person: %+v", d.Person)
	}
	if len(d.Usage) != 1 || d.Usage[0].EventID != "u1" || d.Usage[0].Credits != 300 {
		t.Errorf("usage: %+v", d.Usage)
	}
	if len(d.Requests) != 3 || d.Requests[0].UseCase != "churn model for the Kestrel account" || d.Requests[1].Note != "deny note about Kestrel" {
		t.Errorf("requests: %+v", d.Requests)
	}
	if len(d.Impacts) != 1 || d.Impacts[0].Text != "saved Kestrel 6 hours" || d.Impacts[0].Minutes != 360 {
		t.Errorf("impacts: %+v", d.Impacts)
	}
	if len(d.Grants) != 3 || len(d.Prompts) != 1 || len(d.Lessons) != 1 || d.Lessons[0].Reflection != "Kestrel reflection" {
		t.Errorf("grants %d, prompts %d, lessons %+v", len(d.Grants), len(d.Prompts), d.Lessons)
	}
	log, err := db.AuditLog(ctx, 1)
	if err != nil || len(log) != 1 || log[0].Action != "people.export" || log[0].Actor != "cli:ops" || log[0].Subject != "eve@corp.example" {
		t.Fatalf("export not audited: %+v %v", log, err)
	}
	if _, err := db.ExportPerson(ctx, "nobody@corp.example", "cli"); ledger.ErrorCode(err) != ledger.NotFound {
		t.Errorf("unknown email: %v", err)
	}
}

// testForgetErasesEverywhereAndKeepsTheBooks: after Forget no row of any table holds what
// identifies Eve or what she wrote, and the books are unchanged. What an engine keeps
// outside its rows (free space in SQLite's pages, its write-ahead log: ForgetResult's
// WALCleared) is each driver's own test.
func testForgetErasesEverywhereAndKeepsTheBooks(t *testing.T, open Opener) {
	db, eve := privacyLedger(t, open)
	ctx := context.Background()
	start, end := testNow.Add(-24*time.Hour), testNow.Add(24*time.Hour)
	before, err := db.Balance(ctx, eve.ID, start, end)
	if err != nil {
		t.Fatal(err)
	}
	var postingsBefore bytes.Buffer
	if err := db.ExportPostings(ctx, &postingsBefore); err != nil {
		t.Fatal(err)
	}
	pool, _ := db.AccountBalance(ctx, ledger.AccountPool)

	res, err := db.Forget(ctx, "eve@corp.example", "cli:ops")
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.ForgetResult{PersonID: eve.ID, Pseudonym: "forgotten-2@invalid", Impacts: 1, Requests: 3, Lessons: 1, Prompts: 1, Messages: 1,
		WALCleared: res.WALCleared}
	if res != want {
		t.Errorf("result %+v, want %+v", res, want)
	}

	// No row of any table holds what identifies Eve or what she wrote.
	for _, s := range EveSecrets {
		if where := findText(t, db, s); where != "" {
			t.Errorf("%q is still in %s after forget", s, where)
		}
	}

	// The books are unchanged: same balance, same postings (with the pseudonym for the
	// email), same pool, and verify is clean.
	after, err := db.Balance(ctx, eve.ID, start, end)
	if err != nil {
		t.Fatal(err)
	}
	before.Email = res.Pseudonym
	if after != before {
		t.Errorf("balance %+v, was %+v", after, before)
	}
	var postingsAfter bytes.Buffer
	if err := db.ExportPostings(ctx, &postingsAfter); err != nil {
		t.Fatal(err)
	}
	wantPostings := strings.ReplaceAll(postingsBefore.String(), "eve@corp.example", res.Pseudonym)
	wantPostings = strings.ReplaceAll(wantPostings, "unlock: churn model for the Kestrel account", "unlock: "+ledger.ErasedText)
	if postingsAfter.String() != wantPostings {
		t.Errorf("postings changed:\n%s\nwant\n%s", postingsAfter.String(), wantPostings)
	}
	if p, _ := db.AccountBalance(ctx, ledger.AccountPool); p != pool {
		t.Errorf("pool %d, was %d", p, pool)
	}
	if v, err := db.Verify(ctx); err != nil || len(v) != 0 {
		t.Fatalf("verify after forget: %v %v", v, err)
	}

	// The row is pseudonymous and unreachable; texts are marked erased; what others wrote stays.
	p, err := db.PersonByEmail(ctx, res.Pseudonym)
	if err != nil || p.Name != "Forgotten person 2" || p.SlackUserID != "" || p.TeamsUserID != "" || !p.NudgesOff || !p.DigestsOff || p.Team != "Research" {
		t.Errorf("forgotten person: %+v %v", p, err)
	}
	ims, _ := db.Impacts(ctx, eve.ID, time.Time{}, 10)
	if len(ims) != 1 || ims[0].Text != ledger.ErasedText || ims[0].Minutes != 360 {
		t.Errorf("impacts: %+v", ims)
	}
	reqs, _ := db.RequestsBy(ctx, eve.ID, 10)
	for _, r := range reqs {
		if r.UseCase != ledger.ErasedText || r.Status == ledger.RequestPending {
			t.Errorf("request after forget: %+v", r)
		}
	}
	if _, ok, _ := db.TeamsConversationFor(ctx, "aad-eve-secret"); ok {
		t.Error("Teams conversation kept")
	}
	if q, _ := db.Quarantined(ctx, 10); len(q) != 0 {
		t.Errorf("quarantined usage naming Eve is still waiting: %+v", q)
	}
	if _, err := db.PersonByEmail(ctx, "bo@corp.example"); err != nil {
		t.Errorf("Bo was touched: %v", err)
	}
	log, _ := db.AuditLog(ctx, 10)
	if len(log) == 0 || log[0].Action != "people.forget" || log[0].Subject != res.Pseudonym || log[0].Actor != "cli:ops" {
		t.Errorf("forget not audited: %+v", log)
	}

	// Export still works under the pseudonym and says when the person was forgotten.
	d, err := db.ExportPerson(ctx, res.Pseudonym, "cli")
	if err != nil || d.Person.ForgottenAt == nil || !d.Person.ForgottenAt.Equal(testNow) {
		t.Errorf("export after forget: %+v %v", d.Person, err)
	}
	if _, err := db.Forget(ctx, res.Pseudonym, "cli"); ledger.ErrorCode(err) != ledger.Invalid || !strings.Contains(err.Error(), "already forgotten") {
		t.Errorf("second forget: %v", err)
	}
}

func testForgetRefusals(t *testing.T, open Opener) {
	db, _ := privacyLedger(t, open)
	ctx := context.Background()
	tests := []struct {
		email, code, says string
	}{
		{"mia@corp.example", ledger.Invalid, "manages 1 person;"},
		{"ghost@corp.example", ledger.NotFound, "not in the directory"},
	}
	for _, tc := range tests {
		_, err := db.Forget(ctx, tc.email, "cli")
		if ledger.ErrorCode(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("forget %s: %v, want %s saying %q", tc.email, err, tc.code, tc.says)
		}
	}
	// A refusal changes nothing.
	if p, err := db.PersonByEmail(ctx, "mia@corp.example"); err != nil || p.Name != "Mia Boss" {
		t.Errorf("refused forget changed Mia: %+v %v", p, err)
	}
}
