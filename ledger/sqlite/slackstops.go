package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SlackStop records that a Slack bot token stopped working for good: the app was
// uninstalled or the token revoked.
type SlackStop struct {
	TeamID    string
	Reason    string
	StoppedAt time.Time
}

// StopSlack records that the bot token with SHA-256 tokenHash (hex) must not be used
// again; the first record stands.
func (db *DB) StopSlack(ctx context.Context, tokenHash string, s SlackStop) error {
	_, err := db.execAffected(ctx, `INSERT INTO slack_stops(token_sha256, team_id, reason, stopped_at) VALUES (?, ?, ?, ?)
		ON CONFLICT DO NOTHING`, tokenHash, s.TeamID, s.Reason, ms(db.now()))
	if err != nil {
		return fmt.Errorf("record Slack stop: %w", err)
	}
	return nil
}

// SlackStopped returns the stop recorded for the bot token with SHA-256 tokenHash; ok is
// false when it was never stopped.
func (db *DB) SlackStopped(ctx context.Context, tokenHash string) (SlackStop, bool, error) {
	var s SlackStop
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
