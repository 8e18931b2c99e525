package ledger

import (
	"strconv"
	"strings"
)

// ParseAmount reads a credit amount as people type it: 5000, 5,000, 5_000, 5k or 2m.
// It rejects zero, negatives, fractions of a credit and anything over MaxAmount.
func ParseAmount(s string) (int64, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.NewReplacer(",", "", "_", "").Replace(s)
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1_000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "m")
	}
	bad := Errorf(Invalid, "%q is not an amount; use a whole number of credits such as 5000 or 5k", orig)
	if s == "" || strings.HasPrefix(s, "+") {
		return 0, bad
	}
	var n int64
	if whole, frac, ok := strings.Cut(s, "."); ok && mult > 1 {
		// 1.5k is fine as long as it lands on a whole credit.
		// Digits only: ParseInt alone would take "-0.5k" as 500 and "1.+5k" as 1050.
		if !allDigits(whole) || !allDigits(frac) || len(frac) > len(strconv.FormatInt(mult, 10))-1 {
			return 0, bad
		}
		w, err1 := strconv.ParseInt(whole, 10, 64)
		f, err2 := strconv.ParseInt(frac, 10, 64)
		if err1 != nil || err2 != nil {
			return 0, bad
		}
		scale := mult
		for range frac {
			scale /= 10
		}
		if w > MaxAmount/mult {
			return 0, Errorf(Invalid, "amount must be at most %d credits", MaxAmount)
		}
		n = w*mult + f*scale
	} else {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return 0, Errorf(Invalid, "amount must be at most %d credits", MaxAmount)
			}
			return 0, bad
		}
		if v > MaxAmount/mult {
			return 0, Errorf(Invalid, "amount must be at most %d credits", MaxAmount)
		}
		n = v * mult
	}
	if err := CheckAmount(n); err != nil {
		return 0, err
	}
	return n, nil
}

func allDigits(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}

// FormatCredits prints credits with thin grouping for people: 1234567 -> "1,234,567".
func FormatCredits(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := strconv.FormatInt(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
