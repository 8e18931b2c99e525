package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// openSQLite is a database migrated by ledger/sqlite, read through a plain connection.
func openSQLite(t *testing.T) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	raw.SetMaxOpenConns(1)
	t.Cleanup(func() { raw.Close() })
	return raw
}

func strings1(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sqliteShape and pgShape describe a table the same way for both engines: its columns
// (name, type, NOT NULL, default), primary key, unique and other indexes (name, columns,
// partial), foreign keys and the number of CHECK constraints.
func sqliteShape(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	var out []string
	var create string
	if err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE name = ?`, table).Scan(&create); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(`SELECT name, type, "notnull", COALESCE(dflt_value, ''), pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	pk := map[int]string{}
	for rows.Next() {
		var name, typ, dflt string
		var notnull, pkPos int
		if err := rows.Scan(&name, &typ, &notnull, &dflt, &pkPos); err != nil {
			t.Fatal(err)
		}
		typ = map[string]string{"INTEGER": "bigint", "TEXT": "text"}[typ]
		if pkPos > 0 {
			pk[pkPos] = name
			notnull = 1 // PostgreSQL's primary keys are NOT NULL; SQLite's rowid is never NULL either
		}
		out = append(out, fmt.Sprintf("column %s %s notnull=%d default=%s", name, typ, notnull, dflt))
	}
	rows.Close()
	var keys []string
	for i := 1; i <= len(pk); i++ {
		keys = append(keys, pk[i])
	}
	if len(keys) > 0 {
		out = append(out, "primary key "+strings.Join(keys, ","))
	}
	// UNIQUE table constraints have automatic index names in SQLite: take the constraint's
	// name from the CREATE TABLE text.
	named := map[string]string{}
	for _, m := range regexp.MustCompile(`CONSTRAINT (\w+) UNIQUE \(([^)]*)\)`).FindAllStringSubmatch(create, -1) {
		named[strings.ReplaceAll(m[2], " ", "")] = m[1]
	}
	idx, err := db.Query(`SELECT name, "unique", origin, partial FROM pragma_index_list(?)`, table)
	if err != nil {
		t.Fatal(err)
	}
	type index struct {
		name, origin string
		unique, part int
	}
	var indexes []index
	for idx.Next() {
		var ix index
		if err := idx.Scan(&ix.name, &ix.unique, &ix.origin, &ix.part); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, ix)
	}
	idx.Close()
	for _, ix := range indexes {
		if ix.origin == "pk" {
			continue
		}
		cols := strings.Join(strings1(t, db, `SELECT COALESCE(name, '<expr>') FROM pragma_index_info(?) ORDER BY seqno`, ix.name), ",")
		name := ix.name
		if ix.origin == "u" {
			name = named[cols]
		}
		out = append(out, fmt.Sprintf("index %s (%s) unique=%d partial=%d", name, cols, ix.unique, ix.part))
	}
	for _, fk := range strings1(t, db, `SELECT "from" || ' -> ' || "table" || '.' || "to" FROM pragma_foreign_key_list(?)`, table) {
		out = append(out, "foreign key "+fk)
	}
	out = append(out, fmt.Sprintf("checks %d", strings.Count(create, "CHECK (")))
	slices.Sort(out)
	return out
}

