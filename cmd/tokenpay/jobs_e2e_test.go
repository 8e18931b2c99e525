package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack/slacktest"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// dmRecorder answers chat.postMessage for a fake Slack and counts messages per DM
// channel (D<user>). The first storm calls are refused with 429 and Retry-After: 1.
type dmRecorder struct {
	mu      sync.Mutex
	storm   int
	calls   int
	refused int
	per     map[string]int
	texts   map[string][]string
}

func newDMRecorder(storm int) *dmRecorder {
	return &dmRecorder{storm: storm, per: map[string]int{}, texts: map[string][]string{}}
}

func (d *dmRecorder) bind(s slacktest.Customize) {
	s.Handle("/conversations.open", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": map[string]any{"id": "D" + strings.TrimPrefix(form.Get("users"), "U")}})
	})
	s.Handle("/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		d.mu.Lock()
		d.calls++
		if d.calls <= d.storm {
			d.refused++
			d.mu.Unlock()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
			return
		}
		ch := dmChannel(form.Get("channel"))
		d.per[ch]++
		d.texts[ch] = append(d.texts[ch], form.Get("text")+"\n"+form.Get("blocks"))
		n := d.calls
		d.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "channel": ch, "ts": fmt.Sprintf("1700000000.%06d", n)})
	})
}

// delivered returns how many messages reached each channel, and the total.
func (d *dmRecorder) delivered() (map[string]int, int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.per))
	total := 0
	for k, v := range d.per {
		out[k] = v
		total += v
	}
	return out, total
}

// slackPeopleCSV is a directory of n people on Slack (user U<i>, DM channel D<i>), all
// reporting to the first.
func slackPeopleCSV(n int) string {
	var b strings.Builder
	b.WriteString("email,name,team,role,manager_email,slack_user_id\n")
	for i := range n {
		mgr := "p0@x.io"
		if i == 0 {
			mgr = ""
		}
		fmt.Fprintf(&b, "p%d@x.io,Person %d,Team %d,analyst,%s,U%d\n", i, i, i%7, mgr, i)
	}
	return b.String()
}

// jobsEnv is a database of n Slack people imported on 2 November 2026, a policy with
// fast outbox limits, and Slack pointing at fake; TOKENPAY_NOW is the digest's Monday.
func jobsEnv(t *testing.T, fake *slacktest.Server, n int, policyYAML string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENPAY_NOW": "2026-11-02T09:00:00Z", "TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_POLICY": pol,
		"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": fake.GetAPIURL()}
	if code, _, errOut := runCLI(t, slackPeopleCSV(n), env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	env["TOKENPAY_NOW"] = "2026-11-23T09:00:00Z"
	return env
}

const fastOutbox = "outbox:\n  slack_per_workspace_per_minute: 60000\n"

