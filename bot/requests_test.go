package bot_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

func emails(ps []ledger.Person) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Email
	}
	return out
}

// lastApproval returns the latest approval view sent, failing if there is none.
func (f *fixture) lastApproval() bot.RequestView {
	f.t.Helper()
	vs, _ := f.notes.sent()
	if len(vs) == 0 {
		f.t.Fatal("no approval message was sent")
	}
	return vs[len(vs)-1]
}

func (f *fixture) approvalCount() int {
	vs, _ := f.notes.sent()
	return len(vs)
}

// unlocks returns the unlock grants of a person.
func (f *fixture) unlocks(email string) []ledger.Grant {
	f.t.Helper()
	var out []ledger.Grant
	for _, g := range f.grants(email) {
		if g.Kind == ledger.GrantUnlock {
			out = append(out, g)
		}
	}
	return out
}

// file has email request amount credits and checks it was filed as request id.
func (f *fixture) file(email, amount string, id int64) {
	f.t.Helper()
	// Each request its own use case: an open request with the same one is a duplicate.
	r := f.cmd(email, fmt.Sprintf("request %s summarise the customer interviews, batch %d", amount, id))
	if want := fmt.Sprintf("Request #%d for", id); !strings.Contains(text(r), want) {
		f.t.Fatalf("filing a request: %s", text(r))
	}
}

func TestFileRequest(t *testing.T) {
	f := newFixture(t)
	before := f.state()
	r := f.cmd(zoe, "/tokens request 50k summarise the customer interviews  for the Q3 readout")
	wantText(t, r, "Request #1 for 50,000 credits sent to Mia Manager. You will hear back here.",
		"Use case: summarise the customer interviews  for the Q3 readout")
	if r.Public {
		t.Error("the requester's confirmation is public")
	}
	if got := actions(r); !slices.Equal(got, []string{"cancel:1"}) {
		t.Errorf("buttons %v, want cancel:1", got)
	}

	req := f.request(1)
	if req.Status != ledger.RequestPending || req.RequesterID != f.people[zoe].ID || req.ApproverID != f.people[mia].ID ||
		req.Amount != 50_000 || req.NeedsAdmin || req.UseCase != "summarise the customer interviews  for the Q3 readout" ||
		!req.ExpiresAt.Equal(start.Add(expiresAfter)) {
		t.Errorf("stored %+v", req)
	}
	// Filing grants nothing.
	if got := f.available(zoe); got != baseline {
		t.Errorf("available %d, want %d", got, baseline)
	}
	if !reflect.DeepEqual(before.Grants[f.people[zoe].ID], f.grants(zoe)) {
		t.Errorf("filing changed grants: %+v", f.grants(zoe))
	}

	vs, ds := f.notes.sent()
	if len(vs) != 1 || len(ds) != 0 {
		t.Fatalf("sent %d approvals and %d direct messages, want 1 and 0", len(vs), len(ds))
	}
	v := vs[0]
	if got := emails(v.Deciders); !slices.Equal(got, []string{mia}) {
		t.Errorf("deciders %v, want the manager", got)
	}
	if v.Requester.Email != zoe || v.Approver.Email != mia || v.Request.ID != 1 {
		t.Errorf("view %+v", v)
	}
	if !v.Message.Public {
		t.Error("the approval message is private")
	}
	wantText(t, v.Message, "Request #1: 50,000 credits for Zoe Report", "From: Zoe Report (Eng)", "Amount: 50,000 credits",
		"summarise the customer interviews", "Filed 10 Nov 10:00 · expires 12 Nov 10:00 UTC")
	if got, want := actions(v.Message), []string{"approve:1", "deny:1", "ask:1"}; !slices.Equal(got, want) {
		t.Errorf("approval buttons %v, want %v", got, want)
	}
}

