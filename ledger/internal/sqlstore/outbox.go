package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Enqueue queues messages, skipping those whose dedupe key is already queued, and
// returns how many it added.
func (db *Store) Enqueue(ctx context.Context, msgs []ledger.OutboxMessage) (int, error) {
	return db.EnqueueNudges(ctx, msgs, nil)
}

// EnqueueNudges queues messages and records nudge runs in the same transactions, a chunk
// at a time: a job that dies half-way and runs again adds only what is missing.
func (db *Store) EnqueueNudges(ctx context.Context, msgs []ledger.OutboxMessage, log []ledger.NudgeRecord) (int, error) {
	const chunk = 2000
	added := 0
	for start := 0; start < max(len(msgs), len(log)); start += chunk {
		var part []ledger.OutboxMessage
		if start < len(msgs) {
			part = msgs[start:min(start+chunk, len(msgs))]
		}
		var ls []ledger.NudgeRecord
		if start < len(log) {
			ls = log[start:min(start+chunk, len(log))]
		}
		err := db.inBulkTx(ctx, func(tx *Tx) error {
			n, err := db.enqueueTx(ctx, tx, part)
			if err != nil {
				return err
			}
			added += n
			return recordNudgesTx(ctx, tx, ls)
		})
		if err != nil {
			return added, fmt.Errorf("enqueue %d messages: %w", len(msgs), err)
		}
	}
	return added, nil
}