func pgShape(t *testing.T, db *sql.DB, table string) []string {
	t.Helper()
	var out []string
	rows, err := db.Query(`SELECT column_name, data_type, is_nullable = 'NO', COALESCE(column_default, '')
		FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name, typ, dflt string
		var notnull bool
		if err := rows.Scan(&name, &typ, &notnull, &dflt); err != nil {
			t.Fatal(err)
		}
		dflt = strings.TrimSuffix(strings.TrimSuffix(dflt, "::text"), "::bigint")
		n := 0
		if notnull {
			n = 1
		}
		out = append(out, fmt.Sprintf("column %s %s notnull=%d default=%s", name, typ, n, dflt))
	}
	rows.Close()
	idx, err := db.Query(`SELECT i.relname, ix.indisunique, ix.indisprimary, ix.indpred IS NOT NULL,
			array_to_string(ARRAY(SELECT COALESCE(a.attname, '<expr>') FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord)
				LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum AND k.attnum > 0 ORDER BY ord), ',')
		FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid WHERE ix.indrelid = $1::regclass`, table)
	if err != nil {
		t.Fatal(err)
	}
	for idx.Next() {
		var name, cols string
		var unique, primary, partial bool
		if err := idx.Scan(&name, &unique, &primary, &partial, &cols); err != nil {
			t.Fatal(err)
		}
		if primary {
			out = append(out, "primary key "+cols)
			continue
		}
		if name == "prompts_fts" {
			continue // SQLite's FTS4 table; TestPromptSearchIndex
		}
		if c, ok := expressionKeys[name]; ok {
			// The index over lower(email COLLATE "C") stands for SQLite's NOCASE column.
			cols = strings.TrimPrefix(c, table+".")
		}
		u, p := 0, 0
		if unique {
			u = 1
		}
		if partial {
			p = 1
		}
		out = append(out, fmt.Sprintf("index %s (%s) unique=%d partial=%d", name, cols, u, p))
	}
	idx.Close()
	for _, fk := range strings1(t, db, `SELECT a.attname || ' -> ' || cf.relname || '.' || af.attname
		FROM pg_constraint c CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(ck, fk)
		JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.ck
		JOIN pg_class cf ON cf.oid = c.confrelid
		JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.fk
		WHERE c.contype = 'f' AND c.conrelid = $1::regclass`, table) {
		out = append(out, "foreign key "+fk)
	}
	var checks int
	if err := db.QueryRow(`SELECT count(*) FROM pg_constraint WHERE contype = 'c' AND conrelid = $1::regclass`, table).Scan(&checks); err != nil {
		t.Fatal(err)
	}
	out = append(out, fmt.Sprintf("checks %d", checks))
	slices.Sort(out)
	return out
}

// The PostgreSQL schema is SQLite's after all its migrations: the same tables, columns
// (type, NOT NULL, default), primary keys, index names, columns and partial or unique
// kind, foreign keys, CHECK constraints, views, triggers and seed rows. FTS4's tables have
// no counterpart (prompts_fts is an index there).
func TestSchemaMatchesSQLite(t *testing.T) {
	lite := openSQLite(t)
	pg := open(t, pgtest.Start(t))

	liteTables := strings1(t, lite, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE 'prompts\_fts%' ESCAPE '\' ORDER BY name`)
	pgTables := strings1(t, pg, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`)
	if !slices.Equal(liteTables, pgTables) {
		t.Fatalf("tables differ:\nsqlite:   %v\npostgres: %v", liteTables, pgTables)
	}
	for _, table := range liteTables {
		l, p := sqliteShape(t, lite, table), pgShape(t, pg, table)
		if !slices.Equal(l, p) {
			for _, s := range l {
				if !slices.Contains(p, s) {
					t.Errorf("%s: only in SQLite: %s", table, s)
				}
			}
			for _, s := range p {
				if !slices.Contains(l, s) {
					t.Errorf("%s: only in PostgreSQL: %s", table, s)
				}
			}
		}
	}
	if v := strings1(t, pg, `SELECT viewname FROM pg_views WHERE schemaname = 'public'`); !slices.Equal(v, strings1(t, lite, `SELECT name FROM sqlite_master WHERE type = 'view'`)) {
		t.Errorf("views differ: postgres %v", v)
	}
	liteTriggers := strings1(t, lite, `SELECT name FROM sqlite_master WHERE type = 'trigger' AND name NOT LIKE 'prompts\_fts%' ESCAPE '\' ORDER BY name`)
	pgTriggers := strings1(t, pg, `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY tgname`)
	if !slices.Equal(liteTriggers, pgTriggers) {
		t.Errorf("triggers differ:\nsqlite:   %v\npostgres: %v", liteTriggers, pgTriggers)
	}
	for _, q := range []string{`SELECT id || '/' || version FROM people_version`, `SELECT directory FROM quarantine_replay`,
		`SELECT name || '=' || balance FROM accounts`} {
		if l, p := strings1(t, lite, q), strings1(t, pg, q); !slices.Equal(l, p) {
			t.Errorf("%s: sqlite %v, postgres %v", q, l, p)
		}
	}
}

type engine struct {
	name string
	db   *sql.DB
	// rebind turns the ? of a query into the engine's placeholders.
	rebind func(string) string
	// unique is the engine's reading of a unique violation.
	unique func(err error, columns string) bool
}

