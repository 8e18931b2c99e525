package sqlite

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
// 256 random bits, so a fast hash is enough).
func (db *DB) CreateAPIKey(ctx context.Context, name string) (string, ledger.APIKey, error) {
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
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO api_keys(name, key_hash, created_at) VALUES (?, ?, ?)`, name, hashKey(key), ms(k.CreatedAt))
		if err != nil {
			return fmt.Errorf("create api key: %w", err)
		}
		k.ID, _ = res.LastInsertId()
		return auditTx(ctx, tx, db.now(), "cli", "apikey.create", name, "")
	})
	return key, k, err
}

// CheckAPIKey returns the key's record, or a Forbidden error for unknown or revoked keys.
func (db *DB) CheckAPIKey(ctx context.Context, key string) (ledger.APIKey, error) {
	var k ledger.APIKey
	var created int64
	var revoked sql.NullInt64
	err := db.read.QueryRowContext(ctx, `SELECT id, name, created_at, revoked_at FROM api_keys WHERE key_hash = ?`, hashKey(key)).
		Scan(&k.ID, &k.Name, &created, &revoked)
	if err == sql.ErrNoRows || revoked.Valid {
		return k, ledger.Errorf(ledger.Forbidden, "the API key is not valid")
	}
	k.CreatedAt, k.Revoked = fromMs(created), revoked.Valid
	return k, err
}

// RevokeAPIKey revokes every key with the given name.
func (db *DB) RevokeAPIKey(ctx context.Context, name string) (int64, error) {
	var n int64
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`, ms(db.now()), name)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return auditTx(ctx, tx, db.now(), "cli", "apikey.revoke", name, "")
	})
	return n, err
}

// Audit appends an entry to the audit log.
func (db *DB) Audit(ctx context.Context, actor, action, subject, detail string) error {
	return db.inTx(ctx, func(tx *sql.Tx) error { return auditTx(ctx, tx, db.now(), actor, action, subject, detail) })
}

func auditTx(ctx context.Context, tx *sql.Tx, at time.Time, actor, action, subject, detail string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log(at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)`,
		ms(at), actor, action, subject, detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// AuditLog lists the newest audit entries first.
func (db *DB) AuditLog(ctx context.Context, limit int) ([]ledger.AuditEntry, error) {
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
