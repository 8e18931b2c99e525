package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// PostUsage records a batch of usage events in one write: each event is its own
// transaction (idempotent by event id), burning the person's grants in priority order and
// posting what exceeds them as overage. Unknown people are quarantined, not dropped.
func (db *Store) PostUsage(ctx context.Context, batch []ledger.UsagePosting) ([]ledger.UsageResult, error) {
	results := make([]ledger.UsageResult, len(batch))
	// What needs no database is done before the write lock is taken.
	keys := make([]string, len(batch))
	hashes := make([]string, len(batch))
	for i, u := range batch {
		keys[i] = usageKey(u.Event.EventID)
		hashes[i] = usageHash(u.Event)
		results[i].EventID = u.Event.EventID
	}
	if len(db.parts) > 0 {
		if done, err := db.postUsageByPartition(ctx, batch, keys, hashes, results); done || err != nil {
			return results, err
		}
	}
	if _, ok := db.d.(GroupWriter); ok {
		return db.usage.post(ctx, db, &usageCall{batch: batch, keys: keys, hashes: hashes, results: results})
	}
	err := db.inBulkTx(ctx, func(tx *Tx) error {
		return db.postUsageTx(ctx, tx, -1, batch, keys, hashes, results)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// usageGroup gathers the usage batches of one process that wait for the write lock
// (GroupWriter dialects): one caller at a time leads, posting its batch and every batch
// queued meanwhile one after another in one write transaction, exactly as the lock would
// have run them one by one, with one lock wait, one BEGIN and one commit for all. When that
// transaction fails, each batch is posted again alone, so one batch's error (or its
// caller's cancelled context, when it leads) is never another's.
type usageGroup struct {
	part    int // the partition it writes (Partitioner), or -1: under BeginWrite
	mu      sync.Mutex
	queued  []*usageCall
	leading bool
}

type usageCall struct {
	batch        []ledger.UsagePosting
	keys, hashes []string
	results      []ledger.UsageResult
	posted       bool          // by a group another call led
	done, lead   chan struct{} // closed when a leader is through with it; when it is to lead
}

// maxGroupEvents bounds a group's transaction, which every other writer waits for.
const maxGroupEvents = 8000

func (g *usageGroup) post(ctx context.Context, db *Store, c *usageCall) ([]ledger.UsageResult, error) {
	c.done, c.lead = make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	if g.leading {
		g.queued = append(g.queued, c)
		g.mu.Unlock()
		select {
		case <-c.lead:
		case <-c.done:
		case <-ctx.Done():
			g.mu.Lock()
			for i, q := range g.queued {
				if q == c {
					g.queued = append(g.queued[:i], g.queued[i+1:]...)
					g.mu.Unlock()
					return nil, ctx.Err()
				}
			}
			g.mu.Unlock()
			// Taken by a leader already, or about to lead: its outcome is this call's.
			select {
			case <-c.lead:
			case <-c.done:
			}
		}
		select {
		case <-c.done:
			if c.posted {
				return c.results, nil
			}
			return db.postUsageAlone(ctx, c)
		default: // leads
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}

	n := len(c.batch)
	take := func() []*usageCall { // the calls waiting, within maxGroupEvents
		g.mu.Lock()
		defer g.mu.Unlock()
		var more []*usageCall
		for len(g.queued) > 0 && n+len(g.queued[0].batch) <= maxGroupEvents {
			n += len(g.queued[0].batch)
			more, g.queued = append(more, g.queued[0]), g.queued[1:]
		}
		return more
	}
	part := append([]*usageCall{c}, take()...)
	group := part
	err := db.usageTx(ctx, g.part, func(tx *Tx) error {
		for len(part) > 0 {
			if err := db.postCalls(ctx, tx, g.part, part); err != nil {
				return err
			}
			// On SQLite the commit writes each page the transaction dirtied once (the
			// period totals and grants of a batch's people are spread over the whole
			// table), so batches that arrived meanwhile join it, unless a small write
			// waits: it goes before any more batches.
			if db.writer == nil || db.d.(OneWriter).SmallWriteWaiting() {
				break
			}
			part = take()
			group = append(group, part...)
		}
		return nil
	})
	for _, q := range group[1:] {
		q.posted = err == nil
		close(q.done)
	}
	g.mu.Lock()
	if len(g.queued) > 0 {
		next := g.queued[0]
		g.queued = g.queued[1:]
		close(next.lead)
	} else {
		g.leading = false
	}
	g.mu.Unlock()
	switch {
	case err == nil:
		return c.results, nil
	case len(group) == 1 && g.part < 0:
		return nil, err
	default:
		return db.postUsageAlone(ctx, c)
	}
}

// postCalls posts the batches of calls in tx, as one batch when merged allows.
func (db *Store) postCalls(ctx context.Context, tx *Tx, part int, calls []*usageCall) error {
	if m, ok := merged(calls); ok {
		if err := db.postUsageTx(ctx, tx, part, m.batch, m.keys, m.hashes, m.results); err != nil {
			return err
		}
		for _, q := range calls {
			m.results = m.results[copy(q.results, m.results):]
		}
		return nil
	}
	for _, q := range calls {
		if err := db.postUsageTx(ctx, tx, part, q.batch, q.keys, q.hashes, q.results); err != nil {
			return err
		}
	}
	return nil
}

// merged is a group's batches as one, when no event id is in two of them: posting that
// one batch gives each event what posting the batches one after another gives (the rules
// take a batch's events in order, and each batch's period totals, burns and quarantine
// counts follow on from the one before), with one set of statements instead of one per
// batch. An id in two batches is a duplicate the second time only if the first was
// written, which one batch cannot tell apart, so such a group is posted batch by batch.
func merged(group []*usageCall) (*usageCall, bool) {
	if len(group) == 1 {
		return nil, false
	}
	m := &usageCall{}
	seen := map[string]int{}
	for n, q := range group {
		for _, k := range q.keys {
			if first, ok := seen[k]; ok && first != n {
				return nil, false
			}
			seen[k] = n
		}
		m.batch, m.keys, m.hashes = append(m.batch, q.batch...), append(m.keys, q.keys...), append(m.hashes, q.hashes...)
		m.results = append(m.results, q.results...)
	}
	return m, true
}

// usageTx runs fn, a usage write, in a write transaction for partition part, or under
// BeginWrite's bulk lane when part is -1, and tells the writer state how it ended.
func (db *Store) usageTx(ctx context.Context, part int, fn func(tx *Tx) error) error {
	var last *Tx
	err := db.groupTx(ctx, part, func(tx *Tx) error {
		last = tx
		return fn(tx)
	})
	if db.writer != nil && last != nil {
		db.writer.settle(last, err == nil)
	}
	return err
}

// groupTx runs fn in a write transaction for partition part, or under BeginWrite's bulk
// lane when part is -1.
func (db *Store) groupTx(ctx context.Context, part int, fn func(tx *Tx) error) error {
	if part < 0 {
		return db.inBulkTx(ctx, fn)
	}
	stx, err := db.d.(Partitioner).BeginUsageWrite(ctx, part)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := db.runTx(stx, fn); err != nil {
		return err
	}
	db.partitioned.Add(1)
	return nil
}

// PartitionedUsageWrites is how many usage write transactions this store committed by
// partition of people (Partitioner) since it was opened; 0 on other engines.
func (db *Store) PartitionedUsageWrites() int64 { return db.partitioned.Load() }

// errNotThisPartition ends a partition's usage transaction whose batch needs more than its
// people's rows (see Partitioner); the batch is posted again under BeginWrite.
var errNotThisPartition = errors.New("usage batch reads beyond its partition")

// postUsageByPartition posts a batch as one usage write per partition of its people, at
// once, each grouped with what other batches of this process have for that partition.
// The people are resolved first, outside any write; done is false, with nothing written,
// when an event names nobody in the directory (quarantine is written under BeginWrite).
// A partition whose write fails posts its events again alone under BeginWrite
// (usageGroup): events are independent transactions, so another partition's committed
// events stand, and the batch's results are whatever each event's write gave.
func (db *Store) postUsageByPartition(ctx context.Context, batch []ledger.UsagePosting, keys, hashes []string, results []ledger.UsageResult) (bool, error) {
	// The split only routes: each partition's transaction resolves its events again under
	// its lock and hands the batch to BeginWrite when someone moved (errNotThisPartition).
	people, err := db.knownPeople(ctx, batch)
	if err != nil {
		return false, err
	}
	n := len(db.parts)
	calls := make([]*usageCall, n)
	index := make([][]int, n) // the batch's positions of each partition's events
	for i, u := range batch {
		pid, _ := people.lookup(u.Event)
		if pid == 0 {
			return false, nil
		}
		p := int(pid % int64(n))
		if calls[p] == nil {
			calls[p] = &usageCall{}
		}
		c := calls[p]
		c.batch, c.keys, c.hashes = append(c.batch, u), append(c.keys, keys[i]), append(c.hashes, hashes[i])
		c.results = append(c.results, results[i])
		index[p] = append(index[p], i)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for p, c := range calls {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := db.parts[p].post(ctx, db, c)
			if err != nil {
				errs[p] = err
				return
			}
			for j, i := range index[p] {
				results[i] = res[j]
			}
		}()
	}
	wg.Wait()
	return true, errors.Join(errs...)
}

// knownPeople resolves the people the batch's events name outside any write, from the
// identity cache when it knows them all (whatever its version: for routing, and for
// filling the cache, so that the write transaction, which checks the version, finds
// them there), else on a reader.
func (db *Store) knownPeople(ctx context.Context, batch []ledger.UsagePosting) (peopleIndex, error) {
	if people, ok := db.identities.resolve(batch); ok {
		return people, nil
	}
	// What is found is added to the cache under the version it holds now: were the
	// directory to change meanwhile, the next write transaction sees another version
	// and starts the cache afresh.
	db.identities.mu.Lock()
	version := db.identities.version
	db.identities.mu.Unlock()
	return db.resolvePeople(ctx, db.read, version, batch)
}

// postUsageAlone posts one call's batch in its own write transaction, after a group it
// was part of failed.
func (db *Store) postUsageAlone(ctx context.Context, c *usageCall) ([]ledger.UsageResult, error) {
	results := make([]ledger.UsageResult, len(c.batch))
	for i, u := range c.batch {
		results[i].EventID = u.Event.EventID
	}
	err := db.usageTx(ctx, -1, func(tx *Tx) error {
		return db.postUsageTx(ctx, tx, -1, c.batch, c.keys, c.hashes, results)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

func usageKey(eventID string) string { return "usage:" + eventID }

// usageHash is inputHash("usage", …) for one event, built without fmt: it runs for every
// event of every batch. The bytes, and so the hash, are the same as inputHash's.
func usageHash(ev ledger.UsageEvent) string {
	b := make([]byte, 0, 128)
	for _, s := range []string{"usage", ledger.NormalizeEmail(ev.Email), ev.SlackUserID, ev.TeamsUserID, ev.Model} {
		b = append(append(b, s...), 0x1f)
	}
	for _, n := range []int64{ev.InputTokens, ev.OutputTokens, ev.OccurredAt.UnixMilli()} {
		b = append(strconv.AppendInt(b, n, 10), 0x1f)
	}
	b = append(append(b, ev.Source...), 0x1f)
	// Only connectors report cached tokens; leaving them out when zero keeps the hash of
	// every other event what it always was.
	if ev.CachedInputTokens != 0 {
		b = append(strconv.AppendInt(append(b, "cached"...), ev.CachedInputTokens, 10), 0x1f)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// usageState is what a batch reads as single values, in one statement: on PostgreSQL
// every statement under the write lock is a round trip, which on a loaded machine costs
// more than the statement itself.
type usageState struct {
	peopleVersion int64
	// lateBefore is the latest boundary any close recorded (ms; NULL: none yet): usage
	// dated before it may belong to a closed period; usage after it (nearly all) needs
	// no further look.
	lateBefore sql.NullInt64
	lastTxID   int64 // MAX(transactions.id): the batch's transactions follow it
	waiting    bool  // events wait in quarantine
	// edges: an open grant starts or ends after the batch's earliest event and no later
	// than the latest instant usage may be dated (the condition outOfOrderPeople starts
	// with, over every event of the batch rather than the accepted ones: a superset).
	edges bool
}

func readUsageState(ctx context.Context, tx *Tx, batch []ledger.UsagePosting, latest int64) (usageState, error) {
	first := latest
	for _, u := range batch {
		first = min(first, u.Event.OccurredAt.UnixMilli())
	}
	var st usageState
	err := tx.QueryRowContext(ctx, `SELECT (SELECT version FROM people_version WHERE id = 1), (SELECT MAX(boundary) FROM period_closes),
		(SELECT COALESCE(MAX(id), 0) FROM transactions), EXISTS (SELECT 1 FROM quarantine WHERE resolved_at IS NULL),
		EXISTS (SELECT 1 FROM grants WHERE closed_tx_id IS NULL AND effective_at > ?1 AND effective_at <= ?2)
		OR EXISTS (SELECT 1 FROM grants WHERE closed_tx_id IS NULL AND expires_at > ?1 AND expires_at <= ?2)`, first, latest).
		Scan(&st.peopleVersion, &st.lateBefore, &st.lastTxID, &st.waiting, &st.edges)
	if err != nil {
		return st, fmt.Errorf("read ledger state: %w", err)
	}
	return st, nil
}

// postUsageTx posts batch in tx. part is the partition tx writes (Partitioner), or -1
// under BeginWrite; in a partition, a batch that needs more than its people's rows ends
// with errNotThisPartition before writing anything. tx must be run by usageTx.
func (db *Store) postUsageTx(ctx context.Context, tx *Tx, part int, batch []ledger.UsagePosting, keys, hashes []string, results []ledger.UsageResult) error {
	w := db.writer
	if w == nil {
		return db.postBatch(ctx, tx, part, batch, keys, hashes, results)
	}
	if err := w.begin(ctx, tx, db.d.(OneWriter).WriteStamp()); err != nil {
		return err
	}
	if err := db.postBatch(ctx, tx, part, batch, keys, hashes, results); err != nil {
		return err
	}
	return w.end(ctx, tx)
}

func (db *Store) postBatch(ctx context.Context, tx *Tx, part int, batch []ledger.UsagePosting, keys, hashes []string, results []ledger.UsageResult) error {
	now := ms(db.now())
	latest := now + ledger.MaxUsageFuture.Milliseconds()
	state, err := readUsageState(ctx, tx, batch, latest)
	if err != nil {
		return err
	}
	if part >= 0 && state.edges {
		return errNotThisPartition // rebooking reads past the batch's events
	}
	people, err := db.resolvePeople(ctx, tx, state.peopleVersion, batch)
	if err != nil {
		return err
	}
	// The first event of each id that names someone claims its key: its transaction row
	// is written now unless the key is taken (claimUsageKeys), which checks idempotency
	// and inserts in one pass over the key index. Only the keys it could not claim, and
	// those of events for nobody (quarantine), are looked up.
	firsts := make(map[string]bool, len(batch))
	var claims []int
	var lookup []string
	for i, u := range batch {
		if firsts[keys[i]] {
			continue
		}
		firsts[keys[i]] = true
		pid, _ := people.lookup(u.Event)
		if part >= 0 && (pid == 0 || int(pid%int64(len(db.parts))) != part) {
			return errNotThisPartition // quarantine, or the directory moved since the split
		}
		if pid == 0 {
			lookup = append(lookup, keys[i])
		} else {
			claims = append(claims, i)
		}
	}
	ids, err := claimUsageKeys(ctx, tx, now, state.lastTxID, batch, claims, keys, hashes, people)
	if err != nil {
		return err
	}
	for _, i := range claims {
		if _, ok := ids[keys[i]]; !ok {
			lookup = append(lookup, keys[i])
		}
	}
	existing := map[string]existingTx{}
	if len(lookup) > 0 {
		if existing, err = lookupKeys(ctx, tx, lookup); err != nil {
			return err
		}
	}

	pending := make([]int, 0, len(batch)) // indexes of events to post
	seen := make(map[string]string, len(batch))
	var quarantined [][]any
	waitingByKey := map[int64]int{}
	var personIDs []int64
	personSeen := map[int64]bool{}
	for i, u := range batch {
		key := keys[i]
		if e, ok := existing[key]; ok {
			if e.hash == hashes[i] {
				results[i].Status = ledger.UsageDuplicate
			} else {
				results[i].Status, results[i].Reason = ledger.UsageRejected, "event id was already used for a different event"
			}
			continue
		}
		if h, ok := seen[key]; ok {
			if h == hashes[i] {
				results[i].Status = ledger.UsageDuplicate
			} else {
				results[i].Status, results[i].Reason = ledger.UsageRejected, "event id appears twice in the batch with different content"
			}
			continue
		}
		seen[key] = hashes[i]
		pid, reason := people.lookup(u.Event)
		if _, ok := ids[key]; pid != 0 && !ok {
			return fmt.Errorf("event %s: its key was neither claimed nor found", u.Event.EventID)
		}
		if pid == 0 {
			if u.KeyID != 0 {
				n, ok := waitingByKey[u.KeyID]
				if !ok {
					if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM quarantine WHERE resolved_at IS NULL AND api_key_id = ?`, u.KeyID).Scan(&n); err != nil {
						return fmt.Errorf("count quarantine: %w", err)
					}
				}
				if n >= ledger.MaxQuarantinePerKey {
					results[i].Status, results[i].QuarantineFull = ledger.UsageRejected, true
					results[i].Reason = fmt.Sprintf("%s, and %s events from this API key already wait for people not in the directory, the most it may have; "+
						"import the directory or fix the identities the gateway sends", reason, ledger.FormatCredits(ledger.MaxQuarantinePerKey))
					waitingByKey[u.KeyID] = n
					continue
				}
				waitingByKey[u.KeyID] = n + 1
			}
			payload, _ := json.Marshal(u.Event)
			quarantined = append(quarantined, []any{u.Event.EventID, string(payload), reason, now, nullID(u.KeyID)})
			results[i].Status, results[i].Reason = ledger.UsageQuarantined, reason
			continue
		}
		if !personSeen[pid] {
			personSeen[pid] = true
			personIDs = append(personIDs, pid)
		}
		pending = append(pending, i)
	}
	if len(quarantined) > 0 {
		if err := insertRowsIgnore(ctx, tx, `INSERT INTO quarantine(event_id, payload, reason, created_at, api_key_id)`, 5, quarantined, `ON CONFLICT(event_id) DO NOTHING`); err != nil {
			return fmt.Errorf("quarantine events: %w", err)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	var grants map[int64][]*ledger.BurnGrant
	if db.writer != nil {
		grants, err = db.writer.openGrants(ctx, tx, personIDs)
	} else {
		grants, err = loadOpenGrants(ctx, tx, personIDs)
	}
	if err != nil {
		return err
	}
	totals, err := loadPeriodTotals(ctx, tx, batch, pending, people, db.writer)
	if err != nil {
		return err
	}

	// Usage dated before the latest close may belong to a period already closed: it is
	// charged to that period (see applyLateUsage). Nearly every batch has none.
	lateBefore, anyClose := state.lateBefore.Int64, state.lateBefore.Valid
	closes := map[int64]*periodClose{}
	var lateCloses []*periodClose

	type usageRow struct {
		idx      int
		txID     int64
		personID int64
		overage  int64
	}
	rows := make([]usageRow, 0, len(pending))
	var unclaim [][]any // the transactions of events rejected after all
	for _, i := range pending {
		u := batch[i]
		pid, _ := people.lookup(u.Event)
		if !u.PeriodStart.IsZero() {
			k := periodKey{pid, ms(u.PeriodStart)}
			t := totals[k]
			next, ok := ledger.AddChecked(t.credits, u.Credits)
			if !ok || next > ledger.MaxPeriodCredits {
				results[i].Status, results[i].Reason = ledger.UsageRejected, "this event would take the person's usage this period past "+
					ledger.FormatCredits(ledger.MaxPeriodCredits)+" credits, the most one person may use in a period; check the gateway's token counts and the model weights"
				unclaim = append(unclaim, []any{ids[keys[i]]})
				continue
			}
			t.credits, t.changed = next, true
			totals[k] = t
		}
		at := u.Event.OccurredAt.UnixMilli()
		left := u.Credits
		var late *periodClose
		if anyClose && at < lateBefore {
			if part >= 0 {
				return errNotThisPartition // may be charged to a closed period
			}
			c, ok := closes[pid]
			if !ok {
				if c, err = lastClose(ctx, tx, pid); err != nil {
					return err
				}
				closes[pid] = c
			}
			if c != nil && at < c.boundary {
				late = c
			}
		}
		if late == nil {
			left = ledger.Burn(grants[pid], at, left)
		} else {
			var fromClosed int64
			left, fromClosed = ledger.BurnWithClosed(grants[pid], late.grants, at, left)
			if late.firstUsage == 0 {
				lateCloses = append(lateCloses, late)
				late.firstUsage = ids[keys[i]]
			}
			late.burned += fromClosed
		}
		// The usage row carries its transaction's postings (see ledger_postings).
		rows = append(rows, usageRow{idx: i, txID: ids[keys[i]], personID: pid, overage: left})
		results[i].Status, results[i].Credits = ledger.UsageAccepted, u.Credits
	}
	if err := deleteIn(ctx, tx, `DELETE FROM transactions WHERE id IN `, unclaim); err != nil {
		return fmt.Errorf("drop the transactions of rejected events: %w", err)
	}
	if err := savePeriodTotals(ctx, tx, totals); err != nil {
		return err
	}
	if db.writer != nil {
		db.writer.keepTotals(totals)
	}
	if len(rows) == 0 {
		return nil
	}
	usageRows := make([][]any, len(rows))
	accepted := make([][]any, len(rows))
	for n, r := range rows {
		ev := batch[r.idx].Event
		usageRows[n] = []any{r.txID, ev.EventID, r.personID, ev.Model, ev.InputTokens, ev.OutputTokens,
			batch[r.idx].Credits, r.overage, ev.OccurredAt.UnixMilli(), ev.Source, now}
		accepted[n] = []any{ev.EventID}
	}
	if err := insertRows(ctx, tx, `INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at)`, 11, usageRows); err != nil {
		return fmt.Errorf("insert usage events: %w", err)
	}
	for _, c := range lateCloses {
		if err := replayClosed(ctx, tx, c); err != nil {
			return err
		}
		if err := applyLateUsage(ctx, tx, now, c, grants[c.personID]); err != nil {
			return err
		}
	}
	var burned [][]any
	for _, gs := range grants {
		for _, g := range gs {
			if g.Touched {
				burned = append(burned, []any{g.ID, g.Remaining})
				g.Touched = false // the writer state may hand g to the next batch
			}
		}
	}
	if err := burnGrants(ctx, tx, burned); err != nil {
		return err
	}
	// Usage dated before a grant of its person started or ended, arriving after usage
	// dated later, is burned again with the rest of the period in time order.
	minAt := make(map[int64]int64, len(personIDs))
	for _, r := range rows {
		at := batch[r.idx].Event.OccurredAt.UnixMilli()
		if m, ok := minAt[r.personID]; !ok || at < m {
			minAt[r.personID] = at
		}
	}
	// Most batches have no grant edge (state.edges); late usage may have moved grants since.
	if state.edges || len(lateCloses) > 0 {
		if db.writer != nil {
			db.writer.drop() // late usage and rebooking move grants the state holds
		}
		rebook, err := outOfOrderPeople(ctx, tx, minAt, latest)
		if err != nil {
			return err
		}
		for _, pid := range rebook {
			if err := rebookOpenPeriod(ctx, tx, now, pid); err != nil {
				return err
			}
		}
	}
	// Events that were waiting in quarantine are now in the ledger. Most batches find
	// nothing waiting; the partial index answers that without a probe per event. What this
	// batch quarantined does not count: no event is both quarantined and accepted in it.
	if !state.waiting {
		return nil
	}
	return execIn(ctx, tx, `UPDATE quarantine SET resolved_at = ? WHERE resolved_at IS NULL AND event_id IN `, now, accepted)
}

// claimUsageKeys writes the transaction rows of the claims (indexes into batch, each
// naming someone in people) and returns the id of each key it wrote; a key that is taken
// already is left out (ON CONFLICT DO NOTHING). The ids come from the sequence
// (Partitioner), or follow last.
func claimUsageKeys(ctx context.Context, tx *Tx, now, last int64, batch []ledger.UsagePosting, claims []int, keys, hashes []string, people peopleIndex) (map[string]int64, error) {
	ids := make(map[string]int64, len(claims))
	if len(claims) == 0 {
		return ids, nil
	}
	rows := make([][]any, len(claims))
	for n, i := range claims {
		pid, _ := people.lookup(batch[i].Event)
		rows[n] = []any{keys[i], hashes[i], pid}
	}
	const insert = `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, created_at) `
	if seq, ok := tx.d.(Partitioner); ok {
		for start := 0; start < len(rows); start += tx.rowStep(3) {
			src, args := tx.rowsSource(rows[start:min(start+tx.rowStep(3), len(rows))], 3, false)
			res, err := tx.QueryContext(ctx, insert+`SELECT `+seq.NextTxID()+`, k, h, 'usage', p, CAST(? AS BIGINT) FROM `+src+` AS c(k, h, p)
				ON CONFLICT (idem_key) DO NOTHING RETURNING idem_key, id`, append([]any{now}, args...)...)
			if err := scanKeyIDs(res, err, ids); err != nil {
				return nil, err
			}
		}
		return ids, nil
	}
	// Elsewhere (SQLite) ids follow last, so the rows written are the ids above it: all of
	// them, unless a key was taken. Reading a thousand rows back through RETURNING costs
	// SQLite more than counting them, and a taken key is rare.
	var written int64
	start := 0
	for _, size := range insertChunks(len(rows), 6) {
		part := rows[start : start+size]
		args := make([]any, 0, 6*len(part))
		for n, r := range part {
			args = append(args, last+1+int64(start+n), r[0], r[1], ledger.TxUsage, r[2], now)
		}
		if err := execBound(ctx, tx, insert+`VALUES `+placeholders(len(part), 6)+` ON CONFLICT (idem_key) DO NOTHING`, args...); err != nil {
			return nil, fmt.Errorf("claim usage keys: %w", err)
		}
		var n int64
		if err := tx.QueryRowContext(ctx, `SELECT changes()`).Scan(&n); err != nil {
			return nil, fmt.Errorf("claim usage keys: %w", err)
		}
		written, start = written+n, start+size
	}
	if written == int64(len(rows)) {
		for n, r := range rows {
			ids[r[0].(string)] = last + 1 + int64(n)
		}
		return ids, nil
	}
	res, err := tx.QueryContext(ctx, `SELECT idem_key, id FROM transactions WHERE id > ? AND id <= ?`, last, last+int64(len(rows)))
	return ids, scanKeyIDs(res, err, ids)
}

// scanKeyIDs reads (idem_key, id) rows into ids; err is the query's.
func scanKeyIDs(res *sql.Rows, err error, ids map[string]int64) error {
	if err != nil {
		return fmt.Errorf("claim usage keys: %w", err)
	}
	defer res.Close()
	for res.Next() {
		var k string
		var id int64
		if err := res.Scan(&k, &id); err != nil {
			return fmt.Errorf("claim usage keys: %w", err)
		}
		ids[k] = id
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("claim usage keys: %w", err)
	}
	return res.Close()
}

type periodKey struct {
	personID int64
	start    int64 // ms
}

type periodTotal struct {
	credits int64
	changed bool
	// written is what the statement that read credits stored already (WritableCTEs):
	// credits plus every pending event's, as if none is rejected. -1: nothing stored.
	written int64
	stored  bool // usage_totals has a row for it (else credits were summed from usage)
}

// loadPeriodTotals reads what each person-period the pending events fall in has cost so
// far: from usage_totals, or, the first time a person-period is touched, from its rows.
// With the writer state (w not nil), what it knows is not read again.
func loadPeriodTotals(ctx context.Context, tx *Tx, batch []ledger.UsagePosting, pending []int, people peopleIndex, w *writerState) (map[periodKey]periodTotal, error) {
	out := map[periodKey]periodTotal{}
	ends := map[periodKey]int64{}
	deltas := map[periodKey]int64{}
	var keys []periodKey
	for _, i := range pending {
		u := batch[i]
		if u.PeriodStart.IsZero() {
			continue
		}
		pid, _ := people.lookup(u.Event)
		k := periodKey{pid, ms(u.PeriodStart)}
		if _, ok := ends[k]; !ok {
			ends[k] = ms(u.PeriodEnd)
			keys = append(keys, k)
		}
		// Past the bound an event is rejected anyway; capped, the sum cannot overflow.
		deltas[k] = min(deltas[k]+min(max(u.Credits, 0), ledger.MaxPeriodCredits+1), ledger.MaxPeriodCredits+1)
	}
	if _, ok := tx.d.(WritableCTEs); ok {
		return out, readAndStoreTotals(ctx, tx, keys, ends, deltas, out)
	}
	lookup := keys
	if w != nil {
		var err error
		if lookup, err = w.knownTotals(ctx, tx, keys, out); err != nil {
			return nil, err
		}
	}
	step := tx.rowStep(2)
	for start := 0; start < len(lookup); start += step {
		part := lookup[start:min(start+step, len(lookup))]
		vals := make([][]any, len(part))
		for i, k := range part {
			vals[i] = []any{k.personID, k.start}
		}
		src, args := tx.keyRows(vals, 2)
		rows, err := tx.QueryContext(ctx, `SELECT person_id, period_start, credits FROM usage_totals
			WHERE (person_id, period_start) IN `+src, args...)
		if err != nil {
			return nil, fmt.Errorf("load usage totals: %w", err)
		}
		for rows.Next() {
			var k periodKey
			t := periodTotal{written: -1, stored: true}
			if err := rows.Scan(&k.personID, &k.start, Sat(&t.credits)); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = t
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	// Person-periods not in usage_totals yet (the first batch of a period, or rows from
	// before migration 013) are summed from their rows, all in one statement.
	var missing []periodKey
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			missing = append(missing, k)
		}
	}
	step = tx.rowStep(3)
	for start := 0; start < len(missing); start += step {
		part := missing[start:min(start+step, len(missing))]
		vals := make([][]any, len(part))
		for i, k := range part {
			vals[i] = []any{k.personID, k.start, ends[k]}
		}
		src, args := tx.keyRows(vals, 3)
		days, err := periodDays(ctx, tx, part, ends)
		if err != nil {
			return nil, err
		}
		rows, err := tx.QueryContext(ctx, `WITH k(person_id, start, stop) AS `+src+`
			SELECT k.person_id, k.start, (SELECT `+WideSum("credits")+` FROM usage_events u
				WHERE `+days+` AND u.person_id = k.person_id AND u.occurred_at >= k.start AND u.occurred_at < k.stop AND u.reversed = 0) FROM k`, args...)
		if err != nil {
			return nil, fmt.Errorf("sum usage per person and period: %w", err)
		}
		for rows.Next() {
			var k periodKey
			t := periodTotal{changed: true, written: -1}
			if err := rows.Scan(&k.personID, &k.start, Sat(&t.credits)); err != nil {
				rows.Close()
				return nil, err
			}
			out[k] = t
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// periodDays is usageDays over the periods of keys (ends: each one's end), for the sums
// of a person-period's rows the first time it is touched.
func periodDays(ctx context.Context, tx *Tx, keys []periodKey, ends map[periodKey]int64) (string, error) {
	from, to := int64(math.MaxInt64), int64(math.MinInt64)
	for _, k := range keys {
		from, to = min(from, k.start), max(to, ends[k])
	}
	return usageDays(ctx, tx, "u", from, to)
}

// readAndStoreTotals is loadPeriodTotals in one statement that also stores each
// person-period's total plus its deltas (what it is once every pending event is
// accepted, which is nearly always): reading and writing the same rows once instead of
// twice. savePeriodTotals corrects the few totals an event's rejection leaves lower.
func readAndStoreTotals(ctx context.Context, tx *Tx, keys []periodKey, ends, deltas map[periodKey]int64, out map[periodKey]periodTotal) error {
	for start := 0; start < len(keys); start += tx.rowStep(4) {
		part := keys[start:min(start+tx.rowStep(4), len(keys))]
		vals := make([][]any, len(part))
		for i, k := range part {
			vals[i] = []any{k.personID, k.start, ends[k], deltas[k]}
		}
		src, args := tx.rowsSource(vals, 4, true)
		days, err := periodDays(ctx, tx, part, ends)
		if err != nil {
			return err
		}
		// A total past the bound is capped, so that adding a batch cannot overflow.
		rows, err := tx.QueryContext(ctx, `WITH d(person_id, start, stop, delta) AS `+src+`,
			old AS (SELECT d.person_id, d.start, d.delta, LEAST(COALESCE(t.credits, (SELECT `+WideSum("credits")+` FROM usage_events u
					WHERE `+days+` AND u.person_id = d.person_id AND u.occurred_at >= d.start AND u.occurred_at < d.stop AND u.reversed = 0)), `+
			strconv.FormatInt(ledger.MaxPeriodCredits+1, 10)+`) AS credits
				FROM d LEFT JOIN usage_totals t ON t.person_id = d.person_id AND t.period_start = d.start),
			up AS (INSERT INTO usage_totals(person_id, period_start, credits) SELECT person_id, start, credits + delta FROM old
				ON CONFLICT (person_id, period_start) DO UPDATE SET credits = excluded.credits)
			SELECT person_id, start, credits FROM old`, args...)
		if err != nil {
			return fmt.Errorf("load and store usage totals: %w", err)
		}
		for rows.Next() {
			var k periodKey
			var t periodTotal
			if err := rows.Scan(&k.personID, &k.start, Sat(&t.credits)); err != nil {
				rows.Close()
				return err
			}
			t.written = max(t.credits, 0) + deltas[k]
			out[k] = t
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// savePeriodTotals writes the person-period totals a batch changed, but for those
// loadPeriodTotals stored already. A row that exists is updated, which costs SQLite one
// seek where an upsert takes two.
func savePeriodTotals(ctx context.Context, tx *Tx, totals map[periodKey]periodTotal) error {
	var update, insert [][]any
	for k, t := range totals {
		if t.written >= 0 && t.written != max(t.credits, 0) || t.written < 0 && t.changed {
			if t.stored || t.written >= 0 {
				update = append(update, []any{k.personID, k.start, max(t.credits, 0)})
			} else {
				insert = append(insert, []any{k.personID, k.start, max(t.credits, 0)})
			}
		}
	}
	step := tx.rowStep(3)
	for start := 0; start < len(update); start += step {
		src, args := tx.keyRows(update[start:min(start+step, len(update))], 3)
		if err := execBound(ctx, tx, `WITH t(person_id, period_start, credits) AS `+src+`
			UPDATE usage_totals SET credits = t.credits FROM t WHERE usage_totals.person_id = t.person_id AND usage_totals.period_start = t.period_start`, args...); err != nil {
			return fmt.Errorf("save usage totals: %w", err)
		}
	}
	if err := insertRowsIgnore(ctx, tx, `INSERT INTO usage_totals(person_id, period_start, credits)`, 3, insert,
		`ON CONFLICT(person_id, period_start) DO UPDATE SET credits = excluded.credits`); err != nil {
		return fmt.Errorf("save usage totals: %w", err)
	}
	return nil
}

// burnGrants sets the remaining credits of grants, given as (id, remaining) rows, with one
// statement per chunk rather than one per grant.
func burnGrants(ctx context.Context, tx *Tx, rows [][]any) error {
	step := tx.rowStep(2)
	for start := 0; start < len(rows); start += step {
		src, args := tx.keyRows(rows[start:min(start+step, len(rows))], 2)
		if err := execBound(ctx, tx, `WITH burn(id, remaining) AS `+src+`
			UPDATE grant_remaining SET remaining = burn.remaining FROM burn WHERE grant_id = burn.id`, args...); err != nil {
			return fmt.Errorf("burn grants: %w", err)
		}
	}
	return nil
}

// loadOpenGrants reads the open grants that hold credits of each person, in burn order
// (ledger.SortForBurn decides it; the index order usually gives it already).
func loadOpenGrants(ctx context.Context, tx *Tx, personIDs []int64) (map[int64][]*ledger.BurnGrant, error) {
	out := make(map[int64][]*ledger.BurnGrant, len(personIDs))
	chunk := tx.inStep()
	for start := 0; start < len(personIDs); start += chunk {
		part := personIDs[start:min(start+chunk, len(personIDs))]
		vals := make([]any, len(part))
		for i, id := range part {
			vals[i] = id
		}
		in, args := tx.inList(vals)
		if _, err := readOpenGrants(ctx, tx, `AND g.person_id `+in+` ORDER BY g.person_id, g.priority, g.expires_at, g.id`, args, out, 0); err != nil {
			return nil, err
		}
	}
	for _, gs := range out {
		ledger.SortForBurn(gs)
	}
	return out, nil
}

// readOpenGrants adds to out, by person, the open grants holding credits that the rest of
// the query (cond: a condition after AND, and an order) selects; with max > 0 it stops,
// returning false, when a new person would take out past max people.
func readOpenGrants(ctx context.Context, tx *Tx, cond string, args []any, out map[int64][]*ledger.BurnGrant, max int) (bool, error) {
	// Only what burning needs: this runs for every batch (Kind and Amount stay unset).
	rows, err := tx.QueryContext(ctx, `SELECT g.person_id, g.id, g.priority, r.remaining, g.effective_at, g.expires_at FROM `+grantTables+`
		WHERE g.closed_tx_id IS NULL AND r.remaining > 0 `+cond, args...)
	if err != nil {
		return false, fmt.Errorf("load open grants: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int64
		g := &ledger.BurnGrant{}
		if err := rows.Scan(&pid, &g.ID, &g.Priority, &g.Remaining, &g.Effective, &g.Expires); err != nil {
			return false, fmt.Errorf("load open grants: %w", err)
		}
		if _, ok := out[pid]; !ok && max > 0 && len(out) == max {
			return false, rows.Close()
		}
		out[pid] = append(out[pid], g)
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("load open grants: %w", err)
	}
	return true, rows.Close()
}

// burnColumns are a grant as the burn-down rules see it, read FROM grantTables and
// scanned by scanBurnGrant.
const burnColumns = `g.id, g.kind, g.priority, g.amount, r.remaining, g.effective_at, g.expires_at`

// scanBurnGrant scans burnColumns.
func scanBurnGrant(s scanner) (*ledger.BurnGrant, error) {
	g := &ledger.BurnGrant{}
	err := s.Scan(&g.ID, &g.Kind, &g.Priority, &g.Amount, &g.Remaining, &g.Effective, &g.Expires)
	return g, err
}

// peopleIndex resolves the identities a batch names.
type peopleIndex struct {
	byEmail, bySlack, byTeams map[string]int64
}

func (p peopleIndex) lookup(ev ledger.UsageEvent) (int64, string) {
	switch {
	case ev.Email != "":
		if id := p.byEmail[ledger.NormalizeEmail(ev.Email)]; id != 0 {
			return id, ""
		}
		return 0, "no person with email " + ev.Email + " in the directory"
	case ev.SlackUserID != "":
		if id := p.bySlack[ev.SlackUserID]; id != 0 {
			return id, ""
		}
		return 0, "no person with Slack user id " + ev.SlackUserID + " in the directory"
	default:
		if id := p.byTeams[ev.TeamsUserID]; id != 0 {
			return id, ""
		}
		return 0, "no person with Teams user id " + ev.TeamsUserID + " in the directory"
	}
}

// identityCache remembers which person an email, Slack id or Teams id names. Only hits are
// kept (a miss may be a person imported a second later), and the whole cache is dropped when
// people_version moves: any change or removal of an identity, by any process, bumps it.
type identityCache struct {
	mu      sync.Mutex
	version int64
	ids     map[string]int64 // "e:"+ledger.NormalizeEmail, "s:"+Slack id, "t:"+Teams id
	tried   bool             // the whole directory was read for this version (loadAll)
	fullAt  time.Time        // the last loadAll, whatever the version (fullLoadEvery)
}

// loadAll reads every identity of the directory into the cache, unless it has more than
// writerCacheMax people: a batch that finds many people missing (a cold process facing a
// busy gateway) reads the directory once instead of a few hundred people per batch.
// c.mu is held.
func (c *identityCache) loadAll(ctx context.Context, q identityQuerier) error {
	c.tried, c.fullAt = true, time.Now()
	rows, err := q.QueryContext(ctx, `SELECT email_key, slack_user_id, teams_user_id, id FROM people LIMIT `+strconv.Itoa(writerCacheMax+1))
	if err != nil {
		return fmt.Errorf("read the directory's identities: %w", err)
	}
	defer rows.Close()
	ids, n := make(map[string]int64, len(c.ids)), 0
	for rows.Next() {
		var email, slack, teams sql.NullString
		var id int64
		if err := rows.Scan(&email, &slack, &teams, &id); err != nil {
			return fmt.Errorf("read the directory's identities: %w", err)
		}
		if n++; n > writerCacheMax {
			return rows.Close()
		}
		for _, k := range []sql.NullString{{String: "e:" + email.String, Valid: email.Valid}, {String: "s:" + slack.String, Valid: slack.Valid},
			{String: "t:" + teams.String, Valid: teams.Valid}} {
			if k.Valid && len(k.String) > 2 {
				ids[k.String] = id
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the directory's identities: %w", err)
	}
	c.ids = ids
	return nil
}

func identityKey(ev ledger.UsageEvent) (string, string) {
	switch {
	case ev.Email != "":
		return "e:" + ledger.NormalizeEmail(ev.Email), "email_key"
	case ev.SlackUserID != "":
		return "s:" + ev.SlackUserID, "slack_user_id"
	default:
		return "t:" + ev.TeamsUserID, "teams_user_id"
	}
}

// resolve finds the people the batch's events name in the cache, whatever version it
// holds; ok is false when one of them is not there.
func (c *identityCache) resolve(batch []ledger.UsagePosting) (peopleIndex, bool) {
	idx := peopleIndex{byEmail: map[string]int64{}, bySlack: map[string]int64{}, byTeams: map[string]int64{}}
	into := map[string]map[string]int64{"email_key": idx.byEmail, "slack_user_id": idx.bySlack, "teams_user_id": idx.byTeams}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, u := range batch {
		key, col := identityKey(u.Event)
		id, ok := c.ids[key]
		if !ok {
			return idx, false
		}
		into[col][key[2:]] = id
	}
	return idx, true
}

// identityQuerier is where resolvePeople looks identities up: a transaction, or the pool
// of readers.
type identityQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	inStep() int
	inList(vals []any) (string, []any)
}

// resolvePeople finds the people the batch's events name; version is people_version read
// in tx, under the write lock (or, from knownPeople, the version the cache holds).
func (db *Store) resolvePeople(ctx context.Context, tx identityQuerier, version int64, batch []ledger.UsagePosting) (peopleIndex, error) {
	idx := peopleIndex{byEmail: map[string]int64{}, bySlack: map[string]int64{}, byTeams: map[string]int64{}}
	into := map[string]map[string]int64{"email_key": idx.byEmail, "slack_user_id": idx.bySlack, "teams_user_id": idx.byTeams}
	c := &db.identities
	missing := map[string][]any{}
	c.mu.Lock()
	if c.ids == nil || c.version != version {
		c.ids, c.version, c.tried = map[string]int64{}, version, false
	}
	for pass := 0; pass < 2; pass++ {
		n := 0
		for _, u := range batch {
			key, col := identityKey(u.Event)
			if id, ok := c.ids[key]; ok {
				into[col][key[2:]] = id
				continue
			}
			missing[col] = append(missing[col], key[2:])
			n++
		}
		if n < fullLoadMin || c.tried || time.Since(c.fullAt) < fullLoadEvery {
			break
		}
		if err := c.loadAll(ctx, tx); err != nil {
			c.mu.Unlock()
			return idx, err
		}
		clear(missing)
	}
	c.mu.Unlock()
	found := map[string]int64{}
	for _, col := range []string{"email_key", "slack_user_id", "teams_user_id"} {
		vals := missing[col]
		chunk := tx.inStep()
		for start := 0; start < len(vals); start += chunk {
			in, args := tx.inList(vals[start:min(start+chunk, len(vals))])
			rows, err := tx.QueryContext(ctx, `SELECT `+col+`, id FROM people WHERE `+col+` `+in, args...)
			if err != nil {
				return idx, fmt.Errorf("resolve people by %s: %w", col, err)
			}
			for rows.Next() {
				var k string
				var id int64
				if err := rows.Scan(&k, &id); err != nil {
					rows.Close()
					return idx, err
				}
				into[col][k] = id
				found[col[:1]+":"+k] = id
			}
			if err := rows.Close(); err != nil {
				return idx, err
			}
		}
	}
	if len(found) > 0 {
		c.mu.Lock()
		if c.version == version {
			for k, id := range found {
				c.ids[k] = id
			}
		}
		c.mu.Unlock()
	}
	return idx, nil
}

// execIn runs stmt, which ends in "IN ", over single-value rows in chunks (inList); first
// binds the one placeholder stmt itself holds.
func execIn(ctx context.Context, tx *Tx, stmt string, first any, vals [][]any) error {
	chunk := tx.inStep()
	for start := 0; start < len(vals); start += chunk {
		part := vals[start:min(start+chunk, len(vals))]
		list := make([]any, len(part))
		for i, v := range part {
			list[i] = v[0]
		}
		in, args := tx.inList(list)
		if err := execBound(ctx, tx, strings.TrimSuffix(stmt, "IN ")+in, append([]any{first}, args...)...); err != nil {
			return err
		}
	}
	return nil
}

// QuarantineWaiting counts the events waiting in quarantine.
func (db *Store) QuarantineWaiting(ctx context.Context) (int, error) {
	var n int
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM quarantine WHERE resolved_at IS NULL`).Scan(&n)
	return n, err
}

// ExpireQuarantine gives up the events that waited in quarantine since before cutoff
// (ledger.MaxQuarantineAge) and returns how many, per API key (0: no key).
func (db *Store) ExpireQuarantine(ctx context.Context, cutoff time.Time) (map[int64]int, error) {
	out := map[int64]int{}
	err := db.inTx(ctx, func(tx *Tx) error {
		rows, err := tx.QueryContext(ctx, `UPDATE quarantine SET resolved_at = ?, reason = 'given up after waiting too long: ' || reason
			WHERE resolved_at IS NULL AND created_at < ? RETURNING COALESCE(api_key_id, 0)`, ms(db.now()), ms(cutoff))
		if err != nil {
			return fmt.Errorf("expire quarantine: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var key int64
			if err := rows.Scan(&key); err != nil {
				return err
			}
			out[key]++
		}
		return rows.Err()
	})
	return out, err
}

// directory sums up the directory's identities: it changes whenever someone is added, or
// an email, Slack or Teams id changes or goes away (people_version).
func directory(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (string, error) {
	var v, n, maxID int64
	err := q.QueryRowContext(ctx, `SELECT (SELECT version FROM people_version WHERE id = 1), count(*), COALESCE(max(id), 0) FROM people`).Scan(&v, &n, &maxID)
	return fmt.Sprintf("%d/%d/%d", v, n, maxID), err
}

// ReplayNeeded reports whether the directory changed since the last quarantine replay
// (MarkReplayed), and what it looks like now.
func (db *Store) ReplayNeeded(ctx context.Context) (string, bool, error) {
	now, err := directory(ctx, db.read)
	if err != nil {
		return "", false, fmt.Errorf("read directory version: %w", err)
	}
	var last string
	err = db.read.QueryRowContext(ctx, `SELECT directory FROM quarantine_replay WHERE id = 1`).Scan(&last)
	if err != nil && err != sql.ErrNoRows {
		return "", false, fmt.Errorf("read last replay: %w", err)
	}
	return now, now != last, nil
}

// MarkReplayed records the directory a replay ran against.
func (db *Store) MarkReplayed(ctx context.Context, directory string) error {
	return db.inTx(ctx, func(tx *Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO quarantine_replay(id, directory) VALUES (1, ?)
			ON CONFLICT(id) DO UPDATE SET directory = excluded.directory`, directory)
		return err
	})
}

// Replayable returns up to limit waiting events after id after whose identity now names
// someone in the directory, oldest first: a replay reads only what it can post. Any of an
// event's identities counts (emails compare by ledger.NormalizeEmail). The payloads are
// read in pages and matched here, in Go, so both engines match emails by the same key.
func (db *Store) Replayable(ctx context.Context, after int64, limit int) ([]ledger.QuarantinedEvent, error) {
	var out []ledger.QuarantinedEvent
	const page = 500
	for len(out) < limit {
		rows, err := db.read.QueryContext(ctx, `SELECT id, payload, reason, created_at, COALESCE(api_key_id, 0) FROM quarantine
			WHERE resolved_at IS NULL AND id > ? ORDER BY id LIMIT ?`, after, page)
		if err != nil {
			return nil, fmt.Errorf("read replayable quarantine: %w", err)
		}
		waiting, err := scanQuarantined(rows)
		if err != nil {
			return nil, fmt.Errorf("read replayable quarantine: %w", err)
		}
		if len(waiting) == 0 {
			break
		}
		known, err := db.knownIdentities(ctx, waiting)
		if err != nil {
			return nil, fmt.Errorf("read replayable quarantine: %w", err)
		}
		for _, q := range waiting {
			ev := q.Event
			if (ev.Email != "" && known["e:"+ledger.NormalizeEmail(ev.Email)]) ||
				(ev.SlackUserID != "" && known["s:"+ev.SlackUserID]) || (ev.TeamsUserID != "" && known["t:"+ev.TeamsUserID]) {
				out = append(out, q)
				if len(out) == limit {
					break
				}
			}
		}
		if len(waiting) < page {
			break
		}
		after = waiting[len(waiting)-1].ID
	}
	return out, nil
}

// knownIdentities returns which identities of the events name someone in the directory,
// keyed as identityCache keys them ("e:"+email key, "s:"+Slack id, "t:"+Teams id).
func (db *Store) knownIdentities(ctx context.Context, events []ledger.QuarantinedEvent) (map[string]bool, error) {
	vals := map[string][]any{}
	seen := map[string]bool{}
	add := func(col, prefix, v string) {
		if v != "" && !seen[prefix+v] {
			seen[prefix+v] = true
			vals[col] = append(vals[col], v)
		}
	}
	for _, q := range events {
		if q.Event.Email != "" {
			add("email_key", "e:", ledger.NormalizeEmail(q.Event.Email))
		}
		add("slack_user_id", "s:", q.Event.SlackUserID)
		add("teams_user_id", "t:", q.Event.TeamsUserID)
	}
	known := map[string]bool{}
	for _, col := range []string{"email_key", "slack_user_id", "teams_user_id"} {
		v := vals[col]
		if len(v) == 0 {
			continue
		}
		rows, err := db.read.QueryContext(ctx, `SELECT `+col+` FROM people WHERE `+col+` IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(v)), ",")+`)`, v...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, err
			}
			known[col[:1]+":"+k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return known, nil
}

// Quarantined lists unresolved quarantined events, oldest first.
func (db *Store) Quarantined(ctx context.Context, limit int) ([]ledger.QuarantinedEvent, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, payload, reason, created_at, COALESCE(api_key_id, 0) FROM quarantine WHERE resolved_at IS NULL ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	return scanQuarantined(rows)
}

// scanQuarantined reads rows of (id, payload, reason, created_at, api key id) and closes them.
func scanQuarantined(rows *sql.Rows) ([]ledger.QuarantinedEvent, error) {
	defer rows.Close()
	var out []ledger.QuarantinedEvent
	for rows.Next() {
		var payload string
		var q ledger.QuarantinedEvent
		var at int64
		if err := rows.Scan(&q.ID, &payload, &q.Reason, &at, &q.KeyID); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(payload), &q.Event); err != nil {
			return nil, fmt.Errorf("decode quarantined event %d: %w", q.ID, err)
		}
		q.CreatedAt = fromMs(at)
		out = append(out, q)
	}
	return out, rows.Err()
}

// ResolveQuarantine marks events as settled without posting them (rejected on replay).
func (db *Store) ResolveQuarantine(ctx context.Context, eventIDs []string) error {
	if len(eventIDs) == 0 {
		return nil
	}
	vals := make([][]any, len(eventIDs))
	for i, id := range eventIDs {
		vals[i] = []any{id}
	}
	return db.inTx(ctx, func(tx *Tx) error {
		return execIn(ctx, tx, `UPDATE quarantine SET resolved_at = ? WHERE resolved_at IS NULL AND event_id IN `, ms(db.now()), vals)
	})
}

// UsageTxID returns the transaction that recorded an event.
func (db *Store) UsageTxID(ctx context.Context, eventID string) (int64, error) {
	var id int64
	err := db.read.QueryRowContext(ctx, `SELECT id FROM transactions WHERE idem_key = ?`, usageKey(eventID)).Scan(&id)
	return id, notFound(err, "no usage event %q", eventID)
}
