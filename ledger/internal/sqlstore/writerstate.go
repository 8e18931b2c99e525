package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// OneWriter is a Dialect on which every write of a process runs on one connection
// (SQLite). The usage writer then keeps what each batch reads (its people's open grants
// and period totals) from one batch to the next instead of reading it again, and the
// stamp tells it when anything else may have changed them.
type OneWriter interface {
	// WriteStamp is the SQL of two BIGINT columns that, read inside a write transaction,
	// differ from what they were at the end of the previous one whenever a row was
	// written meanwhile, whatever wrote it: a statement on this connection (SQLite's
	// total_changes()) or a commit by any other connection or process (PRAGMA
	// data_version).
	WriteStamp() string
	// SmallWriteWaiting reports whether a small write (BeginWrite's priority lane) waits
	// for the writer: a usage transaction then commits rather than take more batches.
	SmallWriteWaiting() bool
}

// writerCacheMax bounds each map of writerState (people, or person-periods): about 150
// bytes an entry, so a few tens of MB at most. A larger organisation keeps only the people
// posted for since the map last filled up.
const writerCacheMax = 250_000

// fullLoadMin is how many people a batch must find missing before the writer reads every
// open grant (or every total of a period) in one pass rather than just theirs: a cold
// writer facing a busy gateway loads everything at once, a late event or two only what it
// needs.
const fullLoadMin = 256

// fullLoadEvery spaces the full loads of each kind: when other writes keep emptying the
// state (first contacts linking people, outbox claims), batches read their own people, as
// they would without it, instead of the whole organisation every time.
const fullLoadEvery = time.Minute

// writerState is what the usage writer keeps between batches (OneWriter dialects): the
// open grants holding credits and the period totals (usage_totals) of the people it posted
// for, exactly as the database holds them after its last usage commit. A usage transaction
// starts by checking the stamp (OneWriter): anything written since, by any statement of
// this process or by another process, empties the state, as does a usage transaction that
// does not commit. Grants and totals are changed in place as a batch burns and adds (the
// same values it writes), so the state follows the usage writes it knows; a batch that
// moves grants some other way (late usage for a closed period, a rebooked period) empties
// it. Only usage transactions touch it, one at a time under the write lock; the mutex
// makes that plain to the race detector.
type writerState struct {
	mu            sync.Mutex
	changes, data int64 // the stamp at the end of the last usage write
	open          *Tx   // the usage transaction whose changes are in the state, until it commits

	grants    map[int64][]*ledger.BurnGrant // person → open grants with credits, burn order
	allGrants bool                          // every open grant with credits is in grants
	triedAll  bool                          // a full load was tried since the last reset
	grantsAt  time.Time                     // the last full load of grants; kept by reset
	totalsAt  time.Time                     // the last full load of a period's totals; kept by reset

	totals   map[periodKey]int64 // usage_totals, floored at 0 as stored
	periods  map[int64]bool      // period starts (ms) whose every usage_totals row is in totals
	triedPer map[int64]bool      // period starts whose full load was tried since the last reset
}

func (w *writerState) reset() {
	w.grants, w.allGrants, w.triedAll = map[int64][]*ledger.BurnGrant{}, false, false
	w.totals, w.periods, w.triedPer = map[periodKey]int64{}, map[int64]bool{}, map[int64]bool{}
}

