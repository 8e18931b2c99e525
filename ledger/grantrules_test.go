package ledger

import (
	"errors"
	"testing"
	"time"
)

func TestPrepareGrant(t *testing.T) {
	ok := GrantInput{Key: "k", PersonID: 1, Kind: GrantAdjustment, Amount: 100}
	with := func(f func(*GrantInput)) GrantInput { in := ok; f(&in); return in }
	tests := []struct {
		name string
		in   GrantInput
		code string
		from string
	}{
		{"pool by default", ok, "", AccountPool},
		{"reclaimed credits", with(func(in *GrantInput) { in.From = AccountExpired }), "", AccountExpired},
		{"zero amount", with(func(in *GrantInput) { in.Amount = 0 }), Invalid, ""},
		{"negative amount", with(func(in *GrantInput) { in.Amount = -5 }), Invalid, ""},
		{"above the maximum", with(func(in *GrantInput) { in.Amount = MaxAmount + 1 }), Invalid, ""},
		{"unknown kind", with(func(in *GrantInput) { in.Kind = "bonus" }), Invalid, ""},
		{"no key", with(func(in *GrantInput) { in.Key = "" }), Invalid, ""},
		{"from a person", with(func(in *GrantInput) { in.From = AvailableAccount(2) }), Invalid, ""},
	}
	for _, tc := range tests {
		got, err := PrepareGrant(tc.in)
		if ErrorCode(err) != tc.code {
			t.Errorf("%s: %v, want code %q", tc.name, err, tc.code)
		}
		if err == nil && got.From != tc.from {
			t.Errorf("%s: from %q, want %q", tc.name, got.From, tc.from)
		}
	}
}

func TestGrantStarts(t *testing.T) {
	now := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		eff, exp time.Time
		want     time.Time
		code     string
	}{
		{"now when unset", time.Time{}, now.Add(time.Hour), now, ""},
		{"as given", now.Add(-time.Hour), now.Add(time.Hour), now.Add(-time.Hour), ""},
		{"expiring as it starts", time.Time{}, now, now, Invalid},
		{"expiring before it starts", now.Add(2 * time.Hour), now.Add(time.Hour), now.Add(2 * time.Hour), Invalid},
	}
	for _, tc := range tests {
		got, err := GrantStarts(GrantInput{EffectiveAt: tc.eff, ExpiresAt: tc.exp}, now)
		if ErrorCode(err) != tc.code || !got.Equal(tc.want) {
			t.Errorf("%s: %v %v, want %v code %q", tc.name, got, err, tc.want, tc.code)
		}
	}
}

func TestReversalRules(t *testing.T) {
	if err := CheckReallocation(500, 499); ErrorCode(err) != Invalid {
		t.Errorf("reallocating more than is reclaimable: %v", err)
	}
	if err := CheckReallocation(500, 500); err != nil {
		t.Errorf("reallocating all that is reclaimable: %v", err)
	}
	for _, tc := range []struct {
		kind     string
		reversed bool
		code     string
	}{
		{TxGrant, false, ""}, {TxReallocate, false, ""}, {TxUsage, false, ""},
		{TxUsage, true, Conflict}, {TxGrant, true, Conflict},
		{TxReset, false, Invalid}, {TxSettle, false, Invalid}, {TxLateUsage, false, Invalid}, {TxReversal, false, Invalid},
	} {
		if err := CheckReversible(7, tc.kind, tc.reversed); ErrorCode(err) != tc.code {
			t.Errorf("reverse %s (reversed=%v): %v, want code %q", tc.kind, tc.reversed, err, tc.code)
		}
	}
	for _, tc := range []struct {
		g    Grant
		code string
	}{
		{Grant{ID: 1, Amount: 100, Remaining: 100}, ""},
		{Grant{ID: 1, Amount: 100, Remaining: 99}, Conflict},
		{Grant{ID: 1, Amount: 100, Remaining: 100, Closed: true}, Conflict},
	} {
		if err := CheckGrantReversible(tc.g); ErrorCode(err) != tc.code {
			t.Errorf("reverse grant %+v: %v, want code %q", tc.g, err, tc.code)
		}
	}

	// Usage of 1,200 credits with 200 overage: reversed, 1,000 go back to the person.
	usage := []Posting{{SpentAccount(3), 1200}, {AvailableAccount(3), -1000}, {OverageAccount(3), -200}}
	rev := ReversalPostings(usage)
	if err := ValidatePostings(append(append([]Posting{}, usage...), rev...)); err != nil || len(rev) != 3 || rev[1].Amount != 1000 {
		t.Fatalf("reversal %v: %v", rev, err)
	}
	now := time.Date(2026, 11, 10, 9, 0, 0, 0, time.UTC)
	if n, err := UsageRefund(3, rev, now.Add(time.Hour), now); err != nil || n != 1000 {
		t.Errorf("refund %d %v, want 1000", n, err)
	}
	if _, err := UsageRefund(3, rev, now, now); ErrorCode(err) != Invalid {
		t.Errorf("refund expiring now: %v, want Invalid", err)
	}
	allOverage := ReversalPostings([]Posting{{SpentAccount(3), 50}, {AvailableAccount(3), 0}, {OverageAccount(3), -50}})
	if n, err := UsageRefund(3, allOverage, time.Time{}, now); err != nil || n != 0 {
		t.Errorf("usage that was all overage refunds %d (%v), want nothing and no expiry needed", n, err)
	}
}

func TestRequestFilingRules(t *testing.T) {
	in := RequestInput{RequesterID: 1, Amount: 100, UseCase: "Summarise tickets", MaxPending: 2}
	if err := CheckRequest(in); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []RequestInput{{Amount: 0, UseCase: "x"}, {Amount: MaxAmount + 1, UseCase: "x"}, {Amount: 5, UseCase: " \t\n"}} {
		if err := CheckRequest(bad); ErrorCode(err) != Invalid {
			t.Errorf("file %+v: %v, want Invalid", bad, err)
		}
	}
	one := []Request{{ID: 4, UseCase: "draft release notes"}}
	if err := CheckOpenRequests(in, one); err != nil {
		t.Errorf("one other request open, at most two: %v", err)
	}
	var open *OpenRequestsError
	same := []Request{{ID: 4, UseCase: "draft release notes"}, {ID: 5, UseCase: "  summarise   TICKETS."}}
	if err := CheckOpenRequests(RequestInput{UseCase: in.UseCase}, same); !errors.As(err, &open) || open.Duplicate == nil || open.Duplicate.ID != 5 || ErrorCode(err) != Conflict {
		t.Errorf("same use case, no limit: %v, want the duplicate #5", err)
	}
	two := []Request{{ID: 4, UseCase: "a"}, {ID: 5, UseCase: "b"}}
	if err := CheckOpenRequests(in, two); !errors.As(err, &open) || open.Duplicate != nil || len(open.Open) != 2 || open.Max != 2 {
		t.Errorf("two open, at most two: %v", err)
	}
	if err := CheckOpenRequests(RequestInput{UseCase: "c"}, two); err != nil {
		t.Errorf("no limit: %v", err)
	}
}
