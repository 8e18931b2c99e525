package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
)

// Router sends each notification through the platform the person last used, falling back
// to any platform they are linked on.
type Router struct {
	// Platforms maps "slack", "teams" or "console" to its notifier; absent platforms are
	// simply not used.
	Platforms map[string]Notifier
	// Order is the fallback order when a person has no preferred platform.
	Order []string
}

func linked(p ledger.Person, platform string) bool {
	switch platform {
	case "slack":
		return p.SlackUserID != ""
	case "teams":
		return p.TeamsUserID != ""
	}
	return true
}

// platformFor picks where to reach p, or "" when nowhere.
func (r *Router) platformFor(p ledger.Person) string {
	if _, ok := r.Platforms[p.PreferredPlatform]; ok && linked(p, p.PreferredPlatform) {
		return p.PreferredPlatform
	}
	for _, name := range r.Order {
		if _, ok := r.Platforms[name]; ok && linked(p, name) {
			return name
		}
	}
	return ""
}

// ErrUnreachable means a person is linked to no configured platform.
var ErrUnreachable = errors.New("person is not reachable on any configured platform")

// Direct implements Notifier.
func (r *Router) Direct(ctx context.Context, to ledger.Person, reply Reply) error {
	name := r.platformFor(to)
	if name == "" {
		return fmt.Errorf("direct message to %s: %w", to.Email, ErrUnreachable)
	}
	return r.Platforms[name].Direct(ctx, to, reply)
}

// Approval implements Notifier: every platform on which the manager or another decider
// lives gets the view; ErrUnreachable when none of them is on a configured platform.
func (r *Router) Approval(ctx context.Context, v RequestView) error {
	seen := map[string]bool{}
	people := append([]ledger.Person{v.Approver}, v.Deciders...)
	var errs []error
	for _, p := range people {
		if p.ID == 0 {
			continue
		}
		name := r.platformFor(p)
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		if err := r.Platforms[name].Approval(ctx, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	if len(seen) == 0 {
		return fmt.Errorf("approval message of request %d: %w", v.Request.ID, ErrUnreachable)
	}
	return errors.Join(errs...)
}
