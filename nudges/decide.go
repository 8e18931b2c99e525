package nudges

import (
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Decision is what the nudge run does for one person.
type Decision string

const (
	// NoNudge: their segment gets no nudge.
	NoNudge Decision = "none"
	// SendNudge: send one now (or after their quiet hours).
	SendNudge Decision = "send"
	// HeldOut: in the holdout group, so never nudged; recorded to measure the lift.
	HeldOut Decision = "held-out"
	// OptedOut: they turned nudges off.
	OptedOut Decision = "opted-out"
	// TooSoon: nudged (or held out) fewer than nudges.min_days_between days ago.
	TooSoon Decision = "too-soon"
	// Disabled: the policy turns nudges off.
	Disabled Decision = "disabled"
)

// nudged reports whether a segment gets nudges: a tip to get going, or quality tips.
func nudged(s Segment) bool { return s == Dormant || s == Underuser || s == HeavyNoGains }

// Decide says whether m gets a nudge at time at.
func Decide(pol *policy.Policy, m Member, at time.Time) Decision {
	n := pol.Nudges
	switch {
	case !nudged(m.Segment):
		return NoNudge
	case !n.Enabled:
		return Disabled
	case m.Person.NudgesOff:
		return OptedOut
	case !m.Activity.LastNudge.IsZero() && at.Sub(m.Activity.LastNudge) < time.Duration(n.MinDaysBetween)*day:
		return TooSoon
	case InHoldout(m.Person.Email, n.HoldoutPercent):
		return HeldOut
	}
	return SendNudge
}

// InHoldout reports whether a person is in the holdout group: FNV-64a of their email
// key (ledger.NormalizeEmail) mod 100 is under percent. The same people stay held out across runs
// and processes, so the group is a fair comparison over time.
func InHoldout(email string, percent int) bool {
	h := fnv.New64a()
	h.Write([]byte(ledger.NormalizeEmail(email)))
	return h.Sum64()%100 < uint64(max(percent, 0))
}

var zoneCache sync.Map

// Location returns the person's time zone, or the org's when theirs is unset or unknown.
func Location(pol *policy.Policy, p ledger.Person) *time.Location {
	if p.TimeZone == "" || p.TimeZone == "Local" {
		return pol.Location()
	}
	if loc, ok := zoneCache.Load(p.TimeZone); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(p.TimeZone)
	if err != nil {
		return pol.Location()
	}
	zoneCache.Store(p.TimeZone, loc)
	return loc
}

// HoldUntil returns when a message to p prepared at at may go: at itself, or the end of
// their quiet hours on their own clock. reason says why it waits ("" when it does not).
func HoldUntil(pol *policy.Policy, p ledger.Person, at time.Time) (time.Time, string) {
	loc := Location(pol, p)
	q := pol.Nudges.QuietHours
	end := q.NextEnd(at, loc)
	if !end.After(at) {
		return at, ""
	}
	return end, fmt.Sprintf("quiet hours (%s–%s, %s)", q.Start, q.End, loc)
}
