package ledgertest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func testImportPeopleProblems(t *testing.T, open Opener) {
	base := []ledger.PersonRecord{
		{Line: 2, Email: "boss@example.com", Name: "Boss"},
		{Line: 3, Email: "ana@example.com", Name: "Ana", ManagerEmail: "boss@example.com", SlackUserID: "U1"},
	}
	tests := []struct {
		name     string
		recs     []ledger.PersonRecord
		problems []string
	}{
		{"duplicate email, any case", []ledger.PersonRecord{
			{Line: 2, Email: "cy@example.com", Name: "Cy"}, {Line: 5, Email: "CY@example.com", Name: "Cy again"}},
			[]string{"line 5: CY@example.com already appears on line 2"}},
		{"own manager", []ledger.PersonRecord{{Line: 4, Email: "cy@example.com", Name: "Cy", ManagerEmail: "Cy@example.com"}},
			[]string{"line 4: cy@example.com cannot be their own manager"}},
		{"unknown manager", []ledger.PersonRecord{{Line: 7, Email: "cy@example.com", Name: "Cy", ManagerEmail: "ghost@example.com"}},
			[]string{"line 7: manager ghost@example.com is not in the directory"}},
		{"cycle through the stored directory", []ledger.PersonRecord{
			{Line: 2, Email: "boss@example.com", Name: "Boss", ManagerEmail: "ana@example.com"}},
			[]string{"line 2: managers form a cycle: boss@example.com -> ana@example.com -> boss@example.com"}},
		{"cycle inside the file", []ledger.PersonRecord{
			{Line: 2, Email: "x@example.com", Name: "X", ManagerEmail: "y@example.com"},
			{Line: 3, Email: "y@example.com", Name: "Y", ManagerEmail: "z@example.com"},
			{Line: 4, Email: "z@example.com", Name: "Z", ManagerEmail: "x@example.com"}},
			[]string{"line 2: managers form a cycle: x@example.com -> y@example.com -> z@example.com -> x@example.com"}},
		{"cycle named from its earliest line", []ledger.PersonRecord{
			{Line: 6, Email: "a@example.com", Name: "A", ManagerEmail: "b@example.com"},
			{Line: 3, Email: "b@example.com", Name: "B", ManagerEmail: "a@example.com"}},
			[]string{"line 3: managers form a cycle: b@example.com -> a@example.com -> b@example.com"}},
		{"Slack id taken", []ledger.PersonRecord{{Line: 9, Email: "cy@example.com", Name: "Cy", SlackUserID: "U1"}},
			[]string{"line 9: Slack user id U1 already belongs to someone else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := open(t)
			if _, err := db.ImportPeople(ctx, base); err != nil {
				t.Fatal(err)
			}
			before, err := db.People(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.ImportPeople(ctx, tc.recs)
			if ledger.ErrorCode(err) != ledger.Invalid {
				t.Fatalf("got %v, want an Invalid error", err)
			}
			for _, p := range tc.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not contain %q", err, p)
				}
			}
			after, err := db.People(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(before) || after[0] != before[0] || after[1] != before[1] {
				t.Errorf("a refused import changed the directory:\n%+v\nwas\n%+v", after, before)
			}
		})
	}
}

func testImportPeopleUpserts(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	res, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "ana@example.com", Name: "Ana", ManagerEmail: "boss@example.com"}, // manager defined below
		{Line: 3, Email: "boss@example.com", Name: "Boss", SlackUserID: "U1"},
	})
	if err != nil || res != (ledger.ImportResult{Created: 2}) {
		t.Fatalf("first import: %+v, %v", res, err)
	}
	// Email matches ignoring case; a row without chat ids keeps the stored ones.
	res, err = db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "BOSS@example.com", Name: "The Boss", Team: "Exec"}})
	if err != nil || res != (ledger.ImportResult{Updated: 1}) {
		t.Fatalf("second import: %+v, %v", res, err)
	}
	boss, err := db.PersonByEmail(ctx, "boss@example.com")
	if err != nil || boss.Name != "The Boss" || boss.Team != "Exec" || boss.SlackUserID != "U1" {
		t.Fatalf("boss after update: %+v, %v", boss, err)
	}
	ana, err := db.PersonByEmail(ctx, "ana@example.com")
	if err != nil || ana.ManagerID != boss.ID || ana.ManagerEmail != "boss@example.com" {
		t.Fatalf("ana: %+v, %v; want boss as manager", ana, err)
	}
	if n := count(t, db, "people"); n != 2 {
		t.Errorf("%d people, want 2", n)
	}
}

