package ledger

import "testing"

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
		{"0", 0, Invalid},
		{"-5", 0, Invalid},
		{"+5", 0, Invalid},
		{"1.5", 0, Invalid},
		{"1.0001k", 0, Invalid},
		{"abc", 0, Invalid},
		{"", 0, Invalid},
		{"k", 0, Invalid},
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
