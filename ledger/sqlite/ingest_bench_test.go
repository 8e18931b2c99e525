package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

// Issue 18's ingestion figures: 4 gateways post batches of 1,000 events through the real
// HTTP API, each its next batch as soon as the last is answered, against the best simple
// way to store the same rows in SQLite.
const (
	ingestClients = 4
	ingestBatch   = 1_000
	ingestRun     = 4 // batches each client posts back to back in one op of BenchmarkIngest
)

// ingestNow is the balance fixture's "now" (late in its last period).
var ingestNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// ingestTarget is one ledger behind the real API: the store, its server and an API key.
type ingestTarget struct {
	db     *sqlite.DB
	srv    *httptest.Server
	key    string
	people []ledger.Person
}

func openIngestTarget(b *testing.B, path string) *ingestTarget {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	db.SetNow(func() time.Time { return ingestNow })
	pol := policy.Default()
	key, _, err := db.CreateAPIKey(ctx, "bench", "cli:bench")
	if err != nil {
		b.Fatal(err)
	}
	people, err := db.People(ctx)
	if err != nil {
		b.Fatal(err)
	}
	period := func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) }
	s := &api.Server{Store: db, Period: period, Now: func() time.Time { return ingestNow }, Log: zerolog.Nop(),
		Ingestor: &usage.Ingestor{Store: db, Policy: pol, Now: func() time.Time { return ingestNow }, Period: period,
			Credits: func(model string, in, out int64) (int64, error) { return pol.WeightFor(model).Credits(in, out) }}}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return &ingestTarget{db: db, srv: srv, key: key, people: people}
}

// emptyLedger is a ledger with the fixture's directory and this period's baselines and
// no usage at all.
func emptyLedger(b *testing.B, path string, people []ledger.Person) {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	pol := policy.Default()
	start := pol.PeriodStart(ingestNow)
	db.SetNow(func() time.Time { return start.Add(5 * time.Minute) })
	recs := make([]ledger.PersonRecord, len(people))
	for i, p := range people {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: p.Email, Name: p.Name, Team: p.Team, Role: p.Role}
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		b.Fatal(err)
	}
	ps, err := db.People(ctx)
	if err != nil {
		b.Fatal(err)
	}
	resets := make([]ledger.ResetInput, len(ps))
	for i, p := range ps {
		resets[i] = ledger.ResetInput{PersonID: p.ID, Boundary: start, NewKey: pol.PeriodKey(start), NextEnd: pol.PeriodEnd(start),
			Baseline: pol.BaselineFor(p.Team, p.Role)}
	}
	if _, err := db.ResetPeriods(ctx, resets); err != nil {
		b.Fatal(err)
	}
}