func TestFileRequestDeciders(t *testing.T) {
	tests := []struct {
		name      string
		requester string
		amount    string
		reply     string
		deciders  []string
		admin     bool
	}{
		{"within the manager limit", zoe, "100k", "sent to Mia Manager. You will", []string{mia}, false},
		{"over the manager limit", zoe, "100001", "sent to Mia Manager. It is above 100,000 credits, so an admin approves too.", []string{mia, ada}, true},
		{"no manager", dan, "5k", "sent to an admin.", []string{ada}, false},
		// Separation of duties: two admins approve when there is no manager.
		{"no manager, over the limit, two admins", dan, "500k", "sent to an admin. It is above", []string{ada, mia}, true},
		{"the requester is never a decider", ada, "5k", "sent to an admin.", []string{mia}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if strings.Contains(tt.name, "two admins") || strings.Contains(tt.name, "never a decider") {
				f.pol.Admins = []string{ada, mia}
			}
			wantText(t, f.cmd(tt.requester, "request "+tt.amount+" label the support backlog"), tt.reply)
			v := f.lastApproval()
			if got := emails(v.Deciders); !slices.Equal(got, tt.deciders) {
				t.Errorf("deciders %v, want %v", got, tt.deciders)
			}
			if v.Request.NeedsAdmin != tt.admin {
				t.Errorf("needs admin %v, want %v", v.Request.NeedsAdmin, tt.admin)
			}
			if tt.admin && v.Request.ApproverID != 0 {
				wantText(t, v.Message, "Approvals: manager: waiting · admin: waiting")
			}
			if tt.admin && v.Request.ApproverID == 0 {
				wantText(t, v.Message, "Approvals: first admin: waiting · second admin: waiting")
			}
		})
	}
}

// TestFileRequestNobodyCouldApprove: a request no two valid people could approve is
// refused when filed, with a sentence saying why, instead of being left to expire.
func TestFileRequestNobodyCouldApprove(t *testing.T) {
	tests := []struct {
		name      string
		requester string
		amount    string
		admins    []string
		reply     string
	}{
		{"the only admin asks, no manager", ada, "5k", []string{ada},
			"Nobody could approve this request: you have no manager in the directory and the policy names no admin besides you."},
		{"the only admin asks over the limit", ada, "500k", []string{ada},
			"Requests above 100,000 credits need an admin's approval as well, and the policy names no admin besides you who could give it."},
		{"no manager, one admin, over the limit", dan, "500k", []string{ada},
			"Requests above 100,000 credits need two different admins to approve, neither of them you, and the policy names only one (Ada Admin)."},
		{"the manager is the only admin", zoe, "500k", []string{mia},
			"the only admin who could is your manager, Mia Manager. Ask for at most 100,000 credits"},
		{"the manager is the only admin, with a delegate", zoe, "500k", []string{mia}, ""},
		{"no admin at all", zoe, "500k", nil,
			"Requests above 100,000 credits need an admin's approval as well, and the policy names no admin besides you who could give it."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.pol.Admins = tt.admins
			f.pol.Unlock.Delegates = nil // a delegate could take the manager's side
			before, sent := f.state(), f.sentCount()
			if tt.reply == "" {
				f.pol.Unlock.Delegates = map[string][]string{mia: {dan}}
				wantText(t, f.cmd(tt.requester, "request "+tt.amount+" label the support backlog"), "Request #1 for 500,000 credits sent to Mia Manager")
				return
			}
			wantText(t, f.cmd(tt.requester, "request "+tt.amount+" label the support backlog"), tt.reply)
			f.unchanged(before, sent)
		})
	}
}

// TestTwoDifferentApproversAboveTheLimit: the example. A manager who is also an
// admin approves a request above the manager limit: that is one approval, not two; the
// same person clicking again changes nothing; a second admin completes it.
func TestTwoDifferentApproversAboveTheLimit(t *testing.T) {
	f := newFixture(t)
	f.pol.Admins = []string{ada, mia}
	f.file(zoe, "150k", 1)
	wantText(t, f.act(mia, "approve:1", nil), "Approved on your side. Request #1 is above 100,000 credits, so it now waits for")
	if r := f.request(1); r.Status != ledger.RequestPending || r.ManagerApproval != f.people[mia].ID || r.AdminApproval != 0 {
		t.Fatalf("after the manager-admin's approval: %+v", r)
	}
	if got := emails(f.lastApproval().Deciders); !slices.Equal(got, []string{ada}) {
		t.Errorf("deciders after the first approval %v, want the other admin", got)
	}
	before, sent := f.state(), f.sentCount()
	wantText(t, f.act(mia, "approve:1", nil), "You already approved request #1")
	f.unchanged(before, sent)
	wantText(t, f.act(ada, "approve:1", nil), "Approved request #1")
	f.approved(ada, 150_000)
}

