package ledger

import (
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// ErrAmountTooLarge marks an amount over MaxAmount (or too long to be a number at all).
// Callers with a lower limit of their own (a policy's largest request) test for it with
// errors.Is and tell theirs instead.
var ErrAmountTooLarge = errors.New("amount too large")

// amountError is an Invalid *Error that errors.Is also recognises by its kind.
type amountError struct {
	e    *Error
	kind error
}

func (a amountError) Error() string   { return a.e.Message }
func (a amountError) Unwrap() []error { return []error{a.e, a.kind} }

func tooLarge() error {
	return amountError{Errorf(Invalid, "amount must be at most %s credits", FormatCredits(MaxAmount)), ErrAmountTooLarge}
}

var (
	// The shapes of the number part, after the unit and the word "credits" are taken off.
	plainDigits   = regexp.MustCompile(`^[0-9]+$`)
	commaGrouped  = regexp.MustCompile(`^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$`) // 50,000 and 1,500.5
	dotGrouped    = regexp.MustCompile(`^[1-9][0-9]{0,2}(?:\.[0-9]{3})+$`)        // 50.000 and 1.000.000
	decimal       = regexp.MustCompile(`^[0-9]*\.[0-9]+$`)                        // 1.5 and .5
	decimalComma  = regexp.MustCompile(`^[0-9]+,[0-9]+$`)                         // 1,5 (a decimal comma)
	underscoreSep = regexp.MustCompile(`^[0-9]+(?:_[0-9]+)+$`)                    // 5_000
	unitWord      = regexp.MustCompile(`(?s)^(.*?)(credits?)$`)
)

// ParseAmount reads a credit amount as people type it and says what it understood or why
// not, in a sentence for them. Accepted (case and the space before a unit do not matter):
//
//	50000  50,000  50.000 (dot as thousands separator)  5_000  50k  50 K  1.5M  2m
//	50k credits  50,000 credits
//
// A whole number of credits is required: 1.5 without a unit, or 1.0005k, is refused. An
// input that reads two ways (1,5k: a decimal comma or a typo; 1.500k: 1.5k or 1,500k) is
// answered with a question naming both, never guessed. Zero, negatives and anything over
// MaxAmount are refused; over MaxAmount the error also matches ErrAmountTooLarge. Every
// error is a *Error with code Invalid.
func ParseAmount(s string) (int64, error) {
	orig := strings.TrimSpace(s)
	shown := orig
	if r := []rune(shown); len(r) > 30 {
		shown = string(r[:30]) + "…"
	}
	bad := Errorf(Invalid, "%q is not an amount; use a whole number of credits such as 50000, 50,000 or 50k", shown)
	s = strings.ToLower(orig)
	// Spaces around the unit are any Unicode space (strings.TrimSpace): a no-break space
	// from macOS or Slack between 50 and k is still a space.
	if m := unitWord.FindStringSubmatch(s); m != nil {
		s = strings.TrimSpace(m[1])
	}
	mult, unit := int64(1), ""
	switch {
	case strings.HasSuffix(s, "k"):
		mult, unit, s = 1_000, "k", strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, unit, s = 1_000_000, "m", strings.TrimSuffix(s, "m")
	}
	s = strings.TrimSpace(s)
	if s == "" || strings.ContainsAny(s, " \t") {
		return 0, bad
	}
	if strings.HasPrefix(s, "-") {
		return 0, Errorf(Invalid, "amount must be a positive whole number of credits, such as 50000 or 50k")
	}
	var whole, frac string
	switch {
	case plainDigits.MatchString(s):
		whole = s
	case underscoreSep.MatchString(s):
		whole = strings.ReplaceAll(s, "_", "")
	case commaGrouped.MatchString(s):
		whole, frac, _ = strings.Cut(strings.ReplaceAll(s, ",", ""), ".")
		if frac == "" && strings.HasSuffix(s, ".") {
			return 0, bad
		}
	case dotGrouped.MatchString(s) && unit == "":
		whole = strings.ReplaceAll(s, ".", "")
	case dotGrouped.MatchString(s) && strings.Count(s, ".") == 1:
		// 1.500k: one and a half thousand, or one thousand five hundred thousand?
		w, f, _ := strings.Cut(s, ".")
		asDecimal, err1 := scaled(w, f, mult)
		asGrouped, err2 := scaled(w+f, "", mult)
		if err1 != nil || err2 != nil {
			return 0, bad
		}
		return 0, Errorf(Invalid, "%q reads two ways: %s credits or %s credits. Type the whole number, e.g. %s",
			shown, FormatCredits(asDecimal), FormatCredits(asGrouped), plainOrUnit(asDecimal))
	case decimal.MatchString(s):
		whole, frac, _ = strings.Cut(s, ".")
	case decimalComma.MatchString(s):
		// 1,5k: a decimal comma in much of Europe, or a slip for 15k? Ask.
		w, f, _ := strings.Cut(s, ",")
		if n, err := scaled(w, f, mult); err == nil && unit != "" {
			return 0, Errorf(Invalid, "did you mean %s.%s%s (%s credits)? Type it with a dot, or as a whole number of credits", w, f, unit, FormatCredits(n))
		}
		return 0, Errorf(Invalid, "%q has a comma where a thousands separator cannot be; type a whole number of credits such as 50000 or 50k", shown)
	default:
		return 0, bad
	}
	if len(strings.TrimLeft(whole, "0")) > 19 {
		return 0, tooLarge()
	}
	n, err := scaled(whole, frac, mult)
	if err != nil {
		if errors.Is(err, ErrAmountTooLarge) {
			return 0, err
		}
		if unit == "" {
			return 0, Errorf(Invalid, "%q is not a whole number of credits; credits have no fractions (use 2 or 2k, not 1.5)", shown)
		}
		return 0, Errorf(Invalid, "%q is not a whole number of credits; with %s, use at most %d decimal places", shown, unit, map[string]int{"k": 3, "m": 6}[unit])
	}
	if n <= 0 {
		return 0, Errorf(Invalid, "amount must be a positive whole number of credits, such as 50000 or 50k")
	}
	return n, nil
}

// scaled is (whole + "." + frac) * mult, which must be a whole number no larger than
// MaxAmount. Big integers keep the check free of overflow.
func scaled(whole, frac string, mult int64) (int64, error) {
	if whole == "" {
		whole = "0"
	}
	num, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return 0, Errorf(Invalid, "not a number")
	}
	num.Mul(num, big.NewInt(mult))
	den := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() != 0 {
		return 0, Errorf(Invalid, "not a whole number")
	}
	if q.Cmp(big.NewInt(MaxAmount)) > 0 {
		return 0, tooLarge()
	}
	return q.Int64(), nil
}

// plainOrUnit prints n as a person would type it back: 1500 or 2k.
func plainOrUnit(n int64) string {
	switch {
	case n%1_000_000 == 0:
		return FormatCredits(n/1_000_000) + "m"
	case n%1_000 == 0:
		return FormatCredits(n/1_000) + "k"
	}
	return FormatCredits(n)
}

// FormatCredits prints credits with thin grouping for people: 1234567 -> "1,234,567".
func FormatCredits(n int64) string {
	neg := n < 0
	u := uint64(n)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
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
