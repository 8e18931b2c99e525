package sqlstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// apiKeyPrefix makes keys recognisable in logs and secret scanners.
const apiKeyPrefix = "tp_"

func hashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// CreateAPIKey makes a new key and returns it once; only its SHA-256 is stored (the key is
// 256 random bits, so a fast hash is enough). actor is who asked, for the audit log
// ("cli:<os user>").
func (db *Store) CreateAPIKey(ctx context.Context, name, actor string) (string, ledger.APIKey, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", ledger.APIKey{}, ledger.Errorf(ledger.Invalid, "give the key a name of 1 to 100 characters, e.g. the gateway that will use it")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", ledger.APIKey{}, fmt.Errorf("create api key: %w", err)
	}
	key := apiKeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	k := ledger.APIKey{Name: name, CreatedAt: db.now()}
	err := db.inTx(ctx, func(tx *Tx) error {
		// Names are how keys are revoked and listed: two live keys of one name could not be
		// told apart. A revoked key's name may be used again.
		var taken int64
		err := tx.QueryRowContext(ctx, `SELECT created_at FROM api_keys WHERE name = ? AND revoked_at IS NULL`, name).Scan(&taken)
		if err == nil {
			return ledger.Errorf(ledger.Conflict, "an API key named %q already exists (created %s); choose another name, or revoke it first with 'tokenpay apikey revoke %s'",
				name, fromMs(taken).UTC().Format("2006-01-02 15:04 UTC"), name)
		}
		if err != sql.ErrNoRows {
			return fmt.Errorf("create api key: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO api_keys(name, key_hash, created_at) VALUES (?, ?, ?) RETURNING id`,
			name, hashKey(key), ms(k.CreatedAt)).Scan(&k.ID); err != nil {
			return fmt.Errorf("create api key: %w", err)
		}
		return auditTx(ctx, tx, db.now(), actor, "apikey.create", name, "")
	})
	return key, k, err
}

// CheckAPIKey returns the key's record, or a Forbidden error for unknown or revoked keys.
func (db *Store) CheckAPIKey(ctx context.Context, key string) (ledger.APIKey, error) {
	var k ledger.APIKey
	var created, used int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT id, name, created_at, COALESCE(last_used, 0), revoked_at FROM api_keys WHERE key_hash = ?`, hashKey(key)).
		Scan(&k.ID, &k.Name, &created, &used, &revoked)
	if err == sql.ErrNoRows || revoked.Valid {
		return k, ledger.Errorf(ledger.Forbidden, "the API key is not valid")
	}
	if err != nil {
		return k, err
	}
	k.CreatedAt, k.Revoked, k.LastUsed = fromMs(created), revoked.Valid, fromMs(used)
	if now := db.now(); now.Sub(k.LastUsed) >= time.Minute {
		db.touchAPIKey(ctx, k.ID, now)
	}
	return k, nil
}

// touchAPIKey records when a key was last used, at most once a minute per key and on a
// best-effort basis: a key check must not wait behind a busy writer (balance lookups keep
// working while the ledger cannot write), so the update gives up after a moment.
func (db *Store) touchAPIKey(ctx context.Context, id int64, now time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 250*time.Millisecond)
	defer cancel()
	_, _ = db.write.ExecContext(ctx, `UPDATE api_keys SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used < ?)`,
		ms(now), id, ms(now.Add(-time.Minute)))
}

// APIKeys lists every key, oldest first: name, created, last used (zero: never), revoked.
// The keys themselves are not stored, so they cannot be listed.
func (db *Store) APIKeys(ctx context.Context) ([]ledger.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, name, created_at, COALESCE(last_used, 0), revoked_at IS NOT NULL FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	defer rows.Close()
	var out []ledger.APIKey
	for rows.Next() {
		var k ledger.APIKey
		var created, used int64
		if err := rows.Scan(&k.ID, &k.Name, &created, &used, &k.Revoked); err != nil {
			return nil, fmt.Errorf("list api keys: %w", err)
		}
		k.CreatedAt = fromMs(created)
		if used > 0 {
			k.LastUsed = fromMs(used)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAPIKey revokes every live key with the given name; none is a NotFound error.
// actor is who asked, for the audit log.
func (db *Store) RevokeAPIKey(ctx context.Context, name, actor string) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, ms(db.now()), name)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if n == 0 {
			return ledger.Errorf(ledger.NotFound, "no active API key is named %q; 'tokenpay apikey list' shows the names", name)
		}
		return auditTx(ctx, tx, db.now(), actor, "apikey.revoke", name, "")
	})
	return n, err
}

// Audit appends an entry to the audit log.
func (db *Store) Audit(ctx context.Context, actor, action, subject, detail string) error {
	return db.inTx(ctx, func(tx *Tx) error { return auditTx(ctx, tx, db.now(), actor, action, subject, detail) })
}

// auditTx appends an audit entry. Every administrative action names who ran it (README,
// Security): an entry without an actor is refused, and so the action with it.
func auditTx(ctx context.Context, tx *Tx, at time.Time, actor, action, subject, detail string) error {
	if strings.TrimSpace(actor) == "" {
		return fmt.Errorf("audit %s: no actor named", action)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log(at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		ms(at), actor, action, subject, detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditLog lists the newest audit entries first.
func (db *Store) AuditLog(ctx context.Context, limit int) ([]ledger.AuditEntry, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, at, actor, action, subject, detail FROM audit_log ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.AuditEntry
	for rows.Next() {
		var e ledger.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Subject, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMs(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
