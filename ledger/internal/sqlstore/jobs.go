package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

const jobRunColumns = `r.job, r.period_key, r.slot_at, r.run_at, r.owner, r.status, r.attempts, r.started_at,
	COALESCE(r.finished_at, 0), r.result, r.error`

func scanJobRun(s scanner, extra ...any) (ledger.JobRun, error) {
	var r ledger.JobRun
	var slot, at, started, finished int64
	err := s.Scan(append([]any{&r.Job, &r.Key, &slot, &at, &r.Owner, &r.Status, &r.Attempts, &started, &finished, &r.Result, &r.Error}, extra...)...)
	r.Slot, r.At, r.StartedAt, r.FinishedAt = fromMs(slot), fromMs(at), fromMs(started), fromMs(finished)
	return r, err
}

// ClaimJobRun claims run (Job, Key, Slot, At, Owner and StartedAt are used) in one write
// transaction. A failed run, or one left running by a worker that gone says is gone, is
// taken over.
func (db *Store) ClaimJobRun(ctx context.Context, run ledger.JobRun, gone ledger.OwnerGone) (ledger.Claim, ledger.JobRun, error) {
	claim := ledger.ClaimNew
	var found ledger.JobRun
	err := db.inTx(ctx, func(tx *Tx) error {
		var beat int64
		var err error
		found, err = scanJobRun(tx.QueryRowContext(ctx, `SELECT `+jobRunColumns+`, COALESCE(w.heartbeat_at, 0)
			FROM job_runs r LEFT JOIN workers w ON w.owner = r.owner WHERE r.job = ? AND r.period_key = ?`, run.Job, run.Key), &beat)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err := tx.ExecContext(ctx, `INSERT INTO job_runs(job, period_key, slot_at, run_at, owner, status, started_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, run.Job, run.Key, ms(run.Slot), ms(run.At), run.Owner, ledger.JobRunning, ms(run.StartedAt))
			found = run
			found.Status, found.Attempts = ledger.JobRunning, 1
			return err
		case err != nil:
			return err
		case found.Status == ledger.JobDone || found.Status == ledger.JobSkipped:
			claim = ledger.ClaimDone
			return nil
		case found.Status == ledger.JobRunning && (found.Owner == run.Owner || !gone(found.Owner, fromMs(beat))):
			claim = ledger.ClaimBusy
			return nil
		}
		claim = ledger.ClaimResumed
		found.Owner, found.At, found.StartedAt, found.Status = run.Owner, run.At, run.StartedAt, ledger.JobRunning
		found.Attempts++
		_, err = tx.ExecContext(ctx, `UPDATE job_runs SET owner = ?, run_at = ?, status = ?, attempts = attempts + 1,
			started_at = ?, finished_at = NULL WHERE job = ? AND period_key = ?`,
			run.Owner, ms(run.At), ledger.JobRunning, ms(run.StartedAt), run.Job, run.Key)
		return err
	})
	if err != nil {
		return 0, ledger.JobRun{}, fmt.Errorf("claim job %s %s: %w", run.Job, run.Key, err)
	}
	return claim, found, nil
}

// FinishJobRun records a run as done with a one-line result.
func (db *Store) FinishJobRun(ctx context.Context, job, key, result string, finished time.Time) error {
	return db.endJobRun(ctx, job, key, ledger.JobDone, result, "", finished)
}

// FailJobRun records a failed run; the next tick or start claims it again.
func (db *Store) FailJobRun(ctx context.Context, job, key, errText string) error {
	return db.endJobRun(ctx, job, key, ledger.JobFailed, "", errText, time.Time{})
}

func (db *Store) endJobRun(ctx context.Context, job, key, status, result, errText string, finished time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE job_runs SET status = ?, result = ?, error = ?, finished_at = ?
			WHERE job = ? AND period_key = ?`, status, result, errText, nullMs(finished), job, key)
		if err != nil {
			return fmt.Errorf("record job %s %s as %s: %w", job, key, status, err)
		}
		return nil
	})
}

// SkipFirstJobRun records run as skipped if the job has never run at all, and reports
// whether it did.
func (db *Store) SkipFirstJobRun(ctx context.Context, run ledger.JobRun, result string) (bool, error) {
	n, err := db.execAffected(ctx, `INSERT INTO job_runs(job, period_key, slot_at, run_at, owner, status, started_at, finished_at, result)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM job_runs WHERE job = ?)`,
		run.Job, run.Key, ms(run.Slot), ms(run.At), run.Owner, ledger.JobSkipped, ms(run.StartedAt), ms(run.StartedAt), result, run.Job)
	if err != nil {
		return false, fmt.Errorf("skip first run of %s: %w", run.Job, err)
	}
	return n == 1, nil
}

// JobRunFor returns the run of job for the period key; ok is false when there is none.
func (db *Store) JobRunFor(ctx context.Context, job, key string) (ledger.JobRun, bool, error) {
	r, err := scanJobRun(db.read.QueryRowContext(ctx, `SELECT `+jobRunColumns+` FROM job_runs r WHERE r.job = ? AND r.period_key = ?`, job, key))
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("job run %s %s: %w", job, key, err)
	}
	return r, true, nil
}

// LatestJobRuns returns the run of each job with the latest slot, by job name.
func (db *Store) LatestJobRuns(ctx context.Context) (map[string]ledger.JobRun, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+jobRunColumns+` FROM job_runs r
		WHERE r.slot_at = (SELECT MAX(slot_at) FROM job_runs l WHERE l.job = r.job)`)
	if err != nil {
		return nil, fmt.Errorf("latest job runs: %w", err)
	}
	defer rows.Close()
	out := map[string]ledger.JobRun{}
	for rows.Next() {
		r, err := scanJobRun(rows)
		if err != nil {
			return nil, err
		}
		out[r.Job] = r
	}
	return out, rows.Err()
}

// Heartbeat records that a worker is alive (wall clock).
func (db *Store) Heartbeat(ctx context.Context, owner string, wall time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workers(owner, started_at, heartbeat_at) VALUES (?, ?, ?)
			ON CONFLICT(owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`, owner, ms(wall), ms(wall))
		if err != nil {
			return fmt.Errorf("heartbeat of %s: %w", owner, err)
		}
		return nil
	})
}

// RemoveWorker forgets a worker that stopped cleanly, and workers silent since before
// (wall clock), so the table does not grow with every process ever started.
func (db *Store) RemoveWorker(ctx context.Context, owner string, silentSince time.Time) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM workers WHERE owner = ? OR heartbeat_at < ?`, owner, ms(silentSince))
		if err != nil {
			return fmt.Errorf("remove worker %s: %w", owner, err)
		}
		return nil
	})
}

// ActiveWorkers lists the tokenpay processes (serve, jobs run) whose heartbeat on this
// database is at or after since (wall clock): restoring under them would pull the
// database from under their feet.
func (db *Store) ActiveWorkers(ctx context.Context, since time.Time) ([]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT owner FROM workers WHERE heartbeat_at >= ? ORDER BY owner`, ms(since))
	if err != nil {
		return nil, fmt.Errorf("read workers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