// TestAdminGrantToSelfAboveTheLimit: an admin's grant to themselves above the manager
// limit needs a second admin; within it, or to someone else, it goes through.
func TestAdminGrantToSelfAboveTheLimit(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	wantText(t, f.cmd(ada, "admin grant "+ada+" 200k offsite"), "A grant to yourself above 100,000 credits needs a second admin, and the policy names no other.")
	f.unchanged(before, sent)
	f.pol.Admins = []string{ada, mia}
	wantText(t, f.cmd(ada, "admin grant "+ada+" 200k offsite"), "needs a second admin: ask Mia Manager to run /tokens admin grant "+ada+" 200,000 offsite.")
	f.unchanged(before, sent)
	wantText(t, f.cmd(mia, "admin grant "+ada+" 200k offsite"), "Granted 200,000 credits to Ada Admin")
	wantText(t, f.cmd(ada, "admin grant "+ada+" 100k course"), "Granted 100,000 credits to Ada Admin")
}

func TestRequestBadInput(t *testing.T) {
	const usage = "Usage: /tokens request <amount> <use case>"
	tests := []struct {
		line string
		want []string
	}{
		{"request -5 more please", []string{"Amount must be a positive whole number of credits", usage}},
		{"request 0 more please", []string{"Amount must be a positive whole number of credits", usage}},
		{"request 0k more please", []string{"Amount must be a positive whole number of credits", usage}},
		{"request lots more please", []string{`"lots" is not an amount; use a whole number of credits such as 50000, 50,000 or 50k`, usage}},
		{"request 1.5 more please", []string{`"1.5" is not a whole number of credits`, usage}},
		{"request 1,5k more please", []string{`Did you mean 1.5k (1,500 credits)?`, usage}},
		{"request 1.500k more please", []string{`reads two ways: 1,500 credits or 1,500,000 credits`, usage}},
		{"request 5k! more please", []string{`"5k!" is not an amount`, usage}},
		{"request 1000001 more please", []string{"One request can ask for at most 1,000,000 credits. Ask for less, or talk to an admin"}},
		{"request 2m more please", []string{"One request can ask for at most 1,000,000 credits."}},
		// Over the largest possible amount, people are told the policy's maximum, not the ledger's.
		{"request 1000000000001 more please", []string{"One request can ask for at most 1,000,000 credits."}},
		{"request 99999999999999999999 more please", []string{"One request can ask for at most 1,000,000 credits."}},
		{"request 5k", []string{"Describe the use case (up to 1,000 characters) so your manager can approve it.", usage}},
		{"request 5 k", []string{"Describe the use case (up to 1,000 characters) so your manager can approve it.", usage}},
		{"request 5k " + strings.Repeat("ü", 1001), []string{"A use case can be at most 1,000 characters; yours has 1,001. Shorten it"}},
	}
	f := newFixture(t)
	for _, tt := range tests {
		before, sent := f.state(), f.sentCount()
		r := f.cmd(zoe, tt.line)
		got := text(r)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%.40q: reply %q, want %q", tt.line, got, w)
			}
		}
		f.unchanged(before, sent)
	}
}

func TestRequestForm(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	r := f.cmd(zoe, "request")
	if r.Modal == nil || r.Modal.Action.String() != "submit_request" {
		t.Fatalf("request with no arguments: want a modal submitting submit_request, got %s", text(r))
	}
	var ids []string
	for _, in := range r.Modal.Inputs {
		ids = append(ids, in.ID)
	}
	if want := []string{"amount", "use_case"}; !slices.Equal(ids, want) {
		t.Errorf("form inputs %v, want %v", ids, want)
	}
	if got := f.act(zoe, "open_request", nil); !equalModal(got.Modal, r.Modal) {
		t.Errorf("the Request more button opens a different form: %+v", got.Modal)
	}

	if got := text(f.act(zoe, "submit_request", nil)); !strings.Contains(got, "Usage: /tokens request") {
		t.Errorf("submit without a form: reply %q does not say what to fix", got)
	}
	// A wrong field keeps the form open with the message under that field (Errors, by
	// input id), and says the same in sentences for platforms that cannot keep it open.
	for _, tt := range []struct {
		form  map[string]string
		field string
		says  string
	}{
		{map[string]string{"amount": "", "use_case": "label the backlog"}, "amount", "is not an amount"},
		{map[string]string{"amount": "lots", "use_case": "label the backlog"}, "amount", `"lots" is not an amount`},
		{map[string]string{"amount": "-1", "use_case": "label the backlog"}, "amount", "positive"},
		{map[string]string{"amount": "5k", "use_case": "  \n "}, "use_case", "Describe the use case"},
		{map[string]string{"amount": "5000001", "use_case": "label the backlog"}, "amount", "at most 1,000,000 credits"},
	} {
		r := f.act(zoe, "submit_request", tt.form)
		if len(r.Errors) != 1 || !strings.Contains(r.Errors[tt.field], tt.says) || !strings.Contains(text(r), tt.says) {
			t.Errorf("form %v: errors %v, text %q; want %q under %s", tt.form, r.Errors, text(r), tt.says, tt.field)
		}
	}
	if r := f.act(zoe, "submit_request", map[string]string{"amount": "x", "use_case": ""}); len(r.Errors) != 2 {
		t.Errorf("two wrong fields: errors %v, want both", r.Errors)
	}
	f.unchanged(before, sent)

	r = f.act(zoe, "submit_request", map[string]string{"amount": " 20k ", "use_case": " label the support backlog\nby theme "})
	wantText(t, r, "Request #1 for 20,000 credits sent to Mia Manager.")
	if req := f.request(1); req.Amount != 20_000 || req.UseCase != "label the support backlog\nby theme" || req.Status != ledger.RequestPending {
		t.Errorf("stored %+v", req)
	}
	if got := emails(f.lastApproval().Deciders); !slices.Equal(got, []string{mia}) {
		t.Errorf("deciders %v", got)
	}
}

