package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

// Ingestor validates, weighs and posts usage. HTTP, file imports, the demo and quarantine
// replay all go through Ingest, so they share the time rules: an event dated more than
// ledger.MaxUsageFuture ahead is rejected (occurred_at_in_future), one dated in a period
// that ended more than usage.late_grace ago is rejected (too_late), and anything else is
// charged to the period it happened in, late or early (see ledger/sqlite's PostUsage).
type Ingestor struct {
	Store ledger.Store
	// Policy gives the periods and the grace window; nil means the built-in policy.
	Policy *policy.Policy
	// Credits turns raw tokens into credits with the policy's per-model weights.
	Credits func(model string, input, output int64) (int64, error)
	// CreditsCached, when set, prices events that carry cached input tokens (a part of the
	// input) at the model's cached_input weight; without it they cost Credits.
	CreditsCached func(model string, input, cached, output int64) (int64, error)
	Now           func() time.Time
	// Log receives a line whenever a quarantine bound refuses or gives up events.
	Log zerolog.Logger
	// OnBound, when set, counts events refused ("count": the API key has
	// ledger.MaxQuarantinePerKey waiting) or given up ("age": older than
	// ledger.MaxQuarantineAge) by a quarantine bound.
	OnBound func(bound string, n int)
	// Period returns the allowance period [start, end) holding an instant, for the bound
	// on one person's usage per period (ledger.MaxPeriodCredits); nil leaves that bound
	// unchecked.
	Period func(time.Time) (start, end time.Time)
}

// Ingest posts items in order and returns one result per item. Only a storage failure is
// an error; bad events are rejected individually.
func (in *Ingestor) Ingest(ctx context.Context, items []Item) ([]ledger.UsageResult, error) {
	return in.IngestFrom(ctx, 0, items)
}

// IngestFrom is Ingest for events an API key sent (keyID, 0 for none): its events waiting
// in quarantine are bounded by ledger.MaxQuarantinePerKey.
func (in *Ingestor) IngestFrom(ctx context.Context, keyID int64, items []Item) ([]ledger.UsageResult, error) {
	results := make([]ledger.UsageResult, len(items))
	postings := make([]ledger.UsagePosting, 0, len(items))
	slots := make([]int, 0, len(items))
	now := in.Now()
	pol := in.Policy
	if pol == nil {
		pol = policy.Default()
	}
	for i, it := range items {
		results[i].EventID = it.Event.EventID
		if it.Err != nil {
			results[i].Status, results[i].Reason = ledger.UsageRejected, it.Err.Error()
			continue
		}
		if code, reason := CheckTime(pol, it.Event.OccurredAt, now); code != "" {
			results[i].Status, results[i].Code, results[i].Reason = ledger.UsageRejected, code, reason
			continue
		}
		if it.Event.InputTokens < 0 || it.Event.InputTokens > ledger.MaxEventTokens ||
			it.Event.OutputTokens < 0 || it.Event.OutputTokens > ledger.MaxEventTokens {
			// Decoding checks this already; replayed quarantine rows predate the bound.
			results[i].Status, results[i].Reason = ledger.UsageRejected, fmt.Sprintf(
				"input_tokens and output_tokens must each be from 0 to %s (the most one event may report)", ledger.FormatCredits(ledger.MaxEventTokens))
			continue
		}
		credits, err := in.credits(it.Event)
		if err != nil {
			results[i].Status, results[i].Reason = ledger.UsageRejected, err.Error()
			continue
		}
		if reason := ledger.EventCreditsProblem(credits); reason != "" {
			results[i].Status, results[i].Reason = ledger.UsageRejected, reason
			continue
		}
		p := ledger.UsagePosting{Event: it.Event, Credits: credits, KeyID: keyID}
		if in.Period != nil {
			p.PeriodStart, p.PeriodEnd = in.Period(it.Event.OccurredAt)
		}
		postings = append(postings, p)
		slots = append(slots, i)
	}
	if len(postings) == 0 {
		return results, nil
	}
	posted, err := in.Store.PostUsage(ctx, postings)
	if err != nil {
		return nil, fmt.Errorf("post %d usage events: %w", len(postings), err)
	}
	full := 0
	for n, r := range posted {
		results[slots[n]] = r
		if r.QuarantineFull {
			full++
		}
	}
	in.bound("count", keyID, full)
	return results, nil
}

