package main

import (
	"strings"
	"testing"
)

// TestServeRecordsItsFirstStartBeforeReady: a serve stopped the moment it is ready has
// already recorded its first start (each job's latest slot skipped), so a later start never
// catches up slots from before tokenpay ran. Before, the skip happened in the scheduler's
// goroutine and a quick stop could miss it: a restart then sent last week's digest.
func TestServeRecordsItsFirstStartBeforeReady(t *testing.T) {
	env := teamsEnv(t, newBotFramework(t))
	_, stop := startServe(t, env)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", env, "jobs", "list")
	if code != 0 {
		t.Fatalf("jobs list: %d\n%s\n%s", code, out, errOut)
	}
	for _, job := range []string{"weekly-digest", "manager-digest", "nudges", "period-reset"} {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, job+" ") {
				line = l
			}
		}
		if !strings.Contains(line, "skipped") {
			t.Errorf("%s after a serve stopped at once: %q, want its first slot skipped\n%s", job, line, out)
		}
	}
}
