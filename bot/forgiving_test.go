package bot_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// TestAmountsAsTyped files requests and grants with the amounts people type (issue 16):
// each files the amount meant, with the use case or reason that follows it, untouched.
func TestAmountsAsTyped(t *testing.T) {
	tests := []struct {
		line    string
		amount  int64
		useCase string
	}{
		{"request 50 k summarise the interviews", 50_000, "summarise the interviews"},
		{"request 50 K summarise the interviews", 50_000, "summarise the interviews"},
		{"request 50,000 summarise the interviews", 50_000, "summarise the interviews"},
		{"request 50.000 summarise the interviews", 50_000, "summarise the interviews"},
		{"request 50k credits summarise the interviews", 50_000, "summarise the interviews"},
		{"request 50 k credits summarise the interviews", 50_000, "summarise the interviews"},
		{"request 0.5M summarise the interviews", 500_000, "summarise the interviews"},
		{"request 1.5k kick off the pilot", 1_500, "kick off the pilot"},
		{"request 5000 k-means clustering of the survey", 5_000, "k-means clustering of the survey"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			f := newFixture(t)
			wantText(t, f.cmd(zoe, tt.line), "Request #1 for "+ledger.FormatCredits(tt.amount)+" credits sent to Mia Manager.")
			req := f.request(1)
			if req.Amount != tt.amount || req.UseCase != tt.useCase {
				t.Errorf("filed %d credits for %q, want %d for %q", req.Amount, req.UseCase, tt.amount, tt.useCase)
			}
		})
	}

	grants := []struct {
		line   string
		amount int64
		reason string
	}{
		{"admin grant bob@example.com 25 k pilot project", 25_000, "pilot project"},
		{"admin grant bob@example.com 1.5M pilot project", 1_500_000, "pilot project"},
		{"admin grant bob@example.com 25,000 credits pilot project", 25_000, "pilot project"},
	}
	for _, tt := range grants {
		t.Run(tt.line, func(t *testing.T) {
			f := newFixture(t)
			before := f.available(bob)
			wantText(t, f.cmd(ada, tt.line), "Granted "+ledger.FormatCredits(tt.amount)+" credits to Bob Report")
			if got := f.available(bob) - before; got != tt.amount {
				t.Errorf("granted %d, want %d", got, tt.amount)
			}
			found := false
			for _, g := range f.grants(bob) {
				found = found || (g.Kind == ledger.GrantAdjustment && g.Amount == tt.amount && g.Reason == tt.reason)
			}
			if !found {
				t.Errorf("no adjustment of %d for %q in %+v", tt.amount, tt.reason, f.grants(bob))
			}
		})
	}
}

