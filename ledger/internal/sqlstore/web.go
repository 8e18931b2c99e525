package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// Web sessions and one-time sign-in links for the dashboard. Secrets are 256 random bits
// handed out once; only their SHA-256 is stored (hashKey), so reading the database signs
// no one in.

func randomToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// CreateLoginLink makes a sign-in token for the person with email, valid LoginLinkTTL from
// now (business clock) and for one use. It is written to the audit log under actor. The
// token is returned once; NotFound when nobody in the directory has the email.
func (db *Store) CreateLoginLink(ctx context.Context, email, actor string) (string, time.Time, error) {
	p, err := db.PersonByEmail(ctx, email)
	if err != nil {
		return "", time.Time{}, err
	}
	token, err := randomToken()
	if err != nil {
		return "", time.Time{}, err
	}
	now := db.now()
	expires := now.Add(ledger.LoginLinkTTL)
	err = db.inTx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO login_links(token_hash, person_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
			hashKey(token), p.ID, ms(now), ms(expires)); err != nil {
			return fmt.Errorf("create sign-in link: %w", err)
		}
		return auditTx(ctx, tx, now, actor, "login-link.create", p.Email, "valid until "+expires.Format(time.RFC3339))
	})
	return token, expires, err
}

// LoginLinkPerson returns whose sign-in token this is, without using it: it reads only
// (no write, no audit), so the page a link opens on GET can say who it signs in while a
// link preview or mail scanner fetching it changes nothing. ErrLinkRefused for an unknown,
// used or expired token, as UseLoginLink answers.
func (db *Store) LoginLinkPerson(ctx context.Context, token string) (ledger.Person, error) {
	var personID, expires int64
	var used sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT person_id, expires_at, used_at FROM login_links WHERE token_hash = ?`, hashKey(token)).
		Scan(&personID, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.Person{}, ledger.ErrLinkRefused
	}
	if err != nil {
		return ledger.Person{}, fmt.Errorf("read sign-in link: %w", err)
	}
	if used.Valid || ms(db.now()) >= expires {
		return ledger.Person{}, ledger.ErrLinkRefused
	}
	return db.PersonByID(ctx, personID)
}

// UseLoginLink consumes a sign-in token and returns whose it was. A second use, an expired
// or unknown token is ErrLinkRefused; the use is audited, and so is a refused known token.
func (db *Store) UseLoginLink(ctx context.Context, token string) (ledger.Person, error) {
	var personID int64
	now := db.now()
	err := db.inTx(ctx, func(tx *Tx) error {
		var expires int64
		var used sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT person_id, expires_at, used_at FROM login_links WHERE token_hash = ?`, hashKey(token)).
			Scan(&personID, &expires, &used)
		if errors.Is(err, sql.ErrNoRows) {
			return ledger.ErrLinkRefused
		}
		if err != nil {
			return fmt.Errorf("read sign-in link: %w", err)
		}
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT email FROM people WHERE id = ?`, personID).Scan(&email); err != nil {
			return fmt.Errorf("read sign-in link: %w", err)
		}
		if used.Valid || ms(now) >= expires {
			why := "already used"
			if !used.Valid {
				why = "expired"
			}
			return errors.Join(ledger.ErrLinkRefused, refusedLink{email: email, why: why})
		}
		if _, err := tx.ExecContext(ctx, `UPDATE login_links SET used_at = ? WHERE token_hash = ?`, ms(now), hashKey(token)); err != nil {
			return fmt.Errorf("use sign-in link: %w", err)
		}
		return auditTx(ctx, tx, now, email, "login-link.use", email, "")
	})
	var refused refusedLink
	if errors.As(err, &refused) {
		// The transaction rolled back; the refusal is recorded on its own.
		if aerr := db.Audit(ctx, refused.email, "login-link.refused", refused.email, refused.why); aerr != nil {
			return ledger.Person{}, errors.Join(ledger.ErrLinkRefused, aerr)
		}
		return ledger.Person{}, ledger.ErrLinkRefused
	}
	if err != nil {
		return ledger.Person{}, err
	}
	return db.PersonByID(ctx, personID)
}

type refusedLink struct{ email, why string }

func (r refusedLink) Error() string { return "sign-in link " + r.why }

// CreateSession signs a person in for ttl; it returns the cookie value (once) and the
// session. via says how they proved who they are ("link" or "oidc").
func (db *Store) CreateSession(ctx context.Context, personID int64, via string, ttl time.Duration) (string, ledger.Session, error) {
	token, err := randomToken()
	if err != nil {
		return "", ledger.Session{}, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", ledger.Session{}, err
	}
	now := db.now()
	s := ledger.Session{PersonID: personID, CSRF: csrf, Via: via, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	_, err = db.write.ExecContext(ctx, `INSERT INTO web_sessions(token_hash, person_id, csrf, via, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		hashKey(token), personID, csrf, via, ms(now), ms(s.ExpiresAt))
	if err != nil {
		return "", ledger.Session{}, fmt.Errorf("create session: %w", err)
	}
	return token, s, nil
}

// SessionFor returns the live session of a cookie value; NotFound when there is none or
// it expired.
func (db *Store) SessionFor(ctx context.Context, token string) (ledger.Session, error) {
	var s ledger.Session
	var created, expires int64
	err := db.read.QueryRowContext(ctx, `SELECT person_id, csrf, via, created_at, expires_at FROM web_sessions WHERE token_hash = ?`, hashKey(token)).
		Scan(&s.PersonID, &s.CSRF, &s.Via, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return s, ledger.Errorf(ledger.NotFound, "you are not signed in")
	}
	if err != nil {
		return s, fmt.Errorf("read session: %w", err)
	}
	s.CreatedAt, s.ExpiresAt = fromMs(created), fromMs(expires)
	if !db.now().Before(s.ExpiresAt) {
		return s, ledger.Errorf(ledger.NotFound, "your session expired; sign in again")
	}
	return s, nil
}

// DeleteSession signs a browser out (and prunes every expired session while at it).
func (db *Store) DeleteSession(ctx context.Context, token string) error {
	_, err := db.write.ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = ? OR expires_at <= ?`, hashKey(token), ms(db.now()))
	if err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
