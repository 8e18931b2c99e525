package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
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

// lockedBuffer is a bytes.Buffer a test may read while Run writes to it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPeopleImportWaitsForAnotherOne: while another process has a directory import in
// progress on the database, `people import` says it is waiting, waits, and imports its
// file once the other one has applied; both files are in the directory.
func TestPeopleImportWaitsForAnotherOne(t *testing.T) {
	ctx := context.Background()
	env := map[string]string{"TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db"), "TOKENPAY_NOW": "2026-11-02T09:00:00Z"}
	other, err := sqlite.Open(ctx, env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	held, err := other.BeginPeopleImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := held.Stage(ctx, []ledger.PersonRecord{{Line: 2, Email: "first@x.io", Name: "First"}}); err != nil {
		t.Fatal(err)
	}
	var out, errOut lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"people", "import", "-"}, strings.NewReader("email,name,team,role,manager_email\nsecond@x.io,Second,T,analyst,\n"), &out, &errOut,
			func(k string) string { return env[k] })
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errOut.String(), "another directory import is running; waiting for it to finish") {
		select {
		case code := <-done:
			t.Fatalf("import ran beside another one: exit %d\n%s\n%s", code, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no word of waiting after a minute:\n%s", errOut.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, err := held.Apply(ctx); err != nil || res.Created != 1 {
		t.Fatalf("the other import: %+v %v", res, err)
	}
	if code := <-done; code != 0 || !strings.Contains(out.String(), "Imported 1 person (1 new, 0 updated)") {
		t.Fatalf("import after waiting: exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	people, err := other.People(ctx)
	if err != nil || len(people) != 2 {
		t.Fatalf("directory: %+v %v", people, err)
	}
}
