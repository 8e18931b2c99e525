package ledger

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestNormalizeEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"ana@example.com", "ana@example.com"},
		{"  Ana@Example.COM ", "ana@example.com"},
		// The example: the gateway's capitals and the directory's spelling agree.
		{"ÉLISE@acme.test", "élise@acme.test"},
		{"Élise@acme.test", "élise@acme.test"},
		{"E\u0301lise@acme.test", "élise@acme.test"}, // decomposed é
		{"e\u0301LISE@ACME.TEST", "élise@acme.test"},
		{"STRASSE@x.de", "strasse@x.de"},
		{"Straße@x.de", "strasse@x.de"},  // full folding: ß is ss
		{"\u212Aim@x.io", "kim@x.io"},    // the Kelvin sign folds to k
		{"ΣΊΣΥΦΟΣ@x.gr", "σίσυφοσ@x.gr"}, // final and medial sigma agree
		{"İstanbul@x.tr", "i̇stanbul@x.tr"},
	}
	for _, tc := range tests {
		if got := NormalizeEmail(tc.in); got != tc.want {
			t.Errorf("NormalizeEmail(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if !SameEmail("ÉLISE@acme.test", "Élise@acme.test") || SameEmail("elise@acme.test", "élise@acme.test") {
		t.Error("SameEmail disagrees with NormalizeEmail")
	}
}

// FuzzNormalizeEmail: the key is idempotent, NFC, valid UTF-8 for valid input, the same
// for any composition of the same address, and equal to strings.ToLower for ASCII.
func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"ÉLISE@acme.test", "Élise@acme.test", "E\u0301lise@acme.test", "Straße@x.de", "\u212Aim@x.io",
		"ΣΊΣΥΦΟΣ@x.gr", "ana@example.com", " x ", "\xff@x", "ǅ@x", "ﬃ@x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := NormalizeEmail(s)
		if NormalizeEmail(k) != k {
			t.Fatalf("not idempotent: %q -> %q -> %q", s, k, NormalizeEmail(k))
		}
		if !utf8.ValidString(s) {
			return
		}
		if !norm.NFC.IsNormalString(k) {
			t.Fatalf("%q -> %q is not NFC", s, k)
		}
		if NormalizeEmail(norm.NFD.String(s)) != k {
			t.Fatalf("%q and its decomposition disagree: %q vs %q", s, k, NormalizeEmail(norm.NFD.String(s)))
		}
		if isASCII(s) && k != strings.ToLower(strings.TrimSpace(s)) {
			t.Fatalf("ASCII %q -> %q", s, k)
		}
	})
}
