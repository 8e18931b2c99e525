package directory

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger"
)

func TestParseCSV(t *testing.T) {
	const header = "email,name,team,role,manager_email,slack_user_id,teams_user_id\n"
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string // every line of it must appear
	}{
		{"full", header + "ana@x.io,Ana,Research,Manager,,U1,aad-1\nbo@x.io,Bo,Research,analyst,ana@x.io,,\n", 2, ""},
		{"five columns", "email,name,team,role,manager_email\nana@x.io,Ana,R,m,\n", 1, ""},
		{"bom and blank line", "\ufeff" + header + "ana@x.io,Ana,R,m,,,\n\n", 1, ""},
		{"empty file", "", 0, "the file is empty"},
		{"bad header", "mail,name\n", 0, `line 1: unknown column "mail"; the columns are email,name,team,role,manager_email,slack_user_id,teams_user_id (any order`},
		{"reordered header", "name,email,team,role,manager_email\nAna,ana@x.io,R,m,\n", 1, ""},
		{"missing column", "email,name,team\nana@x.io,Ana,R\n", 0, "line 1: the header lacks role, manager_email"},
		{"column twice", "email,name,team,role,manager_email,email\n", 0, `line 1: the column "email" appears twice`},
		{"semicolons", "email;name;team;role;manager_email\nana@x.io;Ana;R;m;\nbo@x.io;Bo;R;m;ana@x.io\n", 2, ""},
		{"tabs", "email\tname\tteam\trole\tmanager_email\nana@x.io\tAna\tR\tm\t\n", 1, ""},
		{"pipes", "email|name|team|role|manager_email\n", 0, "must be separated by commas, semicolons or tabs"},
		{"semicolon rows under a comma header", header + "ana@x.io;Ana;R;m;;;\n", 0, "line 2: has 1 fields, the header has 7"},
		{"bad email", header + "ana,Ana,R,m,,,\n", 0, `line 2: email "ana" is not a plain email address`},
		{"display name email", header + "Ana <ana@x.io>,Ana,R,m,,,\n", 0, "line 2: email"},
		{"empty name", header + "ana@x.io,,R,m,,,\n", 0, "line 2: name is empty"},
		{"bad manager", header + "ana@x.io,Ana,R,m,boss,,\n", 0, "line 2: manager_email"},
		{"field count", header + "ana@x.io,Ana,R\n", 0, "line 2: has 3 fields, the header has 7"},
		{"every error at once", header + "a,A,R,m,,,\nb@x.io,,R,m,,,\nc@x.io,C,R,m,,,\n", 0, "is not a plain email address\nline 3: name is empty"},
		{"bare quote", header + "ana@x.io,An\"a,R,m,,,\n", 0, "line 2:"},
		{"quoted newline in name", header + "ana@x.io,\"An\na\",R,m,,,\n", 0, "line 2: name contains a line break"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ParseCSV(strings.NewReader(tc.in))
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("want error %q, got %d records", tc.wantErr, len(recs))
				}
				if ledger.ErrorCode(err) != ledger.Invalid || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(recs) != tc.want {
				t.Fatalf("got %d records, %v; want %d", len(recs), err, tc.want)
			}
		})
	}
}

