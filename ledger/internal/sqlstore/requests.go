package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// CreateRequest files a pending request.
func (db *Store) CreateRequest(ctx context.Context, in ledger.RequestInput) (ledger.Request, error) {
	if err := ledger.CheckRequest(in); err != nil {
		return ledger.Request{}, err
	}
	now := db.now()
	var id int64
	err := db.inTx(ctx, func(tx *Tx) error {
		// Checked inside the write transaction, so two requests filed at once cannot both pass.
		rows, err := tx.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE requester_id = ? AND status = 'pending' AND expires_at > ? ORDER BY id`, in.RequesterID, ms(now))
		if err != nil {
			return fmt.Errorf("read open requests: %w", err)
		}
		var open []ledger.Request
		for rows.Next() {
			r, err := scanRequest(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("read open requests: %w", err)
			}
			open = append(open, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read open requests: %w", err)
		}
		if err := ledger.CheckOpenRequests(in, open); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO requests(requester_id, approver_id, amount, use_case, status, needs_admin, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, in.RequesterID, nullID(in.ApproverID), in.Amount, in.UseCase, ledger.RequestPending,
			in.NeedsAdmin, ms(now), ms(in.ExpiresAt)).Scan(&id); err != nil {
			return fmt.Errorf("file request: %w", err)
		}
		return nil
	})
	if err != nil {
		return ledger.Request{}, err
	}
	return db.Request(ctx, id)
}

const requestColumns = `id, requester_id, COALESCE(approver_id, 0), amount, use_case, status, needs_admin,
	COALESCE(manager_approval, 0), COALESCE(admin_approval, 0), COALESCE(decided_by, 0), COALESCE(decided_at, 0),
	note, created_at, expires_at, COALESCE(grant_id, 0)`

func scanRequest(s scanner) (ledger.Request, error) {
	var r ledger.Request
	var decided, created, expires int64
	err := s.Scan(&r.ID, &r.RequesterID, &r.ApproverID, &r.Amount, &r.UseCase, &r.Status, &r.NeedsAdmin,
		&r.ManagerApproval, &r.AdminApproval, &r.DecidedBy, &decided, &r.Note, &created, &expires, &r.GrantID)
	r.DecidedAt, r.CreatedAt, r.ExpiresAt = fromMs(decided), fromMs(created), fromMs(expires)
	return r, err
}

// Request returns one request.
func (db *Store) Request(ctx context.Context, id int64) (ledger.Request, error) {
	r, err := scanRequest(db.read.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, id))
	return r, notFound(err, "request %d does not exist", id)
}

func (db *Store) requestsWhere(ctx context.Context, where string, args ...any) ([]ledger.Request, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// PendingRequests lists pending requests, oldest first. approverIDs filters by approver
// (manager); with none, every pending request is listed (for admins).
func (db *Store) PendingRequests(ctx context.Context, approverIDs ...int64) ([]ledger.Request, error) {
	if len(approverIDs) == 0 {
		return db.requestsWhere(ctx, `status = 'pending' ORDER BY id`)
	}
	args := make([]any, len(approverIDs))
	for i, id := range approverIDs {
		args[i] = id
	}
	return db.requestsWhere(ctx, `status = 'pending' AND approver_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")+`) ORDER BY id`, args...)
}

// RequestsBy lists a person's latest requests, newest first.
func (db *Store) RequestsBy(ctx context.Context, requesterID int64, limit int) ([]ledger.Request, error) {
	return db.requestsWhere(ctx, `requester_id = ? ORDER BY id DESC LIMIT ?`, requesterID, limit)
}

// Decide applies a decision atomically: ledger.DecideRequest decides on the request as
// stored, inside the write transaction, so concurrent clicks (on any replica) are taken
// one after the other. It returns the request after the decision and whether anything
// changed: a decision on a request that is no longer pending changes nothing, so a double
// click grants once.
func (db *Store) Decide(ctx context.Context, d ledger.Decision) (ledger.Request, bool, error) {
	var changed bool
	now := db.now()
	err := db.inTx(ctx, func(tx *Tx) error {
		r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, d.RequestID))
		if err != nil {
			return notFound(err, "request %d does not exist", d.RequestID)
		}
		out, err := ledger.DecideRequest(r, d, now)
		if err != nil || !out.Changed {
			return err
		}
		changed = true
		if out.Grant != nil {
			g, err := db.grantTx(ctx, tx, *out.Grant)
			if err != nil {
				return err
			}
			out.Request.GrantID = g.ID
		}
		return saveRequest(ctx, tx, out.Request)
	})
	if err != nil {
		return ledger.Request{}, false, err
	}
	r, err := db.Request(ctx, d.RequestID)
	return r, changed, err
}

