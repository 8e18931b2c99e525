package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// cliNow is the fixed clock of these tests: late November 2026, default monthly period.
const cliNow = "2026-11-27T12:00:00Z"

const cliPeople = `email,name,team,role,manager_email,slack_user_id,teams_user_id
boss@example.com,Boss,Exec,manager,,,
ana@example.com,Ana,Platform,engineer,boss@example.com,U0ANA,
bo@example.com,Bo,Sales,engineer,boss@example.com,,
`

// cliEnv is one temp directory with a ledger file; commands run in-process against it.
type cliEnv struct {
	dir string
	db  string
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	dir := t.TempDir()
	return &cliEnv{dir: dir, db: filepath.Join(dir, "ledger.db")}
}

// withPeople is newCLIEnv with cliPeople imported.
func withPeople(t *testing.T) *cliEnv {
	t.Helper()
	c := newCLIEnv(t)
	c.ok(t, "people", "import", c.file(t, "people.csv", cliPeople))
	return c
}

// run runs args with --db pointing at the env's ledger and TOKENPAY_NOW fixed.
func (c *cliEnv) run(t testing.TB, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string {
		if k == "TOKENPAY_NOW" {
			return cliNow
		}
		return ""
	}
	code := Run(context.Background(), append(args, "--db", c.db), strings.NewReader(stdin), &out, &errOut, getenv)
	return cliResult{code, out.String(), errOut.String()}
}

