package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// TestPeopleImportInChunksAllOrNothing imports 12,000 people (three chunks of staging),
// then a file whose last line is bad, and one whose last person names a manager nobody
// has heard of: each of those imports nothing, though earlier chunks were staged.
func TestPeopleImportInChunksAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_NOW": "2026-11-02T09:00:00Z"}
	file := func(n int, team, last string) string {
		var b strings.Builder
		b.WriteString("email,name,team,role,manager_email,slack_user_id\n")
		for i := range n {
			mgr := ""
			if i > 0 {
				mgr = fmt.Sprintf("p%d@x.io", (i-1)/10)
			}
			fmt.Fprintf(&b, "p%d@x.io,Person %d,%s,analyst,%s,U%d\n", i, i, team, mgr, i)
		}
		b.WriteString(last)
		return b.String()
	}
	code, out, errOut := runCLI(t, file(12_000, "Blue", ""), env, "people", "import", "-")
	if code != 0 || !strings.Contains(out, "Imported 12,000 people (12,000 new, 0 updated)") {
		t.Fatalf("import: %d\n%s\n%s", code, out, errOut)
	}
	teams := func() map[string]int {
		db, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		people, err := db.People(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, p := range people {
			out[p.Team]++
		}
		return out
	}
	for _, bad := range []struct{ last, want string }{
		{"not-an-email,X,Red,analyst,,\n", "line 12002: email"},
		{"late@x.io,Late,Red,analyst,ghost@x.io,\n", "line 12002: manager ghost@x.io is not in the directory"},
	} {
		code, _, errOut = runCLI(t, file(12_000, "Red", bad.last), env, "people", "import", "-")
		if code == 0 || !strings.Contains(errOut, "nothing was imported") || !strings.Contains(errOut, bad.want) {
			t.Fatalf("a bad last line: exit %d\n%s", code, errOut)
		}
		if got := teams(); got["Blue"] != 12_000 || len(got) != 1 {
			t.Fatalf("a refused file changed the directory: %v", got)
		}
	}
}