func TestParseCSVFields(t *testing.T) {
	recs, err := ParseCSV(strings.NewReader("email,name,team,role,manager_email,slack_user_id,teams_user_id\n ana@x.io , Ana Li ,Research,Analyst,bo@x.io,U1,aad-1\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.PersonRecord{Line: 2, Email: "ana@x.io", Name: "Ana Li", Team: "Research", Role: "analyst", ManagerEmail: "bo@x.io", SlackUserID: "U1", TeamsUserID: "aad-1"}
	if recs[0] != want {
		t.Fatalf("got %+v want %+v", recs[0], want)
	}
}

// TestParseCSVByHeader: columns are read by their names, in any order and with any
// separator the file is recognised to use (issue 16).
func TestParseCSVByHeader(t *testing.T) {
	want := ledger.PersonRecord{Line: 2, Email: "ana@x.io", Name: "Ana Li", Team: "Research", Role: "analyst", ManagerEmail: "bo@x.io", SlackUserID: "U1", TeamsUserID: "aad-1"}
	for _, in := range []string{
		"teams_user_id,slack_user_id,manager_email,role,team,name,email\naad-1,U1,bo@x.io,Analyst,Research,Ana Li,ana@x.io\n",
		"Name;Email;Team;Role;Manager_Email;Slack_User_ID;Teams_User_ID\r\nAna Li;ana@x.io;Research;analyst;bo@x.io;U1;aad-1\r\n",
		"\ufeffemail\tteams_user_id\tname\tteam\trole\tmanager_email\tslack_user_id\nana@x.io\taad-1\tAna Li\tResearch\tanalyst\tbo@x.io\tU1\n",
	} {
		recs, err := ParseCSV(strings.NewReader(in))
		if err != nil || len(recs) != 1 || recs[0] != want {
			t.Errorf("%q: %+v, %v", in, recs, err)
		}
	}
}

func FuzzParseCSV(f *testing.F) {
	seed, err := os.ReadFile("testdata/people.csv")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte("email,name,team,role,manager_email\n\"a@b.c\",\"x\"\"y\",,,\n"))
	f.Add([]byte("name;email;team;role;manager_email\nAna;ana@x.io;R;m;\n"))
	f.Add([]byte("email\tname\tteam\trole\tmanager_email\nana@x.io\tAna\tR\tm\t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseCSV(strings.NewReader(string(data)))
		if err != nil {
			if ledger.ErrorCode(err) != ledger.Invalid {
				t.Fatalf("parse error must be Invalid: %v", err)
			}
			return
		}
		for _, r := range recs {
			if r.Email == "" || r.Name == "" || r.Line < 2 {
				t.Fatalf("accepted a record without email, name or line: %+v", r)
			}
		}
	})
}

// peopleFile is a reader of a directory of n people, made as it is read.
type peopleFile struct {
	n, i int
	buf  []byte
}

func (f *peopleFile) Read(p []byte) (int, error) {
	if f.i == 0 && len(f.buf) == 0 {
		f.buf = append(f.buf, "email,name,team,role,manager_email,slack_user_id\n"...)
	}
	for len(f.buf) < len(p) && f.i < f.n {
		mgr := ""
		if f.i > 0 {
			mgr = fmt.Sprintf("p%d@example.com", (f.i-1)/10)
		}
		f.buf = fmt.Appendf(f.buf, "p%d@example.com,Person %d,Team %d,engineer,%s,U%08d\n", f.i, f.i, f.i%50, mgr, f.i)
		f.i++
	}
	if len(f.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// TestStreamCSVInBoundedMemory reads a directory of 300,000 people (22 MB; ParseCSV would
// hold all the rows) in chunks of 5,000: every row arrives once with its line, and the live
// heap never grows by more than 16 MiB.
func TestStreamCSVInBoundedMemory(t *testing.T) {
	const n = 300_000
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	seen := 0
	var peak uint64
	err := StreamCSV(&peopleFile{n: n}, 5000, func(part []ledger.PersonRecord) error {
		if len(part) > 5000 {
			return fmt.Errorf("a chunk of %d", len(part))
		}
		for _, r := range part {
			if r.Email != fmt.Sprintf("p%d@example.com", seen) || r.Line != seen+2 {
				return fmt.Errorf("row %d: %+v", seen, r)
			}
			seen++
		}
		if seen%50_000 == 0 {
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapAlloc)
		}
		return nil
	})
	if err != nil || seen != n {
		t.Fatalf("streamed %d of %d people: %v", seen, n, err)
	}
	if grew := int64(peak) - int64(base.HeapAlloc); grew > 16<<20 {
		t.Errorf("the live heap grew by %.1f MiB while streaming: the rows are being kept", float64(grew)/(1<<20))
	}
}