// bothEngines is a fresh database of each engine, with ledger/sqlite's reading of unique
// violations (the message SQLite words) beside the PostgreSQL Dialect's.
func bothEngines(t *testing.T) []engine {
	pg := open(t, pgtest.Start(t))
	d := NewDialect(pg)
	return []engine{
		{"sqlite", openSQLite(t), func(q string) string { return q }, func(err error, columns string) bool {
			return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: "+columns) &&
				!strings.Contains(err.Error(), "UNIQUE constraint failed: "+columns+"_") && !strings.Contains(err.Error(), columns+", ")
		}},
		{"postgres", pg, d.Rebind, d.IsUnique},
	}
}

func (e engine) exec(t *testing.T, query string, args ...any) error {
	t.Helper()
	_, err := e.db.Exec(e.rebind(query), args...)
	return err
}

func (e engine) must(t *testing.T, query string, args ...any) {
	t.Helper()
	if err := e.exec(t, query, args...); err != nil {
		t.Fatalf("%s: %s: %v", e.name, query, err)
	}
}

// seed writes two people and one transaction.
func (e engine) seed(t *testing.T) {
	t.Helper()
	// Ids 1 and 2 on both engines: identity columns are left to assign them (an explicit id
	// does not move PostgreSQL's sequence).
	e.must(t, `INSERT INTO people(email, email_key, name, slack_user_id, teams_user_id, joined_at, updated_at)
		VALUES ('Ann@acme.test', 'ann@acme.test', 'Ann', 'U1', 'T1', 1, 1), ('bob@acme.test', 'bob@acme.test', 'Bob', NULL, NULL, 1, 1)`)
	e.must(t, `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, created_at) VALUES (1, 'k1', 'h', 'grant', 1, 1)`)
}

// Every unique constraint the store names is reported as a violation of exactly its
// columns, as SQLite words them, and no other error is.
func TestIsUniqueMatchesSQLite(t *testing.T) {
	cases := []struct {
		name    string
		query   string
		args    []any
		columns string
	}{
		{"idempotency key", `INSERT INTO transactions(id, idem_key, input_hash, kind, created_at) VALUES (3, ?, 'h', 'grant', 1)`, []any{"k1"}, "transactions.idem_key"},
		{"one reversal", `INSERT INTO transactions(id, idem_key, input_hash, kind, reverses_id, created_at) VALUES (?, ?, 'h', 'reverse', 1, 1)`, []any{nil, nil}, "transactions.reverses_id"},
		{"slack id", `UPDATE people SET slack_user_id = ? WHERE id = 2`, []any{"U1"}, "people.slack_user_id"},
		{"teams id", `UPDATE people SET teams_user_id = ? WHERE id = 2`, []any{"T1"}, "people.teams_user_id"},
		{"email, ASCII case folded", `UPDATE people SET email = ? WHERE id = 2`, []any{"ANN@ACME.TEST"}, "people.email"},
		{"email key", `UPDATE people SET email_key = ? WHERE id = 2`, []any{"ann@acme.test"}, "people.email_key"},
		{"prompt slug", `INSERT INTO prompts(slug, title, body, created_at, updated_at) VALUES (?, 't', 'b', 1, 1)`, []any{"starter"}, "prompts.slug"},
		{"outbox dedupe", `INSERT INTO outbox(kind, person_id, period_key, payload, not_before, created_at) VALUES ('digest', 1, ?, '{}', 1, 1)`, []any{"2026-W48"}, "outbox.kind, outbox.person_id, outbox.period_key"},
		{"api key hash", `INSERT INTO api_keys(name, key_hash, created_at) VALUES ('b', ?, 1)`, []any{"hash"}, "api_keys.key_hash"},
		{"vote primary key", `INSERT INTO prompt_votes(prompt_id, person_id, created_at) VALUES (1, ?, 1)`, []any{1}, "prompt_votes.prompt_id, prompt_votes.person_id"},
	}
	for _, e := range bothEngines(t) {
		e.seed(t)
		e.must(t, `INSERT INTO transactions(id, idem_key, input_hash, kind, reverses_id, created_at) VALUES (2, 'r1', 'h', 'reverse', 1, 1)`)
		e.must(t, `INSERT INTO prompts(slug, title, body, created_at, updated_at) VALUES ('starter', 't', 'b', 1, 1)`)
		e.must(t, `INSERT INTO outbox(kind, person_id, period_key, payload, not_before, created_at) VALUES ('digest', 1, '2026-W48', '{}', 1, 1)`)
		e.must(t, `INSERT INTO api_keys(name, key_hash, created_at) VALUES ('a', 'hash', 1)`)
		e.must(t, `INSERT INTO prompt_votes(prompt_id, person_id, created_at) VALUES (1, 1, 1)`)
		for _, tc := range cases {
			args := tc.args
			if tc.name == "one reversal" {
				args = []any{4, "r2"}
			}
			err := e.exec(t, tc.query, args...)
			if err == nil {
				t.Errorf("%s %s: no error", e.name, tc.name)
				continue
			}
			for _, other := range cases {
				if got := e.unique(err, other.columns); got != (other.columns == tc.columns) {
					t.Errorf("%s %s: unique(%q) = %v (error: %v)", e.name, tc.name, other.columns, got, err)
				}
			}
		}
		// Not unique violations: a foreign key, a CHECK, NOT NULL.
		for _, q := range []string{
			`INSERT INTO grants(tx_id, person_id, kind, amount, priority, effective_at, expires_at) VALUES (1, 99, 'baseline', 5, 0, 1, 2)`,
			`INSERT INTO grants(tx_id, person_id, kind, amount, priority, effective_at, expires_at) VALUES (1, 1, 'baseline', 0, 0, 1, 2)`,
			`INSERT INTO people(email, name, joined_at, updated_at) VALUES ('c@acme.test', NULL, 1, 1)`,
		} {
			err := e.exec(t, q)
			if err == nil {
				t.Errorf("%s: %s: no error", e.name, q)
			}
			for _, c := range cases {
				if e.unique(err, c.columns) {
					t.Errorf("%s: %s: %v read as a unique violation of %s", e.name, q, err, c.columns)
				}
			}
		}
	}
}

