package ledger

import (
	"math"
	"math/big"
	"strings"
	"testing"
)

func TestSatAddSub(t *testing.T) {
	const max, min = math.MaxInt64, math.MinInt64
	tests := []struct{ a, b, add, sub int64 }{
		{1, 2, 3, -1},
		{max, 1, max, max - 1},
		{max, max, max, 0},
		{min, -1, min, min + 1},
		{min, min, min, 0},
		{0, min, min, max},
		{-1, min, min, max},
		{max, min, -1, max},
		{min, max, -1, min},
		{2e18, 2e18, 4e18, 0},
		{5e18, 5e18, max, 0},
	}
	for _, tc := range tests {
		if got := SatAdd(tc.a, tc.b); got != tc.add {
			t.Errorf("SatAdd(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.add)
		}
		if got := SatSub(tc.a, tc.b); got != tc.sub {
			t.Errorf("SatSub(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.sub)
		}
	}
}

func clamp(n *big.Int) int64 {
	if n.Cmp(big.NewInt(math.MaxInt64)) > 0 {
		return math.MaxInt64
	}
	if n.Cmp(big.NewInt(math.MinInt64)) < 0 {
		return math.MinInt64
	}
	return n.Int64()
}

// FuzzSatArithmetic checks the checked and saturating sums against exact arithmetic,
// with seeds at and around the int64 limits and the 2e18-credit events.
func FuzzSatArithmetic(f *testing.F) {
	for _, s := range [][2]int64{{math.MaxInt64, 1}, {math.MinInt64, -1}, {math.MinInt64, math.MaxInt64}, {0, math.MinInt64},
		{2e18, 2e18}, {4e18, 6e18}, {MaxPeriodCredits, MaxEventCredits}, {-1, math.MinInt64}, {math.MaxInt64 - 1, 2}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b int64) {
		sum := new(big.Int).Add(big.NewInt(a), big.NewInt(b))
		diff := new(big.Int).Sub(big.NewInt(a), big.NewInt(b))
		if got, want := SatAdd(a, b), clamp(sum); got != want {
			t.Fatalf("SatAdd(%d, %d) = %d, want %d", a, b, got, want)
		}
		if got, want := SatSub(a, b), clamp(diff); got != want {
			t.Fatalf("SatSub(%d, %d) = %d, want %d", a, b, got, want)
		}
		got, ok := AddChecked(a, b)
		if ok != sum.IsInt64() || (ok && got != sum.Int64()) {
			t.Fatalf("AddChecked(%d, %d) = %d, %v; exact %s", a, b, got, ok, sum)
		}
		if p := EventCreditsProblem(a); (p == "") != (a >= 0 && a <= MaxEventCredits) {
			t.Fatalf("EventCreditsProblem(%d) = %q", a, p)
		}
		printed := FormatCredits(a)
		if strings.ReplaceAll(printed, ",", "") != big.NewInt(a).String() {
			t.Fatalf("FormatCredits(%d) = %q", a, printed)
		}
	})
}

func TestSatFloat(t *testing.T) {
	for f, want := range map[float64]int64{0: 0, 1.9: 1, -1.9: -1, 9.3e18: math.MaxInt64, math.MaxInt64: math.MaxInt64,
		-9.3e18: math.MinInt64, math.Inf(1): math.MaxInt64, math.Inf(-1): math.MinInt64, math.NaN(): 0, 1e300: math.MaxInt64} {
		if got := SatFloat(f); got != want {
			t.Errorf("SatFloat(%v) = %d, want %d", f, got, want)
		}
	}
}

func TestFormatCreditsLimits(t *testing.T) {
	for n, want := range map[int64]string{math.MinInt64: "-9,223,372,036,854,775,808", math.MaxInt64: "9,223,372,036,854,775,807", -1000: "-1,000"} {
		if got := FormatCredits(n); got != want {
			t.Errorf("FormatCredits(%d) = %q, want %q", n, got, want)
		}
	}
}
