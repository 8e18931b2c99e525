package nudges

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
	"github.com/tokenpay/tokenpay/prompts"
)

// jobsFixture is a Research team in November 2026 (baseline 200,000 each), imported in
// October so that nobody is new:
//
//	mia  manager, engaged (60,000 used, one outcome)
//	eve  analyst, never used: dormant
//	pat  analyst, 1,000 used on the 15th: getting started
//	zed  engineer, 180,000 used, no outcome: heavy without gains (and 90% used)
//	ute  analyst, 170,000 used, one outcome: engaged (and 85% used)
//	oli  dormant, nudges off
//	kim  dormant, in the holdout group
//	tok  dormant, in Asia/Tokyo
//	dig  steady, digests off
type jobsFixture struct {
	ctx    context.Context
	db     ledgertest.Store
	pol    *policy.Policy
	svc    *Service
	now    time.Time
	people map[string]ledger.Person
}

func utcTime(m time.Month, d, h, min int) time.Time {
	return time.Date(2026, m, d, h, min, 0, 0, time.UTC)
}

func newJobsFixture(t *testing.T) *jobsFixture {
	t.Helper()
	ctx := context.Background()
	f := &jobsFixture{ctx: ctx, db: openAt(t, filepath.Join(t.TempDir(), "t.db")), pol: policy.Default(), now: utcTime(10, 1, 0, 0),
		people: map[string]ledger.Person{}}
	f.db.SetNow(func() time.Time { return f.now })
	f.pol.Admins = []string{"mia@x.io"}
	recs := []ledger.PersonRecord{{Email: "mia@x.io", Name: "Mia Boss", Team: "Research", Role: "manager"}}
	for _, r := range []struct{ email, name, role string }{
		{"eve@x.io", "Eve Analyst", "analyst"}, {"pat@x.io", "Pat Peer", "analyst"}, {"zed@x.io", "Zed Builder", "engineer"},
		{"ute@x.io", "Ute User", "analyst"}, {"oli@x.io", "Oli Off", "analyst"}, {"kim@x.io", "Kim Held", "analyst"},
		{"tok@x.io", "Tok Yo", "analyst"}, {"dig@x.io", "Dig Quiet", "analyst"},
	} {
		recs = append(recs, ledger.PersonRecord{Email: r.email, Name: r.name, Team: "Research", Role: r.role, ManagerEmail: "mia@x.io"})
	}
	for i := range recs {
		recs[i].Line = i + 2
	}
	if _, err := f.db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if InHoldout("kim@x.io", 10) != true || slices.ContainsFunc(recs, func(r ledger.PersonRecord) bool { return r.Email != "kim@x.io" && InHoldout(r.Email, 10) }) {
		t.Fatal("the fixture expects kim, and only kim, in the 10% holdout")
	}
	f.now = utcTime(11, 1, 0, 5)
	if _, err := period.Reset(ctx, f.db, f.pol, f.now); err != nil {
		t.Fatal(err)
	}
	ps, err := f.db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		f.people[strings.TrimSuffix(p.Email, "@x.io")] = p
	}
	set := func(name string, nudgesOff, digestsOff bool) {
		if err := f.db.SetNudges(ctx, f.people[name].ID, nudgesOff, digestsOff); err != nil {
			t.Fatal(err)
		}
	}
	set("oli", true, false)
	set("dig", false, true)
	if err := f.db.LinkChat(ctx, f.people["tok"].ID, "slack", "UTOK", "Asia/Tokyo"); err != nil {
		t.Fatal(err)
	}
	lib := &prompts.Library{Store: f.db, Policy: f.pol, Now: f.db.Now, Log: zerolog.Nop()}
	if err := lib.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	ing := &usage.Ingestor{Store: f.db, Now: f.db.Now, Credits: func(_ string, in, out int64) (int64, error) { return in + out, nil }}
	f.svc = &Service{Store: f.db, Policy: f.pol, Tips: lib, Ingestor: ing, Log: zerolog.Nop()}
	for _, u := range []struct {
		who     string
		credits int64
		at      time.Time
	}{{"mia", 60_000, utcTime(11, 22, 9, 0)}, {"pat", 1_000, utcTime(11, 15, 9, 0)}, {"zed", 180_000, utcTime(11, 20, 9, 0)},
		{"ute", 170_000, utcTime(11, 21, 9, 0)}, {"dig", 60_000, utcTime(11, 21, 9, 0)}} {
		f.now = u.at
		res, err := ing.Ingest(ctx, []usage.Item{{Event: ledger.UsageEvent{EventID: u.who + u.at.String(), Email: u.who + "@x.io", Model: "m",
			InputTokens: u.credits, OccurredAt: u.at}}})
		if err != nil || res[0].Status != ledger.UsageAccepted {
			t.Fatalf("usage for %s: %+v %v", u.who, res, err)
		}
	}
	for _, who := range []string{"mia", "ute"} {
		if _, err := f.db.LogImpact(ctx, f.people[who].ID, "a brief that saved a day", 240, ""); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// run runs a job at a time (its own slot).
func (f *jobsFixture) run(t *testing.T, job string, at time.Time) string {
	t.Helper()
	f.now = at
	s := &Scheduler{Policy: f.pol}
	slot, _, err := s.Slot(job, at)
	if err != nil {
		t.Fatal(err)
	}
	result, err := f.svc.Run(f.ctx, Run{Job: job, Key: PeriodKey(slot), Slot: slot, At: at})
	if err != nil {
		t.Fatalf("%s: %v", job, err)
	}
	return result
}

// messages returns the queued messages of a kind and period, decoded, by person name.
func (f *jobsFixture) messages(t *testing.T, kind, period string) map[string]ledger.OutboxRow {
	t.Helper()
	rows, err := f.db.OutboxMessages(f.ctx, kind, period)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ledger.OutboxRow{}
	for _, r := range rows {
		for name, p := range f.people {
			if p.ID == r.PersonID {
				out[name] = r
			}
		}
	}
	return out
}

func decode(t *testing.T, r ledger.OutboxRow) bot.Reply {
	t.Helper()
	reply, err := bot.UnmarshalReply(r.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return reply
}

func names(m map[string]ledger.OutboxRow) []string {
	var out []string
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func tipOf(t *testing.T, r ledger.OutboxRow) string {
	t.Helper()
	for _, b := range buttons(decode(t, r)) {
		if strings.HasPrefix(b, "Try this prompt=") {
			return b
		}
	}
	return ""
}

func TestWeeklyDigestJob(t *testing.T) {
	f := newJobsFixture(t)
	monday := utcTime(11, 23, 9, 0)
	result := f.run(t, policy.JobWeeklyDigest, monday)
	got := f.messages(t, KindDigest, "2026-W48")
	if want := []string{"eve", "kim", "mia", "oli", "pat", "tok", "ute", "zed"}; !slices.Equal(names(got), want) {
		t.Fatalf("digests to %v, want %v (dig turned them off); result %q", names(got), want, result)
	}
	if !strings.Contains(result, "queued 8 digests for 2026-W48") || !strings.Contains(result, "1 turned digests off") {
		t.Errorf("result %q", result)
	}
	pat := replyText(decode(t, got["pat"]))
	for _, want := range []string{"1,000 credits used in November so far", "199,000 credits · 8 days to go", "Tip of the week"} {
		if !strings.Contains(pat, want) {
			t.Errorf("pat's digest lacks %q:\n%s", want, pat)
		}
	}
	if strings.Contains(pat, "dashboard") {
		t.Errorf("without TOKENPAY_PUBLIC_URL the digest links to a dashboard nobody can reach:\n%s", pat)
	}
	// 09:00 UTC is 18:00 in Tokyo, just before quiet hours: nobody waits.
	for _, who := range []string{"eve", "tok"} {
		if r := got[who]; !r.NotBefore.Equal(monday) || r.HoldReason != "" {
			t.Errorf("%s's digest is held until %s (%s)", who, r.NotBefore, r.HoldReason)
		}
	}
	firstTip := tipOf(t, got["eve"])
	if firstTip == "" {
		t.Fatal("eve's digest has no tip")
	}

	// The same week again queues nothing new.
	if again := f.run(t, policy.JobWeeklyDigest, monday.Add(time.Hour)); !strings.Contains(again, "queued 0 digests (8 already queued) for 2026-W48") {
		t.Errorf("second run: %q", again)
	}
	if n := len(f.messages(t, KindDigest, "2026-W48")); n != 8 {
		t.Errorf("%d digests after the second run", n)
	}
	// Next week's digest offers another tip: the first was recorded as shown. With the
	// dashboard's URL set, it links to the person's page.
	f.svc.DashboardURL = "https://tokenpay.example.com"
	f.run(t, policy.JobWeeklyDigest, monday.Add(7*24*time.Hour))
	next := f.messages(t, KindDigest, "2026-W49")
	if text := replyText(decode(t, next["eve"])); !strings.Contains(text, "Your page in the dashboard: https://tokenpay.example.com/dashboard/me") {
		t.Errorf("eve's digest lacks the dashboard link:\n%s", text)
	}
	if tip := tipOf(t, next["eve"]); tip == "" || tip == firstTip {
		t.Errorf("next week's tip %q repeats or lacks %q", tip, firstTip)
	}
}

func TestNudgesJob(t *testing.T) {
	f := newJobsFixture(t)
	tuesday := utcTime(11, 24, 10, 0)
	result := f.run(t, policy.JobNudges, tuesday)
	nudges := f.messages(t, KindNudge, PeriodKey(tuesday))
	if want := []string{"eve", "pat", "tok", "zed"}; !slices.Equal(names(nudges), want) {
		t.Fatalf("nudged %v, want %v; result %q", names(nudges), want, result)
	}
	for _, want := range []string{"4 nudges", "2 heads-ups", "1 held out", "1 turned off"} {
		if !strings.Contains(result, want) {
			t.Errorf("result %q lacks %q", result, want)
		}
	}
	if b := buttons(decode(t, nudges["eve"])); len(b) != 3 || !strings.HasPrefix(b[0], "Try this prompt=prompt_use:") {
		t.Errorf("eve's nudge buttons %q", b)
	}
	if text := replyText(decode(t, nudges["zed"])); !strings.Contains(text, "One habit that helps") {
		t.Errorf("zed (heavy, no outcomes) should get a quality tip:\n%s", text)
	}
	if r := nudges["tok"]; !r.NotBefore.Equal(utcTime(11, 24, 23, 0)) {
		t.Errorf("19:00 in Tokyo is quiet: held until %s", r.NotBefore)
	}
	heads := f.messages(t, KindHeadsUp, "2026-11")
	if want := []string{"ute", "zed"}; !slices.Equal(names(heads), want) {
		t.Errorf("heads-ups to %v, want %v", names(heads), want)
	}
	if text := replyText(decode(t, heads["ute"])); !strings.Contains(text, "used 85% of your AI credits for November, with 7 days to go") {
		t.Errorf("ute's heads-up:\n%s", text)
	}
	lift, err := f.db.NudgeLift(f.ctx, utcTime(11, 1, 0, 0), utcTime(12, 1, 0, 0), utcTime(12, 9, 0, 0), ActivationWindow, string(Dormant), string(Underuser))
	if err != nil || lift != (ledger.LiftCounts{Nudged: 3, HeldOut: 1}) {
		t.Errorf("nudge log: %+v %v (eve, pat and tok nudged; kim held out; zed is not an underuser)", lift, err)
	}

	// Thursday: nobody is nudged twice in a week, and heads-ups are once a period.
	thursday := utcTime(11, 26, 10, 0)
	result = f.run(t, policy.JobNudges, thursday)
	if n := len(f.messages(t, KindNudge, PeriodKey(thursday))); n != 0 || !strings.Contains(result, "5 nudged recently") {
		t.Errorf("Thursday nudged %d people: %q", n, result)
	}
	if n := len(f.messages(t, KindHeadsUp, "2026-11")); n != 2 {
		t.Errorf("%d heads-ups after Thursday, want the 2 of Tuesday", n)
	}
	// A week on, the cadence allows the next nudge.
	f.run(t, policy.JobNudges, utcTime(11, 24, 10, 0).Add(7*24*time.Hour))
	if n := len(f.messages(t, KindNudge, PeriodKey(utcTime(12, 1, 10, 0)))); n == 0 {
		t.Error("nobody nudged a week later")
	}
}

func TestManagerDigestExpiryAndAdminReport(t *testing.T) {
	f := newJobsFixture(t)
	f.svc.DashboardURL = "https://tokenpay.example.com/"
	f.now = utcTime(11, 16, 9, 0)
	pending, err := f.db.CreateRequest(f.ctx, ledger.RequestInput{RequesterID: f.people["pat"].ID, ApproverID: f.people["mia"].ID, Amount: 50_000,
		UseCase: "Summarise the interviews", ExpiresAt: utcTime(12, 1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := f.db.CreateRequest(f.ctx, ledger.RequestInput{RequesterID: f.people["eve"].ID, ApproverID: f.people["mia"].ID, Amount: 20_000,
		UseCase: "Draft the survey", ExpiresAt: utcTime(11, 23, 9, 45)})
	if err != nil {
		t.Fatal(err)
	}

	f.run(t, policy.JobManagerDigest, utcTime(11, 23, 9, 30))
	md := f.messages(t, KindManagerDigest, "2026-W48")
	if len(md) != 1 || md["mia"].ID == 0 {
		t.Fatalf("manager digests: %v", names(md))
	}
	text := replyText(decode(t, md["mia"]))
	for _, want := range []string{"your 8 reports", "*Might welcome a hand:* Eve Analyst, Kim Held, Oli Off, Pat Peer, Tok Yo.", "2 requests waiting",
		"Your team in the dashboard: https://tokenpay.example.com/dashboard/team"} {
		if !strings.Contains(text, want) {
			t.Errorf("manager digest lacks %q:\n%s", want, text)
		}
	}
	if b := buttons(decode(t, md["mia"])); !slices.Contains(b, "Approve=approve:"+itoa(pending.ID)) {
		t.Errorf("buttons %q lack approving request %d", b, pending.ID)
	}

	var refreshed []ledger.Request
	f.svc.RefreshApproval = func(_ context.Context, r ledger.Request) error {
		refreshed = append(refreshed, r)
		return nil
	}
	if result := f.run(t, policy.JobExpireRequests, utcTime(11, 23, 10, 0)); !strings.Contains(result, "expired 1 request;") ||
		!strings.HasSuffix(result, "; approval messages updated for 1") {
		t.Errorf("expire: %q", result)
	}
	if len(refreshed) != 1 || refreshed[0].ID != stale.ID || refreshed[0].Status != ledger.RequestExpired ||
		!refreshed[0].DecidedAt.Equal(stale.ExpiresAt) {
		t.Errorf("approval messages refreshed for %+v, want request %d as expired at its expiry", refreshed, stale.ID)
	}
	notice := f.messages(t, KindRequestExpired, "request-"+itoa(stale.ID))
	if text := replyText(decode(t, notice["eve"])); !strings.Contains(text, "expired on 23 Nov 09:45 UTC without a decision") {
		t.Errorf("expiry notice: %q", text)
	}
	if r, _ := f.db.Request(f.ctx, stale.ID); r.Status != ledger.RequestExpired {
		t.Errorf("request status %s", r.Status)
	}

	f.run(t, policy.JobPeriodReset, utcTime(12, 1, 0, 5))
	result := f.run(t, policy.JobAdminReport, utcTime(12, 1, 8, 0))
	reports := f.messages(t, KindAdminReport, "2026-11")
	if len(reports) != 1 || reports["mia"].ID == 0 || !strings.Contains(result, "queued 1 admin report for 2026-11") {
		t.Fatalf("admin reports %v: %q", names(reports), result)
	}
	text = replyText(decode(t, reports["mia"]))
	for _, want := range []string{"November 2026", "Research · 9 · 200,000 · 471,000", "Access across teams (Gini)", "Not enough data yet",
		"Charts and tables in the dashboard: https://tokenpay.example.com/dashboard/org"} {
		if !strings.Contains(text, want) {
			t.Errorf("admin report lacks %q:\n%s", want, text)
		}
	}
}

func TestQuarantineReplayJob(t *testing.T) {
	f := newJobsFixture(t)
	f.now = utcTime(11, 20, 9, 0)
	res, err := f.svc.Ingestor.Ingest(f.ctx, []usage.Item{{Event: ledger.UsageEvent{EventID: "late", Email: "new@x.io", Model: "m", InputTokens: 5, OccurredAt: f.now}}})
	if err != nil || res[0].Status != ledger.UsageQuarantined {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	if result := f.run(t, policy.JobQuarantineReplay, f.now); !strings.Contains(result, "replayed 0 quarantined usage events, 1 still waiting") {
		t.Errorf("before the person exists: %q", result)
	}
	if _, err := f.db.ImportPeople(f.ctx, []ledger.PersonRecord{{Line: 2, Email: "new@x.io", Name: "New Person"}}); err != nil {
		t.Fatal(err)
	}
	if result := f.run(t, policy.JobQuarantineReplay, f.now.Add(15*time.Minute)); !strings.Contains(result, "replayed 1") {
		t.Errorf("after: %q", result)
	}
}

func itoa(n int64) string { return strings.TrimSpace(ledger.FormatCredits(n)) }

// TestExpiryOutlivesAFailedMessageUpdate: a chat platform that cannot update the approval
// message does not undo or stop the expiry; the run says how many were left behind.
func TestExpiryOutlivesAFailedMessageUpdate(t *testing.T) {
	f := newJobsFixture(t)
	f.now = utcTime(11, 16, 9, 0)
	var ids []int64
	for _, who := range []string{"eve", "pat", "zed"} {
		req, err := f.db.CreateRequest(f.ctx, ledger.RequestInput{RequesterID: f.people[who].ID, ApproverID: f.people["mia"].ID, Amount: 20_000,
			UseCase: "Draft the survey", ExpiresAt: utcTime(11, 18, 9, 0)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, req.ID)
	}
	outcome := map[int64]error{ids[0]: nil, ids[1]: fmt.Errorf("router: %w", bot.ErrUnreachable), ids[2]: errors.New("chat.update: channel_not_found")}
	f.svc.RefreshApproval = func(_ context.Context, r ledger.Request) error { return outcome[r.ID] }
	result := f.run(t, policy.JobExpireRequests, utcTime(11, 18, 10, 0))
	if !strings.HasSuffix(result, "; approval messages updated for 1, 1 with no decider on a chat platform, 1 could not be (see the log)") {
		t.Errorf("expire: %q", result)
	}
	for i, id := range ids {
		if r, _ := f.db.Request(f.ctx, id); r.Status != ledger.RequestExpired {
			t.Errorf("request %d status %s, want expired", id, r.Status)
		}
		who := []string{"eve", "pat", "zed"}[i]
		if notice := f.messages(t, KindRequestExpired, "request-"+itoa(id)); notice[who].ID == 0 {
			t.Errorf("%s's notice was not queued", who)
		}
	}
}
