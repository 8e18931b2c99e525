package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestConsoleTellsTheTruth: the console as a person meets it (issue 16). Messages to
// others are announced with how to see them, and the ones never shown are named at the
// end; pressing a number without buttons says so; each form field is checked as it is
// entered and asked again; text of several lines can be typed; the amounts and dashes
// people type work here as in chat.
func TestConsoleTellsTheTruth(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "t.db")
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": db}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	script := strings.Join([]string{
		"1", // no buttons yet
		"request",
		"lots",        // refused as entered
		"1,5k",        // asked back
		"50 k",        // right
		"line one \\", // goes on
		"line two",
		"balanse",                               // a typo
		"impact drafted the memo \u2014hours 2", // an em dash for --
		"request 50 K credits label the support backlog",
		"request 10k Summarise the customer interviews", // the same use case as the first? no: a new one
		"request 10k label the support backlog",         // a duplicate of the open one
		"impact",
		"shipped the pricing page",
		"abc", // hours: refused as entered
		"1.5",
		"",
		":quit",
	}, "\n") + "\n"
	code, out, errOut := runCLI(t, script, env, "console", "--as", "eve@x.io")
	if code != 0 {
		t.Fatalf("console exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Messages to other people wait here until you switch to them with ':as'; they are not kept after the console ends.",
		"There are no buttons to press yet",
		`"lots" is not an amount`,
		"Did you mean 1.5k (1,500 credits)?",
		"Use case and expected impact (end a line with \\ to go on on the next): … Request #1 for 50,000 credits sent to Mia Boss",
		"Use case: line one\nline two",
		"📨 Mia Boss has 1 message waiting: switch to them with ':as mia@x.io' to see it.",
		"Did you mean balance?",
		"Logged impact #1 (2 hours saved)",
		"Request #2 for 50,000 credits sent to Mia Boss",
		"📨 Mia Boss has 2 messages waiting: switch to them with ':as mia@x.io' to see them.",
		"You already asked for this: request #2 for 50,000 credits",
		"Hours saved is a number from 0 to 1000, such as 1.5.",
		"Logged impact #2 (1.5 hours saved)",
		"3 messages for Mia Boss were not shown; the console does not keep them after it ends.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("console output lacks %q", want)
		}
	}
	if strings.Contains(out, "[1] to [0]") || strings.Contains(out, "message(s)") {
		t.Errorf("console output has a false or clumsy sentence")
	}
	if t.Failed() {
		t.Log(out)
	}

	// Switching to Mia shows what waited for her.
	code, out, _ = runCLI(t, ":as mia@x.io\n", env, "console", "--as", "eve@x.io")
	if code != 0 || strings.Contains(out, "📬") {
		t.Errorf("a new console run shows messages it said it would not keep:\n%s", out)
	}
}
