package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// TestCrashMidDigestLosesNothing kills a `tokenpay jobs run weekly-digest` to 2,000 people
// with SIGKILL after some hundreds of DMs reached a local fake Slack, then runs it again.
// Every person must have their digest, and the only duplicates allowed are the messages
// in flight at the kill: at most the policy's concurrency get two, nobody more.
func TestCrashMidDigestLosesNothing(t *testing.T) {
	const people, killAfter = 2000, 300
	bin := filepath.Join(t.TempDir(), "tokenpay")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dms := newDMRecorder(0)
	fake := slacktest.NewTestServer(dms.bind)
	fake.Start()
	t.Cleanup(fake.Stop)
	// 500 messages a second: the first process is killed well before it is done.
	env := jobsEnv(t, fake, people, "outbox:\n  slack_per_workspace_per_minute: 30000\n")
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}

	var out1 bytes.Buffer
	first := exec.Command(bin, "jobs", "run", "weekly-digest")
	first.Env, first.Stdout, first.Stderr = environ, &out1, &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, n := dms.delivered(); n >= killAfter {
			break
		}
		if time.Now().After(deadline) {
			_ = first.Process.Kill()
			_ = first.Wait()
			t.Fatalf("only %d DMs after 30 s; output:\n%s", func() int { _, n := dms.delivered(); return n }(), out1.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := first.Wait()
	if status, ok := first.ProcessState.Sys().(syscall.WaitStatus); !ok || !status.Signaled() || status.Signal() != syscall.SIGKILL {
		t.Fatalf("the first run was not killed by SIGKILL: %v\n%s", err, out1.String())
	}
	_, atKill := dms.delivered()
	if atKill >= people {
		t.Fatalf("the first run delivered all %d before the kill; nothing was tested", atKill)
	}

	second := exec.Command(bin, "jobs", "run", "weekly-digest")
	second.Env = environ
	out2, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out2)
	}
	for _, want := range []string{"weekly-digest for 2026-11-23T09:00Z already ran", "Nothing is waiting."} {
		if !strings.Contains(string(out2), want) {
			t.Errorf("second run output lacks %q:\n%s", want, out2)
		}
	}

	per, total := dms.delivered()
	twice := 0
	for i := range people {
		ch := "D" + strconv.Itoa(i)
		switch n := per[ch]; {
		case n == 0:
			t.Errorf("%s never got the digest", ch)
		case n == 2:
			twice++
		case n > 2:
			t.Errorf("%s got the digest %d times", ch, n)
		}
	}
	// The bound: only the messages in flight at the kill may arrive twice, at most the
	// policy's concurrency (8 by default).
	inFlight := policy.Default().Outbox.Concurrency
	if twice > inFlight || total > people+inFlight || len(per) != people {
		t.Errorf("%d people got two digests, %d messages to %d channels; at most %d duplicates are allowed", twice, total, len(per), inFlight)
	}
	outbox := ""
	for _, line := range strings.Split(string(out2), "\n") {
		if strings.HasPrefix(line, "Outbox:") {
			outbox = line
		}
	}
	t.Logf("killed after %d DMs; %d in all to %d people, %d duplicate(s); second run: %s", atKill, total, len(per), twice, outbox)
	_ = os.Remove(env["TOKENPAY_DB"])
}
