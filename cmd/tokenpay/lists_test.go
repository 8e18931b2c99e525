package main

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// TestCLIReadOnlyOnMissingDB: a read-only command on a path with no database says so,
// exits 1 and creates nothing (issue 16); so does a command about a person of the
// directory, which an empty new ledger cannot hold (login-link created tokenpay.db and
// then said the person was not in the directory).
func TestCLIReadOnlyOnMissingDB(t *testing.T) {
	for _, args := range [][]string{
		{"ledger", "verify"}, {"ledger", "export"}, {"balance", "ana@example.com"}, {"segments"}, {"audit"},
		{"jobs", "list"}, {"apikey", "list"}, {"people", "list"},
		{"login-link", "ana@example.com"}, {"grant", "ana@example.com", "5k", "--reason", "pilot"},
		{"people", "export", "ana@example.com"}, {"console", "--as", "ana@example.com"},
	} {
		c := newCLIEnv(t)
		r := c.run(t, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, "there is no database at "+c.db) || !strings.Contains(r.stderr, "nothing was created") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if _, err := os.Stat(c.db + suffix); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%v created %s", args, c.db+suffix)
			}
		}
	}
}

func TestCLIAPIKeyList(t *testing.T) {
	c := withPeople(t)
	if out := c.ok(t, "apikey", "list"); !strings.Contains(out, "No API keys yet") {
		t.Errorf("empty list: %q", out)
	}
	created := c.ok(t, "apikey", "create", "gateway")
	lines := strings.Split(strings.TrimSpace(created), "\n")
	key := lines[len(lines)-1]
	c.ok(t, "apikey", "create", "batch-import")

	// A second live key of one name is refused: names are how keys are revoked.
	c.fails(t, `an API key named "gateway" already exists`, "apikey", "create", "gateway")

	// Using a key records when.
	db := c.open(t)
	if _, err := db.CheckAPIKey(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	db.Close()

	out := c.ok(t, "apikey", "list")
	want := []string{"NAME", "CREATED", "LAST USED", "gateway", "2026-11-27 12:00 UTC", "active", "batch-import", "never"}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, key) || strings.Contains(out, "tp_") {
		t.Errorf("the list shows a key:\n%s", out)
	}
	var keys []struct {
		Name     string  `json:"name"`
		LastUsed *string `json:"last_used"`
		Revoked  bool    `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(c.ok(t, "apikey", "list", "--json")), &keys); err != nil || len(keys) != 2 ||
		keys[0].Name != "gateway" || keys[0].LastUsed == nil || keys[1].LastUsed != nil {
		t.Errorf("json: %+v %v", keys, err)
	}

	before := c.counts(t)
	c.fails(t, `no active API key is named "gatewya"`, "apikey", "revoke", "gatewya")
	if after := c.counts(t); after["audit_log"] != before["audit_log"] {
		t.Error("a revoke of nothing was audited")
	}
	c.ok(t, "apikey", "revoke", "gateway")
	if out := c.ok(t, "apikey", "list"); !strings.Contains(out, "revoked") {
		t.Errorf("after revoke:\n%s", out)
	}
	c.fails(t, `no active API key is named "gateway"`, "apikey", "revoke", "gateway")
	// A revoked name may be used again.
	c.ok(t, "apikey", "create", "gateway")
}

func TestCLIPeopleList(t *testing.T) {
	c := withPeople(t)
	c.ok(t, "usage", "import", c.file(t, "u.jsonl", `{"id":"u1","email":"ana@example.com","model":"m","input_tokens":150000,"occurred_at":"2026-11-27T10:00:00Z"}`+"\n"))

	out := c.ok(t, "people", "list")
	for _, w := range []string{"EMAIL", "SEGMENT", "ana@example.com", "bo@example.com", "boss@example.com", "3 people."} {
		if !strings.Contains(out, w) {
			t.Errorf("list lacks %q:\n%s", w, out)
		}
	}
	tests := []struct {
		args  []string
		email []string
	}{
		{[]string{"--team", "platform"}, []string{"ana@example.com"}},
		{[]string{"--manager", "BOSS@example.com"}, []string{"ana@example.com", "bo@example.com"}},
		{[]string{"--manager", "boss@example.com", "--team", "Sales"}, []string{"bo@example.com"}},
		{[]string{"--segment", "steady"}, []string{"boss@example.com", "bo@example.com"}},
		{[]string{"--segment", "heavy-without-gains"}, []string{"ana@example.com"}},
		{[]string{"--segment", "underuser"}, nil},
	}
	for _, tc := range tests {
		var people []personJSON
		raw := c.ok(t, append([]string{"people", "list", "--json"}, tc.args...)...)
		if err := json.Unmarshal([]byte(raw), &people); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, raw)
		}
		var got []string
		for _, p := range people {
			got = append(got, p.Email)
		}
		if strings.Join(got, ",") != strings.Join(tc.email, ",") {
			t.Errorf("%v: %v, want %v", tc.args, got, tc.email)
		}
	}
	if out := c.ok(t, "people", "list", "--team", "nobody"); out != "Nobody matches.\n" {
		t.Errorf("empty: %q", out)
	}
	c.fails(t, `--segment "sleepy" is not a segment; use one of dormant`, "people", "list", "--segment", "sleepy")
	c.fails(t, "ghost@example.com is not in the directory", "people", "list", "--manager", "ghost@example.com")
}

// TestCLIPeopleImportByHeader: columns in any order, semicolons recognised, and the count
// read naturally (issue 16).
func TestCLIPeopleImportByHeader(t *testing.T) {
	c := newCLIEnv(t)
	out := c.ok(t, "people", "import", c.file(t, "one.csv", "name;role;email;team;manager_email\nAna;Engineer;ana@example.com;Platform;\n"))
	if !strings.HasPrefix(out, "Imported 1 person (1 new, 0 updated).") {
		t.Errorf("import: %q", out)
	}
	out = c.ok(t, "people", "import", c.file(t, "two.csv", "manager_email,email,name,team,role\n,boss@example.com,Boss,Exec,manager\nboss@example.com,ana@example.com,Ana,Platform,engineer\n"))
	if !strings.HasPrefix(out, "Imported 2 people (1 new, 1 updated).") {
		t.Errorf("import: %q", out)
	}
	var people []personJSON
	if err := json.Unmarshal([]byte(c.ok(t, "people", "list", "--json", "--team", "platform")), &people); err != nil || len(people) != 1 ||
		people[0] != (personJSON{Email: "ana@example.com", Name: "Ana", Team: "Platform", Role: "engineer", ManagerEmail: "boss@example.com", Segment: people[0].Segment}) {
		t.Errorf("%+v %v", people, err)
	}
}

// TestCLIForgetWarnsAboutPolicy: erasing someone the policy names tells the operator to
// remove them there too.
func TestCLIForgetWarnsAboutPolicy(t *testing.T) {
	c := withPeople(t)
	pol := c.file(t, "policy.yaml", "admins: [Bo@example.com]\nunlock:\n  delegates:\n    boss@example.com: [bo@example.com]\n")
	r := c.run(t, "", "people", "forget", "bo@example.com", "--yes", "--policy", pol)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, w := range []string{"warning: the policy " + pol + " still names bo@example.com in admins and unlock.delegates (as a delegate of boss@example.com)", "remove them there"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q: %q", w, r.stderr)
		}
	}
	r = c.run(t, "", "people", "forget", "ana@example.com", "--yes", "--policy", pol)
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("someone the policy does not name: exit %d, %q", r.code, r.stderr)
	}
}

// open opens the env's ledger through the store, as serve would.
func (c *cliEnv) open(t testing.TB) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(t.Context(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, cliNow)
	db.SetNow(func() time.Time { return now })
	return db
}