// people.email was NOCASE in SQLite: ASCII letters fold, others do not, on both engines.
func TestEmailFoldsASCIIOnly(t *testing.T) {
	for _, e := range bothEngines(t) {
		e.must(t, `INSERT INTO people(email, name, joined_at, updated_at) VALUES ('élise@acme.test', 'É', 1, 1)`)
		if err := e.exec(t, `INSERT INTO people(email, name, joined_at, updated_at) VALUES ('ÉLISE@acme.test', 'É', 1, 1)`); err != nil {
			t.Errorf("%s: non-ASCII case is not folded by NOCASE, yet: %v", e.name, err)
		}
		if err := e.exec(t, `INSERT INTO people(email, name, joined_at, updated_at) VALUES ('élise@ACME.test', 'É', 1, 1)`); !e.unique(err, "people.email") {
			t.Errorf("%s: ASCII case must fold: %v", e.name, err)
		}
	}
}

// people_version moves when an email, Slack or Teams id changes or people are deleted,
// also through an upsert, and not for other columns.
func TestPeopleVersionTriggers(t *testing.T) {
	for _, e := range bothEngines(t) {
		e.seed(t)
		version := func() int64 {
			var v int64
			if err := e.db.QueryRow(`SELECT version FROM people_version WHERE id = 1`).Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		step := func(what, query string, bump bool) {
			t.Helper()
			before := version()
			e.must(t, query)
			if moved := version() != before; moved != bump {
				t.Errorf("%s: %s: version moved = %v, want %v", e.name, what, moved, bump)
			}
		}
		step("name", `UPDATE people SET name = 'Ann B' WHERE id = 1`, false)
		step("preferred platform", `UPDATE people SET preferred_platform = 'slack' WHERE id = 1`, false)
		step("slack id", `UPDATE people SET slack_user_id = 'U9' WHERE id = 1`, true)
		step("teams id", `UPDATE people SET teams_user_id = NULL WHERE id = 1`, true)
		step("email", `UPDATE people SET email = 'ann.b@acme.test' WHERE id = 1`, true)
		step("insert", `INSERT INTO people(email, email_key, name, joined_at, updated_at) VALUES ('cy@acme.test', 'cy@acme.test', 'Cy', 1, 1)`, false)
		step("upsert of a slack id", `INSERT INTO people(email, email_key, name, joined_at, updated_at, slack_user_id) VALUES ('cy@acme.test', 'cy@acme.test', 'Cy', 1, 1, 'U7')
			ON CONFLICT(email_key) WHERE email_key IS NOT NULL DO UPDATE SET slack_user_id = excluded.slack_user_id`, true)
		step("delete", `DELETE FROM people WHERE email_key = 'cy@acme.test'`, true)
	}
}

// Every posting a usage row implies is in ledger_postings, with the stored ones.
func TestLedgerPostingsView(t *testing.T) {
	for _, e := range bothEngines(t) {
		e.seed(t)
		e.must(t, `INSERT INTO postings(tx_id, account, amount) VALUES (1, 'org:pool', -100), (1, 'person:1:available', 100)`)
		e.must(t, `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, created_at) VALUES (2, 'usage:e1', 'h', 'usage', 1, 1)`)
		e.must(t, `INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, received_at)
			VALUES (2, 'e1', 1, 'm', 10, 10, 30, 5, 1, 1)`)
		got := strings1(t, e.db, `SELECT tx_id || ' ' || account || ' ' || amount FROM ledger_postings ORDER BY tx_id, account`)
		want := []string{"1 org:pool -100", "1 person:1:available 100", "2 person:1:available -25", "2 person:1:overage -5", "2 person:1:spent 30"}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ledger_postings = %v, want %v", e.name, got, want)
		}
		if err := e.exec(t, `INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, received_at)
			VALUES (1, 'e2', 1, 'm', 1, 1, 3, 4, 1, 1)`); err == nil {
			t.Errorf("%s: overage above credits was accepted", e.name)
		}
	}
}

