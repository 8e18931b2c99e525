package ledgertest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
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

// importFile is a directory of n people <prefix>0@x.io ... managed by <prefix>0, each with
// a Slack id of their own.
func importFile(prefix string, n int) []ledger.PersonRecord {
	recs := make([]ledger.PersonRecord, n)
	for i := range recs {
		mgr := ""
		if i > 0 {
			mgr = prefix + "0@x.io"
		}
		recs[i] = rec(i+2, fmt.Sprintf("%s%d@x.io", prefix, i), fmt.Sprintf("%s %d", prefix, i), prefix, mgr, fmt.Sprintf("U%s%d", prefix, i), "")
	}
	return recs
}

// stageFile begins an import on db and stages file in chunks of 5.
func stageFile(t *testing.T, db Store, file []ledger.PersonRecord) ledger.PeopleImport {
	t.Helper()
	pi, err := db.BeginPeopleImport(context.Background())
	if err != nil {
		t.Error(err)
		return nil
	}
	for start := 0; start < len(file); start += 5 {
		if err := pi.Stage(context.Background(), file[start:min(start+5, len(file))]); err != nil {
			t.Error(err)
			return nil
		}
	}
	return pi
}

// testConcurrentImportsRunOneAtATime: two imports at once on one database, from two
// processes (replicas), each in its own goroutine from begin to apply: the second to
// begin waits for the first to apply, so each checks and applies only its own file (its
// counts, its managers, its problems) and nothing is left staged. Twice: two good files,
// then a good one beside a refused one.
func testConcurrentImportsRunOneAtATime(t *testing.T, open Opener) {
	ctx := context.Background()
	a := open(t)
	a.SetNow(func() time.Time { return testNow })
	b := reopen(t, a)
	b.SetNow(func() time.Time { return testNow })
	both := func(fa, fb []ledger.PersonRecord) ([2]ledger.ImportResult, [2]error) {
		var res [2]ledger.ImportResult
		var errs [2]error
		var wg sync.WaitGroup
		for i, job := range []struct {
			db   Store
			file []ledger.PersonRecord
		}{{a, fa}, {b, fb}} {
			wg.Go(func() {
				if pi := stageFile(t, job.db, job.file); pi != nil {
					res[i], errs[i] = pi.Apply(ctx)
				}
			})
		}
		wg.Wait()
		return res, errs
	}
	res, errs := both(importFile("a", 40), importFile("b", 35))
	if errs[0] != nil || errs[1] != nil || res[0] != (ledger.ImportResult{Created: 40}) || res[1] != (ledger.ImportResult{Created: 35}) {
		t.Fatalf("imports at once: %+v %v, %+v %v", res[0], errs[0], res[1], errs[1])
	}
	people, err := b.People(ctx)
	if err != nil || len(people) != 75 {
		t.Fatalf("%d people after both imports, want 75: %v", len(people), err)
	}
	for _, p := range people {
		if want := p.Email[:1] + "0@x.io"; p.Email != want && p.ManagerEmail != want {
			t.Errorf("%s is managed by %q, want %s", p.Email, p.ManagerEmail, want)
		}
	}

	// A renames its people while B's file repeats a line: A applies, B is refused with its
	// own line only.
	fa := importFile("a", 40)
	for i := range fa {
		fa[i].Name = "renamed"
	}
	res, errs = both(fa, append(importFile("b", 35), rec(37, "B3@x.io", "dup", "b", "", "", "")))
	if errs[0] != nil || res[0] != (ledger.ImportResult{Updated: 40}) {
		t.Errorf("A's second import: %+v %v", res[0], errs[0])
	}
	if want := "line 37: B3@x.io already appears on line 5"; ledger.ErrorCode(errs[1]) != ledger.Invalid || errs[1].Error() != want {
		t.Errorf("B's refused import: %v, want %q", errs[1], want)
	}
	if p, err := a.PersonByEmail(ctx, "a7@x.io"); err != nil || p.Name != "renamed" {
		t.Errorf("A's update: %+v %v", p, err)
	}
	if p, err := a.PersonByEmail(ctx, "b3@x.io"); err != nil || p.Name != "b 3" {
		t.Errorf("B's refused file changed the directory: %+v %v", p, err)
	}
	if n := count(t, a, "people_staging"); n != 0 {
		t.Errorf("%d rows left staged", n)
	}
	// With the lease given back, a third import begins at once.
	quick, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	pi, err := a.BeginPeopleImport(quick)
	if err != nil {
		t.Fatalf("an import after both: %v", err)
	}
	if err := pi.Discard(ctx); err != nil {
		t.Fatal(err)
	}
}

// testImportWaitsAndTakesOverAnIdleOne: while an import is in progress, another one's
// begin waits (here until its context ends); once the first has been idle past
// ledger.ImportIdleLimit (its process was killed), the next import empties what it
// staged and takes its place, and the first is told to run again if it comes back.
func testImportWaitsAndTakesOverAnIdleOne(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	first := stageFile(t, db, importFile("k", 7))
	if first == nil {
		t.FailNow()
	}
	waiting, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := db.BeginPeopleImport(waiting); err == nil || !strings.Contains(err.Error(), "another directory import is running") {
		t.Fatalf("a second import began beside a live one: %v", err)
	}
	// Two minutes and a second without a chunk, on the wall clock the lease keeps.
	execSQL(t, db, `UPDATE people_import_lease SET touched_at = touched_at - ?`, (121 * time.Second).Milliseconds())
	next := stageFile(t, db, importFile("n", 3))
	if next == nil {
		t.FailNow()
	}
	if n := count(t, db, "people_staging"); n != 3 {
		t.Errorf("%d rows staged after the idle import was taken over, want the new import's 3", n)
	}
	for _, err := range []error{first.Stage(ctx, importFile("k", 1)), func() error { _, err := first.Apply(ctx); return err }()} {
		if ledger.ErrorCode(err) != ledger.Conflict || !strings.Contains(err.Error(), "run the import again") {
			t.Errorf("the import taken over went on: %v", err)
		}
	}
	if err := first.Discard(ctx); err != nil {
		t.Errorf("discard of the import taken over: %v", err)
	}
	if res, err := next.Apply(ctx); err != nil || res != (ledger.ImportResult{Created: 3}) {
		t.Fatalf("the next import: %+v %v", res, err)
	}
	if n := count(t, db, "people"); n != 3 {
		t.Errorf("%d people, want the next import's 3", n)
	}
}

// testImportFindsLostRows: rows that vanish from the staging table between Stage and
// Apply (PostgreSQL empties its unlogged staging table in a crash) make Apply refuse
// rather than apply part of a file.
func testImportFindsLostRows(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	db.SetNow(func() time.Time { return testNow })
	pi := stageFile(t, db, importFile("l", 12))
	if pi == nil {
		t.FailNow()
	}
	execSQL(t, db, `DELETE FROM people_staging WHERE line > 10`)
	if _, err := pi.Apply(ctx); ledger.ErrorCode(err) != ledger.Conflict || !strings.Contains(err.Error(), "3 of the file's 12 rows were lost") {
		t.Errorf("apply of a file with lost rows: %v", err)
	}
	if n := count(t, db, "people"); n != 0 {
		t.Errorf("%d people after a refused file", n)
	}
}
