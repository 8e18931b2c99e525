package sqlstore

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// WideSum is SUM(expr) for int64 columns that cannot fail. SQLite's SUM stops a whole query
// with "integer overflow" once a running total leaves int64, so one absurd usage row would
// break every balance, digest and report. Instead the high and low 32 bits of each value
// are summed apart (neither can overflow before 2^31 rows) and joined with * and +, which
// SQLite evaluates as a REAL when the exact total does not fit: the query still answers,
// and satInt clamps such a total to the int64 limits when it is scanned. PostgreSQL sums
// BIGINT into NUMERIC, so there the same expression is exact whatever the total, and
// satInt clamps the decimal text it arrives as. expr must be a BIGINT expression (a
// column, or arithmetic on columns): a WideSum's result is not one on PostgreSQL.
// Empty or all-NULL input gives 0, like COALESCE(SUM(expr), 0).
func WideSum(expr string) string {
	return "(COALESCE(SUM((" + expr + ") >> 32), 0) * 4294967296 + COALESCE(SUM((" + expr + ") & 4294967295), 0))"
}

// satInt scans an integer that a WideSum may have turned into a REAL (SQLite) or that
// arrives as NUMERIC (PostgreSQL's SUM of BIGINT, which pgx gives as decimal text),
// clamping it to the int64 limits. NULL scans as 0.
type satInt struct{ v *int64 }

func (s satInt) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*s.v = 0
	case int64:
		*s.v = x
	case []byte:
		return s.scanText(string(x))
	case string:
		return s.scanText(x)
	case float64:
		switch {
		case math.IsNaN(x):
			return fmt.Errorf("scan credits: not a number")
		case x >= math.MaxInt64:
			*s.v = math.MaxInt64
		case x <= math.MinInt64:
			*s.v = math.MinInt64
		default:
			*s.v = int64(x)
		}
	default:
		return fmt.Errorf("scan credits: unexpected %T", src)
	}
	return nil
}

// Sat wraps a destination for Scan: a total outside int64 (WideSum) clamps to its limits.
func Sat(v *int64) sql.Scanner { return satInt{v} }

// scanText reads a NUMERIC's decimal text: an integer (a sum of BIGINTs has no fraction),
// clamped to the int64 limits when it does not fit.
func (s satInt) scanText(x string) error {
	v, err := strconv.ParseInt(x, 10, 64)
	if err == nil || errors.Is(err, strconv.ErrRange) {
		// Out of range, ParseInt gives the limit on the value's side.
		*s.v = v
		return nil
	}
	f, ferr := strconv.ParseFloat(x, 64)
	if ferr != nil {
		return fmt.Errorf("scan credits: %q is not a number", x)
	}
	return s.Scan(f)
}
