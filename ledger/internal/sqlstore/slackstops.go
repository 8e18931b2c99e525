package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
)

// StopSlack records that the bot token with SHA-256 tokenHash (hex) must not be used
// again; the first record stands.
func (db *Store) StopSlack(ctx context.Context, tokenHash string, s ledger.SlackStop) error {
	_, err := db.execAffected(ctx, `INSERT INTO slack_stops(token_sha256, team_id, reason, stopped_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, tokenHash, s.TeamID, s.Reason, ms(db.now()))
	if err != nil {
		return fmt.Errorf("record Slack stop: %w", err)
	}
	return nil
}

// SlackStopped returns the stop recorded for the bot token with SHA-256 tokenHash; ok is
// false when it was never stopped.
func (db *Store) SlackStopped(ctx context.Context, tokenHash string) (ledger.SlackStop, bool, error) {
	var s ledger.SlackStop
	var at int64
	err := db.read.QueryRowContext(ctx, `SELECT team_id, reason, stopped_at FROM slack_stops WHERE token_sha256 = ?`, tokenHash).
		Scan(&s.TeamID, &s.Reason, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return s, false, nil
	}
	if err != nil {
		return s, false, fmt.Errorf("read Slack stop: %w", err)
	}
	s.StoppedAt = fromMs(at)
	return s, true, nil
}
