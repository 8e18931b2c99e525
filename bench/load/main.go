// Command load drives a running `tokenpay serve` on loopback with a mixed load for a
// bounded time and count: usage batches through the usage API, signed Slack slash
// commands, and the Slack end of the digest fan-out (it serves the fake Slack Web API that
// serve and `tokenpay jobs run` post to). It reports throughput, latency percentiles and
// the server's memory, then checks that nothing was lost: every accepted usage event is in
// the ledger, every command was answered, every queued message was delivered once.
//
// It starts no process; bench/load/run.sh builds tokenpay, seeds the ledger, starts serve
// and the digest jobs, and runs `tokenpay ledger verify` at the end.
//
//	load people -n 100000 -o people.csv   # the directory the run expects
//	load run -target http://127.0.0.1:18080 -slack 127.0.0.1:18081 -key tp_... -secret S \
//	    -pidfile serve.pid -db bench.db -duration 10m
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: load people -n N -o FILE | load run [flags]  (load run -h lists the flags)")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "people":
		err = peopleCmd(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use people or run", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

// personEmail and slackID name person i the same way in the directory, the events and the
// fake Slack.
func personEmail(i int) string { return fmt.Sprintf("p%d@load.test", i) }
func slackID(i int) string     { return fmt.Sprintf("U%08d", i) }

func peopleCmd(args []string) error {
	fs := flag.NewFlagSet("people", flag.ExitOnError)
	n := fs.Int("n", 100_000, "how many people")
	out := fs.String("o", "people.csv", "file to write")
	_ = fs.Parse(args)
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	w := &strings.Builder{}
	w.WriteString("email,name,team,role,manager_email,slack_user_id,teams_user_id\n")
	for i := range *n {
		fmt.Fprintf(w, "%s,Person %d,Team %02d,analyst,,%s,\n", personEmail(i), i, i%40, slackID(i))
	}
	if _, err := io.WriteString(f, w.String()); err != nil {
		return err
	}
	return f.Close()
}

// config is one run's flags.
type config struct {
	target, slackAddr, key, secret, pidfile, db, runID, report string
	people, usageWorkers, usageRate, batch, commandRate        int
	maxEvents, maxCommands                                     int64
	duration, drainWait                                        time.Duration
	occurredAt                                                 time.Time
}

func runCmd(args []string) error {
	var c config
	var keyFile, occurred string
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&c.target, "target", "http://127.0.0.1:18080", "base URL of the running tokenpay serve (loopback only)")
	fs.StringVar(&c.slackAddr, "slack", "127.0.0.1:18081", "listen address of the fake Slack Web API (loopback only); serve's SLACK_API_URL is http://ADDR/api/")
	fs.StringVar(&c.key, "key", "", "usage API key")
	fs.StringVar(&keyFile, "key-file", "", "file holding the usage API key")
	fs.StringVar(&c.secret, "secret", "", "Slack signing secret serve was started with")
	fs.StringVar(&c.pidfile, "pidfile", "", "file holding serve's pid, for its memory (read from /proc/PID/status)")
	fs.StringVar(&c.db, "db", "", "the ledger file, read (read-only) at the end to check nothing was lost")
	fs.StringVar(&c.runID, "run-id", "", "prefix of this run's event ids (default: from the clock)")
	fs.StringVar(&c.report, "json", "", "also write the report as JSON to this file")
	fs.IntVar(&c.people, "people", 100_000, "people in the directory (as written by load people)")
	fs.IntVar(&c.usageRate, "usage-rate", 10, "usage batches per second (open loop, like gateways that do not wait); 0: closed loop with -usage-workers")
	fs.IntVar(&c.usageWorkers, "usage-workers", 2, "with -usage-rate 0: posters each sending the next batch when the last is answered (the server's capacity)")
	fs.IntVar(&c.batch, "batch", 500, "events per usage batch")
	fs.IntVar(&c.commandRate, "command-rate", 50, "signed slash commands per second (open loop)")
	fs.Int64Var(&c.maxEvents, "max-events", 10_000_000, "stop sending usage after this many events")
	fs.Int64Var(&c.maxCommands, "max-commands", 1_000_000, "stop sending commands after this many")
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to send load")
	fs.DurationVar(&c.drainWait, "drain-wait", 5*time.Minute, "after the load, how long to wait for queued messages to be delivered")
	fs.StringVar(&occurred, "occurred-at", "", "occurred_at of the events, RFC 3339 (default: an hour ago); must be in serve's current period")
	_ = fs.Parse(args)
	if keyFile != "" {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return err
		}
		c.key = strings.TrimSpace(string(b))
	}
	if c.key == "" || c.secret == "" {
		return errors.New("-key (or -key-file) and -secret are required")
	}
	c.occurredAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if occurred != "" {
		t, err := time.Parse(time.RFC3339, occurred)
		if err != nil {
			return fmt.Errorf("-occurred-at: %w", err)
		}
		c.occurredAt = t
	}
	if c.runID == "" {
		c.runID = "load" + strconv.FormatInt(time.Now().Unix(), 36)
	}
	if err := loopbackURL(c.target); err != nil {
		return fmt.Errorf("-target: %w", err)
	}
	if err := loopbackAddr(c.slackAddr); err != nil {
		return fmt.Errorf("-slack: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, c)
}

// loopbackAddr refuses listen or dial addresses that leave the machine.
func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address; this tool only loads a server on this machine", addr)
	}
	return nil
}

func loopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if u.Scheme != "http" || u.Port() == "" {
		return fmt.Errorf("%s: want http://127.0.0.1:PORT", raw)
	}
	return loopbackAddr(u.Host)
}

func run(ctx context.Context, c config) error {
	slack := newFakeSlack(c.people)
	ln, err := net.Listen("tcp", c.slackAddr)
	if err != nil {
		return fmt.Errorf("fake Slack: %w", err)
	}
	srv := &http.Server{Handler: slack, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	fmt.Printf("fake Slack Web API on http://%s/api/ (response_url http://%s/respond)\n", c.slackAddr, c.slackAddr)

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	if err := waitReady(ctx, client, c.target+"/readyz", 2*time.Minute); err != nil {
		return err
	}
	pid, err := readPID(c.pidfile)
	if err != nil {
		return err
	}
	fmt.Printf("target %s ready; serve pid %d; load for %s\n", c.target, pid, c.duration)

	rep := &report{Config: reportConfig{Target: c.target, People: c.people, Duration: c.duration.String(), UsageRate: c.usageRate,
		UsageWorkers: c.usageWorkers, Batch: c.batch, CommandRate: c.commandRate, RunID: c.runID}}
	loadCtx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	mem := &memSampler{pid: pid}
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); mem.run(loadCtx, time.Second) }()
	u := &usageLoad{c: c, client: client}
	go func() { defer wg.Done(); u.run(loadCtx) }()
	cmds := &commandLoad{c: c, client: client, slack: slack}
	go func() { defer wg.Done(); cmds.run(loadCtx) }()
	progress := time.NewTicker(30 * time.Second)
	start := time.Now()
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case <-progress.C:
			fmt.Printf("%4.0fs  events accepted %d  commands %d  digests delivered %d  rss %d MiB\n", time.Since(start).Seconds(),
				u.accepted.Load(), cmds.sent.Load(), slack.dmPosts.Load(), mem.last.Load()>>20)
		}
	}
	progress.Stop()
	wg.Wait()
	elapsed := time.Since(start)
	cmds.waitLate(30 * time.Second)

	rep.fill(elapsed, u, cmds, slack, mem)
	if c.db != "" {
		if err := rep.check(ctx, c, slack, cmds); err != nil {
			return err
		}
	}
	rep.print(os.Stdout)
	if c.report != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(c.report, b, 0o644); err != nil {
			return err
		}
	}
	if !rep.NothingLost {
		return errors.New("something was lost; see the report")
	}
	return nil
}

func waitReady(ctx context.Context, client *http.Client, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v", url, within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func readPID(pidfile string) (int, error) {
	if pidfile == "" {
		return 0, nil
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(pidfile)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pid in %s", pidfile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// usageLoad posts batches at a fixed rate (open loop), or in closed loops that measure
// what the server sustains alongside the other load.
type usageLoad struct {
	c        config
	client   *http.Client
	seq      atomic.Int64
	accepted atomic.Int64
	other    atomic.Int64 // duplicates, quarantined, rejected: none expected
	failed   atomic.Int64 // batches answered with an error or not at all
	behind   atomic.Int64 // open loop: batches not sent because 64 were in flight
	lat      latencies
}

func (u *usageLoad) run(ctx context.Context) {
	if u.c.usageRate > 0 {
		u.openLoop(ctx)
		return
	}
	var wg sync.WaitGroup
	for w := range u.c.usageWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for ctx.Err() == nil {
				first, ok := u.next()
				if !ok {
					return
				}
				u.post(ctx, u.body(rng, first))
			}
		}()
	}
	wg.Wait()
}

// openLoop sends a batch every 1/rate seconds whatever the answers take, at most 64 in
// flight; a tick with 64 in flight is counted as behind, not queued.
func (u *usageLoad) openLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second / time.Duration(u.c.usageRate))
	defer tick.Stop()
	slots := make(chan struct{}, 64)
	rng := rand.New(rand.NewPCG(1, 42))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		first, ok := u.next()
		if !ok {
			return
		}
		body := u.body(rng, first)
		select {
		case slots <- struct{}{}:
		default:
			u.behind.Add(1)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			u.post(ctx, body)
		}()
	}
}

