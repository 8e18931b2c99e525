package manifest

import (
	"os"
	"strings"
	"testing"
	"unicode"
)

// TestReadmeExplainsEveryScope keeps the README's scope table in step with the manifest.
func TestReadmeExplainsEveryScope(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range SlackScopes() {
		row := "| `" + s.Name + "` | " + s.Why + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md lacks the row %q", row)
		}
	}
}

// TestReadmeHasThePagesTheTeamsManifestNames: the default privacy and terms URLs of the
// Teams manifest point at README sections; each must exist under that anchor.
func TestReadmeHasThePagesTheTeamsManifestNames(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if title, ok := strings.CutPrefix(line, "## "); ok {
			// GitHub's anchor: lower case, spaces to hyphens, other punctuation dropped.
			slug := strings.Map(func(r rune) rune {
				switch {
				case r == ' ':
					return '-'
				case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
					return unicode.ToLower(r)
				}
				return -1
			}, strings.TrimSpace(title))
			anchors[slug] = true
		}
	}
	for _, u := range []string{DefaultPrivacyURL, DefaultTermsURL} {
		_, anchor, _ := strings.Cut(u, "#")
		if !strings.HasPrefix(u, "https://github.com/tokenpay/tokenpay#") || !anchors[anchor] {
			t.Errorf("%s: README.md has no section with the anchor %q", u, anchor)
		}
	}
}
