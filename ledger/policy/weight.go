package policy

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Errors of Weight.Credits, for errors.Is.
var (
	ErrNegative = errors.New("negative token count or weight")
	ErrOverflow = errors.New("credits overflow int64")
)

// Weight converts a model's raw tokens into credits. It is kept in integer
// thousandths of a credit per token so that credit math stays integral; in
// the file it is written as decimals: {input: 2.5, output: 10}.
type Weight struct {
	InputMilli, OutputMilli int64
	// CachedInputMilli prices input tokens read from or written to a prompt cache when
	// CachedSet; otherwise they cost InputMilli like any input token.
	CachedInputMilli int64
	CachedSet        bool
}

// WeightFor returns the weight of a model by exact name, else the default.
func (p *Policy) WeightFor(model string) Weight {
	if w, ok := p.Models.Weights[model]; ok {
		return w
	}
	return p.Models.Default
}

// Credits returns ceil((input*InputMilli + output*OutputMilli) / 1000): a
// partial credit is charged as a whole one, so usage is never free.
func (w Weight) Credits(input, output int64) (int64, error) {
	return w.CreditsCached(input, 0, output)
}

// CreditsCached is Credits where cached of the input tokens (cache reads and cache
// writes, a part of input) cost CachedInputMilli when the weight sets it, else InputMilli.
// cached must not exceed input.
func (w Weight) CreditsCached(input, cached, output int64) (int64, error) {
	if input < 0 || output < 0 || cached < 0 || w.InputMilli < 0 || w.OutputMilli < 0 || w.CachedInputMilli < 0 {
		return 0, fmt.Errorf("credits for %d input and %d output tokens at %v: %w", input, output, w, ErrNegative)
	}
	if cached > input {
		return 0, fmt.Errorf("credits for %d input tokens of which %d cached: cached tokens are part of the input: %w", input, cached, ErrNegative)
	}
	cachedMilli := w.InputMilli
	if w.CachedSet {
		cachedMilli = w.CachedInputMilli
	}
	// 128-bit arithmetic: only the final result has to fit in an int64.
	hi1, lo1 := bits.Mul64(uint64(input-cached), uint64(w.InputMilli))
	hi2, lo2 := bits.Mul64(uint64(output), uint64(w.OutputMilli))
	hi3, lo3 := bits.Mul64(uint64(cached), uint64(cachedMilli))
	lo, carry := bits.Add64(lo1, lo2, 0)
	hi, _ := bits.Add64(hi1, hi2, carry) // each product is below 2^126: no carry out
	lo, carry = bits.Add64(lo, lo3, 0)
	hi, _ = bits.Add64(hi, hi3, carry) // three such products stay below 2^128
	if hi >= 1000 {
		return 0, fmt.Errorf("credits for %d input and %d output tokens at %v: %w", input, output, w, ErrOverflow)
	}
	q, r := bits.Div64(hi, lo, 1000)
	if q > math.MaxInt64 || (r != 0 && q == math.MaxInt64) {
		return 0, fmt.Errorf("credits for %d input and %d output tokens at %v: %w", input, output, w, ErrOverflow)
	}
	if r != 0 {
		q++
	}
	return int64(q), nil
}

// String writes the weight as in the file.
func (w Weight) String() string {
	if w.CachedSet {
		return fmt.Sprintf("{input: %s, output: %s, cached_input: %s}", formatMilli(w.InputMilli), formatMilli(w.OutputMilli), formatMilli(w.CachedInputMilli))
	}
	return fmt.Sprintf("{input: %s, output: %s}", formatMilli(w.InputMilli), formatMilli(w.OutputMilli))
}

// MarshalYAML writes the weight as decimals, as in the file.
func (w Weight) MarshalYAML() (any, error) {
	n := &yaml.Node{
		Kind:  yaml.MappingNode,
		Style: yaml.FlowStyle,
		Content: []*yaml.Node{
			{Kind: yaml.ScalarNode, Value: "input"}, milliNode(w.InputMilli),
			{Kind: yaml.ScalarNode, Value: "output"}, milliNode(w.OutputMilli),
		},
	}
	if w.CachedSet {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "cached_input"}, milliNode(w.CachedInputMilli))
	}
	return n, nil
}

func milliNode(m int64) *yaml.Node {
	s := formatMilli(m)
	tag := "!!int"
	if strings.Contains(s, ".") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
}

// formatMilli writes thousandths as a decimal without trailing zeros: 2500 is "2.5".
func formatMilli(m int64) string {
	sign, u := "", uint64(m)
	if m < 0 {
		sign, u = "-", -u // two's complement: also right for math.MinInt64
	}
	s := sign + strconv.FormatUint(u/1000, 10)
	if frac := u % 1000; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%03d", frac), "0")
	}
	return s
}

// parseMilli reads a decimal with at most three decimals into thousandths,
// from its text: going through float64 would turn 0.15 into 149.99….
// Out-of-range values are left to Validate, except those too large to hold.
func parseMilli(s string) (int64, error) {
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 {
		return 0, fmt.Errorf("want a decimal number such as 2.5, got %q", s)
	}
	whole, frac, _ := strings.Cut(digits, ".")
	if whole+frac == "" || !allDigits(whole) || !allDigits(frac) {
		return 0, fmt.Errorf("want a decimal number such as 2.5, got %q", s)
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > 3 {
		return 0, fmt.Errorf("at most 3 decimals, got %q", s)
	}
	w := int64(0)
	if whole != "" {
		var err error
		w, err = strconv.ParseInt(whole, 10, 64)
		if err != nil || w > math.MaxInt64/1000-1 {
			return 0, fmt.Errorf("must be between 0 and %s, got %q", formatMilli(maxWeightMilli), s)
		}
	}
	f := int64(0)
	if frac != "" {
		f, _ = strconv.ParseInt((frac + "00")[:3], 10, 64) // all digits, three of them
	}
	m := w*1000 + f
	if strings.HasPrefix(s, "-") {
		m = -m
	}
	return m, nil
}

func allDigits(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
}
