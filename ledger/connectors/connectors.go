// Package connectors brings usage in from where AI is used: LiteLLM's generic_api callback
// and OpenTelemetry GenAI spans (pushed to tokenpay), and the OpenAI and Anthropic
// organisation usage reports (pulled by scheduled jobs). Each vendor's wire format lives in
// a sub-package; this package maps vendor identities to people, books vendor buckets as
// differences, and hands every event to the one ingestion path (usage.Ingestor: idempotency,
// quarantine, weights, time rules).
package connectors

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// Store is what the connectors keep between requests and runs (ledger/sqlite implements it).
type Store interface {
	BookBuckets(ctx context.Context, connector string, buckets []ledger.UsageBucket) (int, error)
	AddPending(ctx context.Context, events []ledger.PendingUsage) error
	PendingUsage(ctx context.Context, connector string) ([]ledger.PendingUsage, error)
	SettlePending(ctx context.Context, eventIDs []string) error
	ConnectorState(ctx context.Context, connector string) (ledger.ConnectorState, error)
	SaveConnectorState(ctx context.Context, st ledger.ConnectorState) error
	ConnectorStats(ctx context.Context, connector string) (ledger.ConnectorStats, error)
}

// Ingester is the usage ingestion path (*usage.Ingestor).
type Ingester interface {
	Ingest(ctx context.Context, items []usage.Item) ([]ledger.UsageResult, error)
}

// Identity kinds, the prefix of a vendor identity ("user:cust-4711", "api_key:key_abc").
const (
	KindUser   = "user"
	KindAPIKey = "api_key"
)

// Identity names a vendor identity of the given kind.
func Identity(kind, id string) string { return kind + ":" + id }

// Mapper turns vendor identities into directory emails with a connector's policy maps
// (connectors.<name>.users and .api_keys).
type Mapper struct {
	Users   map[string]string
	APIKeys map[string]string
}

// Resolve returns the email an identity maps to, or "". A user id that is itself an
// email address (many gateways put the email in their user field) is taken as it is.
func (m Mapper) Resolve(identity string) string {
	kind, id, _ := strings.Cut(identity, ":")
	switch kind {
	case KindUser:
		if e := m.Users[id]; e != "" {
			return e
		}
		if looksLikeEmail(id) {
			return id
		}
	case KindAPIKey:
		return m.APIKeys[id]
	}
	return ""
}

func looksLikeEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t<>")
}

// Usage is one event a push connector decoded: its person by email, or the vendor
// identities to try in order; or why it cannot be used.
type Usage struct {
	Event ledger.UsageEvent
	IDs   []string
	Err   error
	// Skip, when set, says why this is no billable usage (a failed call, a cache hit); it
	// is answered as Ignored and never reaches the ledger.
	Skip string
}

// Ignored is the result status of an event that carries no billable usage.
const Ignored = "ignored"

// Hub hands connector events to ingestion.
type Hub struct {
	Store    Store
	Ingester Ingester
	// Maps returns the identity maps of a connector.
	Maps func(connector string) Mapper
	Log  zerolog.Logger
	// Observe, when set, counts outcomes per connector (metrics).
	Observe func(connector, status string, n int)
}

// Status of an event that waits for its vendor identity to be mapped (reported as
// quarantined to the sender: it is kept and posted later).
const waitingReason = "no person is mapped to %s; map it in the policy (connectors.%s.%s) or add the email to the directory"

// Push resolves each event's person and ingests it. Events whose identity maps to no one
// are kept (quarantined for the sender) and posted by Replay once a mapping exists. Only a
// storage failure is an error.
func (h *Hub) Push(ctx context.Context, connector string, in []Usage) ([]ledger.UsageResult, error) {
	results := make([]ledger.UsageResult, len(in))
	items := make([]usage.Item, 0, len(in))
	slots := make([]int, 0, len(in))
	var waiting []ledger.PendingUsage
	maps := h.maps(connector)
	for i, u := range in {
		if !strings.HasPrefix(u.Event.Source, connector) {
			u.Event.Source = connector
		}
		results[i].EventID = u.Event.EventID
		if u.Err == nil && u.Skip != "" {
			results[i].Status, results[i].Reason = Ignored, u.Skip
			continue
		}
		if u.Err == nil && u.Event.Email == "" && u.Event.SlackUserID == "" && u.Event.TeamsUserID == "" {
			for _, id := range u.IDs {
				if e := maps.Resolve(id); e != "" {
					u.Event.Email = e
					break
				}
			}
			if u.Event.Email == "" {
				if len(u.IDs) > 0 {
					who := u.IDs[0]
					waiting = append(waiting, ledger.PendingUsage{Connector: connector, Event: u.Event, Identity: who})
					results[i].Status, results[i].Reason = ledger.UsageQuarantined, waitingHint(connector, who)
					continue
				}
				u.Err = fmt.Errorf("the event names no user; tokenpay cannot tell whom to bill")
			}
		}
		items = append(items, usage.Item{Line: i + 1, Event: u.Event, Err: u.Err})
		slots = append(slots, i)
	}
	if err := h.Store.AddPending(ctx, waiting); err != nil {
		return nil, fmt.Errorf("%s: keep unmapped events: %w", connector, err)
	}
	if len(items) > 0 {
		got, err := h.Ingester.Ingest(ctx, items)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", connector, err)
		}
		for n, r := range got {
			results[slots[n]] = r
		}
	}
	h.observe(connector, results)
	return results, nil
}