func rec(line int, email, name, team, mgr, slack, teams string) ledger.PersonRecord {
	return ledger.PersonRecord{Line: line, Email: email, Name: name, Team: team, Role: "engineer", ManagerEmail: mgr, SlackUserID: slack, TeamsUserID: teams}
}

func directorySnapshot(t *testing.T, db Store) []string {
	t.Helper()
	people, err := db.People(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range people {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s|mgr=%s|slack=%s|teams=%s", p.Email, p.Name, p.Team, p.Role, p.ManagerEmail, p.SlackUserID, p.TeamsUserID))
	}
	return out
}

// testStagedImportMatchesImportPeople: the staged, chunked import (chunks of 2 here)
// gives the same directory, counts and problems, word for word, as the one-transaction
// ImportPeople, for a first import, an update, and every problem it reports; a failed
// file changes nothing.
func testStagedImportMatchesImportPeople(t *testing.T, open Opener) {
	base := []ledger.PersonRecord{rec(2, "boss@x.io", "Boss", "Lead", "", "U1", ""), rec(3, "ana@x.io", "Ana", "Eng", "boss@x.io", "U2", "")}
	tests := []struct {
		name string
		file []ledger.PersonRecord
	}{
		{"first import with managers", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "d@x.io", "", ""), rec(3, "d@x.io", "D", "Ops", "", "U9", "T9"),
			rec(4, "e@x.io", "E", "Ops", "c@x.io", "", "")}},
		{"update keeps ids and the first spelling", []ledger.PersonRecord{rec(2, "ANA@x.io", "Ana B", "Data", "", "", "T2"),
			rec(3, "new@x.io", "New", "Data", "Ana@x.io", "U3", "")}},
		{"duplicate line", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "", "", ""), rec(3, "C@x.io", "C2", "Ops", "", "", ""),
			rec(4, "d@x.io", "D", "Ops", "d@x.io", "", "")}},
		{"own manager", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "c@x.io", "", "")}},
		{"slack id taken", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "", "U1", ""), rec(3, "d@x.io", "D", "Ops", "", "U7", ""),
			rec(4, "e@x.io", "E", "Ops", "", "U7", "")}},
		{"teams id taken", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "", "", "T5"), rec(3, "d@x.io", "D", "Ops", "", "", "T5")}},
		{"manager missing", []ledger.PersonRecord{rec(2, "c@x.io", "C", "Ops", "ghost@x.io", "", "")}},
		{"cycle", []ledger.PersonRecord{rec(2, "boss@x.io", "Boss", "Lead", "ana@x.io", "", ""), rec(3, "c@x.io", "C", "Ops", "", "", "")}},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			one, staged := open(t), open(t)
			for _, db := range []Store{one, staged} {
				db.SetNow(func() time.Time { return testNow })
				if _, err := db.ImportPeople(ctx, base); err != nil {
					t.Fatal(err)
				}
			}
			before := directorySnapshot(t, staged)
			wantRes, wantErr := one.ImportPeople(ctx, tt.file)
			if refused := tt.name != "first import with managers" && tt.name != "update keeps ids and the first spelling"; refused != (wantErr != nil) {
				t.Fatalf("ImportPeople: %v", wantErr)
			}
			pi, err := staged.BeginPeopleImport(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for start := 0; start < len(tt.file); start += 2 {
				if err := pi.Stage(ctx, tt.file[start:min(start+2, len(tt.file))]); err != nil {
					t.Fatal(err)
				}
			}
			gotRes, gotErr := pi.Apply(ctx)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || gotRes != wantRes {
				t.Fatalf("staged: %+v, %v\nImportPeople: %+v, %v", gotRes, gotErr, wantRes, wantErr)
			}
			if ledger.ErrorCode(gotErr) != ledger.ErrorCode(wantErr) {
				t.Errorf("error codes differ: %v / %v", ledger.ErrorCode(gotErr), ledger.ErrorCode(wantErr))
			}
			got, want := directorySnapshot(t, staged), directorySnapshot(t, one)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("directory after the staged import:\n%v\nafter ImportPeople:\n%v", got, want)
			}
			if wantErr != nil && !reflect.DeepEqual(got, before) {
				t.Errorf("a refused file changed the directory:\n%v\nwas\n%v", got, before)
			}
			if left := count(t, staged, "people_staging"); left != 0 {
				t.Errorf("%d rows left in the staging table", left)
			}
		})
	}
}

