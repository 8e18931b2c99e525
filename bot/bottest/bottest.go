// Package bottest builds the small organisation the platform adapters' tests render
// replies from: a real SQLite ledger, the core handler with the prompt library, and a
// notifier that records what the core would send to others.
package bottest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/prompts"
)

// Now is the fixture's fixed clock, so rendered dates are stable in golden files.
var Now = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// Recorder is a bot.Notifier that keeps what it is asked to send.
type Recorder struct {
	mu        sync.Mutex
	Approvals []bot.RequestView
	Directs   []bot.Reply
}

// Approval implements bot.Notifier.
func (r *Recorder) Approval(_ context.Context, v bot.RequestView) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Approvals = append(r.Approvals, v)
	return nil
}

// Direct implements bot.Notifier.
func (r *Recorder) Direct(_ context.Context, _ ledger.Person, reply bot.Reply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Directs = append(r.Directs, reply)
	return nil
}

// Fixture is the organisation: Mia manages Eve in Research; Ada is the admin.
type Fixture struct {
	DB      ledgertest.Store
	Handler *bot.Handler
	Sent    *Recorder
	People  map[string]ledger.Person // by email: mia@x.io, eve@x.io, ada@x.io
}

// New builds the fixture in a temp dir; it is closed when the test ends.
func New(t testing.TB) *Fixture {
	t.Helper()
	ctx := context.Background()
	db := ledgertest.Open(t)
	clock := func() time.Time { return Now }
	db.SetNow(clock)
	pol := policy.Default()
	pol.Admins = []string{"ada@x.io"}
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "mia@x.io", Name: "Mia Boss", Team: "Research", Role: "manager"},
		{Line: 3, Email: "eve@x.io", Name: "Eve Analyst", Team: "Research", Role: "analyst", ManagerEmail: "mia@x.io"},
		{Line: 4, Email: "ada@x.io", Name: "Ada Admin", Team: "People", Role: "hr"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := period.Reset(ctx, db, pol, Now); err != nil {
		t.Fatal(err)
	}
	f := &Fixture{DB: db, Sent: &Recorder{}, People: map[string]ledger.Person{}}
	f.Handler = &bot.Handler{Store: db, Policy: pol, Now: clock, Log: zerolog.Nop(), Notify: f.Sent}
	lib := &prompts.Library{Store: db, Policy: pol, Now: clock, Log: zerolog.Nop()}
	if err := lib.Seed(ctx); err != nil {
		t.Fatal(err)
	}
	lib.Register(f.Handler)
	for _, e := range []string{"mia@x.io", "eve@x.io", "ada@x.io"} {
		p, err := db.PersonByEmail(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		f.People[e] = p
	}
	return f
}
