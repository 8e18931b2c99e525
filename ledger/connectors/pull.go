package connectors

import (
	"context"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
)

// Fetcher reads a vendor's hourly usage buckets that start in [start, end), following
// every page. Totals are what the vendor reports now; the Puller books only what grew.
type Fetcher interface {
	Fetch(ctx context.Context, start, end time.Time) ([]ledger.UsageBucket, error)
}

// Puller runs one pull connector (the pull-openai and pull-anthropic jobs).
type Puller struct {
	Name    string
	Fetcher Fetcher
	Hub     *Hub
	Now     func() time.Time
	// Backfill is how far back the first run reads; Reread how much before the cursor
	// every later run reads again (buckets grow after they are first read).
	Backfill, Reread time.Duration
	Log              zerolog.Logger
	// Ran, when set, is told every run's outcome (metrics).
	Ran func(connector string, err error)
}

// Run reads from the cursor (less the reread window; the backfill window on the first run,
// and everything missed after a downtime) up to now, books what is new or grew, posts it,
// and moves the cursor. A failed run keeps the cursor and records its error; the next run
// reads the same span again, and nothing is booked twice.
func (p *Puller) Run(ctx context.Context) (string, error) {
	now := p.Now().UTC()
	st, err := p.Hub.Store.ConnectorState(ctx, p.Name)
	if err != nil {
		return "", err
	}
	start := now.Add(-p.Backfill)
	if !st.Cursor.IsZero() {
		cursor := st.Cursor
		if cursor.After(now) {
			cursor = now
		}
		start = cursor.Add(-p.Reread)
	}
	start = hourFloor(start)
	st.LastRunAt = now
	summary, err := p.run(ctx, start, now)
	if p.Ran != nil {
		p.Ran(p.Name, err)
	}
	if err != nil {
		st.LastError, st.LastErrorAt = err.Error(), now
		if serr := p.Hub.Store.SaveConnectorState(context.WithoutCancel(ctx), st); serr != nil {
			p.Log.Error().Err(serr).Str("connector", p.Name).Msg("save connector state")
		}
		return "", err
	}
	st.Cursor, st.LastOKAt, st.LastError = now, now, ""
	if err := p.Hub.Store.SaveConnectorState(ctx, st); err != nil {
		return "", err
	}
	return summary, nil
}

func (p *Puller) run(ctx context.Context, start, end time.Time) (string, error) {
	buckets, err := p.Fetcher.Fetch(ctx, start, end)
	if err != nil {
		return "", err
	}
	maps := p.Hub.maps(p.Name)
	for i := range buckets {
		b := &buckets[i]
		// The policy's map wins over the vendor's own directory.
		if e := maps.Resolve(b.Identity); e != "" {
			b.Event.Email = e
		}
	}
	queued, err := p.Hub.BookBuckets(ctx, p.Name, buckets)
	if err != nil {
		return "", err
	}
	posted, waiting, err := p.Hub.Replay(ctx, p.Name)
	if err != nil {
		return "", err
	}
	s := fmt.Sprintf("read %d buckets from %s to %s: %d new or grown, %d events posted", len(buckets),
		start.Format(time.RFC3339), end.Format(time.RFC3339), queued, posted)
	if waiting > 0 {
		s += fmt.Sprintf(", %d waiting for an identity mapping (see tokenpay connectors)", waiting)
	}
	return s, nil
}

// BookBuckets records buckets' growth as waiting events.
func (h *Hub) BookBuckets(ctx context.Context, connector string, buckets []ledger.UsageBucket) (int, error) {
	n, err := h.Store.BookBuckets(ctx, connector, buckets)
	if err != nil {
		return 0, fmt.Errorf("%s: book buckets: %w", connector, err)
	}
	return n, nil
}