// testEmailKeyMatchesEverySpelling: the example. The directory holds
// "Élise@acme.test"; a gateway's "ÉLISE@acme.test", a decomposed é, and a later import in
// lower case all reach the same person.
func testEmailKeyMatchesEverySpelling(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "Élise@acme.test", Name: "Élise"},
		{Line: 3, Email: "Straße@acme.test", Name: "S", ManagerEmail: "ÉLISE@ACME.TEST"}}); err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{"ÉLISE@acme.test", "élise@acme.test", "E\u0301LISE@acme.test", " Élise@acme.test "} {
		p, err := db.PersonByEmail(ctx, spelling)
		if err != nil || p.Name != "Élise" || p.Email != "Élise@acme.test" {
			t.Errorf("PersonByEmail(%q) = %+v, %v", spelling, p, err)
		}
	}
	s, err := db.PersonByEmail(ctx, "STRASSE@acme.test")
	if err != nil || s.ManagerEmail != "Élise@acme.test" {
		t.Errorf("manager named in another spelling: %+v %v", s, err)
	}
	res, err := db.ImportPeople(ctx, []ledger.PersonRecord{{Line: 2, Email: "élise@acme.test", Name: "Élise B"}})
	if err != nil || res != (ledger.ImportResult{Updated: 1}) {
		t.Fatalf("re-import in another spelling: %+v %v", res, err)
	}
	posted, err := db.PostUsage(ctx, []ledger.UsagePosting{
		{Event: ledger.UsageEvent{EventID: "u1", Email: "ÉLISE@acme.test", Model: "m", OccurredAt: testNow}, Credits: 10},
		{Event: ledger.UsageEvent{EventID: "u2", Email: "E\u0301lise@ACME.test", Model: "m", OccurredAt: testNow}, Credits: 5},
	})
	if err != nil || posted[0].Status != ledger.UsageAccepted || posted[1].Status != ledger.UsageAccepted {
		t.Fatalf("usage in other spellings: %+v %v", posted, err)
	}
	// The same event retried in another spelling is the same event.
	again, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: "u1", Email: "élise@acme.test", Model: "m", OccurredAt: testNow}, Credits: 10}})
	if err != nil || again[0].Status != ledger.UsageDuplicate {
		t.Errorf("retry in another spelling: %+v %v", again, err)
	}
}

// testIdentityCacheFollowsOtherProcesses: usage resolves people through a cache, which
// must notice when another process changes the directory (here: erases a person), so
// usage for the old email is quarantined instead of landing on the pseudonym.
func testIdentityCacheFollowsOtherProcesses(t *testing.T, open Opener) {
	ctx := context.Background()
	db, people := smallLedger(t, open)
	post := func(id string) ledger.UsageResult {
		res, err := db.PostUsage(ctx, []ledger.UsagePosting{{Event: ledger.UsageEvent{EventID: id, Email: people[1].Email, Model: "m",
			OccurredAt: testNow}, Credits: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	if r := post("warm"); r.Status != ledger.UsageAccepted {
		t.Fatalf("first event: %+v", r)
	}
	other := reopen(t, db)
	other.SetNow(db.Now)
	if _, err := other.Forget(ctx, people[1].Email, "test"); err != nil {
		t.Fatal(err)
	}
	if r := post("after-forget"); r.Status != ledger.UsageQuarantined {
		t.Fatalf("usage for an erased email after another process erased it: %+v", r)
	}
}