// TestJobsRunWeeklyDigestOnceThrough429s runs the weekly digest through a fake Slack that
// refuses the first six posts with 429: delivery waits as asked and loses nothing; a
// second run for the same week sends nothing.
func TestJobsRunWeeklyDigestOnceThrough429s(t *testing.T) {
	const people = 12
	// The outbox hears every 429 itself (its Slack client does not wait them out), so
	// that its workspace budget adapts; each refused message waits the Retry-After.
	dms := newDMRecorder(6)
	fake := slacktest.NewTestServer(dms.bind)
	fake.Start()
	t.Cleanup(fake.Stop)
	env := jobsEnv(t, fake, people, fastOutbox)

	start := time.Now()
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest")
	if code != 0 {
		t.Fatalf("jobs run: exit %d\n%s\n%s", code, out, errOut)
	}
	took := time.Since(start)
	per, total := dms.delivered()
	if total != people || len(per) != people {
		t.Fatalf("%d digests to %d channels, want one to each of %d; output:\n%s", total, len(per), people, out)
	}
	for ch, n := range per {
		if n != 1 {
			t.Errorf("%s got %d digests", ch, n)
		}
	}
	if dms.refused != 6 || took < 5*time.Second {
		t.Errorf("%d refusals, delivery took %s: the 429s should have delayed it", dms.refused, took)
	}
	for _, want := range []string{"Ran weekly-digest for 2026-11-23T09:00Z", "queued 12 digests", "delivered 12", "6 delayed by platform rate limits", "Nothing is waiting."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if texts := dms.texts["D5"]; len(texts) != 1 || !strings.Contains(texts[0], "Your week with AI tokens") {
		t.Errorf("digest text: %q", texts)
	}

	// Where each digest landed is kept, so it can be updated later.
	db, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.OutboxMessages(context.Background(), "weekly-digest", "2026-W48")
	db.Close()
	if err != nil || len(rows) != people {
		t.Fatalf("outbox rows: %d %v", len(rows), err)
	}
	for _, r := range rows {
		if r.Status != ledger.OutboxSent || r.Ref.Platform != "slack" || !strings.HasPrefix(r.Ref.Channel, "D") || !strings.HasPrefix(r.Ref.MessageID, "1700000000.") {
			t.Errorf("row %d: %s, landed at %+v", r.ID, r.Status, r.Ref)
		}
	}

	code, out, errOut = runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-23T15:00:00Z")
	if code != 0 || !strings.Contains(out, "weekly-digest for 2026-11-23T09:00Z already ran (done)") || !strings.Contains(out, "delivered 0") {
		t.Fatalf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, again := dms.delivered(); again != people {
		t.Fatalf("the second run sent %d more messages", again-people)
	}

	code, out, _ = runCLI(t, "", env, "jobs", "list")
	var row string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "weekly-digest ") {
			row = strings.Join(strings.Fields(line), " ")
		}
	}
	if code != 0 || !strings.HasPrefix(row, "weekly-digest 0 9 * * MON 2026-11-23 09:00 done 2026-11-30 09:00 queued 12 digests") ||
		!strings.Contains(out, "Outbox: 0 pending (0 held for quiet hours), 12 sent, 0 given up") {
		t.Errorf("jobs list:\n%s", out)
	}
}

// TestJobsRunHoldsForQuietHoursAndPrintsUnreachable: a nudge run late in the evening
// holds everyone's message and says until when; people on no platform see theirs printed.
func TestJobsRunHoldsForQuietHoursAndPrintsUnreachable(t *testing.T) {
	dms := newDMRecorder(0)
	fake := slacktest.NewTestServer(dms.bind)
	fake.Start()
	t.Cleanup(fake.Stop)
	env := jobsEnv(t, fake, 3, fastOutbox)
	if code, _, errOut := runCLI(t, "email,name,team,role,manager_email\nann@x.io,Ann Offline,Team 0,analyst,\n", env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	// Tuesday 24 November, 21:00 UTC: in everyone's quiet hours (the org's zone, UTC).
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "nudges", "--at", "2026-11-24T21:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"Ran nudges for 2026-11-24T10:00Z as of 2026-11-24 21:00 UTC", "held for quiet hours (19:00–08:00, UTC), the first until 2026-11-25 08:00 UTC"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, total := dms.delivered(); total != 0 {
		t.Errorf("%d messages sent in quiet hours", total)
	}
	// The next morning they go, and Ann (no chat platform) sees hers printed.
	code, out, _ = runCLI(t, "", env, "jobs", "run", "expire-requests", "--at", "2026-11-25T08:30:00Z")
	if code != 0 || !strings.Contains(out, "── To Ann Offline <ann@x.io>, who is on no configured chat platform ──") ||
		!strings.Contains(out, "[1] Try this prompt") || !strings.Contains(out, "Nothing is waiting.") {
		t.Fatalf("the morning after:\n%s", out)
	}
	if per, total := dms.delivered(); total != 3 || per["D1"] != 1 {
		t.Errorf("after quiet hours: %v", per)
	}
}

