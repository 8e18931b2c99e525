package ledger

import (
	"strings"
	"unicode"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// emailFolder is safe for concurrent use: cases.Fold's Caser keeps no state between
// String calls.
var emailFolder = cases.Fold()

// NormalizeEmail is the one key under which an email identifies a person, wherever it
// comes from: the directory import, a gateway's usage event, a quarantined event on replay,
// Slack's or Teams' profile when a chat account is linked, and the HTTP API. It trims
// surrounding space, composes (NFC), applies full Unicode case folding and composes again,
// so "ÉLISE@acme.test", "Élise@acme.test" and "E\u0301lise@acme.test" give one key.
// Go's strings.ToLower and SQLite's NOCASE (ASCII only) each disagree with the other on
// non-ASCII letters; only this key is compared. For ASCII it is strings.ToLower.
func NormalizeEmail(email string) string {
	s := strings.TrimSpace(email)
	if isASCII(s) {
		return strings.ToLower(s)
	}
	return norm.NFC.String(strings.Map(cherokeeUpper, emailFolder.String(norm.NFC.String(s))))
}

// cherokeeUpper gives a Cherokee letter its uppercase form, which is what Unicode's case
// folding maps Cherokee to (CaseFolding.txt: small letters fold to capitals). cases.Fold of
// golang.org/x/text maps each Cherokee case to the other, so folding twice gave back the
// first spelling and the key of a key differed from the key (fuzz finding in testdata).
func cherokeeUpper(r rune) rune {
	if (r >= 0x13A0 && r <= 0x13FD) || (r >= 0xAB70 && r <= 0xABBF) {
		return unicode.ToUpper(r)
	}
	return r
}

// SameEmail reports whether two emails name the same person.
func SameEmail(a, b string) bool { return NormalizeEmail(a) == NormalizeEmail(b) }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