// ok runs args and fails the test unless they exit 0; it returns stdout.
func (c *cliEnv) ok(t testing.TB, args ...string) string {
	t.Helper()
	r := c.run(t, "", args...)
	if r.code != 0 {
		t.Fatalf("tokenpay %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs args and checks they exit 1 with wantErr on stderr and nothing on stdout.
func (c *cliEnv) fails(t testing.TB, wantErr string, args ...string) {
	t.Helper()
	r := c.run(t, "", args...)
	if r.code != 1 || !strings.Contains(r.stderr, wantErr) || r.stdout != "" {
		t.Errorf("tokenpay %s: exit %d, stdout %q, stderr %q; want exit 1 and %q", strings.Join(args, " "), r.code, r.stdout, r.stderr, wantErr)
	}
}

func (c *cliEnv) file(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sql opens the ledger file directly, as an operator with the sqlite3 shell would.
func (c *cliEnv) sql(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+c.db+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// counts returns the number of rows of every ledger table, to prove a refused command
// changed nothing.
func (c *cliEnv) counts(t testing.TB) map[string]int {
	t.Helper()
	db := c.sql(t)
	out := map[string]int{}
	for _, table := range []string{"people", "transactions", "postings", "accounts", "grants", "usage_events", "quarantine", "api_keys", "audit_log"} {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

func (c *cliEnv) balance(t testing.TB, email string) api.BalanceJSON {
	t.Helper()
	var b api.BalanceJSON
	if err := json.Unmarshal([]byte(c.ok(t, "balance", email, "--json")), &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCLIPeopleImport(t *testing.T) {
	c := newCLIEnv(t)
	out := c.ok(t, "people", "import", c.file(t, "people.csv", cliPeople))
	if want := "Imported 3 people (3 new, 0 updated). Period 2026-11 is open for everyone.\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if b := c.balance(t, "ana@example.com"); b.Available != 200_000 {
		t.Errorf("ana has %d available after import, want the 200,000 baseline", b.Available)
	}
	// Importing the same file again updates, and grants no second baseline.
	if out := c.ok(t, "people", "import", c.file(t, "people.csv", cliPeople)); !strings.HasPrefix(out, "Imported 3 people (0 new, 3 updated).") {
		t.Errorf("re-import: %q", out)
	}
	if b := c.balance(t, "ana@example.com"); b.Available != 200_000 {
		t.Errorf("ana has %d available after a re-import, want 200,000", b.Available)
	}

	header := "email,name,team,role,manager_email\n"
	tests := []struct {
		name, csv string
		errs      []string
	}{
		{"bad rows", header + "cy@example.com,Cy,T,r,\nnot-an-email,Dee,T,r,\neve@example.com,,T,r,\n",
			[]string{"line 3: email \"not-an-email\" is not a plain email address", "line 4: name is empty"}},
		{"wrong header", "mail,name\nana@example.com,Ana\n", []string{`line 1: unknown column "mail"; the columns are email,name,team,role,manager_email`}},
		{"pipes", "email|name|team|role|manager_email\nana@example.com|Ana|T|r|\n", []string{"must be separated by commas, semicolons or tabs"}},
		{"unknown manager", header + "cy@example.com,Cy,T,r,\ndee@example.com,Dee,T,r,ghost@example.com\n",
			[]string{"line 3: manager ghost@example.com is not in the directory; add them to the file"}},
		{"manager cycle", header + "boss@example.com,Boss,Exec,manager,bo@example.com\nana@example.com,Ana Renamed,Platform,engineer,boss@example.com\n",
			[]string{"line 2: managers form a cycle: boss@example.com -> bo@example.com -> boss@example.com"}},
		{"own manager", header + "bo@example.com,Bo,Sales,engineer,bo@example.com\n", []string{"line 2: bo@example.com cannot be their own manager"}},
		{"duplicate", header + "cy@example.com,Cy,T,r,\nCY@example.com,Cy,T,r,\n", []string{"line 3: CY@example.com already appears on line 2"}},
		{"Slack id taken", "email,name,team,role,manager_email,slack_user_id\ncy@example.com,Cy,T,r,,U0ANA\n",
			[]string{"line 2: Slack user id U0ANA already belongs to someone else"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := c.counts(t)
			ana := c.ok(t, "balance", "ana@example.com")
			r := c.run(t, "", "people", "import", c.file(t, "bad.csv", tc.csv))
			if r.code != 1 || !strings.Contains(r.stderr, "nothing was imported") {
				t.Errorf("exit %d, stderr %q; want exit 1 and 'nothing was imported'", r.code, r.stderr)
			}
			for _, e := range tc.errs {
				if !strings.Contains(r.stderr, e) {
					t.Errorf("stderr %q does not contain %q", r.stderr, e)
				}
			}
			if after := c.counts(t); !reflect.DeepEqual(after, before) {
				t.Errorf("a failed import changed row counts: %v, was %v", after, before)
			}
			if got := c.ok(t, "balance", "ana@example.com"); got != ana {
				t.Errorf("a failed import changed ana: %q, was %q", got, ana)
			}
		})
	}
	c.fails(t, "cannot open", "people", "import", filepath.Join(c.dir, "missing.csv"))
}

func TestCLIGrant(t *testing.T) {
	c := withPeople(t)
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"zero", []string{"grant", "ana@example.com", "0", "--reason", "r"}, "tokenpay: amount must be a positive whole number of credits, such as 50000 or 50k\n"},
		{"negative", []string{"grant", "ana@example.com", "-5", "--reason", "r"}, "tokenpay: amount must be a positive whole number of credits, not -5\n"},
		{"negative after the flag", []string{"grant", "--reason", "r", "ana@example.com", "-5k"}, "not -5k"},
		{"not a number", []string{"grant", "ana@example.com", "abc", "--reason", "r"}, `tokenpay: "abc" is not an amount; use a whole number of credits such as 50000, 50,000 or 50k` + "\n"},
		{"fraction of a credit", []string{"grant", "ana@example.com", "1.5", "--reason", "r"}, `"1.5" is not a whole number of credits`},
		{"over the maximum", []string{"grant", "ana@example.com", "1000000000001", "--reason", "r"}, "tokenpay: amount must be at most 1,000,000,000,000 credits\n"},
		{"over int64", []string{"grant", "ana@example.com", "99999999999999999999", "--reason", "r"}, "amount must be at most 1,000,000,000,000 credits"},
		{"huge with a suffix", []string{"grant", "ana@example.com", "9999999999m", "--reason", "r"}, "amount must be at most 1,000,000,000,000 credits"},
		{"decimal comma", []string{"grant", "ana@example.com", "1,5k", "--reason", "r"}, "did you mean 1.5k (1,500 credits)?"},
		{"two readings", []string{"grant", "ana@example.com", "1.500k", "--reason", "r"}, "reads two ways: 1,500 credits or 1,500,000 credits"},
		{"no reason", []string{"grant", "ana@example.com", "500"}, `tokenpay: say why with --reason, e.g. --reason "pilot project"` + "\n"},
		{"empty reason", []string{"grant", "ana@example.com", "500", "--reason", ""}, "say why with --reason"},
		{"unknown email", []string{"grant", "nobody@example.com", "500", "--reason", "r"}, "tokenpay: nobody@example.com is not in the directory\n"},
		{"missing amount", []string{"grant", "ana@example.com", "--reason", "r"}, `tokenpay: wrong number of arguments ("ana@example.com"): type tokenpay grant EMAIL AMOUNT --reason R (see --help)` + "\n"},
	}
	before := c.counts(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c.fails(t, tc.err, tc.args...)
		})
	}
	if after := c.counts(t); !reflect.DeepEqual(after, before) {
		t.Fatalf("refused grants changed the ledger: %v, was %v", after, before)
	}

	out := c.ok(t, "grant", "ana@example.com", "5k", "--reason", "pilot project", "--key", "pilot-1")
	if !regexp.MustCompile(`^Granted 5,000 credits to ana@example.com until 1 Dec 2026 00:00 UTC \(grant \d+\)\.\n$`).MatchString(out) {
		t.Errorf("grant output %q", out)
	}
	// The same key again is a retry: granted once.
	c.ok(t, "grant", "ana@example.com", "5k", "--reason", "pilot project", "--key", "pilot-1")
	if b := c.balance(t, "ana@example.com"); b.Available != 205_000 {
		t.Errorf("available %d after the grant and its retry, want 205,000", b.Available)
	}
	c.fails(t, "already used for a different operation", "grant", "ana@example.com", "6k", "--reason", "pilot project", "--key", "pilot-1")
	var reason string
	if err := c.sql(t).QueryRow(`SELECT detail FROM audit_log WHERE action = 'grant'`).Scan(&reason); err != nil || reason != "5,000 credits: pilot project" {
		t.Errorf("audit detail %q, %v", reason, err)
	}
}

// TestCLIGrantAsTyped: the amounts people type, and an em dash for "--" (issue 16).
func TestCLIGrantAsTyped(t *testing.T) {
	c := withPeople(t)
	tests := []struct {
		args []string
		want int64
	}{
		{[]string{"25", "k", "--reason", "pilot"}, 25_000},
		{[]string{"25", "K", "\u2014reason", "pilot"}, 25_000},
		{[]string{"25k", "credits", "\u2013reason", "pilot"}, 25_000},
		{[]string{"50,000", "--reason", "pilot"}, 50_000},
		{[]string{"50.000", "--reason", "pilot"}, 50_000},
		{[]string{"1.5M", "--reason", "pilot"}, 1_500_000},
	}
	total := c.balance(t, "ana@example.com").Available
	for _, tc := range tests {
		out := c.ok(t, append([]string{"grant", "ana@example.com"}, tc.args...)...)
		if want := "Granted " + ledger.FormatCredits(tc.want) + " credits to ana@example.com"; !strings.HasPrefix(out, want) {
			t.Errorf("%v: %q, want %q", tc.args, out, want)
		}
		total += tc.want
		if got := c.balance(t, "ana@example.com").Available; got != total {
			t.Errorf("%v: available %d, want %d", tc.args, got, total)
		}
	}
}

func TestCLIBalance(t *testing.T) {
	c := withPeople(t)
	usage := c.file(t, "u.jsonl", `{"id":"u1","email":"ana@example.com","model":"m","input_tokens":1200,"output_tokens":300,"occurred_at":"2026-11-27T10:00:00Z"}`+"\n")
	c.ok(t, "usage", "import", usage)

	out := c.ok(t, "balance", "ana@example.com")
	want := "Ana (ana@example.com)\navailable  198,500\nspent      1,500\noverage    0\nperiod     2026-11-01 to 2026-12-01\n"
	if out != want {
		t.Errorf("balance:\n%s\nwant:\n%s", out, want)
	}

	// --json prints exactly the fields of GET /api/v1/people/{email}/balance.
	raw := c.ok(t, "balance", "ANA@example.com", "--json")
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		t.Fatal(err)
	}
	httpFields, err := json.Marshal(api.BalanceJSON{})
	if err != nil {
		t.Fatal(err)
	}
	var wantKeys map[string]any
	if err := json.Unmarshal(httpFields, &wantKeys); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(fields)), slices.Sorted(maps.Keys(wantKeys)); !slices.Equal(got, want) {
		t.Errorf("--json keys %v, HTTP keys %v", got, want)
	}
	wantValues := map[string]any{"email": "ana@example.com", "available": 198500.0, "spent": 1500.0, "overage": 0.0,
		"period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z"}
	if !reflect.DeepEqual(fields, wantValues) {
		t.Errorf("--json %v, want %v", fields, wantValues)
	}

	c.fails(t, "tokenpay: nobody@example.com is not in the directory", "balance", "nobody@example.com")
	c.fails(t, "tokenpay: arguments missing: type tokenpay balance EMAIL (see --help)\n", "balance")
}

func TestCLIAPIKeyCreate(t *testing.T) {
	c := newCLIEnv(t)
	out := c.ok(t, "apikey", "create", "gateway")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	key := lines[len(lines)-1]
	if !regexp.MustCompile(`^tp_[A-Za-z0-9_-]{43}$`).MatchString(key) {
		t.Fatalf("last stdout line %q is not a key alone; stdout:\n%s", key, out)
	}
	if !strings.Contains(lines[0], "only its hash is kept") {
		t.Errorf("first line %q does not warn that the key is shown once", lines[0])
	}

	// The table holds the SHA-256 of the key and nothing from which the key could be read.
	rows, err := c.sql(t).Query(`SELECT * FROM api_keys`)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	n := 0
	for rows.Next() {
		n++
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256([]byte(key))
		row := map[string]string{}
		for i, v := range vals {
			row[cols[i]] = v.String
			if strings.Contains(v.String, key[3:13]) {
				t.Errorf("column %s holds part of the plaintext key: %q", cols[i], v.String)
			}
		}
		if row["key_hash"] != hex.EncodeToString(sum[:]) {
			t.Errorf("key_hash %q, want the SHA-256 of the key", row["key_hash"])
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if n != 1 {
		t.Fatalf("%d rows in api_keys, want 1", n)
	}
	// Nor anywhere else in the files.
	for _, f := range []string{c.db, c.db + "-wal"} {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(key)) {
			t.Errorf("%s contains the plaintext key", filepath.Base(f))
		}
	}
	// And the key is the one the API accepts.
	db, err := sqlite.Open(context.Background(), c.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if k, err := db.CheckAPIKey(context.Background(), key); err != nil || k.Name != "gateway" {
		t.Errorf("CheckAPIKey: %+v, %v", k, err)
	}

	c.fails(t, "give the key a name of 1 to 100 characters", "apikey", "create", " ")
	if out := c.ok(t, "apikey", "revoke", "gateway"); out != "Revoked 1 key named \"gateway\".\n" {
		t.Errorf("revoke: %q", out)
	}
	if _, err := db.CheckAPIKey(context.Background(), key); err == nil {
		t.Error("a revoked key still checks")
	}
}

func TestCLILedgerVerify(t *testing.T) {
	c := withPeople(t)
	c.ok(t, "grant", "ana@example.com", "1000", "--reason", "r")
	c.ok(t, "usage", "import", c.file(t, "u.jsonl", `{"id":"u1","email":"bo@example.com","model":"m","input_tokens":250000,"occurred_at":"2026-11-27T10:00:00Z"}`+"\n"))
	if out := c.ok(t, "ledger", "verify"); out != "ledger verified: postings balance, balances match postings, no grant over-spent\n" {
		t.Errorf("verify: %q", out)
	}

	var ana int64
	db := c.sql(t)
	if err := db.QueryRow(`SELECT id FROM people WHERE email = 'ana@example.com'`).Scan(&ana); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE postings SET amount = amount + 7 WHERE id = (SELECT min(id) FROM postings WHERE account = ?)`, fmt.Sprintf("person:%d:available", ana)); err != nil {
		t.Fatal(err)
	}
	r := c.run(t, "", "ledger", "verify")
	if r.code != 1 || r.stderr != "tokenpay: ledger verify found 3 violations\n" {
		t.Errorf("exit %d, stderr %q; want exit 1 and 3 violations", r.code, r.stderr)
	}
	want := []string{
		"transaction postings do not sum to zero: transaction 2: 7", // ana's baseline (bo's came first)
		"all postings together do not sum to zero: total 7",
		fmt.Sprintf("available balance differs from open grants: person %d: available 201007, grants 201000", ana),
	}
	if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCLILedgerExport(t *testing.T) {
	c := withPeople(t)
	c.ok(t, "grant", "ana@example.com", "1000", "--reason", "a reason, with a comma")
	c.ok(t, "usage", "import", c.file(t, "u.jsonl", `{"id":"u1","email":"bo@example.com","model":"m","input_tokens":250000,"occurred_at":"2026-11-27T10:00:00Z"}`+"\n"))
	recs, err := csv.NewReader(strings.NewReader(c.ok(t, "ledger", "export"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	header := recs[0]
	col := func(name string) int {
		i := slices.Index(header, name)
		if i < 0 {
			t.Fatalf("header %v has no %s column", header, name)
		}
		return i
	}
	txCol, accountCol, amountCol := col("tx_id"), col("account"), col("amount")
	var total int64
	perTx := map[string]int64{}
	accounts := map[string]bool{}
	for _, r := range recs[1:] {
		n, err := strconv.ParseInt(r[amountCol], 10, 64)
		if err != nil {
			t.Fatalf("amount %q: %v", r[amountCol], err)
		}
		total += n
		perTx[r[txCol]] += n
		accounts[r[accountCol]] = true
	}
	if total != 0 {
		t.Errorf("exported postings sum to %d, want 0", total)
	}
	for tx, sum := range perTx {
		if sum != 0 {
			t.Errorf("transaction %s sums to %d", tx, sum)
		}
	}
	var stored int
	if err := c.sql(t).QueryRow(`SELECT count(*) FROM ledger_postings`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(recs)-1 {
		t.Errorf("%d rows exported, %d postings in the ledger (stored and implied by usage rows)", len(recs)-1, stored)
	}
	for _, a := range []string{"org:pool", "person:2:available", "person:3:spent", "person:3:overage"} {
		if !accounts[a] {
			t.Errorf("no posting to %s in the export", a)
		}
	}
}

func TestCLIBackup(t *testing.T) {
	c := withPeople(t)
	c.ok(t, "grant", "ana@example.com", "1000", "--reason", "r")
	target := filepath.Join(c.dir, "backup.db")
	out := c.ok(t, "backup", target)
	if want := fmt.Sprintf("Backed up %s to %s.\n", c.db, target); out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	copyEnv := &cliEnv{dir: c.dir, db: target}
	if out := copyEnv.ok(t, "ledger", "verify"); !strings.HasPrefix(out, "ledger verified") {
		t.Errorf("verify of the copy: %q", out)
	}
	if got, want := copyEnv.ok(t, "balance", "ana@example.com", "--json"), c.ok(t, "balance", "ana@example.com", "--json"); got != want {
		t.Errorf("copy balance %s, original %s", got, want)
	}
	if !reflect.DeepEqual(copyEnv.counts(t), c.counts(t)) {
		t.Errorf("copy rows %v, original %v", copyEnv.counts(t), c.counts(t))
	}

	before, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	c.ok(t, "grant", "bo@example.com", "1000", "--reason", "r")
	c.fails(t, "already exists; choose a new file name", "backup", target)
	if after, err := os.ReadFile(target); err != nil || !bytes.Equal(after, before) {
		t.Errorf("a refused backup changed the existing file (%v)", err)
	}
}

func TestCLIUsageImport(t *testing.T) {
	csvFile := `id,email,slack_user_id,model,input_tokens,output_tokens,occurred_at,source
c1,ana@example.com,,gpt-4o,1000,200,2026-11-27T10:00:00Z,gw
c2,,U0ANA,gpt-4o,300,0,2026-11-27T10:01:00Z,gw
c3,bo@example.com,,gpt-4o,50,50,2026-11-27T10:02:00Z,gw
c4,carl@example.com,,gpt-4o,70,0,2026-11-27T10:03:00Z,gw
c5,bo@example.com,,gpt-4o,-3,0,2026-11-27T10:04:00Z,gw
c6,bo@example.com,,gpt-4o,1,0,2026-12-27T10:04:00Z,gw
`
	jsonl := `{"id":"j1","email":"ana@example.com","model":"gpt-4o","input_tokens":1000,"output_tokens":200,"occurred_at":"2026-11-27T10:00:00Z"}
{"id":"j2","slack_user_id":"U0ANA","model":"gpt-4o","input_tokens":300,"occurred_at":"2026-11-27T10:01:00Z"}

{"id":"j3","email":"bo@example.com","model":"gpt-4o","input_tokens":50,"output_tokens":50,"occurred_at":"2026-11-27T10:02:00Z"}
{"id":"j4","email":"carl@example.com","model":"gpt-4o","input_tokens":70,"occurred_at":"2026-11-27T10:03:00Z"}
{"id":"j5","email":"bo@example.com","model":"gpt-4o","input_tokens":-3,"occurred_at":"2026-11-27T10:04:00Z"}
{"id":"j6","email":"bo@example.com","model":"gpt-4o","input_tokens":1,"occurred_at":"2026-12-27T10:04:00Z"}
`
	for _, tc := range []struct {
		name, file, content, prefix string
		badLines                    [2]int
	}{
		{"csv", "usage.csv", csvFile, "c", [2]int{6, 7}},
		{"jsonl", "usage.jsonl", jsonl, "j", [2]int{6, 7}}, // line 3 is blank and skipped
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := withPeople(t)
			path := c.file(t, tc.file, tc.content)
			// Every quarantined and rejected event is named by its line (issue 16).
			wantOut := fmt.Sprintf("3 accepted, 0 duplicate, 1 quarantined, 2 rejected.\n"+
				"line %d (id \"%s4\"): quarantined: no person with email carl@example.com in the directory\n"+
				"line %d (id \"%s5\"): rejected: input_tokens must be a whole number from 0 to 1,000,000,000 (the most one event may report), not \"-3\"\n"+
				"line %d (id \"%s6\"): rejected: occurred_at is in the future; check the gateway's clock\n",
				tc.badLines[0]-1, tc.prefix, tc.badLines[0], tc.prefix, tc.badLines[1], tc.prefix)
			r := c.run(t, "", "usage", "import", path)
			if r.code != 1 || r.stdout != wantOut || !strings.Contains(r.stderr, "some events were rejected") {
				t.Fatalf("first import: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, wantOut, r.stderr)
			}
			if b := c.balance(t, "ana@example.com"); b.Spent != 1500 {
				t.Errorf("ana spent %d, want 1,500 (by email and by Slack id)", b.Spent)
			}

			// Importing the file again counts the accepted events as duplicates.
			r = c.run(t, "", "usage", "import", path)
			if want := strings.Replace(wantOut, "3 accepted, 0 duplicate", "0 accepted, 3 duplicate", 1); r.code != 1 || r.stdout != want {
				t.Errorf("second import: exit %d\nstdout %q\nwant   %q", r.code, r.stdout, want)
			}
			if b := c.balance(t, "ana@example.com"); b.Spent != 1500 {
				t.Errorf("ana spent %d after a re-import, want 1,500", b.Spent)
			}
			if n := c.counts(t)["usage_events"]; n != 3 {
				t.Errorf("%d usage rows, want 3", n)
			}

			// Carl's event waited in quarantine; importing him replays it.
			out := c.ok(t, "people", "import", c.file(t, "carl.csv", "email,name,team,role,manager_email\ncarl@example.com,Carl,Sales,engineer,\n"))
			if !strings.Contains(out, "Quarantined usage: 1 event replayed, 0 still waiting for their person.\n") {
				t.Errorf("people import after quarantine: %q", out)
			}
			if b := c.balance(t, "carl@example.com"); b.Spent != 70 {
				t.Errorf("carl spent %d, want his quarantined 70", b.Spent)
			}
			if out := c.ok(t, "people", "import", c.file(t, "carl.csv", "email,name,team,role,manager_email\ncarl@example.com,Carl,Sales,engineer,\n")); strings.Contains(out, "Quarantined") {
				t.Errorf("a second import replayed again: %q", out)
			}
			if b := c.balance(t, "carl@example.com"); b.Spent != 70 {
				t.Errorf("carl spent %d after a second import, want 70", b.Spent)
			}
			c.ok(t, "ledger", "verify")
		})
	}
}

func TestCLIUsageImportRefusals(t *testing.T) {
	c := withPeople(t)
	before := c.counts(t)
	good := `{"id":"x1","email":"ana@example.com","model":"m","input_tokens":5,"occurred_at":"2026-11-27T10:00:00Z"}` + "\n"
	c.fails(t, "cannot tell the format of", "usage", "import", c.file(t, "usage.txt", good))
	c.fails(t, "line 1: unknown column \"tokens\"", "usage", "import", c.file(t, "bad.csv", "id,email,model,tokens,occurred_at\nx,ana@example.com,m,5,2026-11-27T10:00:00Z\n"))
	c.fails(t, "line 3: extraneous or missing \" in quoted-field", "usage", "import", c.file(t, "quote.csv", "id,email,model,occurred_at\nx1,ana@example.com,m,2026-11-27T10:00:00Z\nx2,\"ana@example.com,m,2026-11-27T10:00:00Z\n"))
	c.fails(t, "cannot open", "usage", "import", filepath.Join(c.dir, "missing.csv"))
	if after := c.counts(t); !reflect.DeepEqual(after, before) {
		t.Errorf("refused imports changed the ledger: %v, was %v", after, before)
	}
	// --format overrides the extension; '-' reads stdin.
	if out := c.ok(t, "usage", "import", "--format", "jsonl", c.file(t, "usage.txt", good)); out != "1 accepted, 0 duplicate, 0 quarantined, 0 rejected.\n" {
		t.Errorf("--format jsonl: %q", out)
	}
	r := c.run(t, strings.Replace(good, "x1", "x2", 1), "usage", "import", "--format", "jsonl", "-")
	if r.code != 0 || r.stdout != "1 accepted, 0 duplicate, 0 quarantined, 0 rejected.\n" {
		t.Errorf("stdin: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

func TestCLIPolicy(t *testing.T) {
	c := newCLIEnv(t)
	printed := c.ok(t, "policy", "print")
	p, err := policy.Parse(strings.NewReader(printed))
	if err != nil {
		t.Fatalf("policy print is not a valid policy: %v\n%s", err, printed)
	}
	if !reflect.DeepEqual(p, policy.Default()) {
		t.Errorf("policy print without a file is not the default policy:\n%s", printed)
	}
	custom := c.file(t, "custom.yaml", "baseline:\n  default: 1234\nperiod: weekly\n")
	if out := c.ok(t, "policy", "print", "--policy", custom); !strings.Contains(out, "default: 1234") || !strings.Contains(out, "period: weekly") {
		t.Errorf("policy print --policy: the file's values are missing:\n%s", out)
	}
	if out := c.ok(t, "policy", "check", custom); out != custom+" is a valid policy.\n" {
		t.Errorf("check of a valid file: %q", out)
	}

	bad := c.file(t, "bad.yaml", `period: daily
baseline:
  default: -1
nudges:
  colour: blue
  holdout_percent: 60
admins: [hr@example.com, not-an-email]
`)
	r := c.run(t, "", "policy", "check", bad)
	want := []string{
		bad + ":1: period: want \"monthly\" or \"weekly\", got \"daily\"",
		bad + ":3: baseline.default: must not be negative, got -1",
		bad + ":5: nudges.colour: unknown key \"colour\"",
		bad + ":6: nudges.holdout_percent: must be between 0 and 50, got 60",
		bad + ":7: admins[1]: want an email address such as ana@example.com, got \"not-an-email\"",
	}
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if r.code != 1 || r.stderr != "tokenpay: "+bad+" has 5 problems\n" || len(got) != len(want) {
		t.Fatalf("check of a bad file: exit %d\nstdout:\n%s\nstderr: %q", r.code, r.stdout, r.stderr)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to start %q", i, got[i], want[i])
		}
	}
	missing := filepath.Join(c.dir, "missing.yaml")
	c.fails(t, "tokenpay: cannot open "+missing+": no such file or directory\n", "policy", "check", missing)
	// A command given a broken policy refuses to run rather than fall back to defaults; the
	// file is named once, without a repeated prefix (issue 16).
	r = c.run(t, "", "balance", "ana@example.com", "--policy", bad)
	if r.code != 1 || !strings.HasPrefix(r.stderr, "tokenpay: policy "+bad+": 5 problems:\nperiod (line 1): want") ||
		strings.Count(r.stderr, bad) != 1 || strings.Contains(r.stderr, "invalid policy") || strings.Contains(r.stderr, "load policy") {
		t.Errorf("balance with a bad policy: exit %d, %q", r.code, r.stderr)
	}
	c.fails(t, "tokenpay: policy "+missing+": cannot be read: no such file or directory\n", "balance", "ana@example.com", "--policy", missing)
}

func TestCLIUnknownCommand(t *testing.T) {
	c := newCLIEnv(t)
	c.fails(t, `unknown command "frobnicate"`, "frobnicate")
}

// TestCLIArgumentErrors: a command typed with too few or too many arguments says how to
// type it, in a sentence, never cobra's "accepts 1 arg(s), received 0".
func TestCLIArgumentErrors(t *testing.T) {
	c := newCLIEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"apikey", "create"}, "tokenpay: arguments missing: type tokenpay apikey create NAME (see --help)\n"},
		{[]string{"apikey", "create", "a", "b"}, `tokenpay: wrong number of arguments ("a", "b"): type tokenpay apikey create NAME (see --help)` + "\n"},
		{[]string{"grant"}, "tokenpay: arguments missing: type tokenpay grant EMAIL AMOUNT --reason R (see --help)\n"},
		{[]string{"jobs", "run"}, "tokenpay: arguments missing: type tokenpay jobs run NAME (see --help)\n"},
		{[]string{"segments", "x"}, `tokenpay: tokenpay segments takes no arguments; remove "x" (see --help)` + "\n"},
		{[]string{"serve", "now", "please"}, `tokenpay: tokenpay serve takes no arguments; remove "now", "please" (see --help)` + "\n"},
		{[]string{"people", "lst"}, "tokenpay: unknown command \"lst\" for \"tokenpay people\"; did you mean list? (see --help)\n"},
		{[]string{"policy", "show"}, "tokenpay: unknown command \"show\" for \"tokenpay policy\" (see --help)\n"},
		{[]string{"apikey", "creat", "gw"}, "tokenpay: unknown command \"creat\" for \"tokenpay apikey\"; did you mean create? (see --help)\n"},
	} {
		r := c.run(t, "", tc.args...)
		if r.code != 1 || r.stderr != tc.want || strings.Contains(r.stderr, "arg(s)") {
			t.Errorf("tokenpay %s: exit %d, stderr %q; want exit 1 and %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	// A group alone still shows its help.
	if r := c.run(t, "", "apikey"); r.code != 0 || !strings.Contains(r.stdout, "Available Commands:") {
		t.Errorf("tokenpay apikey: exit %d, stdout %q", r.code, r.stdout)
	}
}