func equalModal(a, b *bot.Modal) bool {
	return a != nil && b != nil && a.Title == b.Title && a.Action == b.Action && slices.Equal(a.Inputs, b.Inputs)
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)

	refusals := []struct {
		actor, line, action, want string
	}{
		{actor: pete, line: "cancel 1", want: "Only the person who filed request #1 can cancel it."},
		{actor: mia, action: "cancel:1", want: "Only the person who filed request #1 can cancel it."},
		{actor: ada, line: "cancel #1", want: "Only the person who filed request #1 can cancel it."},
		{actor: zoe, line: "cancel", want: "Usage: /tokens cancel <request number>"},
		{actor: zoe, line: "cancel 1 2", want: "Usage: /tokens cancel <request number>"},
		{actor: zoe, line: "cancel abc", want: `"abc" is not a request number. Usage: /tokens cancel <request number>`},
		{actor: zoe, line: "cancel 99", want: `There is no request #99. The number is in the message that confirmed your request ("Request #12 for …").`},
	}
	for _, tt := range refusals {
		before, sent := f.state(), f.sentCount()
		var r bot.Reply
		if tt.action != "" {
			r = f.act(tt.actor, tt.action, nil)
		} else {
			r = f.cmd(tt.actor, tt.line)
		}
		if got := text(r); !strings.Contains(got, tt.want) {
			t.Errorf("%s %s%s: reply %q, want %q", tt.actor, tt.line, tt.action, got, tt.want)
		}
		f.unchanged(before, sent)
	}

	wantText(t, f.cmd(zoe, "cancel #1"), "Request #1 is cancelled.")
	if req := f.request(1); req.Status != ledger.RequestCancelled {
		t.Errorf("status %s, want cancelled", req.Status)
	}
	v := f.lastApproval()
	if v.Request.Status != ledger.RequestCancelled || len(actions(v.Message)) != 0 {
		t.Errorf("deciders' message after cancelling: status %s, buttons %v", v.Request.Status, actions(v.Message))
	}
	wantText(t, v.Message, "Cancelled by Zoe Report on 10 Nov 2026 at 10:00 UTC")

	before, sent := f.state(), f.sentCount()
	wantText(t, f.act(zoe, "cancel:1", nil), "Request #1 is already cancelled.")
	wantText(t, f.act(mia, "approve:1", nil), "Request #1 was already decided: Cancelled by Zoe Report")
	f.unchanged(before, sent)
}

// approved checks that request 1 from Zoe was approved by decider, granting amount once.
func (f *fixture) approved(decider string, amount int64) {
	f.t.Helper()
	req := f.request(1)
	if req.Status != ledger.RequestApproved || req.DecidedBy != f.people[decider].ID || req.GrantID == 0 {
		f.t.Errorf("request after approval: %+v", req)
	}
	if got := f.available(zoe); got != baseline+amount {
		f.t.Errorf("available %d, want %d", got, baseline+amount)
	}
	if gs := f.unlocks(zoe); len(gs) != 1 || gs[0].Amount != amount || gs[0].ID != req.GrantID || !gs[0].ExpiresAt.Equal(f.pol.UnlockExpiry(start)) {
		f.t.Errorf("unlock grants %+v, want one of %d until unlock.min_validity after approval", gs, amount)
	}
}

