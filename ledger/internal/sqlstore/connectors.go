package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// BookBuckets compares each bucket with what was booked for it before and, for one that is
// new or grew, queues an event for the difference (ledger.PendingUsage) under the event id
// "<connector>:<key>:<revision>", all in one transaction with the new totals: a bucket is
// never booked twice and a crash never loses a difference. A component that shrank (vendors
// should not do that) books nothing and keeps the larger total. It returns how many events
// it queued; post them with PendingUsage and SettlePending.
func (db *Store) BookBuckets(ctx context.Context, connector string, buckets []ledger.UsageBucket) (int, error) {
	queued := 0
	err := db.inTx(ctx, func(tx *Tx) error {
		queued = 0
		now := ms(db.now())
		for _, b := range buckets {
			var in, cached, out, rev int64
			err := tx.QueryRowContext(ctx, `SELECT input_tokens, cached_tokens, output_tokens, revision FROM connector_buckets
				WHERE connector = ? AND bucket = ?`, connector, b.Key).Scan(&in, &cached, &out, &rev)
			if err != nil && err != sql.ErrNoRows {
				return fmt.Errorf("read bucket %s: %w", b.Key, err)
			}
			ev := b.Event
			dIn, dCached, dOut := max(ev.InputTokens-in, 0), max(ev.CachedInputTokens-cached, 0), max(ev.OutputTokens-out, 0)
			if dIn == 0 && dOut == 0 {
				continue
			}
			rev++
			if _, err := tx.ExecContext(ctx, `INSERT INTO connector_buckets(connector, bucket, input_tokens, cached_tokens, output_tokens, revision, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(connector, bucket) DO UPDATE SET input_tokens = excluded.input_tokens,
				cached_tokens = excluded.cached_tokens, output_tokens = excluded.output_tokens, revision = excluded.revision, updated_at = excluded.updated_at`,
				connector, b.Key, max(ev.InputTokens, in), max(ev.CachedInputTokens, cached), max(ev.OutputTokens, out), rev, now); err != nil {
				return fmt.Errorf("save bucket %s: %w", b.Key, err)
			}
			ev.EventID = connector + ":" + b.Key + ":" + strconv.FormatInt(rev, 10)
			ev.InputTokens, ev.CachedInputTokens, ev.OutputTokens = dIn, min(dCached, dIn), dOut
			ev.Source = connector
			if err := insertPending(ctx, tx, connector, b.Identity, ev, now); err != nil {
				return err
			}
			queued++
		}
		return nil
	})
	return queued, err
}

func insertPending(ctx context.Context, tx *Tx, connector, identity string, ev ledger.UsageEvent, now int64) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode pending event %s: %w", ev.EventID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO connector_pending(event_id, connector, identity, event, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT(event_id) DO NOTHING`, ev.EventID, connector, identity, string(payload), now); err != nil {
		return fmt.Errorf("queue event %s: %w", ev.EventID, err)
	}
	return nil
}

// AddPending keeps events whose vendor identity no mapping names yet, until a mapping or a
// directory change lets them be posted. An event id already waiting is kept as it was.
func (db *Store) AddPending(ctx context.Context, events []ledger.PendingUsage) error {
	if len(events) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		now := ms(db.now())
		for _, p := range events {
			if err := insertPending(ctx, tx, p.Connector, p.Identity, p.Event, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// PendingUsage lists a connector's waiting events, oldest first.
func (db *Store) PendingUsage(ctx context.Context, connector string) ([]ledger.PendingUsage, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT identity, event, created_at FROM connector_pending WHERE connector = ? ORDER BY created_at, event_id`, connector)
	if err != nil {
		return nil, fmt.Errorf("pending usage of %s: %w", connector, err)
	}
	defer rows.Close()
	var out []ledger.PendingUsage
	for rows.Next() {
		p := ledger.PendingUsage{Connector: connector}
		var payload string
		var at int64
		if err := rows.Scan(&p.Identity, &payload, &at); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &p.Event); err != nil {
			return nil, fmt.Errorf("decode pending event: %w", err)
		}
		p.CreatedAt = fromMs(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SettlePending forgets waiting events that ingestion has taken (accepted, duplicate,
// quarantined or rejected: each is then the ledger's to report).
func (db *Store) SettlePending(ctx context.Context, eventIDs []string) error {
	if len(eventIDs) == 0 {
		return nil
	}
	return db.inTx(ctx, func(tx *Tx) error {
		for _, id := range eventIDs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM connector_pending WHERE event_id = ?`, id); err != nil {
				return fmt.Errorf("settle pending event %s: %w", id, err)
			}
		}
		return nil
	})
}