func (in *Ingestor) credits(ev ledger.UsageEvent) (int64, error) {
	if ev.CachedInputTokens > ev.InputTokens || ev.CachedInputTokens < 0 {
		return 0, fmt.Errorf("cached input tokens (%d) must be a part of the input tokens (%d)", ev.CachedInputTokens, ev.InputTokens)
	}
	if ev.CachedInputTokens > 0 && in.CreditsCached != nil {
		return in.CreditsCached(ev.Model, ev.InputTokens, ev.CachedInputTokens, ev.OutputTokens)
	}
	return in.Credits(ev.Model, ev.InputTokens, ev.OutputTokens)
}

// CheckTime applies the time rules to an event dated at that arrives at now: it returns
// "" when the event is to be posted, else a code (ledger.UsageFuture, ledger.UsageTooLate)
// and a sentence for the gateway. Any instant is safe, however far from now.
func CheckTime(pol *policy.Policy, at, now time.Time) (code, reason string) {
	if at.After(now.Add(ledger.MaxUsageFuture)) {
		return ledger.UsageFuture, "occurred_at is in the future; check the gateway's clock"
	}
	if deadline := pol.LateDeadline(at); !now.Before(deadline) {
		return ledger.UsageTooLate, fmt.Sprintf("occurred_at is in a period that closed more than %s ago (usage.late_grace); correct old usage with an adjustment grant",
			durationText(pol.Usage.LateGrace))
	}
	return "", ""
}

// durationText writes a policy duration as a gateway's operator reads it: "72 hours",
// "1 hour 30 minutes", "45 minutes", "0 seconds"; Go's "72h0m0s" only for what has seconds.
func durationText(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d == 0:
		return "0 seconds"
	case d%time.Minute != 0 || d < 0:
		return d.String()
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	default:
		return unit(int64(d/time.Hour), "hour") + " " + unit(int64(d%time.Hour/time.Minute), "minute")
	}
}

// ReplayQuarantine gives up events that waited longer than ledger.MaxQuarantineAge, then,
// if the directory changed since the last replay, re-ingests the waiting events whose
// person is now in it, a page at a time: a replay with nothing new reads nothing. Those
// posted leave the quarantine, those now rejected are settled so they are not retried
// forever, and the rest keep waiting.
func (in *Ingestor) ReplayQuarantine(ctx context.Context) (replayed, waiting int, err error) {
	const page = 500
	expired, err := in.Store.ExpireQuarantine(ctx, in.Now().Add(-ledger.MaxQuarantineAge))
	if err != nil {
		return 0, 0, fmt.Errorf("replay quarantine: %w", err)
	}
	for key, n := range expired {
		in.bound("age", key, n)
	}
	dir, needed, err := in.Store.ReplayNeeded(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("replay quarantine: %w", err)
	}
	for after := int64(0); needed; {
		part, err := in.Store.Replayable(ctx, after, page)
		if err != nil {
			return replayed, 0, fmt.Errorf("replay quarantine: %w", err)
		}
		if len(part) == 0 {
			break
		}
		after = part[len(part)-1].ID
		items := make([]Item, len(part))
		for i, e := range part {
			items[i] = Item{Event: e.Event}
		}
		res, err := in.Ingest(ctx, items)
		if err != nil {
			return replayed, 0, fmt.Errorf("replay quarantine: %w", err)
		}
		var settled []string
		for _, r := range res {
			switch r.Status {
			case ledger.UsageAccepted:
				replayed++
			case ledger.UsageQuarantined:
			default:
				settled = append(settled, r.EventID)
			}
		}
		if err := in.Store.ResolveQuarantine(ctx, settled); err != nil {
			return replayed, 0, fmt.Errorf("replay quarantine: %w", err)
		}
	}
	if needed {
		if err := in.Store.MarkReplayed(ctx, dir); err != nil {
			return replayed, 0, fmt.Errorf("replay quarantine: %w", err)
		}
	}
	if waiting, err = in.Store.QuarantineWaiting(ctx); err != nil {
		return replayed, 0, fmt.Errorf("replay quarantine: %w", err)
	}
	return replayed, waiting, nil
}

// bound reports n events refused or given up by a quarantine bound ("count" or "age"),
// for key (0: no API key): a log line, and OnBound for metrics.
func (in *Ingestor) bound(which string, key int64, n int) {
	if n == 0 {
		return
	}
	in.Log.Warn().Str("bound", which).Int64("api_key_id", key).Int("events", n).
		Msg("quarantine bound reached: events for people not in the directory were refused or given up")
	if in.OnBound != nil {
		in.OnBound(which, n)
	}
}
