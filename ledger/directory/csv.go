// Package directory reads the people directory from CSV.
package directory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// Columns are the columns of a directory file, named in its header line in any order; the
// last two are optional.
var Columns = []string{"email", "name", "team", "role", "manager_email", "slack_user_id", "teams_user_id"}

const requiredColumns = 5

// maxFileBytes bounds a directory file, read whole to recognise its separator: ample for
// hundreds of thousands of people.
const maxFileBytes = 64 << 20

// ParseCSV reads every row and reports every problem at once, each with its line. Columns
// are found by the names in the header line, in any order. Fields are separated by commas;
// a file whose header uses semicolons or tabs instead (as spreadsheets export in many
// locales) is read with that separator.
func ParseCSV(r io.Reader) ([]ledger.PersonRecord, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read the directory file: %w", err)
	}
	if len(raw) > maxFileBytes {
		return nil, ledger.Errorf(ledger.Invalid, "the file is over %d MiB; split it", maxFileBytes>>20)
	}
	var recs []ledger.PersonRecord
	if err := StreamCSV(bytes.NewReader(raw), 4096, func(part []ledger.PersonRecord) error {
		recs = append(recs, part...)
		return nil
	}); err != nil {
		return nil, err
	}
	return recs, nil
}

func csvProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// columns maps each column name to its index in the header, and refuses a header that
// lacks a required column, names an unknown one or names one twice.
func columns(header []string) (map[string]int, error) {
	col := map[string]int{}
	var unknown []string
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		switch {
		case !slices.Contains(Columns, h):
			unknown = append(unknown, fmt.Sprintf("%q", h))
		case hasKey(col, h):
			return nil, ledger.Errorf(ledger.Invalid, "line 1: the column %q appears twice", h)
		default:
			col[h] = i
		}
	}
	if len(unknown) > 0 {
		hint := ""
		if len(header) == 1 && strings.ContainsAny(header[0], ";|") {
			hint = " (the columns must be separated by commas, semicolons or tabs, one kind throughout)"
		}
		return nil, ledger.Errorf(ledger.Invalid, "line 1: unknown column %s%s; the columns are %s (any order; the last two are optional)",
			strings.Join(unknown, ", "), hint, strings.Join(Columns, ","))
	}
	var missing []string
	for _, c := range Columns[:requiredColumns] {
		if !hasKey(col, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, ledger.Errorf(ledger.Invalid, "line 1: the header lacks %s; the columns are %s (any order; the last two are optional)",
			strings.Join(missing, ", "), strings.Join(Columns, ","))
	}
	return col, nil
}

func hasKey(m map[string]int, k string) bool {
	_, ok := m[k]
	return ok
}

func parseRow(line int, col map[string]int, fields int, row []string) (ledger.PersonRecord, error) {
	if len(row) != fields {
		return ledger.PersonRecord{}, fmt.Errorf("line %d: has %d fields, the header has %d", line, len(row), fields)
	}
	get := func(name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	rec := ledger.PersonRecord{Line: line, Email: get("email"), Name: get("name"), Team: get("team"), Role: strings.ToLower(get("role")),
		ManagerEmail: get("manager_email"), SlackUserID: get("slack_user_id"), TeamsUserID: get("teams_user_id")}
	if err := checkEmail(rec.Email); err != nil {
		return rec, fmt.Errorf("line %d: email %w", line, err)
	}
	if rec.ManagerEmail != "" {
		if err := checkEmail(rec.ManagerEmail); err != nil {
			return rec, fmt.Errorf("line %d: manager_email %w", line, err)
		}
	}
	if rec.Name == "" {
		return rec, fmt.Errorf("line %d: name is empty", line)
	}
	for _, f := range []struct{ name, v string }{{"name", rec.Name}, {"team", rec.Team}, {"role", rec.Role},
		{"slack_user_id", rec.SlackUserID}, {"teams_user_id", rec.TeamsUserID}} {
		if len(f.v) > 200 {
			return rec, fmt.Errorf("line %d: %s is longer than 200 characters", line, f.name)
		}
		if strings.ContainsAny(f.v, "\x00\r\n") {
			return rec, fmt.Errorf("line %d: %s contains a line break or NUL", line, f.name)
		}
	}
	return rec, nil
}

func checkEmail(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 {
		return fmt.Errorf("%q is not a plain email address", s)
	}
	return nil
}