// begin starts a usage write in tx: the state is kept only if nothing was written since
// the last usage write ended and that write's transaction committed (or is tx itself).
func (w *writerState) begin(ctx context.Context, tx *Tx, stamp string) error {
	var changes, data int64
	if err := tx.QueryRowContext(ctx, `SELECT `+stamp).Scan(&changes, &data); err != nil {
		return fmt.Errorf("read the write stamp: %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.grants == nil || w.open != nil && w.open != tx || changes != w.changes || data != w.data {
		w.reset()
	}
	w.open, w.data = tx, data
	return nil
}

// end records the stamp once tx's usage writes are done.
func (w *writerState) end(ctx context.Context, tx *Tx) error {
	var changes int64
	if err := tx.QueryRowContext(ctx, `SELECT total_changes()`).Scan(&changes); err != nil {
		return fmt.Errorf("read the write stamp: %w", err)
	}
	w.mu.Lock()
	w.changes = changes
	w.mu.Unlock()
	return nil
}

// settle is told how the usage transaction tx ended: what it left in the state holds
// only if it committed.
func (w *writerState) settle(tx *Tx, committed bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open != tx {
		return
	}
	if !committed {
		w.reset()
	}
	w.open = nil
}

// drop empties the state in the middle of a usage transaction whose rules moved grants or
// totals outside the state; what the transaction reads next comes from its own writes.
func (w *writerState) drop() {
	w.mu.Lock()
	w.reset()
	w.mu.Unlock()
}

// openGrants is loadOpenGrants through the state: people it knows cost nothing, the others
// are read (all open grants at once when many are missing) and kept.
func (w *writerState) openGrants(ctx context.Context, tx *Tx, personIDs []int64) (map[int64][]*ledger.BurnGrant, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[int64][]*ledger.BurnGrant, len(personIDs))
	var missing []int64
	for _, p := range personIDs {
		if gs, ok := w.grants[p]; ok || w.allGrants {
			out[p] = gs
			continue
		}
		missing = append(missing, p)
	}
	if len(missing) == 0 {
		return out, nil
	}
	if len(missing) >= fullLoadMin && !w.triedAll && time.Since(w.grantsAt) >= fullLoadEvery {
		w.triedAll, w.grantsAt = true, time.Now()
		all, err := loadAllOpenGrants(ctx, tx, writerCacheMax)
		if err != nil {
			return nil, err
		}
		if all != nil {
			w.grants, w.allGrants = all, true
			for _, p := range missing {
				out[p] = all[p]
			}
			return out, nil
		}
	}
	loaded, err := loadOpenGrants(ctx, tx, missing)
	if err != nil {
		return nil, err
	}
	if len(w.grants)+len(missing) > writerCacheMax {
		w.grants = map[int64][]*ledger.BurnGrant{}
	}
	for _, p := range missing {
		out[p] = loaded[p]
		w.grants[p] = loaded[p] // nil: known to hold no open grant with credits
	}
	return out, nil
}

// loadAllOpenGrants is loadOpenGrants for everyone; nil when there are more than max
// people with open grants.
func loadAllOpenGrants(ctx context.Context, tx *Tx, max int) (map[int64][]*ledger.BurnGrant, error) {
	out := map[int64][]*ledger.BurnGrant{}
	if complete, err := readOpenGrants(ctx, tx, "", nil, out, max); err != nil || !complete {
		return nil, err
	}
	for _, gs := range out {
		ledger.SortForBurn(gs)
	}
	return out, nil
}

// knownTotals fills out with the totals the state holds for keys and returns the keys
// whose usage_totals row must be read. A key of a period the state read whole that it
// does not hold has no row, and is left out of both (loadPeriodTotals sums its usage).
// A period with many keys missing is read whole first.
func (w *writerState) knownTotals(ctx context.Context, tx *Tx, keys []periodKey, out map[periodKey]periodTotal) ([]periodKey, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	missing := map[int64]int{} // period start → keys missing
	for _, k := range keys {
		if _, ok := w.totals[k]; !ok && !w.periods[k.start] {
			missing[k.start]++
		}
	}
	for start, n := range missing {
		if n < fullLoadMin || w.triedPer[start] || time.Since(w.totalsAt) < fullLoadEvery {
			continue
		}
		w.triedPer[start], w.totalsAt = true, time.Now()
		if err := w.loadPeriod(ctx, tx, start); err != nil {
			return nil, err
		}
	}
	var unknown []periodKey
	for _, k := range keys {
		if v, ok := w.totals[k]; ok {
			out[k] = periodTotal{credits: v, written: -1, stored: true}
		} else if !w.periods[k.start] {
			unknown = append(unknown, k)
		}
	}
	return unknown, nil
}

// loadPeriod reads every usage_totals row of the period starting at start (ms) into the
// state, unless that would take it past writerCacheMax.
func (w *writerState) loadPeriod(ctx context.Context, tx *Tx, start int64) error {
	rows, err := tx.QueryContext(ctx, `SELECT person_id, credits FROM usage_totals WHERE period_start = ?`, start)
	if err != nil {
		return fmt.Errorf("load usage totals: %w", err)
	}
	defer rows.Close()
	read := map[periodKey]int64{}
	for rows.Next() {
		k := periodKey{start: start}
		var v int64
		if err := rows.Scan(&k.personID, Sat(&v)); err != nil {
			return fmt.Errorf("load usage totals: %w", err)
		}
		if len(w.totals)+len(read) == writerCacheMax {
			return rows.Close()
		}
		read[k] = v
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load usage totals: %w", err)
	}
	for k, v := range read {
		w.totals[k] = v
	}
	w.periods[start] = true
	return nil
}

// keepTotals records the totals a batch leaves, as savePeriodTotals stores them.
func (w *writerState) keepTotals(totals map[periodKey]periodTotal) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.totals)+len(totals) > writerCacheMax {
		w.totals, w.periods, w.triedPer = map[periodKey]int64{}, map[int64]bool{}, map[int64]bool{}
	}
	for k, t := range totals {
		w.totals[k] = max(t.credits, 0)
	}
}