func (db *Store) enqueueTx(ctx context.Context, tx *Tx, msgs []ledger.OutboxMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	now := ms(db.now())
	const cols = 8
	added := 0
	tips := map[int64]int64{}
	step := maxRowsPerInsert(cols)
	for start := 0; start < len(msgs); start += step {
		part := msgs[start:min(start+step, len(msgs))]
		args := make([]any, 0, len(part)*cols)
		for _, m := range part {
			if m.Kind == "" || m.PeriodKey == "" || m.PersonID == 0 {
				return 0, fmt.Errorf("outbox message without a full dedupe key: %q, person %d, %q", m.Kind, m.PersonID, m.PeriodKey)
			}
			if m.Priority < 0 || m.Priority > 9 {
				return 0, fmt.Errorf("outbox message priority %d outside 0..9", m.Priority)
			}
			args = append(args, m.Kind, m.PersonID, m.PeriodKey, string(m.Payload), ms(m.NotBefore), m.HoldReason, now, m.Priority)
		}
		// RETURNING lists only the rows inserted, so a tip is marked shown only with the
		// message that offers it.
		rows, err := tx.QueryContext(ctx, `INSERT INTO outbox(kind, person_id, period_key, payload, not_before, hold_reason, created_at, priority)
			VALUES `+placeholders(len(part), cols)+` ON CONFLICT(kind, person_id, period_key) DO NOTHING RETURNING kind, person_id, period_key`, args...)
		if err != nil {
			return 0, err
		}
		inserted := map[string]bool{}
		for rows.Next() {
			var kind, key string
			var person int64
			if err := rows.Scan(&kind, &person, &key); err != nil {
				rows.Close()
				return 0, err
			}
			inserted[fmt.Sprintf("%s\x1f%d\x1f%s", kind, person, key)] = true
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		added += len(inserted)
		for _, m := range part {
			if m.TipPromptID != 0 && inserted[fmt.Sprintf("%s\x1f%d\x1f%s", m.Kind, m.PersonID, m.PeriodKey)] {
				tips[m.PersonID] = m.TipPromptID
			}
		}
	}
	if len(tips) > 0 {
		rows := make([][]any, 0, len(tips))
		for person, prompt := range tips {
			rows = append(rows, []any{person, prompt, now})
		}
		if err := insertRowsIgnore(ctx, tx, `INSERT INTO prompt_shown(person_id, prompt_id, shown_at)`, 3, rows, ` ON CONFLICT DO NOTHING`); err != nil {
			return 0, fmt.Errorf("mark tips shown: %w", err)
		}
	}
	return added, nil
}

func recordNudgesTx(ctx context.Context, tx *Tx, log []ledger.NudgeRecord) error {
	if len(log) == 0 {
		return nil
	}
	rows := make([][]any, len(log))
	for i, r := range log {
		rows[i] = []any{r.PersonID, r.RunKey, ms(r.At), r.Segment, r.HeldOut}
	}
	if err := insertRowsIgnore(ctx, tx, `INSERT INTO nudge_log(person_id, run_key, at, segment, held_out)`, 5, rows, ` ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("record nudges: %w", err)
	}
	return nil
}

const outboxColumns = `id, kind, priority, person_id, period_key, payload, status, not_before, hold_reason, retry_at, attempts, owner,
	last_error, platform, channel, message_id, created_at, COALESCE(sent_at, 0)`

func scanOutbox(s scanner) (ledger.OutboxRow, error) {
	var r ledger.OutboxRow
	var notBefore, retry, created, sent int64
	var payload string
	err := s.Scan(&r.ID, &r.Kind, &r.Priority, &r.PersonID, &r.PeriodKey, &payload, &r.Status, &notBefore, &r.HoldReason, &retry, &r.Attempts,
		&r.Owner, &r.LastError, &r.Ref.Platform, &r.Ref.Channel, &r.Ref.MessageID, &created, &sent)
	r.Payload = []byte(payload)
	r.NotBefore, r.RetryAt, r.CreatedAt, r.SentAt = fromMs(notBefore), fromMs(retry), fromMs(created), fromMs(sent)
	return r, err
}

func (db *Store) outboxWhere(ctx context.Context, where string, args ...any) ([]ledger.OutboxRow, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []ledger.OutboxRow
	for rows.Next() {
		r, err := scanOutbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DueOutbox lists up to limit pending messages that may go now: their hold has passed on
// the business clock and their retry time on the wall clock. Highest priority (lowest
// number) first, then oldest first.
func (db *Store) DueOutbox(ctx context.Context, now, wall time.Time, limit int) ([]ledger.OutboxRow, error) {
	return db.outboxWhere(ctx, `status = 'pending' AND not_before <= ? AND retry_at <= ? ORDER BY priority, not_before, id LIMIT ?`,
		ms(now), ms(wall), limit)
}

// OutboxMessages lists the messages of a kind and period, for tests and reports.
func (db *Store) OutboxMessages(ctx context.Context, kind, periodKey string) ([]ledger.OutboxRow, error) {
	return db.outboxWhere(ctx, `kind = ? AND period_key = ? ORDER BY id`, kind, periodKey)
}

// ClaimDueOutbox claims up to limit messages that may go now (as DueOutbox: hold passed
// on the business clock, retry time on the wall clock), marking them sending by owner
// before the platform is called, and returns them highest priority first, then oldest.
// Workers claiming at the same moment, on any replica, get disjoint messages: on
// PostgreSQL the claim locks the rows it takes and skips the ones another claim holds
// (FOR UPDATE SKIP LOCKED), without waiting for the write lock; on SQLite the one writer
// orders the claims. A claimed message goes back to pending with OutboxRelease, or with
// RecoverOutbox once its owner is gone.
func (db *Store) ClaimDueOutbox(ctx context.Context, now, wall time.Time, owner string, limit int) ([]ledger.OutboxRow, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []ledger.OutboxRow
	claim := func(ctx context.Context, q interface {
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	}) error {
		out = out[:0]
		rows, err := q.QueryContext(ctx, `UPDATE outbox SET status = 'sending', owner = ? WHERE id IN (
			SELECT id FROM outbox WHERE status = 'pending' AND not_before <= ? AND retry_at <= ?
			ORDER BY priority, not_before, id LIMIT ?`+db.skipLocked()+`)
			RETURNING `+outboxColumns, owner, ms(now), ms(wall), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanOutbox(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	}
	var err error
	if _, ok := db.d.(RowLocker); ok {
		err = claim(ctx, db.write)
	} else {
		err = db.inTx(ctx, func(tx *Tx) error { return claim(ctx, tx) })
	}
	if err != nil {
		return nil, fmt.Errorf("claim due messages: %w", err)
	}
	// RETURNING follows no ORDER BY.
	slices.SortFunc(out, func(a, b ledger.OutboxRow) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), a.NotBefore.Compare(b.NotBefore), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// skipLocked is the engine's SkipLocked clause (RowLocker), or nothing.
func (db *Store) skipLocked() string {
	if rl, ok := db.d.(RowLocker); ok {
		return rl.SkipLocked()
	}
	return ""
}

// ClaimOutbox marks a pending message as being sent by owner, before the platform is
// called; false means another worker took it first. A message owner already holds
// (ClaimDueOutbox) is confirmed: true while it is still theirs, false once it was
// recovered (RecoverOutbox, the owner having looked gone) and claimed by another, so a
// worker that stalled past its takeover sends again at most what it had in flight. On
// PostgreSQL (RowLocker) it is one statement outside the write lock: the row's own lock
// decides between two claims.
func (db *Store) ClaimOutbox(ctx context.Context, id int64, owner string) (bool, error) {
	const claim = `UPDATE outbox SET status = 'sending', owner = ?1
		WHERE id = ?2 AND (status = 'pending' OR (status = 'sending' AND owner = ?1))`
	var n int64
	var err error
	if _, ok := db.d.(RowLocker); ok {
		var res sql.Result
		if res, err = db.write.ExecContext(ctx, claim, owner, id); err == nil {
			n, err = res.RowsAffected()
		}
	} else {
		n, err = db.execAffected(ctx, claim, owner, id)
	}
	if err != nil {
		return false, fmt.Errorf("claim message %d: %w", id, err)
	}
	return n == 1, nil
}

// OutboxSentTo records a message as delivered, with where it landed.
func (db *Store) OutboxSentTo(ctx context.Context, id int64, ref ledger.Delivered, at time.Time) error {
	return db.outboxUpdate(ctx, id, `status = 'sent', owner = '', platform = ?, channel = ?, message_id = ?, sent_at = ?, last_error = ''`,
		ref.Platform, ref.Channel, ref.MessageID, ms(at))
}

// OutboxRetry puts a message back in the queue until retryAt (wall clock). failed counts
// the attempt toward maxAttempts: a message at the limit goes to the dead letters, and
// dead reports it. A rate-limited attempt is not a failure.
func (db *Store) OutboxRetry(ctx context.Context, id int64, retryAt time.Time, failed bool, errText string, maxAttempts int) (dead bool, err error) {
	err = db.inTx(ctx, func(tx *Tx) error {
		inc := 0
		if failed {
			inc = 1
		}
		var attempts int
		if err := tx.QueryRowContext(ctx, `UPDATE outbox SET attempts = attempts + ?, last_error = ?, owner = '', retry_at = ?,
			status = CASE WHEN attempts + ? >= ? THEN 'dead' ELSE 'pending' END WHERE id = ? RETURNING attempts`,
			inc, errText, ms(retryAt), inc, maxAttempts, id).Scan(&attempts); err != nil {
			return fmt.Errorf("retry message %d: %w", id, err)
		}
		dead = attempts >= maxAttempts
		return nil
	})
	return dead, err
}

// OutboxUnreachable records that a message has nowhere to go: the person is on no
// configured platform.
func (db *Store) OutboxUnreachable(ctx context.Context, id int64, reason string) error {
	return db.outboxUpdate(ctx, id, `status = 'unreachable', owner = '', last_error = ?`, reason)
}

// OutboxRelease returns a message to the queue untouched (its sender is stopping).
func (db *Store) OutboxRelease(ctx context.Context, id int64) error {
	return db.outboxUpdate(ctx, id, `status = 'pending', owner = ''`)
}

// OutboxDeadLetter gives up on a message that can never be sent (e.g. an unreadable payload).
func (db *Store) OutboxDeadLetter(ctx context.Context, id int64, reason string) error {
	return db.outboxUpdate(ctx, id, `status = 'dead', owner = '', last_error = ?`, reason)
}

func (db *Store) outboxUpdate(ctx context.Context, id int64, set string, args ...any) error {
	return db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET `+set+` WHERE id = ?`, append(args, id)...); err != nil {
			return fmt.Errorf("update message %d: %w", id, err)
		}
		return nil
	})
}

