package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"

	"github.com/tokenpay/tokenpay/ledger"
)

// txWrite is one ledger transaction about to be written.
type txWrite struct {
	id         int64 // assigned by writeTxs
	key        string
	hash       string
	kind       string
	personID   int64
	reason     string
	actor      string
	reversesID int64
	postings   []ledger.Posting
	// implied: the postings live in another row (a usage event's), validated and counted
	// there; only running balances of organisation accounts would move, and usage touches
	// none.
	implied bool
}

// inputHash fingerprints what a caller asked for, so a repeated idempotency key with
// different input is told apart from a harmless retry.
func inputHash(parts ...any) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%v\x1f", p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

type existingTx struct {
	id   int64
	hash string
}

// lookupKeys finds transactions already written under any of keys.
func lookupKeys(ctx context.Context, tx *Tx, keys []string) (map[string]existingTx, error) {
	found := make(map[string]existingTx, len(keys))
	chunk := tx.inStep()
	for start := 0; start < len(keys); start += chunk {
		part := keys[start:min(start+chunk, len(keys))]
		vals := make([]any, len(part))
		for i, k := range part {
			vals[i] = k
		}
		in, args := tx.inList(vals)
		rows, err := tx.QueryContext(ctx, `SELECT idem_key, id, input_hash FROM transactions WHERE idem_key `+in, args...)
		if err != nil {
			return nil, fmt.Errorf("look up idempotency keys: %w", err)
		}
		for rows.Next() {
			var k string
			var e existingTx
			if err := rows.Scan(&k, &e.id, &e.hash); err != nil {
				rows.Close()
				return nil, err
			}
			found[k] = e
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// lookupKey is lookupKeys for one key: (0, nil) when absent, a Conflict when the key was
// used with different input.
func lookupKey(ctx context.Context, tx *Tx, key, hash string) (int64, error) {
	found, err := lookupKeys(ctx, tx, []string{key})
	if err != nil {
		return 0, err
	}
	e, ok := found[key]
	if !ok {
		return 0, nil
	}
	if e.hash != hash {
		return 0, ledger.Errorf(ledger.Conflict, "idempotency key %q was already used for a different operation", key)
	}
	return e.id, nil
}

// writeTxs validates and appends transactions with their postings and moves the running
// account balances, all with multi-row statements. Ids are assigned here: the caller holds
// the write lock, so max(id)+1 is ours; a Partitioner's come from its sequence.
func writeTxs(ctx context.Context, tx *Tx, now int64, ws []*txWrite) error {
	if len(ws) == 0 {
		return nil
	}
	var last int64
	if _, seq := tx.d.(Partitioner); !seq {
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM transactions`).Scan(&last); err != nil {
			return fmt.Errorf("next transaction id: %w", err)
		}
	}
	return writeTxsAfter(ctx, tx, now, ws, last)
}

// writeTxsAfter is writeTxs for a caller that read MAX(transactions.id) as last already,
// in tx and with nothing written to transactions since (unused on a Partitioner).
func writeTxsAfter(ctx context.Context, tx *Tx, now int64, ws []*txWrite, last int64) error {
	if len(ws) == 0 {
		return nil
	}
	next := last
	var ids []int64 // from the sequence (Partitioner); last is then unused
	if p, ok := tx.d.(Partitioner); ok {
		var err error
		if ids, err = p.TxIDs(ctx, tx.tx, len(ws)); err != nil {
			return fmt.Errorf("allocate transaction ids: %w", err)
		}
	}
	txRows := make([][]any, 0, len(ws))
	var postRows [][]any
	deltas := make(map[string]int64)
	for _, w := range ws {
		if err := ledger.ValidatePostings(w.postings); err != nil && !w.implied {
			return fmt.Errorf("transaction %s: %w", w.key, err)
		}
		next++
		w.id = next
		if ids != nil {
			w.id = ids[next-last-1]
		}
		txRows = append(txRows, []any{w.id, w.key, w.hash, w.kind, nullID(w.personID), w.reason, w.actor, nullID(w.reversesID), now})
		if w.implied {
			continue
		}
		for _, p := range w.postings {
			if p.Amount == 0 {
				continue
			}
			postRows = append(postRows, []any{w.id, p.Account, p.Amount})
			sum, ok := ledger.AddChecked(deltas[p.Account], p.Amount)
			if !ok {
				return ledger.Errorf(ledger.Invalid, "account %s would overflow", p.Account)
			}
			deltas[p.Account] = sum
		}
	}
	if err := insertRows(ctx, tx, `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, reason, actor, reverses_id, created_at)`, 9, txRows); err != nil {
		if tx.d.IsUnique(err, "transactions.idem_key") {
			return ledger.Errorf(ledger.Conflict, "a transaction with the same idempotency key was written concurrently")
		}
		if tx.d.IsUnique(err, "transactions.reverses_id") {
			return ledger.Errorf(ledger.Conflict, "that transaction is already reversed")
		}
		return fmt.Errorf("insert transactions: %w", err)
	}
	if err := insertRows(ctx, tx, `INSERT INTO postings(tx_id, account, amount)`, 3, postRows); err != nil {
		return fmt.Errorf("insert postings: %w", err)
	}
	accRows := make([][]any, 0, len(deltas))
	for acc, d := range deltas {
		// A person's balances are projections (open grants, usage rows) that verify checks
		// against the postings; keeping running totals for them too would rewrite a random
		// page per person on every usage batch.
		if d != 0 && !ledger.IsPersonAccount(acc) {
			accRows = append(accRows, []any{acc, d})
		}
	}
	step := maxRowsPerInsert(2)
	for start := 0; start < len(accRows); start += step {
		part := accRows[start:min(start+step, len(accRows))]
		args := make([]any, 0, 2*len(part))
		for _, r := range part {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts(name, balance) VALUES `+placeholders(len(part), 2)+
			` ON CONFLICT(name) DO UPDATE SET balance = accounts.balance + excluded.balance`, args...); err != nil {
			return fmt.Errorf("update account balances: %w", err)
		}
	}
	return nil
}

// Transaction returns a transaction with its postings.
func (db *Store) Transaction(ctx context.Context, id int64) (ledger.Transaction, error) {
	var t ledger.Transaction
	var person, reverses sql.NullInt64
	var created int64
	err := db.read.QueryRowContext(ctx, `SELECT id, idem_key, kind, person_id, reason, actor, reverses_id, created_at
		FROM transactions WHERE id = ?`, id).Scan(&t.ID, &t.Key, &t.Kind, &person, &t.Reason, &t.Actor, &reverses, &created)
	if err != nil {
		return t, notFound(err, "transaction %d does not exist", id)
	}
	t.PersonID, t.ReversesID, t.CreatedAt = person.Int64, reverses.Int64, fromMs(created)
	rows, err := db.read.QueryContext(ctx, `SELECT account, amount FROM ledger_postings WHERE tx_id = ?`, id)
	if err != nil {
		return t, err
	}
	defer rows.Close()
	for rows.Next() {
		var p ledger.Posting
		if err := rows.Scan(&p.Account, &p.Amount); err != nil {
			return t, err
		}
		t.Postings = append(t.Postings, p)
	}
	return t, rows.Err()
}

// AccountBalance returns the running balance of an organisation account (the pool, the
// reclaimed credits); 0 when it never moved. A person's balances come from Balance.
func (db *Store) AccountBalance(ctx context.Context, account string) (int64, error) {
	var b int64
	err := db.read.QueryRowContext(ctx, `SELECT balance FROM accounts WHERE name = ?`, account).Scan(&b)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return b, err
}
