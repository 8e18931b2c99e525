package postgres

import (
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{``, ``},
		{`SELECT 1`, `SELECT 1`},
		{`SELECT ?`, `SELECT $1`},
		{`INSERT INTO t(a, b) VALUES (?, ?), (?, ?)`, `INSERT INTO t(a, b) VALUES ($1, $2), ($3, $4)`},
		{`SELECT '?' , ?`, `SELECT '?' , $1`},
		{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
		{`SELECT '''?''' || ?`, `SELECT '''?''' || $1`},
		{`SELECT "we?ird" FROM t WHERE x = ?`, `SELECT "we?ird" FROM t WHERE x = $1`},
		{`SELECT "a""?" , ?`, `SELECT "a""?" , $1`},
		{"SELECT ? -- is it? yes\n, ?", "SELECT $1 -- is it? yes\n, $2"},
		{"SELECT ? -- trailing ?", "SELECT $1 -- trailing ?"},
		{`SELECT ? /* why? */ - ?`, `SELECT $1 /* why? */ - $2`},
		{`SELECT 5 - ? / ?`, `SELECT 5 - $1 / $2`},
		{`SELECT -?`, `SELECT -$1`},
		{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
		{`SELECT ? /* unterminated ?`, `SELECT $1 /* unterminated ?`},
		{`x = ?1`, `x = $1`},
		{`a >= ?1 AND a < ?2 AND b = ?1`, `a >= $1 AND a < $2 AND b = $1`},
		{`?3, ?, ?1, ?`, `$3, $4, $1, $5`},
		{`?, ?1, ?`, `$1, $1, $2`},
		{`'?1' ?2 -- ?3`, `'?1' $2 -- ?3`},
		{`SELECT 'é?' , ?`, `SELECT 'é?' , $1`},
		{strings.Repeat("?,", 11) + "?", "$1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12"},
	} {
		if got := (&Dialect{}).Rebind(tc.in); got != tc.want {
			t.Errorf("Rebind(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// outside is a second, independent reading of the lexical rules Rebind follows: it finds
// the literals, identifiers and comments with a regular expression (leftmost alternative
// first) and counts the ? between them.
var outside = regexp.MustCompile(`'[^']*'|'[^']*$|"[^"]*"|"[^"]*$|--[^\n]*|/\*[\s\S]*?\*/|/\*[\s\S]*$|\?[0-9]*`)

func placeholdersOutside(q string) int {
	n := 0
	for _, m := range outside.FindAllString(q, -1) {
		if m[0] == '?' {
			n++
		}
	}
	return n
}

// rebindReference is Rebind by the regular expression above: ?NNN becomes $NNN, and a
// bare ? the next number after the largest so far.
func rebindReference(q string) string {
	n := 0
	return outside.ReplaceAllStringFunc(q, func(m string) string {
		switch {
		case m[0] != '?':
			return m
		case len(m) > 1:
			if v, err := strconv.Atoi(m[1:]); err == nil && v > n {
				n = v
			}
			return "$" + m[1:]
		}
		n++
		return "$" + strconv.Itoa(n)
	})
}

// FuzzRebind: Rebind numbers the ? outside literals, identifiers and comments 1, 2, 3, ...
// in order, as many as the reference finds, and leaves every other byte as it was.
func FuzzRebind(f *testing.F) {
	for _, s := range []string{`SELECT ?`, `'?' ?`, `"?" ?`, "-- ?\n?", `/* ? */ ?`, `'it''s' ?`, `??`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := (&Dialect{}).Rebind(q)
		if want := rebindReference(q); got != want {
			t.Fatalf("Rebind(%q) = %q, want %q", q, got, want)
		}
		if n, want := strings.Count(got, "$")-strings.Count(q, "$"), placeholdersOutside(q); n != want {
			t.Fatalf("Rebind(%q) = %q: %d placeholders, want %d", q, got, n, want)
		}
	})
}

func TestDetailColumns(t *testing.T) {
	for _, tc := range []struct {
		detail string
		want   string // joined with ", "; "-" when not readable
	}{
		{`Key (idem_key)=(k1) already exists.`, "idem_key"},
		{`Key (kind, person_id, period_key)=(digest, 1, 2026-W48) already exists.`, "kind, person_id, period_key"},
		{`Key (slug)=(a)=(b) already exists.`, "slug"},
		{`Key (lower((email)::text COLLATE "C"))=(a@x) already exists.`, "-"},
		{`Key ("Weird Col")=(1) already exists.`, "-"},
		{``, "-"},
		{`Failing row contains (1).`, "-"},
	} {
		cols, ok := detailColumns(tc.detail)
		got := strings.Join(cols, ", ")
		if !ok {
			got = "-"
		}
		if got != tc.want {
			t.Errorf("detailColumns(%q) = %q, want %q", tc.detail, got, tc.want)
		}
	}
}

func TestIsUniqueWithoutServer(t *testing.T) {
	d := &Dialect{}
	pe := &pgconn.PgError{Code: "23505", TableName: "transactions", ConstraintName: "transactions_key_unique",
		Detail: "Key (idem_key)=(a) already exists."}
	wrapped := errors.Join(errors.New("insert transactions"), pe)
	for _, tc := range []struct {
		err     error
		columns string
		want    bool
	}{
		{pe, "transactions.idem_key", true},
		{wrapped, "transactions.idem_key", true},
		{pe, "transactions.idem_key ", true},
		{pe, "transactions.idem", false},
		{pe, "transactions.idem_key, transactions.id", false},
		{pe, "grants.idem_key", false},
		{&pgconn.PgError{Code: "23503", TableName: "transactions", Detail: pe.Detail}, "transactions.idem_key", false},
		{errors.New("UNIQUE constraint failed: transactions.idem_key"), "transactions.idem_key", false},
		{nil, "transactions.idem_key", false},
		{&pgconn.PgError{Code: "23505", TableName: "people", ConstraintName: "people_email_unique",
			Detail: `Key (lower((email)::text COLLATE "C"))=(a@x) already exists.`}, "people.email", true},
		{&pgconn.PgError{Code: "23505", TableName: "people", ConstraintName: "people_email_unique",
			Detail: `Key (lower((email)::text COLLATE "C"))=(a@x) already exists.`}, "people.email_key", false},
	} {
		if got := d.IsUnique(tc.err, tc.columns); got != tc.want {
			t.Errorf("IsUnique(%v, %q) = %v, want %v", tc.err, tc.columns, got, tc.want)
		}
	}
}

func TestArray(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []any
		expr string
		want any // nil: no array form
	}{
		{"ints", []any{int64(1), 2, int64(-3)}, "CAST(? AS BIGINT[])", []int64{1, 2, -3}},
		{"ints with nulls", []any{nil, int64(7)}, "CAST(? AS BIGINT[])", []pgtype.Int8{{}, {Int64: 7, Valid: true}}},
		{"texts", []any{"a", ""}, "CAST(? AS TEXT[])", []string{"a", ""}},
		{"texts with nulls", []any{"a", nil}, "CAST(? AS TEXT[])", []pgtype.Text{{String: "a", Valid: true}, {}}},
		{"bytes", []any{[]byte("x"), nil}, "CAST(? AS BYTEA[])", [][]byte{[]byte("x"), nil}},
		{"only nulls", []any{nil, nil}, "", nil},
		{"mixed", []any{int64(1), "1"}, "", nil},
		{"unknown type", []any{1.5}, "", nil},
		{"empty", nil, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expr, arg, ok := (&Dialect{}).Array(tc.vals)
			if ok != (tc.want != nil) || expr != tc.expr || !reflect.DeepEqual(arg, tc.want) {
				t.Fatalf("Array(%v) = %q, %#v, %v; want %q, %#v", tc.vals, expr, arg, ok, tc.expr, tc.want)
			}
		})
	}
}