func TestDecideWho(t *testing.T) {
	tests := []struct {
		name      string
		requester string
		decider   string
		reply     string
		approves  bool
	}{
		{"requester", zoe, zoe, "You can't decide your own request; Mia Manager (the manager), their delegates or an admin can.", false},
		{"requester who is an admin", ada, ada, "You can't decide your own request; an admin can.", false}, // with a second admin
		{"peer", zoe, pete, "Only Mia Manager (the manager), their delegates or an admin can decide request #1.", false},
		{"another person's report", zoe, bob, "Only Mia Manager (the manager)", false},
		{"a manager, not theirs", dan, mia, "Only an admin can decide request #1.", false},
		{"manager", zoe, mia, "Approved request #1: Zoe Report now has 50,000 more credits, until 10 Dec 2026 10:00 UTC.", true},
		{"delegate", zoe, dan, "Approved request #1: Zoe Report now has 50,000 more credits, until 10 Dec 2026 10:00 UTC.", true},
		{"admin", zoe, ada, "Approved request #1: Zoe Report now has 50,000 more credits, until 10 Dec 2026 10:00 UTC.", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.requester == ada {
				f.pol.Admins = []string{ada, pete}
			}
			f.file(tt.requester, "50k", 1)
			before, sent := f.state(), f.sentCount()
			r := f.act(tt.decider, "approve:1", nil)
			wantText(t, r, tt.reply)
			if !tt.approves {
				f.unchanged(before, sent)
				return
			}
			f.approved(tt.decider, 50_000)
			name := f.people[tt.decider].Name
			if got := f.notes.directsTo(zoe); len(got) != 1 || !strings.Contains(got[0], "🎉 "+name+" approved your request #1: 50,000 more credits") {
				t.Errorf("requester was told %q", got)
			}
			v := f.lastApproval()
			if f.approvalCount() != 2 || v.Request.Status != ledger.RequestApproved || len(actions(v.Message)) != 0 {
				t.Errorf("after the decision: %d approval messages, status %s, buttons %v; want 2, approved, none",
					f.approvalCount(), v.Request.Status, actions(v.Message))
			}
			wantText(t, v.Message, "✅ Approved by "+name+" on 10 Nov 2026 at 10:00 UTC")
		})
	}
}

func TestDecideUnknownRequest(t *testing.T) {
	f := newFixture(t)
	before, sent := f.state(), f.sentCount()
	for _, a := range []string{"approve:7", "deny:7", "ask:7"} {
		wantText(t, f.act(mia, a, map[string]string{"reason": "x", "question": "y"}), "request 7 does not exist")
	}
	f.unchanged(before, sent)
}

func TestTwoStepApproval(t *testing.T) {
	tests := []struct {
		first, second string
		waiting       string // what the first decider is told remains
		stillDecides  []string
	}{
		{mia, ada, "manager: done · admin: waiting", []string{ada}},
		{dan, ada, "manager: done · admin: waiting", []string{ada}},
		{ada, mia, "manager: waiting · admin: done", []string{mia}},
		{ada, dan, "manager: waiting · admin: done", []string{mia}},
	}
	for _, tt := range tests {
		t.Run(tt.first+" then "+tt.second, func(t *testing.T) {
			f := newFixture(t)
			f.file(zoe, "150k", 1)
			before := f.state()

			r := f.act(tt.first, "approve:1", nil)
			wantText(t, r, "Approved on your side. Request #1 is above 100,000 credits, so it now waits for "+tt.waiting+".")
			if req := f.request(1); req.Status != ledger.RequestPending {
				t.Errorf("after one approval: status %s, want pending", req.Status)
			}
			zoeID := f.people[zoe].ID
			if got := f.state(); !reflect.DeepEqual(got.Grants[zoeID], before.Grants[zoeID]) || got.Balances[zoeID] != before.Balances[zoeID] {
				t.Error("one approval of a two-step request granted credits")
			}
			v := f.lastApproval()
			if got := emails(v.Deciders); !slices.Equal(got, tt.stillDecides) {
				t.Errorf("deciders after the first approval %v, want %v", got, tt.stillDecides)
			}
			if len(actions(v.Message)) != 3 {
				t.Errorf("the pending message lost its buttons: %v", actions(v.Message))
			}
			if got := f.notes.directsTo(zoe); len(got) != 0 {
				t.Errorf("requester told %q before the second approval", got)
			}

			mid, sent := f.state(), f.sentCount()
			wantText(t, f.act(tt.first, "approve:1", nil), "You already approved request #1; it is waiting for "+tt.waiting+".")
			f.unchanged(mid, sent)

			wantText(t, f.act(tt.second, "approve:1", nil), "Approved request #1: Zoe Report now has 150,000 more credits, until 10 Dec 2026 10:00 UTC.")
			f.approved(tt.second, 150_000)
			if req := f.request(1); req.ManagerApproval == 0 || req.AdminApproval == 0 {
				t.Errorf("both approvals not recorded: %+v", req)
			}

			after, sent := f.state(), f.sentCount()
			wantText(t, f.act(tt.first, "approve:1", nil), "Request #1 was already decided")
			f.unchanged(after, sent)
		})
	}
}

