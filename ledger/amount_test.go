package ledger

import (
	"errors"
	"strings"
	"testing"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		code string
	}{
		{"5000", 5000, ""},
		{" 5,000 ", 5000, ""},
		{"5_000", 5000, ""},
		{"5k", 5000, ""},
		{"5K", 5000, ""},
		{"1.5k", 1500, ""},
		{"2m", 2_000_000, ""},
		{"0.25m", 250_000, ""},
		{"1000000000000", MaxAmount, ""},
		// What people type (issue 16): a space before the unit, upper case, separators, a unit word.
		{"50 k", 50_000, ""},
		{"50 K", 50_000, ""},
		{"50,000", 50_000, ""},
		{"50.000", 50_000, ""},
		{"1.000.000", 1_000_000, ""},
		{"1.5M", 1_500_000, ""},
		{"1.5 M", 1_500_000, ""},
		{"50k credits", 50_000, ""},
		{"50 k credits", 50_000, ""},
		{"50,000 credits", 50_000, ""},
		{"1 credit", 1, ""},
		{"1,500k", 1_500_000, ""},
		{"0", 0, Invalid},
		{"-5", 0, Invalid},
		{"+5", 0, Invalid},
		{"1.5", 0, Invalid},
		{"50.00", 50, ""},
		{"1.0001k", 0, Invalid},
		{"abc", 0, Invalid},
		{"", 0, Invalid},
		{"k", 0, Invalid},
		{"credits", 0, Invalid},
		{"5,0000", 0, Invalid},
		{"1,5k", 0, Invalid},
		{"1.500k", 0, Invalid},
		{"5 000", 0, Invalid},
		{"5.", 0, Invalid},
		{"1000000000001", 0, Invalid},
		{"99999999999999999999", 0, Invalid},
		{"9223372036854775807k", 0, Invalid},
		{"5e3", 0, Invalid},
		{"0x10", 0, Invalid},
	}
	for _, tc := range tests {
		got, err := ParseAmount(tc.in)
		if ErrorCode(err) != tc.code || got != tc.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d, code %q", tc.in, got, err, tc.want, tc.code)
		}
	}
}

// TestParseAmountSentences holds what a person is told: an ambiguous amount is asked back
// with both readings, an amount over the maximum names it with separators and matches
// ErrAmountTooLarge, and no message shows a Go error.
func TestParseAmountSentences(t *testing.T) {
	tests := []struct {
		in       string
		contains []string
		tooLarge bool
	}{
		{"1,5k", []string{"did you mean 1.5k", "1,500 credits"}, false},
		{"1.500k", []string{"reads two ways", "1,500 credits", "1,500,000 credits"}, false},
		{"99999999999999999999", []string{"at most 1,000,000,000,000 credits"}, true},
		{"2000000m", []string{"at most 1,000,000,000,000 credits"}, true},
		{"1.5", []string{"not a whole number of credits"}, false},
		{"1.0001k", []string{"at most 3 decimal places"}, false},
		{"-5k", []string{"positive whole number"}, false},
		{"banana", []string{`"banana" is not an amount`, "50k"}, false},
	}
	for _, tc := range tests {
		_, err := ParseAmount(tc.in)
		if err == nil {
			t.Fatalf("ParseAmount(%q) accepted it", tc.in)
		}
		msg := ErrorMessage(err)
		for _, c := range tc.contains {
			if !strings.Contains(msg, c) {
				t.Errorf("ParseAmount(%q): %q does not say %q", tc.in, msg, c)
			}
		}
		if errors.Is(err, ErrAmountTooLarge) != tc.tooLarge {
			t.Errorf("ParseAmount(%q): errors.Is(ErrAmountTooLarge) = %v", tc.in, !tc.tooLarge)
		}
		if strings.Contains(msg, "strconv") || strings.Contains(msg, "big.") {
			t.Errorf("ParseAmount(%q): %q shows a Go error", tc.in, msg)
		}
	}
}

func TestFormatCredits(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -5000: "-5,000"} {
		if got := FormatCredits(in); got != want {
			t.Errorf("FormatCredits(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestValidatePostings(t *testing.T) {
	tests := []struct {
		name string
		ps   []Posting
		ok   bool
	}{
		{"balanced", []Posting{{"a", 5}, {"b", -5}}, true},
		{"empty", nil, false},
		{"unbalanced", []Posting{{"a", 5}, {"b", -4}}, false},
		{"no account", []Posting{{"", 5}, {"b", -5}}, false},
		{"overflow", []Posting{{"a", 1 << 62}, {"a", 1 << 62}, {"b", -(1 << 62)}, {"b", -(1 << 62)}}, false},
	}
	for _, tc := range tests {
		if err := ValidatePostings(tc.ps); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
