package ledger

import (
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// amountGrammar is ParseAmount's contract written independently: digits, and a decimal
// part only with a k (three places at most) or m (six) suffix.
var amountGrammar = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?([km]?)$`)

// referenceAmount is what ParseAmount must answer for s, computed with big integers so
// that it cannot share ParseAmount's overflow mistakes.
func referenceAmount(s string) (int64, bool) {
	s = strings.NewReplacer(",", "", "_", "").Replace(strings.ToLower(strings.TrimSpace(s)))
	m := amountGrammar.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	whole, frac, suffix := m[1], m[2], m[3]
	places := map[string]int{"": 0, "k": 3, "m": 6}[suffix]
	if len(frac) > places || (suffix == "" && strings.Contains(s, ".")) {
		return 0, false
	}
	digits := whole + frac + strings.Repeat("0", places-len(frac))
	n, _ := new(big.Int).SetString(digits, 10)
	if n.Sign() <= 0 || n.Cmp(big.NewInt(MaxAmount)) > 0 {
		return 0, false
	}
	return n.Int64(), true
}

// FuzzParseAmount checks ParseAmount against the reference grammar: it accepts exactly
// the strings the reference accepts, with the same value; rejects with an Invalid error;
// never accepts a minus sign; and reads back what FormatCredits prints.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"5000", "5,000", "5_000", "5k", "1.5k", "0.25m", "1000000000000",
		"0", "-5", "+5", "-0.5k", "1.+5k", "1.5", "1.0001k", "abc", "", "9223372036854775807k", " 2M "} {
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