// prompts_fts is a GIN index that a search by prompts_search uses, with title words
// ranked above body words.
func TestPromptSearchIndex(t *testing.T) {
	db := open(t, pgtest.Start(t))
	for i := range 200 {
		if _, err := db.Exec(`INSERT INTO prompts(title, body, tags, workflow, created_at, updated_at) VALUES ($1, $2, 'writing', '', 1, 1)`,
			fmt.Sprintf("Prompt %d", i), "filler text"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO prompts(title, body, tags, workflow, created_at, updated_at) VALUES
		('Release notes', 'turn commits into notes', 'writing', 'git', 1, 1),
		('Commit summary', 'summarise release work', 'git', '', 1, 1)`); err != nil {
		t.Fatal(err)
	}
	const search = `SELECT title FROM prompts p WHERE prompts_search(p.title, p.body, p.tags, p.workflow) @@ to_tsquery('simple', $1)
		ORDER BY ts_rank('{0.333, 0.5, 0.667, 1}', prompts_search(p.title, p.body, p.tags, p.workflow), to_tsquery('simple', $1)) DESC, id`
	if got := strings1(t, db, search, "release"); !slices.Equal(got, []string{"Release notes", "Commit summary"}) {
		t.Errorf("search release = %v, want the title hit first", got)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `SET enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(context.Background(), `EXPLAIN `+search, "release")
	if err != nil {
		t.Fatal(err)
	}
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	rows.Close()
	if !strings.Contains(strings.Join(plan, "\n"), "prompts_fts") {
		t.Errorf("the search does not use prompts_fts:\n%s", strings.Join(plan, "\n"))
	}
}

// Flags are 0/1 integers; the store binds Go bools to them and scans them into bools.
func TestBoolFlags(t *testing.T) {
	db := open(t, pgtest.Start(t))
	if _, err := db.Exec(`INSERT INTO people(email, name, joined_at, updated_at, nudges_off, digests_off) VALUES ('a@acme.test', 'A', 1, 1, $1, $2)`, true, false); err != nil {
		t.Fatalf("bind bools to flags: %v", err)
	}
	var n, d int64
	var nb, db2 bool
	if err := db.QueryRow(`SELECT nudges_off, digests_off, nudges_off, digests_off FROM people`).Scan(&n, &d, &nb, &db2); err != nil {
		t.Fatal(err)
	}
	if n != 1 || d != 0 || !nb || db2 {
		t.Fatalf("flags = %d %d %v %v, want 1 0 true false", n, d, nb, db2)
	}
	var c int64
	if err := db.QueryRow(`SELECT count(*) FROM people WHERE nudges_off = $1 AND digests_off = $2`, true, false).Scan(&c); err != nil || c != 1 {
		t.Fatalf("compare flags with bools: %d, %v", c, err)
	}
	// A real boolean parameter still takes a bool.
	var b bool
	if err := db.QueryRow(`SELECT $1::boolean`, true).Scan(&b); err != nil || !b {
		t.Fatalf("boolean parameter: %v %v", b, err)
	}
}