// TestDashFlags: Slack and macOS turn "--" into an em or en dash as people type.
func TestDashFlags(t *testing.T) {
	for _, line := range []string{
		"impact drafted the memo --hours 2",
		"impact drafted the memo \u2014hours 2",
		"impact drafted the memo \u2013hours 2",
		"impact drafted the memo \u2014\u2014hours 2",
	} {
		f := newFixture(t)
		wantText(t, f.cmd(zoe, line), "Logged impact #1 (2 hours saved)")
		ims, err := f.db.Impacts(f.ctx, f.people[zoe].ID, time.Time{}, 10)
		if err != nil || len(ims) != 1 || ims[0].Minutes != 120 || ims[0].Text != "drafted the memo" {
			t.Errorf("%q: impacts %+v, %v", line, ims, err)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	tests := []struct{ line, want string }{
		{"balanse", `I don't know the command "balanse". Did you mean balance?`},
		{"histroy", "Did you mean history?"},
		{"reqest 50k x", "Did you mean request? Type /tokens request 50k x"},
		{"tema", "Did you mean team?"},
		{"xyzzy", "Here is what I can do:"},
	}
	f := newFixture(t)
	for _, tt := range tests {
		before, sent := f.state(), f.sentCount()
		wantText(t, f.cmd(zoe, tt.line), tt.want)
		f.unchanged(before, sent)
	}
}

// TestOpenRequestLimits: a duplicate of an open request points to it; more than the
// policy's max_pending open at once is refused; a decided or cancelled one frees a place.
func TestOpenRequestLimits(t *testing.T) {
	f := newFixture(t)
	f.pol.Unlock.MaxPending = 3
	wantText(t, f.cmd(zoe, "request 50k label the support backlog"), "Request #1 for 50,000 credits")

	before, sent := f.state(), f.sentCount()
	r := f.cmd(zoe, "request 80k Label the  support backlog.")
	wantText(t, r, "You already asked for this: request #1 for 50,000 credits", "No new request was filed.", "/tokens cancel 1")
	f.unchanged(before, sent)

	wantText(t, f.cmd(zoe, "request 10k draft the release notes"), "Request #2")
	wantText(t, f.cmd(zoe, "request 10k review the onboarding guide"), "Request #3")
	before, sent = f.state(), f.sentCount()
	wantText(t, f.cmd(zoe, "request 10k summarise the survey"),
		"You already have 3 requests waiting for a decision", "#1 · 50,000 credits · label the support backlog", "#3 · 10,000 credits")
	f.unchanged(before, sent)

	// Someone else is not limited by Zoe's requests.
	wantText(t, f.cmd(pete, "request 10k summarise the survey"), "Request #4")
	// Deciding one frees a place.
	wantText(t, f.act(mia, "approve:2", nil), "Approved request #2")
	wantText(t, f.cmd(zoe, "request 10k summarise the survey"), "Request #5")
	// A request past its expiry, not yet swept by the hourly job, holds no place.
	f.now = f.now.Add(expiresAfter + time.Minute)
	wantText(t, f.cmd(zoe, "request 10k label the support backlog"), "Request #6")
}

// TestTeamPercentBeyondAllowance: someone who used 3.2 times their allowance reads 320%.
func TestTeamPercentBeyondAllowance(t *testing.T) {
	f := newFixture(t)
	ing := &usage.Ingestor{Store: f.db, Policy: f.pol, Now: func() time.Time { return f.now }, Credits: func(_ string, in, out int64) (int64, error) {
		return in + out, nil
	}}
	res, err := ing.Ingest(f.ctx, []usage.Item{
		{Event: ledger.UsageEvent{EventID: "z1", Email: zoe, Model: "m", InputTokens: 3.2 * baseline, OccurredAt: f.now.Add(-time.Hour)}},
		{Event: ledger.UsageEvent{EventID: "b1", Email: bob, Model: "m", InputTokens: baseline / 2, OccurredAt: f.now.Add(-time.Hour)}},
	})
	if err != nil || res[0].Status != ledger.UsageAccepted {
		t.Fatalf("%+v %v", res, err)
	}
	got := text(f.cmd(mia, "team"))
	for _, w := range []string{"▓▓▓▓▓▓▓▓▓▓ 320%  Zoe Report  · 640,000 of 200,000 credits", "▓▓▓▓▓░░░░░ 50%  Bob Report  · 100,000 of 200,000 credits",
		"░░░░░░░░░░ 0%  Pete Peer"} {
		if !strings.Contains(got, w) {
			t.Errorf("team view lacks %q:\n%s", w, got)
		}
	}
}

// TestAllowanceExplained: balance says what "of N" is made of, and history shows the
// rollover carried into the period even when newer activity fills the list.
func TestAllowanceExplained(t *testing.T) {
	f := newFixture(t)
	next := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f.now = next.Add(26 * time.Hour)
	if _, err := period.Reset(f.ctx, f.db, f.pol, next); err != nil {
		t.Fatal(err)
	}
	wantText(t, f.cmd(ada, "admin grant zoe@example.com 10k pilot"), "Granted 10,000 credits")
	wantText(t, f.cmd(zoe, "balance"), "0 of 260,000 credits used this period",
		"Your 260,000 this period: 200,000 baseline + 50,000 carried over from last period + 10,000 granted by an admin.")
	ing := &usage.Ingestor{Store: f.db, Policy: f.pol, Now: func() time.Time { return f.now }, Credits: func(_ string, in, out int64) (int64, error) {
		return in + out, nil
	}}
	var items []usage.Item
	for i := range 20 {
		items = append(items, usage.Item{Event: ledger.UsageEvent{EventID: fmt.Sprint("u", i), Email: zoe, Model: "m", InputTokens: 100, OccurredAt: f.now.Add(-time.Duration(i+1) * time.Minute)}})
	}
	if _, err := ing.Ingest(f.ctx, items); err != nil {
		t.Fatal(err)
	}
	wantText(t, f.cmd(zoe, "history"), "This period began on 1 Dec with 50,000 credits carried over from the last period, on top of the 200,000 baseline.")
	wantText(t, f.cmd(zoe, "balance"), "2,000 of 260,000 credits used this period", "Your 260,000 this period: 200,000 baseline + 50,000 carried over")
}

func TestRequestSentences(t *testing.T) {
	f := newFixture(t)
	tests := []struct{ line, want string }{
		{"request 50k " + strings.Repeat("a", 1001), "A use case can be at most 1,000 characters; yours has 1,001."},
		{"request 99999999999999999999 more please", "One request can ask for at most 1,000,000 credits."},
		{"request 2m more please", "One request can ask for at most 1,000,000 credits."},
	}
	for _, tt := range tests {
		before, sent := f.state(), f.sentCount()
		r := f.cmd(zoe, tt.line)
		wantText(t, r, tt.want)
		if got := text(r); strings.Contains(got, "describe the use case") || strings.Contains(got, "1000000000000") {
			t.Errorf("%.30q: %q", tt.line, got)
		}
		f.unchanged(before, sent)
	}
}
