package bot_test

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// The directory every test starts from. Mia manages Zoe, Pete and Bob (imported in that
// order, so id order is not alphabetical); Dan decides for Mia as her delegate; Ada is the
// admin. Neither Mia, Dan nor Ada has a manager.
const (
	ada  = "ada@example.com"
	mia  = "mia@example.com"
	dan  = "dan@example.com"
	zoe  = "zoe@example.com"
	pete = "pete@example.com"
	bob  = "bob@example.com"
)

const (
	baseline     = 200_000
	managerLimit = 100_000
	maxRequest   = 1_000_000
	expiresAfter = 48 * time.Hour
)

// start is the fixed clock: a Tuesday, 20 days and 14 hours before the November period ends.
var start = time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)

// recorder is a fake chat platform: it keeps what the core sends.
type recorder struct {
	mu        sync.Mutex
	approvals []bot.RequestView
	directs   []directMessage
}

type directMessage struct {
	To    ledger.Person
	Reply bot.Reply
}

func (r *recorder) Approval(_ context.Context, v bot.RequestView) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.approvals = append(r.approvals, v)
	return nil
}

func (r *recorder) Direct(_ context.Context, to ledger.Person, reply bot.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.directs = append(r.directs, directMessage{To: to, Reply: reply})
	return nil
}

func (r *recorder) sent() ([]bot.RequestView, []directMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.approvals), slices.Clone(r.directs)
}

// directsTo returns the text of every direct message to email.
func (r *recorder) directsTo(email string) []string {
	_, ds := r.sent()
	var out []string
	for _, d := range ds {
		if d.To.Email == email {
			out = append(out, text(d.Reply))
		}
	}
	return out
}

