package sqlite

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

func rec(line int, email, name, team, mgr, slack, teams string) ledger.PersonRecord {
	return ledger.PersonRecord{Line: line, Email: email, Name: name, Team: team, Role: "engineer", ManagerEmail: mgr, SlackUserID: slack, TeamsUserID: teams}
}

func directorySnapshot(t *testing.T, db *DB) []string {
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

// TestStagedImportMatchesImportPeople: the staged, chunked import (chunks of 2 here)
// gives the same directory, counts and problems, word for word, as the one-transaction
// ImportPeople, for a first import, an update, and every problem it reports; a failed
// file changes nothing.
func TestStagedImportMatchesImportPeople(t *testing.T) {
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
			one, staged := newTestDB(t), newTestDB(t)
			for _, db := range []*DB{one, staged} {
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
			var left int
			if err := staged.read.QueryRow(`SELECT count(*) FROM people_staging`).Scan(&left); err != nil || left != 0 {
				t.Errorf("%d rows left in the staging table (%v)", left, err)
			}
		})
	}
}
