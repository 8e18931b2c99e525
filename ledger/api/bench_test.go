package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/usage"
)

const (
	benchPeople = 10_000
	benchBatch  = 500
)

// benchLedger is a temp-file ledger with benchPeople people who each hold this period's
// baseline, served by the real API.
func benchLedger(b *testing.B) (ledgertest.Store, *httptest.Server, string) {
	b.Helper()
	ctx := context.Background()
	db := ledgertest.Open(b)
	db.SetNow(func() time.Time { return now })
	pol := policy.Default()
	ledgertest.Directory(b, db, pol, benchPeople, now)
	key, _, err := db.CreateAPIKey(ctx, "bench", "cli:bench")
	if err != nil {
		b.Fatal(err)
	}
	s := &api.Server{
		Store: db,
		Ingestor: &usage.Ingestor{Store: db, Now: func() time.Time { return now },
			Credits: func(model string, in, out int64) (int64, error) { return pol.WeightFor(model).Credits(in, out) },
			// As serve wires it: the bound on usage per person and period is checked.
			Period: func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) }},
		Period: func(t time.Time) (time.Time, time.Time) { return pol.PeriodStart(t), pol.PeriodEnd(t) },
		Now:    func() time.Time { return now },
		Log:    zerolog.Nop(),
	}
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(srv.Close)
	return db, srv, key
}

// rawUsageTable is the baseline: a table shaped like usage_events (same columns, unique
// event id and per-person index), without the ledger around it.
const rawUsageTable = `CREATE TABLE usage_events (
    id            INTEGER PRIMARY KEY,
    event_id      TEXT NOT NULL,
    person_id     INTEGER NOT NULL,
    tx_id         INTEGER NOT NULL,
    model         TEXT NOT NULL,
    input_tokens  INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    credits       INTEGER NOT NULL,
    overage       INTEGER NOT NULL,
    occurred_at   INTEGER NOT NULL,
    source        TEXT NOT NULL DEFAULT '',
    received_at   INTEGER NOT NULL,
    reversed      INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT usage_event_unique UNIQUE (event_id)
);
CREATE INDEX usage_person_time ON usage_events(person_id, occurred_at, credits, overage, reversed);`

// rawBaseline opens a second database file with the ledger's connection settings (WAL,
// synchronous NORMAL, foreign keys, BEGIN IMMEDIATE, one writer) holding rawUsageTable.
func rawBaseline(b *testing.B) (*sql.DB, *sql.Stmt) {
	b.Helper()
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_synchronous", "NORMAL")
	raw, err := sql.Open("sqlite3", "file:"+filepath.Join(b.TempDir(), "raw.db")+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { raw.Close() })
	raw.SetMaxOpenConns(1)
	if _, err := raw.Exec(rawUsageTable); err != nil {
		b.Fatal(err)
	}
	ins, err := raw.Prepare(`INSERT INTO usage_events(event_id, person_id, tx_id, model, input_tokens, output_tokens,
		credits, overage, occurred_at, source, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ins.Close() })
	return raw, ins
}

type benchEvent struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	Model        string `json:"model"`
	InputTokens  int64  `json:"input_tokens"`
	OutputTokens int64  `json:"output_tokens"`
	OccurredAt   string `json:"occurred_at"`
	Source       string `json:"source"`
	person       int64
	at           time.Time
}

// BenchmarkIngestHTTP posts batches of 500 events through the real server and, in the same
// loop, inserts the same rows into a bare table, so both figures see the same machine load.
// One op is one batch of each. Metrics: events/s through HTTP, events/s of the raw insert,
// and their ratio.
func BenchmarkIngestHTTP(b *testing.B) {
	db, srv, key := benchLedger(b)
	raw, ins := rawBaseline(b)
	people, err := db.People(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	client := srv.Client()
	var httpTime, rawTime time.Duration
	seq := 0
	events := make([]benchEvent, benchBatch)
	b.ResetTimer()
	for range b.N {
		for i := range events {
			seq++
			p := people[rng.IntN(len(people))]
			at := now.Add(-time.Duration(rng.IntN(3600)) * time.Second)
			events[i] = benchEvent{ID: fmt.Sprintf("bench-%09d", seq), Email: p.Email, Model: "gpt-4o",
				InputTokens: rng.Int64N(2000), OutputTokens: rng.Int64N(500), OccurredAt: at.Format(time.RFC3339),
				Source: "bench", person: p.ID, at: at}
		}
		body, err := json.Marshal(map[string]any{"events": events})
		if err != nil {
			b.Fatal(err)
		}

		start := time.Now()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/usage", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		answer, err := io.ReadAll(res.Body)
		res.Body.Close()
		httpTime += time.Since(start)
		var got api.UsageResponse
		if err != nil || res.StatusCode != http.StatusOK || json.Unmarshal(answer, &got) != nil || got.Accepted != benchBatch {
			b.Fatalf("batch: status %d, %v: %.300s", res.StatusCode, err, answer)
		}

		start = time.Now()
		tx, err := raw.Begin()
		if err != nil {
			b.Fatal(err)
		}
		stmt := tx.Stmt(ins)
		for i, ev := range events {
			if _, err := stmt.Exec(ev.ID, ev.person, seq+i, ev.Model, ev.InputTokens, ev.OutputTokens,
				ev.InputTokens+ev.OutputTokens, 0, ev.at.UnixMilli(), ev.Source, now.UnixMilli()); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		rawTime += time.Since(start)
	}
	b.StopTimer()
	n := float64(b.N * benchBatch)
	b.ReportMetric(n/httpTime.Seconds(), "events/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw-events/s")
	b.ReportMetric(rawTime.Seconds()/httpTime.Seconds(), "ratio")
	b.ReportMetric(0, "ns/op") // one op mixes both paths; the metrics above are the figures
}
