package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// BenchmarkSlackBalanceLoad runs the whole process (serve, real Slack adapter, SQLite with
// 100,000 people) and sends signed `/tokens balance` commands at a fixed 200 requests/s,
// interleaved with GET /healthz (a bare handler on the same server) at the same rate.
// Each request is timed from send to full answer. Run it alone:
//
//	go test -run '^$' -bench SlackBalanceLoad -benchtime 1x ./cmd/tokenpay
//
// TOKENPAY_BENCH_SECONDS sets the duration (default 20).
func BenchmarkSlackBalanceLoad(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-person ledger; not run with -short")
	}
	const people, perSecond = 100_000, 200
	seconds := 20
	if s, err := strconv.Atoi(os.Getenv("TOKENPAY_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	fake := newFakeSlack(b)
	dir := b.TempDir()
	var csv strings.Builder
	csv.WriteString("email,name,team,role,manager_email,slack_user_id,teams_user_id\n")
	for i := range people {
		fmt.Fprintf(&csv, "p%d@x.io,Person %d,Team %d,analyst,,U%07d,\n", i, i, i%40, i)
	}
	env := map[string]string{"TOKENPAY_DB": filepath.Join(dir, "t.db"), "SLACK_BOT_TOKEN": "xoxb-test",
		"SLACK_SIGNING_SECRET": slackSecret, "SLACK_API_URL": fake.apiURL()}
	var out, errOut strings.Builder
	if code := Run(context.Background(), []string{"people", "import", "-"}, strings.NewReader(csv.String()), &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		b.Fatalf("import: %s", errOut.String())
	}
	base, stop := startServe(b, env)
	defer stop()

	var mu sync.Mutex
	var samples []latencySample
	var failures int
	var wg sync.WaitGroup
	limiter := rate.NewLimiter(rate.Limit(2*perSecond), 1)
	rng := rand.New(rand.NewPCG(7, 7))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.ResetTimer()
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := limiter.Wait(context.Background()); err != nil {
			b.Fatal(err)
		}
		isSlack := i%2 == 0
		var req *http.Request
		if isSlack {
			body := slashBody(fmt.Sprintf("U%07d", rng.IntN(people)), "balance", fake.apiURL()+"respond")
			req = signedRequest(base+"/slack/commands", body)
		} else {
			req, _ = http.NewRequest(http.MethodGet, base+"/healthz", nil)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				var buf [4096]byte
				for {
					if _, err := resp.Body.Read(buf[:]); err != nil {
						break
					}
				}
				resp.Body.Close()
			}
			d := time.Since(start)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failures++
				return
			}
			samples = append(samples, latencySample{isSlack, d})
		}()
	}
	wg.Wait()
	b.StopTimer()
	reportLatencies(b, samples, failures, func(commands int) {
		b.ReportMetric(float64(commands)/float64(seconds), "commands/s")
	})
}

// latencySample is one timed request of an open loop: a Slack command or /healthz.
type latencySample struct {
	slack bool
	d     time.Duration
}

// reportLatencies fails the benchmark when any request failed, then reports what extra
// adds (given the number of commands answered), the commands' p50 and p99, the bare
// handler's, and the ratio of the p99s, in ms.
func reportLatencies(b *testing.B, samples []latencySample, failures int, extra func(commands int)) {
	var slackLat, bareLat []time.Duration
	for _, s := range samples {
		if s.slack {
			slackLat = append(slackLat, s.d)
		} else {
			bareLat = append(bareLat, s.d)
		}
	}
	if failures > 0 || len(slackLat) == 0 || len(bareLat) == 0 {
		b.Fatalf("%d failed requests, %d answered", failures, len(samples))
	}
	pct := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	extra(len(slackLat))
	b.ReportMetric(pct(slackLat, 0.50), "p50-ms")
	b.ReportMetric(pct(slackLat, 0.99), "p99-ms")
	b.ReportMetric(pct(bareLat, 0.50), "bare-p50-ms")
	b.ReportMetric(pct(bareLat, 0.99), "bare-p99-ms")
	b.ReportMetric(pct(slackLat, 0.99)/pct(bareLat, 0.99), "p99-ratio")
	b.ReportMetric(0, "ns/op")
}

// signedRequest is signedPost's request without sending it.
func signedRequest(target, body string) *http.Request {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", slackSignature(ts, body))
	return req
}