func copyFile(b *testing.B, from, to string) {
	b.Helper()
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

type ingestEvent struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	Model        string `json:"model"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	OccurredAt   string `json:"occurred_at"`
	Source       string `json:"source"`
	person       int64
	at           int64 // ms
}

// ingestRound is one batch per client: distinct events for random people, dated in the
// hour before ingestNow, with each batch's request body encoded beforehand (encoding is
// the gateway's work, not the ledger's).
func ingestRound(rng *rand.Rand, people []ledger.Person, prefix string, seq *int) ([][]ingestEvent, [][]byte) {
	events := make([][]ingestEvent, ingestClients)
	bodies := make([][]byte, ingestClients)
	for c := range events {
		evs := make([]ingestEvent, ingestBatch)
		for i := range evs {
			*seq++
			p := people[rng.IntN(len(people))]
			at := ingestNow.Add(-time.Duration(rng.IntN(3600_000)) * time.Millisecond)
			evs[i] = ingestEvent{ID: fmt.Sprintf("%s-%010d", prefix, *seq), Email: p.Email, Model: "gpt-4o",
				InputTokens: rng.Int64N(2000), OutputTokens: rng.Int64N(500), OccurredAt: at.Format(time.RFC3339Nano),
				Source: "bench", person: p.ID, at: at.UnixMilli()}
		}
		body, err := json.Marshal(map[string]any{"events": evs})
		if err != nil {
			panic(err)
		}
		events[c], bodies[c] = evs, body
	}
	return events, bodies
}

// post sends one batch through the API and checks every event was accepted.
func (t *ingestTarget) post(client *http.Client, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, t.srv.URL+"/api/v1/usage", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.key)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	answer, err := io.ReadAll(res.Body)
	res.Body.Close()
	var got api.UsageResponse
	if err != nil || res.StatusCode != http.StatusOK || json.Unmarshal(answer, &got) != nil || got.Accepted != ingestBatch {
		return fmt.Errorf("batch: status %d, %v: %.300s", res.StatusCode, err, answer)
	}
	return nil
}

// rawWriter is the baseline: the rows the ledger stores for a usage event (a
// transactions row and a usage_events row, in the ledger's own schema with its keys,
// foreign keys and indexes) written straight through the writer's connection of a ledger
// file (so the same pragmas and the same background checkpoints), one transaction per
// batch, by two prepared multi-row INSERTs bound in one driver call each, as the ledger
// binds its own.
type rawWriter struct {
	db        *sqlite.DB
	txs, uses string
	next      int64
	mu        sync.Mutex
}

func newRawWriter(b *testing.B, db *sqlite.DB) *rawWriter {
	b.Helper()
	w := &rawWriter{db: db,
		txs:  `INSERT INTO transactions(id, idem_key, input_hash, kind, person_id, created_at) VALUES ` + rowsSQL(ingestBatch, 6),
		uses: `INSERT INTO usage_events(tx_id, event_id, person_id, model, input_tokens, output_tokens, credits, overage, occurred_at, source, received_at) VALUES ` + rowsSQL(ingestBatch, 11)}
	if err := db.Writer().QueryRowContext(context.Background(), `SELECT COALESCE(MAX(id), 0) FROM transactions`).Scan(&w.next); err != nil {
		b.Fatal(err)
	}
	return w
}

func rowsSQL(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}

func (w *rawWriter) write(ctx context.Context, evs []ingestEvent) error {
	tx, err := w.db.Writer().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The writer's single connection serializes the clients; ids follow on from the last.
	w.mu.Lock()
	first := w.next + 1
	w.next += int64(len(evs))
	w.mu.Unlock()
	now := ingestNow.UnixMilli()
	txArgs := make([]any, 0, 6*len(evs))
	useArgs := make([]any, 0, 11*len(evs))
	for i, ev := range evs {
		id := first + int64(i)
		txArgs = append(txArgs, id, "usage:"+ev.ID, "0123456789abcdef0123456789abcdef", "usage", ev.person, now)
		useArgs = append(useArgs, id, ev.ID, ev.person, ev.Model, ev.InputTokens, ev.OutputTokens,
			ev.InputTokens+ev.OutputTokens, int64(0), ev.at, ev.Source, now)
	}
	for _, s := range []struct {
		query string
		args  []any
	}{{w.txs, txArgs}, {w.uses, useArgs}} {
		rows, err := tx.QueryContext(ctx, s.query, s.args...)
		if err != nil {
			return err
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// BenchmarkIngest measures, in one loop so that every figure sees the same machine load,
// 4 clients posting batches of 1,000 events through the real HTTP API, each its next
// batch as soon as the last is answered (gateways do not wait for each other), into: a
// ledger with the 100,000-person directory and no usage (empty), the same ledger with the
// 10,000,000 events of the balance fixture (10M), and the raw baseline (rawWriter) on a
// copy of the empty ledger. One op is 4 batches from each client on each, in turn. Each
// first takes one untimed op, as a server that has been running: its caches filled,
// SQLite's pages read. Metrics: events/s of each and the two ratios of issue 18's goals
// (empty/raw >= 0.5, 10M/empty >= 0.6).
func BenchmarkIngest(b *testing.B) {
	fixture := sqlite.BalanceFixture(b)
	dir := b.TempDir()
	b.Logf("copying the 10M-event fixture")
	copyFile(b, fixture, filepath.Join(dir, "full.db"))
	full := openIngestTarget(b, filepath.Join(dir, "full.db"))
	emptyLedger(b, filepath.Join(dir, "empty.db"), full.people)
	copyFile(b, filepath.Join(dir, "empty.db"), filepath.Join(dir, "raw.db"))
	empty := openIngestTarget(b, filepath.Join(dir, "empty.db"))
	rawTarget := openIngestTarget(b, filepath.Join(dir, "raw.db"))
	raw := newRawWriter(b, rawTarget.db)
	// Each path posts for the same people under its own ids: the ledgers' person ids differ.
	ids := func(t *ingestTarget) map[string]int64 {
		m := make(map[string]int64, len(t.people))
		for _, p := range t.people {
			m[p.Email] = p.ID
		}
		return m
	}
	rawIDs := ids(rawTarget)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ingestClients}}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	seq := 0
	var emptyTime, fullTime, rawTime time.Duration
	op := func() {
		events := make([][][]ingestEvent, ingestRun)
		bodies := make([][][]byte, ingestRun)
		for r := range ingestRun {
			events[r], bodies[r] = ingestRound(rng, empty.people, "bench", &seq)
		}
		each := func(post func(r, c int) error) func(c int) error {
			return func(c int) error {
				for r := range ingestRun {
					if err := post(r, c); err != nil {
						return err
					}
				}
				return nil
			}
		}
		emptyTime += ledgertest.Clients(b, ingestClients, each(func(r, c int) error { return empty.post(client, bodies[r][c]) }))
		fullTime += ledgertest.Clients(b, ingestClients, each(func(r, c int) error { return full.post(client, bodies[r][c]) }))
		rawTime += ledgertest.Clients(b, ingestClients, each(func(r, c int) error {
			evs := make([]ingestEvent, len(events[r][c]))
			for i, ev := range events[r][c] {
				ev.person = rawIDs[ev.Email]
				evs[i] = ev
			}
			return raw.write(ctx, evs)
		}))
	}
	op()
	emptyTime, fullTime, rawTime = 0, 0, 0
	b.ResetTimer()
	for range b.N {
		op()
	}
	b.StopTimer()
	n := float64(b.N * ingestRun * ingestClients * ingestBatch)
	b.ReportMetric(n/emptyTime.Seconds(), "empty-events/s")
	b.ReportMetric(n/fullTime.Seconds(), "10M-events/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw-events/s")
	b.ReportMetric(rawTime.Seconds()/emptyTime.Seconds(), "empty/raw")
	b.ReportMetric(emptyTime.Seconds()/fullTime.Seconds(), "10M/empty")
	b.ReportMetric(0, "ns/op") // one op mixes every path; the metrics above are the figures
}
