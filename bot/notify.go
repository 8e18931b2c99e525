package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"

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

// Reacher is implemented by a platform that knows, before sending, whether it can reach
// a person now (Teams: whether it holds a personal chat with them). A platform that says
// no is skipped, so the person is reached on the next one.
type Reacher interface {
	Reaches(ctx context.Context, p ledger.Person) bool
}

// candidates are the platforms to try for p, best first: the one they last used, then
// Order; only those p is linked on and that can reach them.
func (r *Router) candidates(ctx context.Context, p ledger.Person) []string {
	var out []string
	add := func(name string) {
		n, ok := r.Platforms[name]
		if !ok || !linked(p, name) || slices.Contains(out, name) {
			return
		}
		if re, ok := n.(Reacher); ok && !re.Reaches(ctx, p) {
			return
		}
		out = append(out, name)
	}
	add(p.PreferredPlatform)
	for _, name := range r.Order {
		add(name)
	}
	return out
}

// ErrUnreachable means a person is linked to no configured platform, or every platform
// they are linked on said it cannot reach them (the bot was removed, the chat is gone).
var ErrUnreachable = errors.New("person is not reachable on any configured platform")

// Direct implements Notifier: through the best platform for the person, and the next
// one when a platform finds it cannot reach them after all (ErrUnreachable).
func (r *Router) Direct(ctx context.Context, to ledger.Person, reply Reply) error {
	var errs []error
	for _, name := range r.candidates(ctx, to) {
		err := r.Platforms[name].Direct(ctx, to, reply)
		if !errors.Is(err, ErrUnreachable) {
			return err
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("direct message to %s: %w", to.Email, ErrUnreachable)
	}
	return fmt.Errorf("direct message to %s: %w", to.Email, errors.Join(errs...))
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
		c := r.candidates(ctx, p)
		if len(c) == 0 || seen[c[0]] {
			continue
		}
		name := c[0]
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