func waitingHint(connector, identity string) string {
	key, _ := policyMap(identity)
	return fmt.Sprintf(waitingReason, identity, connector, key)
}

// policyMap returns the policy map that maps an identity ("users" or "api_keys", under
// connectors.<name>) and the vendor's id in it.
func policyMap(identity string) (key, id string) {
	kind, id, _ := strings.Cut(identity, ":")
	if kind == KindAPIKey {
		return "api_keys", id
	}
	return "users", id
}

func (h *Hub) maps(connector string) Mapper {
	if h.Maps == nil {
		return Mapper{}
	}
	return h.Maps(connector)
}

func (h *Hub) observe(connector string, results []ledger.UsageResult) {
	if h.Observe == nil {
		return
	}
	counts := map[string]int{}
	for _, r := range results {
		counts[r.Status]++
	}
	for status, n := range counts {
		h.Observe(connector, status, n)
	}
}

// Replay posts a connector's waiting events whose person is now known (queued bucket
// differences, and identities mapped since). It returns how many ingestion took and how
// many still wait for a mapping.
func (h *Hub) Replay(ctx context.Context, connector string) (posted, waiting int, err error) {
	pending, err := h.Store.PendingUsage(ctx, connector)
	if err != nil {
		return 0, 0, err
	}
	maps := h.maps(connector)
	const chunk = 500
	var items []usage.Item
	flush := func() error {
		if len(items) == 0 {
			return nil
		}
		res, err := h.Ingester.Ingest(ctx, items)
		if err != nil {
			return fmt.Errorf("%s: post waiting events: %w", connector, err)
		}
		ids := make([]string, len(res))
		for i, r := range res {
			ids[i] = r.EventID
		}
		if err := h.Store.SettlePending(ctx, ids); err != nil {
			return err
		}
		h.observe(connector, res)
		posted += len(items)
		items = items[:0]
		return nil
	}
	for _, p := range pending {
		ev := p.Event
		if ev.Email == "" && ev.SlackUserID == "" && ev.TeamsUserID == "" {
			if ev.Email = maps.Resolve(p.Identity); ev.Email == "" {
				waiting++
				continue
			}
		}
		items = append(items, usage.Item{Event: ev})
		if len(items) == chunk {
			if err := flush(); err != nil {
				return posted, waiting, err
			}
		}
	}
	return posted, waiting, flush()
}

// Status is one connector as `tokenpay connectors` shows it.
type Status struct {
	Name       string
	Configured bool
	// How says how it is configured, or how to configure it.
	How   string
	State ledger.ConnectorState
	Stats ledger.ConnectorStats
}

// StatusOf reads a connector's state and what it booked.
func StatusOf(ctx context.Context, s Store, name string, configured bool, how string) (Status, error) {
	st, err := s.ConnectorState(ctx, name)
	if err != nil {
		return Status{}, err
	}
	stats, err := s.ConnectorStats(ctx, name)
	if err != nil {
		return Status{}, err
	}
	return Status{Name: name, Configured: configured, How: how, State: st, Stats: stats}, nil
}

// UnmappedHints lists the identities waiting for a mapping, with the policy line that maps
// each, most events first.
func (s Status) UnmappedHints() []string {
	ids := make([]string, 0, len(s.Stats.Unmapped))
	for id := range s.Stats.Unmapped {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := s.Stats.Unmapped[ids[i]], s.Stats.Unmapped[ids[j]]
		return a > b || (a == b && ids[i] < ids[j])
	})
	out := make([]string, len(ids))
	for i, id := range ids {
		key, v := policyMap(id)
		out[i] = fmt.Sprintf("%s (%d events): add `%s: {%q: EMAIL}` under connectors.%s in the policy", id, s.Stats.Unmapped[id], key, v, s.Name)
	}
	return out
}

// hourFloor is t truncated to the UTC hour, the bucket width every pull job uses.
func hourFloor(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
