package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
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

	type sample struct {
		slack bool
		d     time.Duration
	}
	var mu sync.Mutex
	var samples []sample
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
			samples = append(samples, sample{isSlack, d})
		}()
	}
	wg.Wait()
	b.StopTimer()
	var slackLat, bareLat []time.Duration
	for _, s := range samples {
		if s.slack {
			slackLat = append(slackLat, s.d)
		} else {
			bareLat = append(bareLat, s.d)
		}
	}
	if failures > 0 || len(slackLat) == 0 {
		b.Fatalf("%d failed requests, %d answered", failures, len(samples))
	}
	pct := func(ds []time.Duration, p float64) float64 {
		slices.Sort(ds)
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(slackLat))/float64(seconds), "commands/s")
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
