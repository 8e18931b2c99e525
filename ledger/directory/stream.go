package directory

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

// StreamCSV reads a directory file as ParseCSV does (same columns, separators and
// per-line checks) but of any size: it hands the good rows to fn at most n at a time and
// keeps none. Every problem is collected (up to 50) and returned at the end as one
// ledger Invalid error; fn has then seen rows of a file that must not be applied (the
// caller stages them: sqlite.PeopleImport). An error from fn stops the reading.
func StreamCSV(r io.Reader, n int, fn func([]ledger.PersonRecord) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	first, _ := br.Peek(64 << 10)
	first, _, _ = bytes.Cut(first, []byte("\n"))
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	for _, sep := range []rune{';', '\t'} {
		if bytes.ContainsRune(first, sep) && !bytes.ContainsRune(first, ',') {
			cr.Comma = sep
		}
	}
	header, err := cr.Read()
	if err == io.EOF {
		return ledger.Errorf(ledger.Invalid, "the file is empty; it needs the header %s", strings.Join(Columns, ","))
	}
	if err != nil {
		return ledger.Errorf(ledger.Invalid, "line 1: %v", csvProblem(err))
	}
	header = append([]string(nil), header...)
	col, err := columns(header)
	if err != nil {
		return err
	}
	part := make([]ledger.PersonRecord, 0, n)
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
		rec, err := parseRow(line, col, len(header), row)
		if err != nil {
			problems = append(problems, err.Error())
			if len(problems) >= 50 {
				problems = append(problems, "(stopped after 50 problems)")
				break
			}
			continue
		}
		part = append(part, rec)
		if len(part) == n {
			if err := fn(part); err != nil {
				return err
			}
			part = part[:0]
		}
	}
	if len(problems) > 0 {
		return ledger.Errorf(ledger.Invalid, "%s", strings.Join(problems, "\n"))
	}
	if len(part) > 0 {
		return fn(part)
	}
	return nil
}