// next reserves the ids of one batch; false once -max-events is reached.
func (u *usageLoad) next() (int64, bool) {
	first := u.seq.Add(int64(u.c.batch)) - int64(u.c.batch)
	return first, first < u.c.maxEvents
}

func (u *usageLoad) body(rng *rand.Rand, first int64) []byte {
	at := u.c.occurredAt.Format(time.RFC3339)
	b := make([]byte, 0, u.c.batch*150)
	b = append(b, `{"events":[`...)
	for i := range int64(u.c.batch) {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":"%s-%d","email":"%s","model":"load-model","input_tokens":%d,"output_tokens":%d,"occurred_at":"%s","source":"load"}`,
			u.c.runID, first+i, personEmail(rng.IntN(u.c.people)), 50+rng.IntN(2000), 10+rng.IntN(500), at)
	}
	return append(b, `]}`...)
}

func (u *usageLoad) post(ctx context.Context, body []byte) {
	req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, u.c.target+"/api/v1/usage", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+u.c.key)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := u.client.Do(req)
	if err != nil {
		u.failed.Add(1)
		return
	}
	defer resp.Body.Close()
	var r struct{ Accepted, Duplicates, Quarantined, Rejected int64 }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		u.failed.Add(1)
		return
	}
	u.lat.add(time.Since(start))
	u.accepted.Add(r.Accepted)
	u.other.Add(r.Duplicates + r.Quarantined + r.Rejected)
}

// commandLoad sends signed slash commands at a fixed rate (open loop: a slow answer does
// not slow the sender, as with real users).
type commandLoad struct {
	c      config
	client *http.Client
	slack  *fakeSlack

	sent, inline, late, failed, wrong atomic.Int64
	lat                               latencies
	inflight                          sync.WaitGroup
}

// commandMix is what people type: mostly balances, some history, a few impacts (a write).
func commandMix(n int64) string {
	switch {
	case n%50 == 0:
		return "impact drafted the quarterly summary with AI --hours 1"
	case n%10 == 0:
		return "history"
	default:
		return "balance"
	}
}

func (cl *commandLoad) run(ctx context.Context) {
	if cl.c.commandRate <= 0 {
		return
	}
	tick := time.NewTicker(time.Second / time.Duration(cl.c.commandRate))
	defer tick.Stop()
	rng := rand.New(rand.NewPCG(7, 7))
	for {
		select {
		case <-ctx.Done():
			cl.inflight.Wait()
			return
		case <-tick.C:
		}
		n := cl.sent.Add(1)
		if n > cl.c.maxCommands {
			cl.sent.Add(-1)
			cl.inflight.Wait()
			return
		}
		person := rng.IntN(cl.c.people)
		text := commandMix(n)
		cl.inflight.Add(1)
		go func() {
			defer cl.inflight.Done()
			cl.send(ctx, person, text)
		}()
	}
}

func (cl *commandLoad) send(ctx context.Context, person int, text string) {
	form := url.Values{"team_id": {"T0LOAD"}, "channel_id": {"C0LOAD"}, "user_id": {slackID(person)}, "command": {"/tokens"},
		"text": {text}, "response_url": {"http://" + cl.c.slackAddr + "/respond"}, "trigger_id": {"1.2.3"}}
	body := form.Encode()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(cl.c.secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, cl.c.target+"/slack/commands", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	start := time.Now()
	resp, err := cl.client.Do(req)
	if err != nil {
		cl.failed.Add(1)
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cl.lat.add(time.Since(start))
	switch {
	case resp.StatusCode != http.StatusOK:
		cl.failed.Add(1)
	case len(b) == 0:
		cl.late.Add(1) // acknowledged; the answer comes through response_url
	case !answers(text, string(b)):
		cl.wrong.Add(1)
	default:
		cl.inline.Add(1)
	}
}

// answers reports whether body is the reply to text rather than an error.
func answers(text, body string) bool {
	switch {
	case strings.HasPrefix(text, "impact"):
		return strings.Contains(body, "Logged impact")
	case text == "history":
		return strings.Contains(body, "Your recent activity") || strings.Contains(body, "Nothing yet")
	default:
		return strings.Contains(body, "credits")
	}
}

// waitLate waits, bounded, until every command acknowledged without an answer got one
// through response_url.
func (cl *commandLoad) waitLate(within time.Duration) {
	deadline := time.Now().Add(within)
	for cl.slack.responses.Load() < cl.late.Load() && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// openLedger opens the ledger read-only for the final checks.
func openLedger(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	return db, db.Ping()
}
