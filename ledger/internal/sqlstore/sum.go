package sqlstore

import (
	"database/sql"
	"fmt"
	"math"
)

// WideSum is SUM(expr) for int64 columns that cannot fail. SQLite's SUM stops a whole query
// with "integer overflow" once a running total leaves int64, so one absurd usage row would
// break every balance, digest and report. Instead the high and low 32 bits of each value
// are summed apart (neither can overflow before 2^31 rows) and joined with * and +, which
// SQLite evaluates as a REAL when the exact total does not fit: the query still answers,
// and satInt clamps such a total to the int64 limits when it is scanned.
// Empty or all-NULL input gives 0, like COALESCE(SUM(expr), 0).
func WideSum(expr string) string {
	return "(COALESCE(SUM((" + expr + ") >> 32), 0) * 4294967296 + COALESCE(SUM((" + expr + ") & 4294967295), 0))"
}

// satInt scans an integer that a WideSum may have turned into a REAL, clamping it to the
// int64 limits. NULL scans as 0.
type satInt struct{ v *int64 }

func (s satInt) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*s.v = 0
	case int64:
		*s.v = x
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
