package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestConsolePromptsAndLearning walks the prompt library and the fluency path in the
// console over a pipe: search, use, vote, share through the form, learn, open a lesson and
// complete it with a reflection; the bonus shows in the balance.
func TestConsolePromptsAndLearning(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db")}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	script := strings.Join([]string{
		"balance",
		"prompts interview themes",
		"1", // Use on the first result
		"1", // Useful, under the prompt just shown
		"1", // Useful again: still one vote
		"share",
		"Churn drivers from survey comments", // Title
		"Group these {{comments}} by churn driver.", // Prompt
		"churn, Survey Analysis",                    // Tags
		"prompts churn",
		"learn",
		"1", // Open lesson 1
		"1", // Complete: asks the reflection
		"Summarise the weekly client notes with AI",
		"balance",
	}, "\n") + "\n"
	code, out, errOut := runCLI(t, script, env, "console", "--as", "eve@x.io")
	if code != 0 {
		t.Fatalf("console exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Available:         200,000 credits",
		"Prompts for “interview themes”",
		"Pull the themes out of interview notes",
		"[1] Use  [2] Useful",
		"replace each {{placeholder}}",
		"{{interview_notes}}",
		"Thanks! You marked “Pull the themes out of interview notes” as useful",
		"You already marked “Pull the themes out of interview notes” as useful",
		"Share a prompt",
		"Title: Prompt (end a line with \\ to go on on the next): Tags, separated by commas (optional): ",
		"Thank you for sharing “Churn drivers from survey comments”",
		"Tags: churn, survey-analysis",
		"shared by Eve Analyst",
		"Your fluency path",
		"0 of 6 lessons done",
		"Lesson 1 of 6: What a token is, and what it costs",
		"[1] Complete  [2] Back to the path",
		"In one line: which task this month would be worth spending some of your tokens on?: ",
		"🎉 Lesson complete: What a token is, and what it costs. 10,000 credits were added",
		"1 of 6 lessons done",
		"Available:         210,000 credits",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(out)
	}

	// A second start seeds nothing twice; the vote, the use and the shared prompt are there.
	code, out, _ = runCLI(t, "prompts\nprompts interview themes\n", env, "console", "--as", "pat@x.io")
	for _, want := range []string{"Showing 1–5 of 54", "1 person found it useful · used once"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("second console start lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "", env, "balance", "--json", "eve@x.io")
	var b struct{ Available int64 }
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil || b.Available != 210_000 {
		t.Fatalf("balance after the lesson: %s", out)
	}
	if code, out, _ := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatalf("verify after the lesson: %s", out)
	}
}