func TestJobsRunRefusesBadInput(t *testing.T) {
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db")}
	if code, _, errOut := runCLI(t, "", env, "jobs", "run", "payroll"); code != 1 || !strings.Contains(errOut, `unknown job "payroll"; jobs: period-reset, weekly-digest`) {
		t.Errorf("unknown job: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "jobs", "run", "nudges", "--at", "tomorrow"); code != 1 || !strings.Contains(errOut, "--at \"tomorrow\" is not an RFC 3339 time") {
		t.Errorf("bad --at: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", env, "jobs", "run"); code != 1 || !strings.Contains(errOut, "arguments missing: type tokenpay jobs run NAME") {
		t.Errorf("no job: %d %s", code, errOut)
	}
}

func TestSegmentsCommand(t *testing.T) {
	env := map[string]string{"TOKENPAY_NOW": "2026-10-01T09:00:00Z", "TOKENPAY_DB": filepath.Join(t.TempDir(), "t.db")}
	people := "email,name,team,role,manager_email\nmia@x.io,Mia Boss,R,manager,\neve@x.io,Eve Analyst,R,analyst,mia@x.io\npat@x.io,Pat Peer,R,analyst,mia@x.io\n"
	if code, _, errOut := runCLI(t, people, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	env["TOKENPAY_NOW"] = "2026-11-16T09:00:00Z"
	if code, out, errOut := runCLI(t, "", env, "jobs", "run", "period-reset", "--at", "2026-11-01T00:05:00Z"); code != 0 ||
		!strings.Contains(out, "period 2026-11 opened for 3 people") {
		t.Fatalf("period reset: %s %s", out, errOut)
	}
	usage := `{"id":"u1","email":"mia@x.io","model":"m","input_tokens":90000,"occurred_at":"2026-11-15T09:00:00Z"}
{"id":"u2","email":"pat@x.io","model":"m","input_tokens":1000,"occurred_at":"2026-11-14T09:00:00Z"}
`
	if code, out, errOut := runCLI(t, usage, env, "usage", "import", "--format", "jsonl", "-"); code != 0 {
		t.Fatalf("usage import: %s %s", out, errOut)
	}
	code, out, errOut := runCLI(t, "", env, "segments", "--json")
	var got segmentJSON
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
		t.Fatalf("segments --json: %d %s %s", code, out, errOut)
	}
	want := map[string][]string{"dormant": {"eve@x.io"}, "underuser": {"pat@x.io"}, "heavy-without-gains": {"mia@x.io"}, "engaged": {},
		"steady": {}, "hoarding-risk": {}}
	for seg, members := range want {
		if strings.Join(got.Members[seg], ",") != strings.Join(members, ",") || got.Counts[seg] != len(members) {
			t.Errorf("%s: %v (count %d), want %v", seg, got.Members[seg], got.Counts[seg], members)
		}
	}
	if got.Period != "2026-11" || got.DaysLeft != 15 {
		t.Errorf("period %s, %d days left", got.Period, got.DaysLeft)
	}
	code, out, _ = runCLI(t, "", env, "segments")
	for _, want := range []string{"Segments on 2026-11-16 09:00 UTC (period 2026-11, 15 days left), 3 people", "dormant: 1 (Not used lately)\n  Eve Analyst <eve@x.io>",
		"heavy-without-gains: 1 (Heavy use, no outcomes logged yet)\n  Mia Boss <mia@x.io>"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("segments lacks %q:\n%s", want, out)
		}
	}
}

// TestServeRunsScheduledJobs: serve catches up the digest slot missed while it was down
// and delivers it through Slack.
func TestServeRunsScheduledJobs(t *testing.T) {
	dms := newDMRecorder(0)
	fake := slacktest.NewTestServer(dms.bind)
	fake.Start()
	t.Cleanup(fake.Stop)
	env := jobsEnv(t, fake, 5, fastOutbox)
	env["SLACK_SIGNING_SECRET"] = slackSecret
	// Last week's digest ran, so this install has been running before.
	if code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-16T09:00:00Z"); code != 0 {
		t.Fatalf("%s %s", out, errOut)
	}
	env["TOKENPAY_NOW"] = "2026-11-23T11:00:00Z"
	_, stopServe := startServe(t, env)
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() { stopErr = stopServe() })
		return stopErr
	}
	t.Cleanup(func() { _ = stop() }) // before the fake Slack closes
	deadline := time.Now().Add(15 * time.Second)
	for {
		if per, total := dms.delivered(); total == 10 && len(per) == 5 {
			break
		}
		if time.Now().After(deadline) {
			per, _ := dms.delivered()
			t.Fatalf("serve delivered %v; want two digests (last week's and this week's) to each of 5", per)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	log := serveLogs[t.Name()].String()
	for _, want := range []string{`"job":"weekly-digest","period":"2026-11-23T09:00Z"`, "first start: this slot is skipped"} {
		if !strings.Contains(log, want) {
			t.Errorf("serve log lacks %q", want)
		}
	}
}
