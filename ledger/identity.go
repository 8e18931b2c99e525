package ledger

import (
	"strings"

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
	return norm.NFC.String(emailFolder.String(norm.NFC.String(s)))
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
