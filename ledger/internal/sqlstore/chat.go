package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// SaveMessageRef records (or replaces) where a message about subject was posted.
func (db *Store) SaveMessageRef(ctx context.Context, platform, subject string, ref ledger.MessageRef) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO message_refs(platform, subject, channel, message_id, thread_id, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(platform, subject) DO UPDATE SET channel = excluded.channel,
			message_id = excluded.message_id, thread_id = excluded.thread_id, updated_at = excluded.updated_at`,
			platform, subject, ref.Channel, ref.MessageID, ref.ThreadID, ms(db.now()))
		if err != nil {
			return fmt.Errorf("save message ref %s: %w", subject, err)
		}
		return nil
	})
}

// MessageRefFor returns where a message about subject was posted; ok is false when never.
func (db *Store) MessageRefFor(ctx context.Context, platform, subject string) (ledger.MessageRef, bool, error) {
	var r ledger.MessageRef
	err := db.read.QueryRowContext(ctx, `SELECT channel, message_id, thread_id FROM message_refs WHERE platform = ? AND subject = ?`,
		platform, subject).Scan(&r.Channel, &r.MessageID, &r.ThreadID)
	if err == sql.ErrNoRows {
		return r, false, nil
	}
	return r, err == nil, err
}

// FirstDelivery records a platform delivery id and reports whether it is new; a retried
// delivery answers false and must not be processed again.
func (db *Store) FirstDelivery(ctx context.Context, platform, id string) (bool, error) {
	n, err := db.execAffected(ctx, `INSERT INTO deliveries_seen(platform, id, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		platform, id, ms(db.now()))
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", id, err)
	}
	return n == 1, nil
}

// ForgetDeliveriesBefore drops delivery ids older than t (platforms retry for minutes, not days).
func (db *Store) ForgetDeliveriesBefore(ctx context.Context, t time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM deliveries_seen WHERE seen_at < ?`, ms(t))
		return err
	})
}

// MessageRefsWithPrefix returns every message ref whose subject starts with prefix.
func (db *Store) MessageRefsWithPrefix(ctx context.Context, platform, prefix string) (map[string]ledger.MessageRef, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT subject, channel, message_id, thread_id FROM message_refs
		WHERE platform = ? AND substr(subject, 1, length(?)) = ?`, platform, prefix, prefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]ledger.MessageRef{}
	for rows.Next() {
		var s string
		var r ledger.MessageRef
		if err := rows.Scan(&s, &r.Channel, &r.MessageID, &r.ThreadID); err != nil {
			return nil, err
		}
		out[s] = r
	}
	return out, rows.Err()
}
