// Package directory reads the people directory from CSV.
package directory

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// Columns is the header a directory file must start with; the last two are optional.
var Columns = []string{"email", "name", "team", "role", "manager_email", "slack_user_id", "teams_user_id"}

const requiredColumns = 5

// ParseCSV reads every row and reports every problem at once, each with its line.
func ParseCSV(r io.Reader) ([]ledger.PersonRecord, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err == io.EOF {
		return nil, ledger.Errorf(ledger.Invalid, "the file is empty; it needs the header %s", strings.Join(Columns, ","))
	}
	if err != nil {
		return nil, ledger.Errorf(ledger.Invalid, "line 1: %v", csvProblem(err))
	}
	for i := range header {
		header[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff")))
	}
	if len(header) < requiredColumns || len(header) > len(Columns) || strings.Join(header, ",") != strings.Join(Columns[:len(header)], ",") {
		return nil, ledger.Errorf(ledger.Invalid, "line 1: the header must be %s (the last two columns are optional)", strings.Join(Columns, ","))
	}
	var recs []ledger.PersonRecord
	var problems []string
	for {
		row, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			line := 0
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				line = pe.Line
			}
			problems = append(problems, fmt.Sprintf("line %d: %s", line, csvProblem(err)))
			if len(problems) >= 50 || !errors.As(err, &pe) {
				break
			}
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(row) == 1 && strings.TrimSpace(row[0]) == "" {
			continue
		}
		rec, err := parseRow(line, header, row)
		if err != nil {
			problems = append(problems, err.Error())
			if len(problems) >= 50 {
				problems = append(problems, "(stopped after 50 problems)")
				break
			}
			continue
		}
		recs = append(recs, rec)
	}
	if len(problems) > 0 {
		return nil, ledger.Errorf(ledger.Invalid, "%s", strings.Join(problems, "\n"))
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

func parseRow(line int, header, row []string) (ledger.PersonRecord, error) {
	if len(row) != len(header) {
		return ledger.PersonRecord{}, fmt.Errorf("line %d: has %d fields, the header has %d", line, len(row), len(header))
	}
	get := func(i int) string {
		if i < len(row) {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	rec := ledger.PersonRecord{Line: line, Email: get(0), Name: get(1), Team: get(2), Role: strings.ToLower(get(3)),
		ManagerEmail: get(4), SlackUserID: get(5), TeamsUserID: get(6)}
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