type fixture struct {
	t      *testing.T
	ctx    context.Context
	db     ledgertest.Store
	pol    *policy.Policy
	h      *bot.Handler
	notes  *recorder
	now    time.Time
	people map[string]ledger.Person
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	f := &fixture{t: t, ctx: ctx, db: db, notes: &recorder{}, now: start}
	db.SetNow(func() time.Time { return f.now })

	pol := policy.Default()
	pol.Admins = []string{ada}
	pol.Unlock.ManagerLimit = managerLimit
	pol.Unlock.MaxRequest = maxRequest
	pol.Unlock.ExpiresAfter = expiresAfter
	pol.Unlock.Delegates = map[string][]string{mia: {dan}}
	f.pol = pol

	recs := []ledger.PersonRecord{
		{Email: ada, Name: "Ada Admin", Team: "Ops", Role: "admin"},
		{Email: mia, Name: "Mia Manager", Team: "Eng", Role: "manager"},
		{Email: dan, Name: "Dan Delegate", Team: "Eng", Role: "lead"},
		{Email: zoe, Name: "Zoe Report", Team: "Eng", Role: "engineer", ManagerEmail: mia},
		{Email: pete, Name: "Pete Peer", Team: "Eng", Role: "engineer", ManagerEmail: mia},
		{Email: bob, Name: "Bob Report", Team: "Eng", Role: "engineer", ManagerEmail: mia},
	}
	for i := range recs {
		recs[i].Line = i + 2
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := period.Reset(ctx, db, pol, start); err != nil {
		t.Fatal(err)
	}
	f.h = &bot.Handler{Store: db, Policy: pol, Now: func() time.Time { return f.now }, Log: zerolog.Nop(), Notify: f.notes}
	f.people = map[string]ledger.Person{}
	for _, r := range recs {
		f.people[r.Email] = f.person(r.Email)
	}
	return f
}

// person reads a person as a platform adapter would before handling their event.
func (f *fixture) person(email string) ledger.Person {
	f.t.Helper()
	p, err := f.db.PersonByEmail(f.ctx, email)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) cmd(email, line string) bot.Reply {
	f.t.Helper()
	return f.h.Command(f.ctx, f.person(email), line)
}

func (f *fixture) act(email, action string, form map[string]string) bot.Reply {
	f.t.Helper()
	a, ok := bot.ParseAction(action)
	if !ok {
		f.t.Fatalf("bad action %q in test", action)
	}
	return f.h.Act(f.ctx, f.person(email), a, form)
}

func (f *fixture) available(email string) int64 {
	f.t.Helper()
	b, err := f.db.Balance(f.ctx, f.people[email].ID, f.pol.PeriodStart(f.now), f.pol.PeriodEnd(f.now))
	if err != nil {
		f.t.Fatal(err)
	}
	return b.Available
}

func (f *fixture) grants(email string) []ledger.Grant {
	f.t.Helper()
	gs, err := f.db.Grants(f.ctx, f.people[email].ID, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return gs
}

func (f *fixture) request(id int64) ledger.Request {
	f.t.Helper()
	r, err := f.db.Request(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return r
}

// state is everything a command could change in the store.
type state struct {
	People   []ledger.Person
	Balances map[int64]ledger.Balance
	Grants   map[int64][]ledger.Grant
	Requests map[int64][]ledger.Request
	Impacts  map[int64][]ledger.Impact
	Audit    []ledger.AuditEntry
}

func (f *fixture) state() state {
	f.t.Helper()
	s := state{Balances: map[int64]ledger.Balance{}, Grants: map[int64][]ledger.Grant{},
		Requests: map[int64][]ledger.Request{}, Impacts: map[int64][]ledger.Impact{}}
	var err error
	if s.People, err = f.db.People(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	for _, p := range s.People {
		if s.Balances[p.ID], err = f.db.Balance(f.ctx, p.ID, f.pol.PeriodStart(f.now), f.pol.PeriodEnd(f.now)); err != nil {
			f.t.Fatal(err)
		}
		if s.Grants[p.ID], err = f.db.Grants(f.ctx, p.ID, 1000); err != nil {
			f.t.Fatal(err)
		}
		if s.Requests[p.ID], err = f.db.RequestsBy(f.ctx, p.ID, 1000); err != nil {
			f.t.Fatal(err)
		}
		if s.Impacts[p.ID], err = f.db.Impacts(f.ctx, p.ID, time.Time{}, 1000); err != nil {
			f.t.Fatal(err)
		}
	}
	if s.Audit, err = f.db.AuditLog(f.ctx, 1000); err != nil {
		f.t.Fatal(err)
	}
	return s
}

// unchanged fails the test if the store differs from before or anything was sent.
func (f *fixture) unchanged(before state, sentBefore int) {
	f.t.Helper()
	f.storeUnchanged(before)
	if n := f.sentCount(); n != sentBefore {
		f.t.Errorf("%d notifications sent, want none", n-sentBefore)
	}
}

func (f *fixture) storeUnchanged(before state) {
	f.t.Helper()
	if after := f.state(); !reflect.DeepEqual(before, after) {
		f.t.Errorf("store changed:\nbefore %+v\nafter  %+v", before, after)
	}
}

func (f *fixture) sentCount() int {
	a, d := f.notes.sent()
	return len(a) + len(d)
}

// text flattens a reply into what a person reads.
func text(r bot.Reply) string {
	var parts []string
	if r.Header != "" {
		parts = append(parts, r.Header)
	}
	for _, b := range r.Blocks {
		switch b := b.(type) {
		case *bot.Text:
			parts = append(parts, b.Text)
		case *bot.Heading:
			parts = append(parts, "*"+b.Text+"*")
		case *bot.List:
			if b.Title != "" {
				parts = append(parts, "*"+b.Title+"*")
			}
			for _, it := range b.Items {
				parts = append(parts, it.Line())
				for _, bt := range it.Buttons {
					parts = append(parts, "["+bt.Label+"]")
				}
			}
			if b.More != "" {
				parts = append(parts, b.More)
			}
		case *bot.Context:
			parts = append(parts, b.Text)
		case *bot.Progress:
			parts = append(parts, b.Label)
		case *bot.Fields:
			for _, fl := range b.Fields {
				parts = append(parts, fl.Label+": "+fl.Value)
			}
		case *bot.Buttons:
			for _, bt := range b.Buttons {
				parts = append(parts, "["+bt.Label+"]")
			}
		}
	}
	if r.Modal != nil {
		parts = append(parts, "modal: "+r.Modal.Title)
	}
	return strings.Join(parts, "\n")
}

// actions lists the action ids of every button in a reply, in order.
func actions(r bot.Reply) []string {
	var out []string
	for _, b := range r.Blocks {
		switch b := b.(type) {
		case *bot.Buttons:
			for _, bt := range b.Buttons {
				out = append(out, bt.Action.String())
			}
		case *bot.List:
			for _, it := range b.Items {
				for _, bt := range it.Buttons {
					out = append(out, bt.Action.String())
				}
			}
		}
	}
	return out
}

func wantText(t *testing.T, r bot.Reply, subs ...string) {
	t.Helper()
	got := text(r)
	for _, s := range subs {
		if !strings.Contains(got, s) {
			t.Errorf("reply does not say %q; it says:\n%s", s, got)
		}
	}
}

func TestBalance(t *testing.T) {
	f := newFixture(t)
	r := f.cmd(bob, "")
	if r.Public || r.Modal != nil {
		t.Errorf("balance must be a private message, got %+v", r)
	}
	wantText(t, r, "Your AI token allowance", "Available: 200,000 credits", "Used this period: 0 credits",
		"Resets in: 21 days", "0 of 200,000 credits used this period", "/tokens request <amount> <use case>")
	if got, want := actions(r), []string{"open_request", "open_impact"}; !slices.Equal(got, want) {
		t.Errorf("buttons %v, want %v", got, want)
	}
	for _, line := range []string{"balance", "/tokens", "/tokens balance", "tokens BALANCE", "  /TOKENS   bal  ", "/tokens\tbalance"} {
		if got := f.cmd(bob, line); !reflect.DeepEqual(got, r) {
			t.Errorf("%q answers differently from the empty command:\n%s", line, text(got))
		}
	}
	if got := f.act(bob, "balance", nil); !reflect.DeepEqual(got, r) {
		t.Errorf("balance button answers differently from the command:\n%s", text(got))
	}
}

func TestBalanceShowsUseAndOverage(t *testing.T) {
	f := newFixture(t)
	_, err := f.db.PostUsage(f.ctx, []ledger.UsagePosting{{Credits: 250_000, Event: ledger.UsageEvent{
		EventID: "e1", Email: bob, Model: "gpt-x", InputTokens: 1, OutputTokens: 1, OccurredAt: start.Add(-time.Hour), Source: "test"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.cmd(bob, "balance")
	wantText(t, r, "Available: 0 credits", "Used this period: 250,000 credits", "200,000 of 200,000 credits used",
		"You used 50,000 credits beyond your allowance")
	var bar *bot.Progress
	for _, b := range r.Blocks {
		if p, ok := b.(*bot.Progress); ok {
			bar = p
		}
	}
	if bar == nil || bar.Ratio() != 1 {
		t.Errorf("progress %+v, want a full bar", bar)
	}
}

func TestHistory(t *testing.T) {
	f := newFixture(t)
	wantText(t, f.cmd(bob, "history"), "Your recent activity", "10 Nov 10:00  +200,000  granted · baseline for 2026-11")

	// Someone imported after the period reset has nothing yet.
	if _, err := f.db.ImportPeople(f.ctx, []ledger.PersonRecord{{Line: 2, Email: "nia@example.com", Name: "Nia New", Team: "Eng"}}); err != nil {
		t.Fatal(err)
	}
	r := f.h.Command(f.ctx, f.person("nia@example.com"), "history")
	wantText(t, r, "Nothing yet: your grants and spending will show here.")
}

func TestHelp(t *testing.T) {
	f := newFixture(t)
	f.h.Extra = map[string]bot.CommandFunc{"prompts": nil, "learn": nil}
	r := f.cmd(pete, "help")
	wantText(t, r, "tokenpay: AI tokens as a capability to grow", "*/tokens request <amount> <use case>*",
		"*/tokens cancel <request number>*", "*/tokens impact <what happened> [--hours N] [--link URL]*",
		"*/tokens nudges on|off*", "*/tokens team*", "*/tokens learn*", "*/tokens prompts*", "*/tokens admin grant")
	if got := text(r); strings.Index(got, "learn") > strings.Index(got, "prompts") {
		t.Errorf("extra commands are not listed alphabetically:\n%s", got)
	}
	if got := f.cmd(pete, "?"); !reflect.DeepEqual(got, r) {
		t.Errorf("? answers differently from help:\n%s", text(got))
	}
}

func TestUnknownCommandAnswersHelp(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	help := f.cmd(pete, "help")
	r := f.cmd(pete, "/tokens frobnicate now")
	wantText(t, r, `I don't know the command "frobnicate". Here is what I can do:`)
	if !reflect.DeepEqual(r.Blocks[1:], help.Blocks) || r.Header != help.Header {
		t.Errorf("unknown command does not carry the help text:\n%s", text(r))
	}
	f.unchanged(before, sent)

	long := f.cmd(pete, strings.Repeat("x", 100))
	wantText(t, long, `"`+strings.Repeat("x", 40)+`…"`)
}

func TestExtraCommands(t *testing.T) {
	f := newFixture(t)
	var got bot.Command
	var who ledger.Person
	f.h.Extra = map[string]bot.CommandFunc{
		"learn": func(_ context.Context, actor ledger.Person, c bot.Command) bot.Reply {
			got, who = c, actor
			return bot.Reply{Header: "lessons"}
		},
	}
	if r := f.cmd(zoe, "/tokens Learn  prompt basics"); r.Header != "lessons" {
		t.Fatalf("extra command not called: %+v", r)
	}
	want := bot.Command{Name: "learn", Args: []string{"prompt", "basics"}, Rest: "prompt basics"}
	if !reflect.DeepEqual(got, want) || who.Email != zoe {
		t.Errorf("extra command got %+v from %s, want %+v from %s", got, who.Email, want, zoe)
	}
}

func TestCommandTooLong(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	long := "request 5k " + strings.Repeat("a", bot.MaxCommandBytes)
	r := f.cmd(zoe, long)
	wantText(t, r, "That is too long for one command (at most 4000 characters). Shorten it and try again.")
	f.unchanged(before, sent)

	// The limit is on bytes as sent; exactly the limit is still read.
	edge := "help" + strings.Repeat(" ", bot.MaxCommandBytes-4)
	wantText(t, f.cmd(zoe, edge), "tokenpay: AI tokens as a capability to grow")
	wantText(t, f.cmd(zoe, edge+" "), "too long")
}

func TestImpact(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		reply   string
		text    string
		minutes int64
		link    string
	}{
		{"plain", "impact drafted the board memo in one hour", "Logged impact #1. Thank you", "drafted the board memo in one hour", 0, ""},
		{"hours", "impact shipped the report --hours 2", "Logged impact #1 (2 hours saved)", "shipped the report", 120, ""},
		{"fraction and link", "/tokens impact summarised interviews --hours 2.5 --link https://wiki.example.com/q3?x=1",
			"Logged impact #1 (2.5 hours saved)", "summarised interviews", 150, "https://wiki.example.com/q3?x=1"},
		{"short flag, mixed order", "impact --link http://intra/x sorted the backlog -h 1", "(1 hour saved)", "sorted the backlog", 60, "http://intra/x"},
		{"zero hours", "impact tried it --hours 0", "Logged impact #1. Thank you", "tried it", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.cmd(zoe, tt.line)
			wantText(t, r, tt.reply, tt.text)
			ims, err := f.db.Impacts(f.ctx, f.people[zoe].ID, time.Time{}, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(ims) != 1 || ims[0].Text != tt.text || ims[0].Minutes != tt.minutes || ims[0].Link != tt.link {
				t.Errorf("stored %+v, want text %q, %d minutes, link %q", ims, tt.text, tt.minutes, tt.link)
			}
		})
	}
}

// TestImpactAloneOpensTheForm: like request, impact without text opens its form.
func TestImpactAloneOpensTheForm(t *testing.T) {
	f := newFixture(t)
	for _, line := range []string{"impact", "impact   "} {
		r := f.cmd(zoe, line)
		if r.Modal == nil || r.Modal.Action.Kind != bot.ActSubmitImpact {
			t.Errorf("%q: %+v, want the impact form", line, r)
		}
		if m, again, ok := f.h.CommandForm(line); !ok || m.Title != "Log impact" || again.Kind != bot.ActOpenImpact {
			t.Errorf("CommandForm(%q) = %v, %v, %v", line, m, again, ok)
		}
	}
}

func TestImpactBadInput(t *testing.T) {
	const usage = "Usage: /tokens impact <what happened>"
	tests := []struct{ line, want string }{
		{"impact --hours 2", "Say what happened (up to 1,000 characters)."},
		{"impact " + strings.Repeat("é", 1001), "Say what happened (up to 1,000 characters)."},
		{"impact did it --hours", "--hours needs a number, e.g. --hours 1.5"},
		{"impact did it --hours two", "--hours needs a number of hours from 0 to 1000"},
		{"impact did it --hours -1", "--hours needs a number of hours from 0 to 1000"},
		{"impact did it --hours 1001", "--hours needs a number of hours from 0 to 1000"},
		{"impact did it --hours NaN", "--hours needs a number of hours"},
		{"impact did it --hours Inf", "--hours needs a number of hours"},
		{"impact did it --link", "--link needs a web address, e.g."},
		{"impact did it --link wiki/report", "--link needs a web address starting with https://"},
		{"impact did it --link javascript:alert(1)", "--link needs a web address starting with https://"},
		{"impact did it --link ftp://files/x", "--link needs a web address starting with https://"},
		{"impact did it --link https://", "--link needs a web address starting with https://"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		before, sent := f.state(), f.sentCount()
		r := f.cmd(zoe, tt.line)
		if got := text(r); !strings.Contains(got, tt.want) || !strings.Contains(got, usage) {
			t.Errorf("%.40q: reply %q, want %q and the usage", tt.line, got, tt.want)
		}
		f.unchanged(before, sent)
	}
}

func TestImpactForm(t *testing.T) {
	f := newFixture(t)
	r := f.act(zoe, "open_impact", nil)
	if r.Modal == nil || r.Modal.Action.String() != "submit_impact" {
		t.Fatalf("open_impact: want a modal submitting submit_impact, got %+v", r)
	}
	var ids []string
	for _, in := range r.Modal.Inputs {
		ids = append(ids, in.ID)
	}
	if want := []string{"text", "hours", "link"}; !slices.Equal(ids, want) {
		t.Errorf("impact form inputs %v, want %v", ids, want)
	}

	before, sent := f.state(), f.sentCount()
	for _, tt := range []struct {
		form        map[string]string
		field, says string
	}{
		{map[string]string{"text": "wrote the runbook", "hours": "lots"}, "hours", "number from 0 to 1000"},
		{map[string]string{"text": " ", "hours": "1"}, "text", "Say what happened"},
		{map[string]string{"text": "wrote the runbook", "link": "wiki/runbook"}, "link", "https://"},
	} {
		r := f.act(zoe, "submit_impact", tt.form)
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[tt.field], tt.says) {
			t.Errorf("form %v: errors %v, want %q under %s", tt.form, r.Errors, tt.says, tt.field)
		}
		wantText(t, r, tt.says)
	}
	f.unchanged(before, sent)

	r = f.act(zoe, "submit_impact", map[string]string{"text": "wrote the runbook", "hours": " 1.5 ", "link": "https://wiki/runbook"})
	wantText(t, r, "Logged impact #1 (1.5 hours saved)")
	ims, err := f.db.Impacts(f.ctx, f.people[zoe].ID, time.Time{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(ims) != 1 || ims[0].Text != "wrote the runbook" || ims[0].Minutes != 90 || ims[0].Link != "https://wiki/runbook" {
		t.Errorf("stored %+v", ims)
	}
}

func TestNudgesAndDigests(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		line, action          string
		reply                 string
		nudgesOff, digestsOff bool
	}{
		{line: "nudges off", reply: "Nudges are off. Your weekly digest stays; turn it off with /tokens digests off.", nudgesOff: true},
		{line: "digests off", reply: "Weekly digests are off. Turn them back on with /tokens digests on.", nudgesOff: true, digestsOff: true},
		{line: "nudges on", reply: "Nudges are on: at most one a week, never in your quiet hours.", digestsOff: true},
		{line: "/tokens digests on", reply: "Weekly digests are on."},
		{action: "nudges_off", reply: "Nudges are off.", nudgesOff: true},
	}
	for _, s := range steps {
		var r bot.Reply
		if s.action != "" {
			r = f.act(zoe, s.action, nil)
		} else {
			r = f.cmd(zoe, s.line)
		}
		wantText(t, r, s.reply)
		if p := f.person(zoe); p.NudgesOff != s.nudgesOff || p.DigestsOff != s.digestsOff {
			t.Errorf("after %q%s: nudges off %v, digests off %v; want %v, %v", s.line, s.action, p.NudgesOff, p.DigestsOff, s.nudgesOff, s.digestsOff)
		}
	}

	for _, line := range []string{"nudges", "nudges maybe", "nudges off now", "digests", "digests yes"} {
		before, sent := f.state(), f.sentCount()
		name := strings.Fields(line)[0]
		wantText(t, f.cmd(zoe, line), "Usage: /tokens "+name+" on|off")
		f.unchanged(before, sent)
	}
}

func TestTeamForManager(t *testing.T) {
	f := newFixture(t)
	wantText(t, f.cmd(zoe, "request 20k summarise the customer interviews"), "Request #1")
	wantText(t, f.cmd(bob, "impact automated the weekly report --hours 3"), "Logged impact #1")
	// Grand-reports' requests and other teams' are not Mia's to decide.
	wantText(t, f.cmd(dan, "request 5k tidy the release notes"), "Request #2")

	r := f.cmd(mia, "team")
	got := text(r)
	wantText(t, r, "Your team's AI tokens", "*1 request waiting for a decision*",
		"#1 · Zoe Report asks for 20,000 credits: summarise the customer interviews",
		"*Outcomes to validate*", "#1 · Bob Report: automated the weekly report", "0 of 200,000 credits")
	bobAt, peteAt, zoeAt := strings.Index(got, "Bob Report  ·"), strings.Index(got, "Pete Peer  ·"), strings.Index(got, "Zoe Report  ·")
	if bobAt < 0 || !(bobAt < peteAt && peteAt < zoeAt) {
		t.Errorf("reports are not listed alphabetically:\n%s", got)
	}
	if strings.Contains(got, "Dan Delegate") || strings.Contains(got, "Ada Admin") {
		t.Errorf("team view shows people who are not Mia's reports:\n%s", got)
	}
	if want := []string{"approve:1", "deny:1", "ask:1", "validate:1"}; !slices.Equal(actions(r), want) {
		t.Errorf("buttons %v, want %v", actions(r), want)
	}
	if strings.Contains(got, "Waiting for an admin") {
		t.Errorf("a manager who is not an admin sees the admin queue:\n%s", got)
	}
}

func TestTeamForNonManager(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	r := f.cmd(pete, "team")
	wantText(t, r, "You have no direct reports in the directory, so there is no team view for you. Your own allowance: /tokens balance.")
	if len(actions(r)) != 0 {
		t.Errorf("non-manager gets buttons: %v", actions(r))
	}
	f.unchanged(before, sent)
}

func TestTeamForAdmin(t *testing.T) {
	f := newFixture(t)
	r := f.cmd(ada, "team")
	wantText(t, r, "No requests are waiting for an admin.")

	wantText(t, f.cmd(dan, "request 5k tidy the release notes"), "sent to an admin")
	wantText(t, f.cmd(zoe, "request 150k fine-tune the support classifier"), "an admin approves too")
	wantText(t, f.cmd(bob, "request 5k draft the onboarding guide"), "sent to Mia Manager")
	r = f.cmd(ada, "team")
	// Ada has no reports: the queue is the whole view, under its own title, without the
	// team's heading or a divider before nothing (issue 16).
	wantText(t, r, "Requests waiting for an admin", "*2 requests waiting for a decision*",
		"#1 · Dan Delegate asks for 5,000 credits", "#2 · Zoe Report asks for 150,000 credits")
	if got := text(r); strings.Contains(got, "Your team") || strings.Contains(got, "*Waiting for an admin*") {
		t.Errorf("empty headings for an admin without reports:\n%s", got)
	}
	if _, ok := r.Blocks[0].(*bot.Divider); ok {
		t.Error("the view starts with a divider")
	}
	if strings.Contains(text(r), "Bob Report") {
		t.Errorf("admin queue lists a request only the manager must decide:\n%s", text(r))
	}
	if want := []string{"approve:1", "deny:1", "ask:1", "approve:2", "deny:2", "ask:2"}; !slices.Equal(actions(r), want) {
		t.Errorf("buttons %v, want %v", actions(r), want)
	}

	// Once an admin approved the two-step request, it waits for the manager only.
	wantText(t, f.act(ada, "approve:2", nil), "Approved on your side")
	if got := text(f.cmd(ada, "team")); strings.Contains(got, "#2 ·") {
		t.Errorf("admin queue still lists a request the admin already approved:\n%s", got)
	}
}

func TestAdminGrant(t *testing.T) {
	f := newFixture(t)
	r := f.cmd(ada, "admin grant bob@example.com 10k onboarding  project")
	wantText(t, r, "Granted 10,000 credits to Bob Report until the end of the period.")
	if got := f.available(bob); got != baseline+10_000 {
		t.Errorf("available %d, want %d", got, baseline+10_000)
	}
	gs := f.grants(bob)
	if len(gs) != 2 || gs[0].Kind != ledger.GrantAdjustment || gs[0].Amount != 10_000 || gs[0].Reason != "onboarding project" ||
		!gs[0].ExpiresAt.Equal(f.pol.PeriodEnd(start)) {
		t.Errorf("grants %+v, want a 10,000 adjustment until the period end", gs)
	}
	audit, err := f.db.AuditLog(f.ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].Actor != ada || audit[0].Action != "grant" || audit[0].Subject != bob {
		t.Errorf("audit %+v", audit)
	}
	if got := f.notes.directsTo(bob); len(got) != 1 || !strings.Contains(got[0], "Ada Admin granted you 10,000 credits: onboarding project") {
		t.Errorf("bob was told %q", got)
	}

	// The same command again is a second grant, even with the clock standing still.
	wantText(t, f.cmd(ada, "admin grant BOB@example.com 10k onboarding project"), "Granted 10,000 credits to Bob Report")
	if got := f.available(bob); got != baseline+20_000 {
		t.Errorf("after a second grant: available %d, want %d", got, baseline+20_000)
	}
	if got := len(f.grants(bob)); got != 3 {
		t.Errorf("%d grants, want 3", got)
	}
}

func TestAdminBadInput(t *testing.T) {
	tests := []struct{ actor, line, want string }{
		{pete, "admin grant bob@example.com 10k because", "Admin commands are for the admins named in the policy."},
		{mia, "admin report", "Admin commands are for the admins named in the policy."},
		{pete, "admin", "Admin commands are for the admins named in the policy."},
		{ada, "admin", "Admin commands: /tokens admin grant <email> <amount> <reason>, /tokens admin report."},
		{ada, "admin frobnicate", "Admin commands: /tokens admin grant"},
		{ada, "admin grant", "Usage: /tokens admin grant <email> <amount> <reason>"},
		{ada, "admin grant bob@example.com 10k", "Usage: /tokens admin grant <email> <amount> <reason>"},
		{ada, "admin grant bob@example.com -5 oops", "Amount must be a positive whole number of credits"},
		{ada, "admin grant bob@example.com 0 oops", "Amount must be a positive whole number of credits"},
		{ada, "admin grant bob@example.com 25 k", "Say why: the reason is kept in the ledger"},
		{ada, "admin grant bob@example.com 1,5k pilot", "Did you mean 1.5k (1,500 credits)?"},
		{ada, "admin grant bob@example.com ten oops", `"ten" is not an amount`},
		{ada, "admin grant bob@example.com 2000000000000 oops", "Amount must be at most 1,000,000,000,000 credits"},
		{ada, "admin grant nobody@example.com 5k welcome", "nobody@example.com is not in the directory"},
		{ada, "admin grant bob@example.com 5k " + strings.Repeat("r", 501), "A reason can be at most 500 characters."},
	}
	f := newFixture(t)
	for _, tt := range tests {
		before, sent := f.state(), f.sentCount()
		if got := text(f.cmd(tt.actor, tt.line)); !strings.Contains(got, tt.want) {
			t.Errorf("%s: %.50q: reply %q, want %q", tt.actor, tt.line, got, tt.want)
		}
		f.unchanged(before, sent)
	}
}

func TestAdminReport(t *testing.T) {
	f := newFixture(t)
	wantText(t, f.cmd(zoe, "request 20k summarise interviews"), "Request #1")
	wantText(t, f.act(mia, "approve:1", nil), "Approved request #1")
	wantText(t, f.cmd(pete, "request 20k label the backlog"), "Request #2")
	wantText(t, f.act(mia, "deny:2", map[string]string{"reason": "not now"}), "Denied request #2")

	before, sent := f.state(), f.sentCount()
	r := f.cmd(ada, "admin report")
	// Eng: five people, 5×200,000 + 20,000 granted, one approval and one denial.
	wantText(t, r, "Allocation and use this period", "Eng · 5 · 204,000 · 0 · 50%", "Ops · 1 · 200,000 · 0 · no decisions")
	f.unchanged(before, sent)
}

func TestUnknownAction(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	r := f.h.Act(f.ctx, f.person(zoe), bot.Action{Kind: "share_prompt", Value: "3"}, nil)
	wantText(t, r, "That button is no longer supported. Type /tokens help to see what you can do.")
	f.unchanged(before, sent)

	f.h.ExtraActions = func(_ context.Context, _ ledger.Person, a bot.Action, _ map[string]string) (bot.Reply, bool) {
		return bot.Reply{Header: "shared " + a.Value}, a.Kind == "share_prompt"
	}
	if r := f.h.Act(f.ctx, f.person(zoe), bot.Action{Kind: "share_prompt", Value: "3"}, nil); r.Header != "shared 3" {
		t.Errorf("extra action not called: %+v", r)
	}
}

func TestProgress(t *testing.T) {
	tests := []struct {
		value, max int64
		ratio      float64
		bar        string
	}{
		{0, 100, 0, "░░░░░░░░░░ 0%"},
		{40, 100, 0.4, "▓▓▓▓░░░░░░ 40%"},
		{1, 3, 1.0 / 3, "▓▓▓░░░░░░░ 33%"},
		{100, 100, 1, "▓▓▓▓▓▓▓▓▓▓ 100%"},
		{250, 100, 1, "▓▓▓▓▓▓▓▓▓▓ 100%"},
		{-5, 100, 0, "░░░░░░░░░░ 0%"},
		{0, 0, 0, "░░░░░░░░░░ 0%"},
		{7, 0, 1, "▓▓▓▓▓▓▓▓▓▓ 100%"},
		{7, -1, 1, "▓▓▓▓▓▓▓▓▓▓ 100%"},
		{ledger.MaxAmount, ledger.MaxAmount * 2, 0.5, "▓▓▓▓▓░░░░░ 50%"},
	}
	for _, tt := range tests {
		p := &bot.Progress{Value: tt.value, Max: tt.max}
		if got := p.Ratio(); got != tt.ratio {
			t.Errorf("%d/%d: ratio %v, want %v", tt.value, tt.max, got, tt.ratio)
		}
		if got := p.Bar(10); got != tt.bar {
			t.Errorf("%d/%d: bar %q, want %q", tt.value, tt.max, got, tt.bar)
		}
	}
	if got := (&bot.Progress{Value: 1, Max: 2}).Bar(0); got != " 50%" {
		t.Errorf("zero-width bar %q, want only the percentage", got)
	}
}