func TestDoubleDecision(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)
	wantText(t, f.act(mia, "approve:1", nil), "Approved request #1")
	f.approved(mia, 50_000)

	// Later clicks, even an hour on, say who decided and when, and change nothing.
	f.now = start.Add(time.Hour)
	before, sent := f.state(), f.sentCount()
	const want = "Request #1 was already decided: ✅ Approved by Mia Manager on 10 Nov 2026 at 10:00 UTC."
	wantText(t, f.act(mia, "approve:1", nil), want)
	wantText(t, f.act(ada, "approve:1", nil), want)
	wantText(t, f.act(dan, "deny:1", map[string]string{"reason": "too late"}), want)
	wantText(t, f.act(zoe, "approve:1", nil), want)
	f.unchanged(before, sent)
	f.approved(mia, 50_000)
}

func TestConcurrentApprove(t *testing.T) {
	f := newFixture(t)
	const n = 8
	f.h.Policy.Unlock.MaxPending = n
	for id := int64(1); id <= n; id++ {
		f.file(zoe, "10k", id)
	}
	deciders := []ledger.Person{f.person(mia), f.person(dan)}
	for id := int64(1); id <= n; id++ {
		a := bot.Action{Kind: bot.ActApprove, Value: fmt.Sprint(id)}
		replies := make([]string, len(deciders))
		click := make(chan struct{})
		var wg sync.WaitGroup
		for i, p := range deciders {
			wg.Go(func() {
				<-click
				replies[i] = text(f.h.Act(f.ctx, p, a, nil))
			})
		}
		close(click)
		wg.Wait()
		approved := 0
		for _, r := range replies {
			switch {
			case strings.Contains(r, fmt.Sprintf("Approved request #%d:", id)):
				approved++
			case !strings.Contains(r, "was already decided: ✅ Approved by"):
				t.Errorf("request %d: unexpected reply %q", id, r)
			}
		}
		if approved != 1 {
			t.Errorf("request %d: %d clicks approved, want exactly 1: %q", id, approved, replies)
		}
	}
	if gs := f.unlocks(zoe); len(gs) != n {
		t.Errorf("%d unlock grants, want %d", len(gs), n)
	}
	if got := f.available(zoe); got != baseline+n*10_000 {
		t.Errorf("available %d, want %d", got, baseline+n*10_000)
	}
	if got := f.notes.directsTo(zoe); len(got) != n {
		t.Errorf("requester told %d times, want %d", len(got), n)
	}
}

func TestDecideAfterExpiry(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Duration
		action string
		form   map[string]string
	}{
		{"approve after expiry", expiresAfter + time.Minute, "approve:1", nil},
		{"deny at the expiry instant", expiresAfter, "deny:1", map[string]string{"reason": "no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.file(zoe, "50k", 1)
			f.now = start.Add(tt.at)
			wantText(t, f.act(mia, tt.action, tt.form),
				"Request #1 expired on 12 Nov 10:00 UTC, before your decision. Zoe Report can file it again.")
			req := f.request(1)
			if req.Status != ledger.RequestExpired || req.GrantID != 0 || req.DecidedBy != 0 {
				t.Errorf("request %+v, want expired with no grant and no decider", req)
			}
			if got := f.available(zoe); got != baseline {
				t.Errorf("available %d, want %d", got, baseline)
			}
			if gs := f.unlocks(zoe); len(gs) != 0 {
				t.Errorf("unlock grants %+v, want none", gs)
			}
			if got := f.notes.directsTo(zoe); len(got) != 1 || !strings.Contains(got[0], "Your request #1 for 50,000 credits expired without a decision. File it again with /tokens request") {
				t.Errorf("requester was told %q", got)
			}
			v := f.lastApproval()
			if v.Request.Status != ledger.RequestExpired || len(actions(v.Message)) != 0 {
				t.Errorf("deciders' message: status %s, buttons %v", v.Request.Status, actions(v.Message))
			}
			wantText(t, v.Message, "Expired on 12 Nov 2026 at 10:00 UTC without a decision")

			before, sent := f.state(), f.sentCount()
			wantText(t, f.act(ada, "approve:1", nil), "Request #1 was already decided: Expired on 12 Nov 2026 at 10:00 UTC")
			f.unchanged(before, sent)
		})
	}
}

