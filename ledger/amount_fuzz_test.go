package ledger

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The contract of ParseAmount written independently: a number part (plain digits, digits
// with underscores, commas grouping thousands with an optional decimal part, dots grouping
// thousands without a unit, or a decimal with a dot), an optional k or m, an optional word
// "credit(s)"; the value must be a whole number of credits.
var (
	// Spaces are Unicode's (what strings.TrimSpace trims), not only regexp's ASCII \s.
	amountGrammar = regexp.MustCompile(`^(.+?)[\s\v\x{85}\p{Z}]*([km]?)(?:[\s\v\x{85}\p{Z}]*credits?)?$`)
	refPlain      = regexp.MustCompile(`^[0-9]+(?:_[0-9]+)*$`)
	refComma      = regexp.MustCompile(`^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$`)
	refDots       = regexp.MustCompile(`^[1-9][0-9]{0,2}(?:\.[0-9]{3})+$`)
	refDecimal    = regexp.MustCompile(`^[0-9]*\.[0-9]+$`)
)

// referenceAmount is what ParseAmount must answer for s, computed with big rationals so
// that it cannot share ParseAmount's overflow mistakes.
func referenceAmount(s string) (int64, bool) {
	m := amountGrammar.FindStringSubmatch(strings.ToLower(strings.TrimSpace(s)))
	if m == nil {
		return 0, false
	}
	num, suffix := m[1], m[2]
	var digits string
	switch {
	case refPlain.MatchString(num):
		digits = strings.ReplaceAll(num, "_", "")
	case refComma.MatchString(num):
		digits = strings.ReplaceAll(num, ",", "")
	case refDots.MatchString(num) && suffix == "":
		digits = strings.ReplaceAll(num, ".", "")
	case refDots.MatchString(num):
		return 0, false // ambiguous: asked back
	case refDecimal.MatchString(num):
		digits = num
	default:
		return 0, false
	}
	r, ok := new(big.Rat).SetString(digits)
	if !ok {
		return 0, false
	}
	r.Mul(r, new(big.Rat).SetInt64(map[string]int64{"": 1, "k": 1000, "m": 1_000_000}[suffix]))
	if !r.IsInt() || r.Sign() <= 0 || r.Cmp(new(big.Rat).SetInt64(MaxAmount)) > 0 {
		return 0, false
	}
	return r.Num().Int64(), true
}

// FuzzParseAmount checks ParseAmount against the reference grammar: it accepts exactly
// the strings the reference accepts, with the same value; rejects with an Invalid error;
// never accepts a minus sign; and reads back what FormatCredits prints.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"5000", "5,000", "5_000", "5k", "1.5k", "0.25m", "1000000000000",
		"0", "-5", "+5", "-0.5k", "1.+5k", "1.5", "1.0001k", "abc", "", "9223372036854775807k", " 2M ",
		"50 k", "50.000", "1.5M", "50k credits", "1,5k", "1.500k", "5 000", "1,500.5k",
		"1\vk", "50\u00a0k", "50\u00a0credits", "1\vcredits", "50k\u202fcredits"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAmount(s)
		want, ok := referenceAmount(s)
		if err != nil {
			if ErrorCode(err) != Invalid || got != 0 {
				t.Fatalf("ParseAmount(%q) = %d, %v; a rejection must be 0 with an Invalid error", s, got, err)
			}
			if ok {
				t.Fatalf("ParseAmount(%q) rejected it (%v); the reference reads %d", s, err, want)
			}
			return
		}
		if !ok || got != want {
			t.Fatalf("ParseAmount(%q) = %d; the reference says %d, %v", s, got, want, ok)
		}
		if got < 1 || got > MaxAmount || strings.Contains(s, "-") {
			t.Fatalf("ParseAmount(%q) = %d: out of range or from a negative input", s, got)
		}
		for _, printed := range []string{strconv.FormatInt(got, 10), FormatCredits(got)} {
			if back, err := ParseAmount(printed); err != nil || back != got {
				t.Fatalf("ParseAmount(%q) = %d, %v; want %d back", printed, back, err, got)
			}
		}
	})
}
