package manifest

import (
	"os"
	"strings"
	"testing"
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