// TestRefreshApprovalAfterExpiry: the expiry job has the deciders' message updated in
// place: the outcome, no buttons, sent to the same manager as the original.
func TestRefreshApprovalAfterExpiry(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)
	posted := f.lastApproval()
	f.now = start.Add(expiresAfter + time.Hour)
	expired, err := f.db.ExpireRequests(f.ctx)
	if err != nil || len(expired) != 1 {
		t.Fatalf("expire: %+v %v", expired, err)
	}
	before, _ := f.notes.sent()
	if err := f.h.RefreshApproval(f.ctx, expired[0]); err != nil {
		t.Fatal(err)
	}
	after, _ := f.notes.sent()
	if len(after) != len(before)+1 {
		t.Fatalf("%d approval messages sent, want 1", len(after)-len(before))
	}
	v := f.lastApproval()
	if v.Request.ID != 1 || v.Request.Status != ledger.RequestExpired || len(actions(v.Message)) != 0 {
		t.Errorf("refreshed message: request %d %s, buttons %v", v.Request.ID, v.Request.Status, actions(v.Message))
	}
	if v.Approver.ID != posted.Approver.ID || v.Requester.ID != posted.Requester.ID {
		t.Errorf("refreshed for approver %d and requester %d, posted for %d and %d", v.Approver.ID, v.Requester.ID, posted.Approver.ID, posted.Requester.ID)
	}
	wantText(t, v.Message, "Expired on 12 Nov 2026 at 10:00 UTC without a decision")
}

func TestDeny(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)

	before, sent := f.state(), f.sentCount()
	r := f.act(mia, "deny:1", nil)
	if r.Modal == nil || r.Modal.Action.String() != "deny:1" || len(r.Modal.Inputs) != 1 || r.Modal.Inputs[0].ID != "reason" {
		t.Fatalf("deny without a form: want a modal asking for a reason, got %+v", r)
	}
	wantText(t, f.act(pete, "deny:1", map[string]string{"reason": "no"}), "Only Mia Manager (the manager), their delegates or an admin can decide request #1.")
	wantText(t, f.act(zoe, "deny:1", map[string]string{"reason": "no"}), "You can't decide your own request")
	wantText(t, f.act(mia, "deny:1", map[string]string{"reason": strings.Repeat("n", 501)}), "A reason can be at most 500 characters")
	f.unchanged(before, sent)

	const reason = "Use the shared team budget first"
	wantText(t, f.act(mia, "deny:1", map[string]string{"reason": "  " + reason + "\n"}), "Denied request #1. Zoe Report has been told.")
	req := f.request(1)
	if req.Status != ledger.RequestDenied || req.Note != reason || req.DecidedBy != f.people[mia].ID || req.GrantID != 0 {
		t.Errorf("request %+v, want denied by Mia with the reason", req)
	}
	if got := f.available(zoe); got != baseline || len(f.unlocks(zoe)) != 0 {
		t.Errorf("a denial granted credits: available %d, unlocks %+v", got, f.unlocks(zoe))
	}
	if got := f.notes.directsTo(zoe); len(got) != 1 ||
		!strings.Contains(got[0], "Mia Manager did not approve your request #1 for 50,000 credits. Their note: "+reason+" You can file a new request") {
		t.Errorf("requester was told %q", got)
	}
	v := f.lastApproval()
	if v.Request.Status != ledger.RequestDenied || len(actions(v.Message)) != 0 {
		t.Errorf("deciders' message: status %s, buttons %v", v.Request.Status, actions(v.Message))
	}
	wantText(t, v.Message, "Denied by Mia Manager on 10 Nov 2026 at 10:00 UTC: "+reason)
}

func TestDenyWithoutReason(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)
	wantText(t, f.act(ada, "deny:1", map[string]string{"reason": " "}), "Denied request #1.")
	if got := f.notes.directsTo(zoe); len(got) != 1 || strings.Contains(got[0], "Their note") || !strings.Contains(got[0], "Ada Admin did not approve") {
		t.Errorf("requester was told %q", got)
	}
}

