package bot_test

import (
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// TestFormsOpenWithoutTheActor: the forms a button or command opens are known before
// anyone is looked up, and are the forms Act and Command open.
func TestFormsOpenWithoutTheActor(t *testing.T) {
	f := newFixture(t)
	for _, action := range []string{"deny:1", "ask:1", "open_request", "open_impact"} {
		a, _ := bot.ParseAction(action)
		m, ok := f.h.Form(a)
		if !ok || !equalModal(m, f.act(mia, action, nil).Modal) {
			t.Errorf("Form(%s) = %+v, %v; want the form Act opens", action, m, ok)
		}
	}
	for _, action := range []string{"approve:1", "balance", "submit_request", "cancel:1"} {
		a, _ := bot.ParseAction(action)
		if m, ok := f.h.Form(a); ok {
			t.Errorf("Form(%s) = %+v; it opens no form", action, m)
		}
	}
	m, again, ok := f.h.CommandForm("/tokens request")
	if !ok || again.Kind != bot.ActOpenRequest || !equalModal(m, f.cmd(zoe, "request").Modal) {
		t.Errorf("CommandForm(request) = %+v %v %v", m, again, ok)
	}
	for _, line := range []string{"request 5k x", "balance", "", strings.Repeat("x", bot.MaxCommandBytes+1)} {
		if _, _, ok := f.h.CommandForm(line); ok {
			t.Errorf("CommandForm(%q) opens a form", line)
		}
	}
}

// TestEveryFormSaysWhichFieldIsWrong: each core form answers a wrong field with its
// message under that field and changes nothing.
func TestEveryFormSaysWhichFieldIsWrong(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "5k", 1)
	before, sent := f.state(), f.sentCount()
	long := strings.Repeat("é", 501)
	for _, tt := range []struct {
		action string
		form   map[string]string
		field  string
	}{
		{"deny:1", map[string]string{"reason": long}, "reason"},
		{"ask:1", map[string]string{"question": " "}, "question"},
		{"ask:1", map[string]string{"question": long}, "question"},
		{"submit_request", map[string]string{"amount": "lots", "use_case": "x"}, "amount"},
		{"submit_impact", map[string]string{"text": "x", "hours": "-1"}, "hours"},
	} {
		r := f.act(mia, tt.action, tt.form)
		if len(r.Errors) != 1 || r.Errors[tt.field] == "" || text(r) != r.Errors[tt.field] {
			t.Errorf("%s %v: errors %v, text %q; want one message under %s", tt.action, tt.form, r.Errors, text(r), tt.field)
		}
	}
	f.unchanged(before, sent)
	// An empty reason is fine: it is optional.
	wantText(t, f.act(mia, "deny:1", map[string]string{"reason": ""}), "Denied request #1")
}

// TestApprovalShowsTheRequesterContext: deciders see who asks for how much in one line,
// and the requester's use, open and earlier requests and outcomes.
func TestApprovalShowsTheRequesterContext(t *testing.T) {
	f := newFixture(t)
	wantText(t, f.cmd(zoe, "impact drafted the runbook with AI --hours 2"), "Logged impact")
	f.file(zoe, "5k", 1)
	wantText(t, f.act(mia, "deny:1", map[string]string{"reason": "smaller first"}), "Denied")
	f.file(zoe, "7k", 2)
	r := f.cmd(zoe, "request 50k R&D survey <draft> for Q4")
	wantText(t, r, "Request #3")
	v := f.lastApproval()
	if v.Message.Summary != "Zoe Report asks for 50,000 credits: R&D survey <draft> for Q4" {
		t.Errorf("summary %q", v.Message.Summary)
	}
	got := text(v.Message)
	for _, want := range []string{"About Zoe Report", "Used this period: 0 of 200,000 credits (0%)",
		"Other open requests: #2 for 7,000", "Earlier requests: 1 denied", "Outcomes logged this period: 1",
		"2 hours saved: drafted the runbook with AI"} {
		if !strings.Contains(got, want) {
			t.Errorf("approval message lacks %q:\n%s", want, got)
		}
	}
	if v.About.Outcomes != 1 || len(v.About.Open) != 1 || v.About.Past[ledger.RequestDenied] != 1 {
		t.Errorf("context %+v", v.About)
	}
}
