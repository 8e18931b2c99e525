package bot

import "testing"

func TestSplitAmount(t *testing.T) {
	tests := []struct{ in, amount, rest string }{
		{"50k summarise it", "50k", "summarise it"},
		{"50 k summarise it", "50 k", "summarise it"},
		{"50 K summarise it", "50 K", "summarise it"},
		{"50k credits summarise it", "50k credits", "summarise it"},
		{"50 m Credits  two  spaces", "50 m Credits", "two  spaces"},
		{"1.5M credit", "1.5M credit", ""},
		{"50k k-means", "50k", "k-means"},
		{"5000 kids", "5000", "kids"},
		{"50k  k", "50k", "k"},
		{"  ", "", ""},
		{"50\u00a0k x", "50\u00a0k", "x"},
	}
	for _, tt := range tests {
		a, r := splitAmount(tt.in)
		if a != tt.amount || r != tt.rest {
			t.Errorf("splitAmount(%q) = %q, %q; want %q, %q", tt.in, a, r, tt.amount, tt.rest)
		}
	}
}

func TestNormaliseFlag(t *testing.T) {
	for in, want := range map[string]string{"--hours": "--hours", "\u2014hours": "--hours", "\u2013hours": "--hours",
		"\u2014\u2014hours": "--hours", "\u2013\u2013link": "--link", "-h": "-h", "word": "word", "\u2014": "--"} {
		if got := normaliseFlag(in); got != want {
			t.Errorf("normaliseFlag(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"balance", "history", "request", "team", "help", "learn"}
	for in, want := range map[string]string{"balanse": "balance", "ballance": "balance", "tema": "team", "hepl": "help",
		"reqest": "request", "xyzzy": "", "b": "", "teams": "team", "": ""} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