// RecoverOutbox returns to the queue the messages left "sending" by workers that are gone
// (killed mid-delivery): each may or may not have reached the platform, so it is sent
// again. It returns how many.
func (db *Store) RecoverOutbox(ctx context.Context, gone ledger.OwnerGone) (int, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT o.owner, COALESCE(w.heartbeat_at, 0) FROM outbox o
			LEFT JOIN workers w ON w.owner = o.owner WHERE o.status = 'sending'`)
		if err != nil {
			return err
		}
		var dead []any
		for rows.Next() {
			var owner string
			var beat int64
			if err := rows.Scan(&owner, &beat); err != nil {
				rows.Close()
				return err
			}
			if gone(owner, fromMs(beat)) {
				dead = append(dead, owner)
			}
		}
		if err := rows.Close(); err != nil || len(dead) == 0 {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET status = 'pending', owner = '' WHERE status = 'sending' AND owner IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(dead)), ",")+`)`, dead...)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("recover outbox: %w", err)
	}
	return int(n), nil
}

// OutboxWaiting tells what in the queue is not due at now (business) and wall.
func (db *Store) OutboxWaiting(ctx context.Context, now, wall time.Time) (ledger.OutboxWait, error) {
	var w ledger.OutboxWait
	var heldUntil, retryAt int64
	err := db.read.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN status = 'pending' AND not_before <= ? AND retry_at <= ? THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status = 'pending' AND not_before > ? THEN 1 ELSE 0 END), 0),
		COALESCE(MIN(CASE WHEN status = 'pending' AND not_before > ? THEN not_before END), 0),
		COALESCE(SUM(CASE WHEN status = 'pending' AND not_before <= ? AND retry_at > ? THEN 1 ELSE 0 END), 0),
		COALESCE(MIN(CASE WHEN status = 'pending' AND not_before <= ? AND retry_at > ? THEN retry_at END), 0),
		COALESCE(SUM(CASE WHEN status = 'sending' THEN 1 ELSE 0 END), 0)
		FROM outbox WHERE status IN ('pending', 'sending')`,
		ms(now), ms(wall), ms(now), ms(now), ms(now), ms(wall), ms(now), ms(wall)).Scan(&w.Due, &w.Held, &heldUntil, &w.Retrying, &retryAt, &w.InFlight)
	if err != nil {
		return w, fmt.Errorf("outbox waiting: %w", err)
	}
	w.HeldUntil, w.RetryAt = fromMs(heldUntil), fromMs(retryAt)
	if w.Held > 0 {
		if err := db.read.QueryRowContext(ctx, `SELECT hold_reason FROM outbox WHERE status = 'pending' AND not_before = ? LIMIT 1`,
			heldUntil).Scan(&w.HoldReason); err != nil {
			return w, fmt.Errorf("outbox waiting: %w", err)
		}
	}
	return w, nil
}

// OutboxCounts counts messages by status, those created in [since, until) (business clock).
func (db *Store) OutboxCounts(ctx context.Context, since, until time.Time) (map[string]int, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT status, count(*) FROM outbox WHERE created_at >= ? AND created_at < ? GROUP BY status`,
		ms(since), ms(until))
	if err != nil {
		return nil, fmt.Errorf("count outbox: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// PruneOutbox deletes finished messages (sent, dead or unreachable) queued before before
// (business clock) and returns how many. Their dedupe keys name weeks and months long
// past, and a digest a quarter old is not updated any more.
func (db *Store) PruneOutbox(ctx context.Context, before time.Time) (int, error) {
	n, err := db.execAffected(ctx, `DELETE FROM outbox WHERE status IN ('sent', 'dead', 'unreachable') AND created_at < ?`, ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	return int(n), nil
}