func TestAsk(t *testing.T) {
	f := newFixture(t)
	f.file(zoe, "50k", 1)
	before, sent := f.state(), f.sentCount()

	r := f.act(mia, "ask:1", nil)
	if r.Modal == nil || r.Modal.Action.String() != "ask:1" || len(r.Modal.Inputs) != 1 || r.Modal.Inputs[0].ID != "question" {
		t.Fatalf("ask without a form: want a modal asking for the question, got %+v", r)
	}
	wantText(t, f.act(mia, "ask:1", map[string]string{"question": "  "}), "Type your question (up to 500 characters).")
	wantText(t, f.act(mia, "ask:1", map[string]string{"question": strings.Repeat("?", 501)}), "Type your question (up to 500 characters).")
	wantText(t, f.act(pete, "ask:1", map[string]string{"question": "why?"}), "Only Mia Manager (the manager), their delegates or an admin can ask about request #1.")
	wantText(t, f.act(zoe, "ask:1", map[string]string{"question": "why?"}), "Only Mia Manager (the manager)")
	f.unchanged(before, sent)

	wantText(t, f.act(dan, "ask:1", map[string]string{"question": "Which interviews, and by when?"}), "Sent your question to Zoe Report.")
	got := f.notes.directsTo(zoe)
	if len(got) != 1 || !strings.Contains(got[0], "Dan Delegate has a question about your request #1 for 50,000 credits:\nWhich interviews, and by when?") {
		t.Errorf("requester was told %q", got)
	}
	// A question decides nothing.
	f.storeUnchanged(before)
	if f.approvalCount() != 1 {
		t.Errorf("asking re-sent the approval message")
	}
}

func TestValidateImpact(t *testing.T) {
	f := newFixture(t)
	wantText(t, f.cmd(zoe, "impact drafted the board memo in an hour --hours 3"), "Logged impact #1")

	before, sent := f.state(), f.sentCount()
	for _, who := range []string{pete, zoe, dan, bob} {
		wantText(t, f.act(who, "validate:1", nil), "Only Zoe Report's manager can validate their impact.")
	}
	wantText(t, f.act(mia, "validate:99", nil), "impact 99 does not exist")
	f.unchanged(before, sent)

	wantText(t, f.act(mia, "validate:1", nil), "Validated Zoe Report's impact #1.")
	im, err := f.db.Impact(f.ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if im.ValidatedBy != f.people[mia].ID || !im.ValidatedAt.Equal(start) {
		t.Errorf("impact %+v, want validated by Mia now", im)
	}
	if got := f.notes.directsTo(zoe); len(got) != 1 || !strings.Contains(got[0], "Mia Manager validated your impact: drafted the board memo in an hour") {
		t.Errorf("owner was told %q", got)
	}

	f.now = start.Add(24 * time.Hour)
	before, sent = f.state(), f.sentCount()
	wantText(t, f.act(mia, "validate:1", nil), "Impact #1 was already validated on 10 Nov 2026.")
	f.unchanged(before, sent)
}

// Unlocked credits last at least unlock.min_validity: approved on the last day of
// November, they last into December, and both the decider and the requester are told until
// when. With no minimum they end with the period.
func TestUnlockApprovedOnTheLastDay(t *testing.T) {
	lastDay := time.Date(2026, 11, 30, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		minValidity time.Duration
		until       time.Time
		says        string
	}{
		{"default 30 days", 30 * 24 * time.Hour, time.Date(2026, 12, 30, 18, 0, 0, 0, time.UTC), "30 Dec 2026 18:00 UTC"},
		{"no minimum", 0, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "1 Dec 2026 00:00 UTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.pol.Unlock.MinValidity = tt.minValidity
			f.now = lastDay
			f.file(zoe, "50k", 1)
			wantText(t, f.act(mia, "approve:1", nil), "Approved request #1: Zoe Report now has 50,000 more credits, until "+tt.says+".")
			if gs := f.unlocks(zoe); len(gs) != 1 || !gs[0].ExpiresAt.Equal(tt.until) || !gs[0].EffectiveAt.Equal(lastDay) {
				t.Fatalf("unlock grants %+v, want one from %s until %s", gs, lastDay, tt.until)
			}
			if got := f.notes.directsTo(zoe); len(got) != 1 || !strings.Contains(got[0], "available now until "+tt.says+".") {
				t.Errorf("requester was told %q", got)
			}
		})
	}
}