// BenchmarkSlackBalanceUnderIngestion is issue 18's case: while 4 gateways post batches of
// 1,000 usage events as fast as serve takes them (the writer saturated), signed
// `/tokens balance` commands from people writing to the app for the first time (each one
// looks the person up in Slack and links them: a small write) arrive at a fixed 50 per
// second, interleaved with GET /healthz at the same rate. Each request is timed from the
// moment the open loop scheduled it, so a stall shows in full. Run it alone:
//
//	go test -run '^$' -bench SlackBalanceUnderIngestion -benchtime 1x ./cmd/tokenpay
//
// TOKENPAY_BENCH_SECONDS sets the duration (default 20).
func BenchmarkSlackBalanceUnderIngestion(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 100,000-person ledger and saturates it; not run with -short")
	}
	const people, perSecond, clients, batch = 100_000, 50, 4, 1_000
	seconds := 20
	if s, err := strconv.Atoi(os.Getenv("TOKENPAY_BENCH_SECONDS")); err == nil && s > 0 {
		seconds = s
	}
	fake := newFakeSlack(b)
	dir := b.TempDir()
	var csv strings.Builder
	csv.WriteString("email,name,team,role,manager_email,slack_user_id,teams_user_id\n")
	for i := range people {
		fmt.Fprintf(&csv, "p%d@x.io,Person %d,Team %d,analyst,,,\n", i, i, i%40)
		fake.users[fmt.Sprintf("U%07d", i)] = fmt.Sprintf("p%d@x.io", i)
	}
	env := map[string]string{"TOKENPAY_DB": filepath.Join(dir, "t.db"), "SLACK_BOT_TOKEN": "xoxb-test",
		"SLACK_SIGNING_SECRET": slackSecret, "SLACK_API_URL": fake.apiURL()}
	getenv := func(k string) string { return env[k] }
	var out, errOut strings.Builder
	if code := Run(context.Background(), []string{"people", "import", "-"}, strings.NewReader(csv.String()), &out, &errOut, getenv); code != 0 {
		b.Fatalf("import: %s", errOut.String())
	}
	out.Reset()
	if code := Run(context.Background(), []string{"apikey", "create", "bench"}, strings.NewReader(""), &out, &errOut, getenv); code != 0 {
		b.Fatalf("apikey: %s", errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	key := lines[len(lines)-1]
	base, stop := startServe(b, env)
	defer stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	var ingested atomic.Int64
	var ingestMu sync.Mutex
	var ingestErr error
	var ingestWG sync.WaitGroup
	for c := range clients {
		ingestWG.Add(1)
		go func() {
			defer ingestWG.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 11))
			for seq := 0; ctx.Err() == nil; seq++ {
				var body strings.Builder
				body.WriteString(`{"events":[`)
				for i := range batch {
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"id":"c%d-%d-%d","email":"p%d@x.io","model":"gpt-4o","input_tokens":%d,"output_tokens":%d,"occurred_at":%q}`,
						c, seq, i, rng.IntN(people), rng.IntN(2000), rng.IntN(500),
						time.Now().UTC().Add(-time.Duration(rng.IntN(3600))*time.Second).Format(time.RFC3339))
				}
				body.WriteString(`]}`)
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/usage", strings.NewReader(body.String()))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the run is over
				}
				var answer struct {
					Accepted int `json:"accepted"`
				}
				err = json.NewDecoder(resp.Body).Decode(&answer)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || answer.Accepted != batch {
					if ctx.Err() == nil {
						ingestMu.Lock()
						ingestErr = fmt.Errorf("usage batch: status %d, %d of %d accepted, %v", resp.StatusCode, answer.Accepted, batch, err)
						ingestMu.Unlock()
					}
					return
				}
				ingested.Add(batch)
			}
		}()
	}
	time.Sleep(2 * time.Second) // the writer is saturated before the first command

	var mu sync.Mutex
	var samples []latencySample
	var failures int
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(2*perSecond)
	rng := rand.New(rand.NewPCG(7, 7))
	perm := rng.Perm(people)
	b.ResetTimer()
	startIngested := ingested.Load()
	t0 := time.Now()
	n := 2 * perSecond * seconds
	for i := range n {
		scheduled := t0.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(scheduled))
		isSlack := i%2 == 0
		var req *http.Request
		if isSlack {
			body := slashBody(fmt.Sprintf("U%07d", perm[i/2]), "balance", fake.apiURL()+"respond")
			req = signedRequest(base+"/slack/commands", body)
		} else {
			req, _ = http.NewRequest(http.MethodGet, base+"/healthz", nil)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Do(req)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			d := time.Since(scheduled)
			mu.Lock()
			defer mu.Unlock()
			if !ok {
				failures++
				return
			}
			samples = append(samples, latencySample{isSlack, d})
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	rate := float64(ingested.Load()-startIngested) / elapsed.Seconds()
	b.StopTimer()
	cancel()
	ingestWG.Wait()
	if ingestErr != nil {
		b.Fatalf("ingestion did not saturate the writer: %v", ingestErr)
	}
	reportLatencies(b, samples, failures, func(int) { b.ReportMetric(rate, "ingested-events/s") })
}