// ConnectorState returns what a connector remembers; a connector that never ran has the
// zero state (with its name).
func (db *Store) ConnectorState(ctx context.Context, connector string) (ledger.ConnectorState, error) {
	st := ledger.ConnectorState{Connector: connector}
	var cursor, run, ok, errAt int64
	err := db.read.QueryRowContext(ctx, `SELECT cursor, last_run_at, last_ok_at, last_error, last_error_at FROM connector_state WHERE connector = ?`,
		connector).Scan(&cursor, &run, &ok, &st.LastError, &errAt)
	if err == sql.ErrNoRows {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("connector state of %s: %w", connector, err)
	}
	st.Cursor, st.LastRunAt, st.LastOKAt, st.LastErrorAt = msOrZero(cursor), msOrZero(run), msOrZero(ok), msOrZero(errAt)
	return st, nil
}

func msOrZero(v int64) (t time.Time) {
	if v == 0 {
		return t
	}
	return fromMs(v)
}

// SaveConnectorState records a run's outcome and cursor.
func (db *Store) SaveConnectorState(ctx context.Context, st ledger.ConnectorState) error {
	zeroMs := func(t time.Time) int64 {
		if t.IsZero() {
			return 0
		}
		return ms(t)
	}
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO connector_state(connector, cursor, last_run_at, last_ok_at, last_error, last_error_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(connector) DO UPDATE SET cursor = excluded.cursor, last_run_at = excluded.last_run_at,
			last_ok_at = excluded.last_ok_at, last_error = excluded.last_error, last_error_at = excluded.last_error_at`,
			st.Connector, zeroMs(st.Cursor), zeroMs(st.LastRunAt), zeroMs(st.LastOKAt), st.LastError, zeroMs(st.LastErrorAt))
		if err != nil {
			return fmt.Errorf("save connector state of %s: %w", st.Connector, err)
		}
		return nil
	})
}

// ConnectorStats counts what a connector booked (usage events whose source is its name, or
// its name and a provider: "otlp:anthropic"; a rolled-up row counts the events it stands for),
// what waits in quarantine for a person, and what waits for a vendor identity mapping.
func (db *Store) ConnectorStats(ctx context.Context, connector string) (ledger.ConnectorStats, error) {
	var s ledger.ConnectorStats
	var last sql.NullInt64
	if err := db.read.QueryRowContext(ctx, `SELECT CAST(COALESCE(SUM(events), 0) AS BIGINT), `+WideSum("credits")+`, max(received_at) FROM usage_events WHERE (source = ?1 OR substr(source, 1, length(?1) + 1) = ?1 || ':') AND reversed = 0`,
		connector).Scan(&s.Events, Sat(&s.Credits), &last); err != nil {
		return s, fmt.Errorf("connector stats of %s: %w", connector, err)
	}
	if last.Valid {
		s.LastEventAt = fromMs(last.Int64)
	}
	n, err := db.quarantinedFrom(ctx, connector)
	if err != nil {
		return s, fmt.Errorf("connector stats of %s: %w", connector, err)
	}
	s.Quarantined = n
	rows, err := db.read.QueryContext(ctx, `SELECT identity, count(*) FROM connector_pending WHERE connector = ? AND identity != '' GROUP BY identity ORDER BY identity`, connector)
	if err != nil {
		return s, fmt.Errorf("connector stats of %s: %w", connector, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return s, err
		}
		if s.Unmapped == nil {
			s.Unmapped = map[string]int64{}
		}
		s.Unmapped[id] = n
	}
	return s, rows.Err()
}

// quarantinedFrom counts the waiting events whose source is connector, or connector and a
// provider ("otlp:anthropic"). The source is read from each payload here, in Go: the
// engines' JSON functions differ, and the quarantine is bounded (MaxQuarantinePerKey).
func (db *Store) quarantinedFrom(ctx context.Context, connector string) (int64, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT payload FROM quarantine WHERE resolved_at IS NULL`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var payload string
		if err := rows.Scan(&payload); err != nil {
			return 0, err
		}
		var ev struct{ Source string }
		if err := json.Unmarshal([]byte(payload), &ev); err != nil {
			return 0, fmt.Errorf("decode a quarantined event: %w", err)
		}
		if ev.Source == connector || strings.HasPrefix(ev.Source, connector+":") {
			n++
		}
	}
	return n, rows.Err()
}
