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
	if err := ledger.CheckAmount(in.Amount); err != nil {
		return ledger.Request{}, err
	}
	if strings.TrimSpace(in.UseCase) == "" {
		return ledger.Request{}, ledger.Errorf(ledger.Invalid, "describe the use case")
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
		for i := range open {
			if ledger.SameUseCase(open[i].UseCase, in.UseCase) {
				return &ledger.OpenRequestsError{Duplicate: &open[i], Open: open, Max: in.MaxPending}
			}
		}
		if in.MaxPending > 0 && len(open) >= in.MaxPending {
			return &ledger.OpenRequestsError{Open: open, Max: in.MaxPending}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO requests(requester_id, approver_id, amount, use_case, status, needs_admin, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, in.RequesterID, nullID(in.ApproverID), in.Amount, in.UseCase, ledger.RequestPending,
			in.NeedsAdmin, ms(now), ms(in.ExpiresAt))
		if err != nil {
			return fmt.Errorf("file request: %w", err)
		}
		id, _ = res.LastInsertId()
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

// Decide applies a decision atomically. It returns the request after the decision and
// whether anything changed: a decision on a request that is no longer pending changes
// nothing, so a double click grants once.
func (db *Store) Decide(ctx context.Context, d ledger.Decision) (ledger.Request, bool, error) {
	var changed bool
	now := db.now()
	err := db.inTx(ctx, func(tx *Tx) error {
		r, err := scanRequest(tx.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, d.RequestID))
		if err != nil {
			return notFound(err, "request %d does not exist", d.RequestID)
		}
		if r.Status != ledger.RequestPending {
			return nil
		}
		if d.DeciderID == r.RequesterID {
			return ledger.Errorf(ledger.Forbidden, "nobody may decide their own request")
		}
		if !now.Before(r.ExpiresAt) {
			changed = true
			_, err := tx.ExecContext(ctx, `UPDATE requests SET status = 'expired', decided_at = ? WHERE id = ?`, ms(r.ExpiresAt), r.ID)
			return err
		}
		if !d.Approve {
			changed = true
			_, err := tx.ExecContext(ctx, `UPDATE requests SET status = 'denied', decided_by = ?, decided_at = ?, note = ? WHERE id = ?`,
				d.DeciderID, ms(now), d.Note, r.ID)
			return err
		}
		mgr, adm := r.ManagerApproval, r.AdminApproval
		var done bool
		if r.NeedsAdmin {
			// Separation of duties: two different people approve, one for each side, even
			// when one person is both manager and admin. With no manager on file, a first
			// admin takes the manager's side and a second admin the admin's.
			firstSide := d.AsManager || (r.ApproverID == 0 && d.AsAdmin)
			switch {
			case mgr == 0 && firstSide && adm != d.DeciderID:
				mgr = d.DeciderID
			case adm == 0 && d.AsAdmin && mgr != d.DeciderID:
				adm = d.DeciderID
			}
			done = mgr != 0 && adm != 0
		} else {
			switch {
			case d.AsManager && mgr == 0:
				mgr = d.DeciderID
			case d.AsAdmin && adm == 0:
				adm = d.DeciderID
			}
			done = mgr != 0 || adm != 0
		}
		if mgr == r.ManagerApproval && adm == r.AdminApproval && !done {
			return nil
		}
		changed = true
		if !done {
			_, err := tx.ExecContext(ctx, `UPDATE requests SET manager_approval = ?, admin_approval = ? WHERE id = ?`, nullID(mgr), nullID(adm), r.ID)
			return err
		}
		g, err := db.grantTx(ctx, tx, ledger.GrantInput{Key: fmt.Sprintf("request:%d", r.ID), PersonID: r.RequesterID, Kind: ledger.GrantUnlock,
			Amount: r.Amount, EffectiveAt: now, ExpiresAt: d.GrantExpiresAt, Reason: "unlock: " + truncate(r.UseCase, 200), Actor: fmt.Sprintf("person:%d", d.DeciderID)})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE requests SET status = 'approved', manager_approval = ?, admin_approval = ?, decided_by = ?,
			decided_at = ?, note = ?, grant_id = ? WHERE id = ?`, nullID(mgr), nullID(adm), d.DeciderID, ms(now), d.Note, g.ID, r.ID)
		return err
	})
	if err != nil {
		return ledger.Request{}, false, err
	}
	r, err := db.Request(ctx, d.RequestID)
	return r, changed, err
}

// CancelRequest withdraws a pending request; only its requester may.
func (db *Store) CancelRequest(ctx context.Context, requestID, requesterID int64) (ledger.Request, bool, error) {
	n, err := db.execAffected(ctx, `UPDATE requests SET status = 'cancelled', decided_by = ?, decided_at = ?
		WHERE id = ? AND requester_id = ? AND status = 'pending'`, requesterID, ms(db.now()), requestID, requesterID)
	if err != nil {
		return ledger.Request{}, false, fmt.Errorf("cancel request %d: %w", requestID, err)
	}
	r, err := db.Request(ctx, requestID)
	return r, n > 0, err
}

// ExpireRequests marks pending requests past their expiry and returns them.
func (db *Store) ExpireRequests(ctx context.Context) ([]ledger.Request, error) {
	// The ids come from the UPDATE itself: a request decided a moment before is not
	// reported as expired.
	var ids []any
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE requests SET status = 'expired', decided_at = expires_at
			WHERE status = 'pending' AND expires_at <= ? RETURNING id`, ms(db.now()))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return db.requestsWhere(ctx, `id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")+`) ORDER BY id`, ids...)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// LogImpact records an outcome a person reports.
func (db *Store) LogImpact(ctx context.Context, personID int64, text string, minutes int64, link string) (ledger.Impact, error) {
	im := ledger.Impact{PersonID: personID, Text: text, Minutes: minutes, Link: link, CreatedAt: db.now()}
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO impacts(person_id, text, minutes, link, created_at) VALUES (?, ?, ?, ?, ?)`,
			personID, text, minutes, link, ms(im.CreatedAt))
		if err != nil {
			return fmt.Errorf("log impact: %w", err)
		}
		im.ID, _ = res.LastInsertId()
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
