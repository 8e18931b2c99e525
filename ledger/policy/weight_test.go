package policy

import (
	"errors"
	"math"
	"math/big"
	"strings"
	"testing"
)

func TestParseMilli(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string // substring of the error; empty for success
	}{
		{"1", 1000, ""},
		{"2.5", 2500, ""},
		{"0.15", 150, ""}, // 0.15 is not exact in float64; it must be here
		{"0.6", 600, ""},
		{"0.001", 1, ""},
		{"10.000", 10_000, ""},
		{"2.50000", 2500, ""}, // trailing zeros are not decimals that matter
		{".5", 500, ""},
		{"5.", 5000, ""},
		{"+3", 3000, ""},
		{"-1.25", -1250, ""}, // parsed; Validate rejects it
		{"0", 0, ""},
		{"1000000", 1_000_000_000, ""},
		{"0.0005", 0, "at most 3 decimals"},
		{"1.2345", 0, "at most 3 decimals"},
		{"1e3", 0, "decimal number"},
		{"0x10", 0, "decimal number"},
		{"1_000", 0, "decimal number"},
		{"+-1", 0, "decimal number"},
		{".", 0, "decimal number"},
		{"", 0, "decimal number"},
		{".inf", 0, "decimal number"},
		{"1.2.3", 0, "decimal number"},
		{"99999999999999999999", 0, "between 0 and 1000000"},
		{"9223372036854775", 0, "between 0 and 1000000"},
	}
	for _, tt := range tests {
		got, err := parseMilli(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("parseMilli(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("parseMilli(%q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestFormatMilli(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {1, "0.001"}, {150, "0.15"}, {2500, "2.5"}, {10_000, "10"},
		{1_000_000_000, "1000000"}, {-1250, "-1.25"},
		{math.MinInt64, "-9223372036854775.808"}, {math.MaxInt64, "9223372036854775.807"},
	}
	for _, tt := range tests {
		if got := formatMilli(tt.in); got != tt.want {
			t.Errorf("formatMilli(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCredits(t *testing.T) {
	tests := []struct {
		name          string
		w             Weight
		input, output int64
		want          int64
		err           error
	}{
		{"unit weight", Weight{InputMilli: 1000, OutputMilli: 1000}, 120, 30, 150, nil},
		{"no tokens", Weight{InputMilli: 2500, OutputMilli: 10_000}, 0, 0, 0, nil},
		{"gpt-4o", Weight{InputMilli: 2500, OutputMilli: 10_000}, 1000, 100, 3500, nil},
		{"exact decimals", Weight{InputMilli: 150, OutputMilli: 600}, 1000, 1000, 750, nil},
		{"rounds up", Weight{InputMilli: 150, OutputMilli: 600}, 1, 0, 1, nil},           // 0.15 credits cost 1
		{"rounds up sum", Weight{InputMilli: 150, OutputMilli: 600}, 3, 1, 2, nil},       // 0.45 + 0.6 = 1.05
		{"sum before rounding", Weight{InputMilli: 500, OutputMilli: 500}, 1, 1, 1, nil}, // 0.5 + 0.5, not 1 + 1
		{"smallest weight", Weight{InputMilli: 1, OutputMilli: 1}, 999, 0, 1, nil},
		{"free model", Weight{InputMilli: 0, OutputMilli: 0}, 1 << 40, 1 << 40, 0, nil},
		{"largest result", Weight{InputMilli: 1000, OutputMilli: 0}, math.MaxInt64, 0, math.MaxInt64, nil},
		{"large product fits after division", Weight{InputMilli: 2000, OutputMilli: 0}, math.MaxInt64 / 2, 0, math.MaxInt64 - 1, nil},
		{"overflow", Weight{InputMilli: 1001, OutputMilli: 0}, math.MaxInt64, 0, 0, ErrOverflow},
		{"overflow in sum", Weight{InputMilli: 1000, OutputMilli: 1000}, math.MaxInt64, 1, 0, ErrOverflow},
		{"overflow in rounding", Weight{InputMilli: 1000, OutputMilli: 1}, math.MaxInt64, 1, 0, ErrOverflow},
		{"overflow of 128-bit quotient", Weight{InputMilli: 1_000_000_000, OutputMilli: 1_000_000_000}, math.MaxInt64, math.MaxInt64, 0, ErrOverflow},
		{"negative input", Weight{InputMilli: 1000, OutputMilli: 1000}, -1, 0, 0, ErrNegative},
		{"negative output", Weight{InputMilli: 1000, OutputMilli: 1000}, 0, -1, 0, ErrNegative},
		{"negative weight", Weight{InputMilli: -1, OutputMilli: 1000}, 1, 1, 0, ErrNegative},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.Credits(tt.input, tt.output)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("%v.Credits(%d, %d) = %d, %v; want %d, %v", tt.w, tt.input, tt.output, got, err, tt.want, tt.err)
			}
		})
	}
}

// TestCreditsCached: cached input (cache reads and writes, part of the input) costs the
// input weight unless the model sets cached_input.
func TestCreditsCached(t *testing.T) {
	tests := []struct {
		name                  string
		w                     Weight
		input, cached, output int64
		want                  int64
		err                   error
	}{
		{"default: cached is input", Weight{InputMilli: 1000, OutputMilli: 1000}, 2210, 1800, 845, 3055, nil},
		{"own weight", Weight{InputMilli: 2500, OutputMilli: 10_000, CachedInputMilli: 1250, CachedSet: true}, 1000, 400, 100, 600*2.5 + 400*1.25 + 1000, nil},
		{"free cache", Weight{InputMilli: 1000, OutputMilli: 1000, CachedSet: true}, 1000, 1000, 0, 0, nil},
		{"rounds up", Weight{InputMilli: 1000, OutputMilli: 1000, CachedInputMilli: 100, CachedSet: true}, 1, 1, 0, 1, nil},
		{"same as Credits without cache", Weight{InputMilli: 150, OutputMilli: 600}, 3, 0, 1, 2, nil},
		{"cached over input", Weight{InputMilli: 1000, OutputMilli: 1000}, 10, 11, 0, 0, ErrNegative},
		{"negative cached", Weight{InputMilli: 1000, OutputMilli: 1000}, 10, -1, 0, 0, ErrNegative},
		{"overflow in third term", Weight{InputMilli: 0, OutputMilli: 1000, CachedInputMilli: 1000, CachedSet: true}, math.MaxInt64, math.MaxInt64, 1, 0, ErrOverflow},
		{"largest cached", Weight{InputMilli: 0, OutputMilli: 0, CachedInputMilli: 1000, CachedSet: true}, math.MaxInt64, math.MaxInt64, 0, math.MaxInt64, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.w.CreditsCached(tt.input, tt.cached, tt.output)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("%v.CreditsCached(%d, %d, %d) = %d, %v; want %d, %v", tt.w, tt.input, tt.cached, tt.output, got, err, tt.want, tt.err)
			}
		})
	}
}

func TestWeightFor(t *testing.T) {
	p := validFile()
	tests := []struct {
		model string
		want  Weight
	}{
		{"gpt-4o", Weight{InputMilli: 2500, OutputMilli: 10_000, CachedInputMilli: 1250, CachedSet: true}},
		{"gpt-4o-mini", Weight{InputMilli: 150, OutputMilli: 600}},
		{"GPT-4o", Weight{InputMilli: 1000, OutputMilli: 1000}}, // exact names only
		{"gpt-4o-2024-08-06", Weight{InputMilli: 1000, OutputMilli: 1000}},
		{"", Weight{InputMilli: 1000, OutputMilli: 1000}},
	}
	for _, tt := range tests {
		if got := p.WeightFor(tt.model); got != tt.want {
			t.Errorf("WeightFor(%q) = %v, want %v", tt.model, got, tt.want)
		}
	}
}

// FuzzCredits checks Weight.Credits against exact arithmetic for token counts and weights
// anywhere in int64, seeded with the example (1e12 input and output tokens at the
// largest weight, 1,000,000) and the int64 limits: the result is the exact ceiling, or
// ErrOverflow exactly when that does not fit, or ErrNegative for negative inputs.
func FuzzCredits(f *testing.F) {
	for _, s := range [][4]int64{{1e12, 1e12, 1e9, 1e9}, {1e9, 1e9, 1e9, 1e9}, {math.MaxInt64, math.MaxInt64, 1e9, 1e9},
		{math.MaxInt64, 0, 1, 0}, {math.MaxInt64, 0, 1000, 0}, {math.MaxInt64, 1, 1000, 1}, {-1, 0, 1, 1}, {0, 0, 0, 0}, {1, 1, 1, 1}} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, in, out, wi, wo int64) {
		got, err := Weight{InputMilli: wi, OutputMilli: wo}.Credits(in, out)
		if in < 0 || out < 0 || wi < 0 || wo < 0 {
			if !errors.Is(err, ErrNegative) {
				t.Fatalf("Credits(%d, %d) at %d/%d = %d, %v; want ErrNegative", in, out, wi, wo, got, err)
			}
			return
		}
		exact := new(big.Int).Add(new(big.Int).Mul(big.NewInt(in), big.NewInt(wi)), new(big.Int).Mul(big.NewInt(out), big.NewInt(wo)))
		exact.Add(exact, big.NewInt(999)).Div(exact, big.NewInt(1000))
		if !exact.IsInt64() {
			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("Credits(%d, %d) at %d/%d = %d, %v; exact %s does not fit", in, out, wi, wo, got, err, exact)
			}
			return
		}
		if err != nil || got != exact.Int64() {
			t.Fatalf("Credits(%d, %d) at %d/%d = %d, %v; want %s", in, out, wi, wo, got, err, exact)
		}
	})
}