// saveRequest writes what the request rules change of a request.
func saveRequest(ctx context.Context, tx *Tx, r ledger.Request) error {
	if _, err := tx.ExecContext(ctx, `UPDATE requests SET status = ?, manager_approval = ?, admin_approval = ?, decided_by = ?,
		decided_at = ?, note = ?, grant_id = ? WHERE id = ?`, r.Status, nullID(r.ManagerApproval), nullID(r.AdminApproval),
		nullID(r.DecidedBy), nullID(ms(r.DecidedAt)), r.Note, nullID(r.GrantID), r.ID); err != nil {
		return fmt.Errorf("save request %d: %w", r.ID, err)
	}
	return nil
}

// CancelRequest withdraws a pending request; only its requester may (ledger.CancelRequest).
func (db *Store) CancelRequest(ctx context.Context, requestID, requesterID int64) (ledger.Request, bool, error) {
	var changed bool
	err := db.inTx(ctx, func(tx *Tx) error {
		r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, requestID))
		if err != nil {
			return notFound(err, "request %d does not exist", requestID)
		}
		out := ledger.CancelRequest(r, requesterID, db.now())
		if !out.Changed {
			return nil
		}
		changed = true
		return saveRequest(ctx, tx, out.Request)
	})
	if err != nil {
		return ledger.Request{}, false, fmt.Errorf("cancel request %d: %w", requestID, err)
	}
	r, err := db.Request(ctx, requestID)
	return r, changed, err
}

// ExpireRequests marks pending requests past their expiry (ledger.ExpireRequest) and
// returns them.
func (db *Store) ExpireRequests(ctx context.Context) ([]ledger.Request, error) {
	// Read and written in one write transaction: a request decided a moment before is
	// no longer pending, and not reported as expired.
	var out []ledger.Request
	now := db.now()
	err := db.inTx(ctx, func(tx *Tx) error {
		out = out[:0]
		// The condition only narrows the read to candidates by the index; the rule decides.
		rows, err := tx.QueryContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE status = 'pending' AND expires_at <= ? ORDER BY id`, ms(now))
		if err != nil {
			return err
		}
		var due []ledger.Request
		for rows.Next() {
			r, err := scanRequest(rows)
			if err != nil {
				rows.Close()
				return err
			}
			due = append(due, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range due {
			res := ledger.ExpireRequest(r, now)
			if !res.Changed {
				continue
			}
			if err := saveRequest(ctx, tx, res.Request); err != nil {
				return err
			}
			out = append(out, res.Request)
		}
		return nil
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// LogImpact records an outcome a person reports.
func (db *Store) LogImpact(ctx context.Context, personID int64, text string, minutes int64, link string) (ledger.Impact, error) {
	im := ledger.Impact{PersonID: personID, Text: text, Minutes: minutes, Link: link, CreatedAt: db.now()}
	err := db.inTx(ctx, func(tx *Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO impacts(person_id, text, minutes, link, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			personID, text, minutes, link, ms(im.CreatedAt)).Scan(&im.ID); err != nil {
			return fmt.Errorf("log impact: %w", err)
		}
		return nil
	})
	return im, err
}

const impactColumns = `id, person_id, text, minutes, link, created_at, COALESCE(validated_by, 0), COALESCE(validated_at, 0)`

func (db *Store) impactsWhere(ctx context.Context, where string, args ...any) ([]ledger.Impact, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+impactColumns+` FROM impacts WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Impact
	for rows.Next() {
		var im ledger.Impact
		var created, validated int64
		if err := rows.Scan(&im.ID, &im.PersonID, &im.Text, &im.Minutes, &im.Link, &created, &im.ValidatedBy, &validated); err != nil {
			return nil, err
		}
		im.CreatedAt, im.ValidatedAt = fromMs(created), fromMs(validated)
		out = append(out, im)
	}
	return out, rows.Err()
}

// Impact returns one impact entry.
func (db *Store) Impact(ctx context.Context, id int64) (ledger.Impact, error) {
	ims, err := db.impactsWhere(ctx, `id = ?`, id)
	if err != nil {
		return ledger.Impact{}, err
	}
	if len(ims) == 0 {
		return ledger.Impact{}, ledger.Errorf(ledger.NotFound, "impact %d does not exist", id)
	}
	return ims[0], nil
}

// Impacts lists a person's impacts logged at or after since, newest first.
func (db *Store) Impacts(ctx context.Context, personID int64, since time.Time, limit int) ([]ledger.Impact, error) {
	return db.impactsWhere(ctx, `person_id = ? AND created_at >= ? ORDER BY id DESC LIMIT ?`, personID, ms(since), limit)
}

// ValidateImpact records that a manager confirmed an outcome; the first validation stands.
func (db *Store) ValidateImpact(ctx context.Context, impactID, validatorID int64) (ledger.Impact, bool, error) {
	n, err := db.execAffected(ctx, `UPDATE impacts SET validated_by = ?, validated_at = ? WHERE id = ? AND validated_at IS NULL`,
		validatorID, ms(db.now()), impactID)
	if err != nil {
		return ledger.Impact{}, false, fmt.Errorf("validate impact %d: %w", impactID, err)
	}
	im, err := db.Impact(ctx, impactID)
	return im, n > 0, err
}
