package main

import (
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to read pg_locks
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/api"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/ledger/postgres"
	"github.com/tokenpay/tokenpay/ledger/postgres/pgtest"
	"github.com/tokenpay/tokenpay/nudges"
)

// replicaSlack stands between one replica and the shared fake Slack, so the test knows
// which replica has a chat.postMessage in flight.
type replicaSlack struct {
	*httptest.Server
	posting atomic.Int32
}

func newReplicaSlack(t *testing.T, fake *fakeSlack) *replicaSlack {
	target, err := url.Parse(fake.apiURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// A frozen or killed replica drops its request mid-way: expected here, not news.
	proxy.ErrorLog = log.New(io.Discard, "", 0)
	r := &replicaSlack{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasSuffix(req.URL.Path, "/chat.postMessage") {
			r.posting.Add(1)
			defer r.posting.Add(-1)
		}
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

// digestMarker is in every weekly digest (nudges.DigestReply) and in no other message.
const digestMarker = "Your weekly digest from tokenpay"

// digestsByChannel counts the weekly digests the fake Slack received, per DM channel.
func digestsByChannel(f *fakeSlack) (map[string]int, int) {
	per, total := map[string]int{}, 0
	for _, c := range f.snapshot("chat.postMessage") {
		if strings.Contains(c.Form.Get("blocks")+c.Form.Get("text"), digestMarker) {
			per[dmChannel(c.Form.Get("channel"))]++
			total++
		}
	}
	return per, total
}

// TestThreeReplicasOnOnePostgres runs three `tokenpay serve` processes on one PostgreSQL
// database and one Slack workspace (slack-go's slacktest server, slowed so that delivery
// takes a while), started at once on a Monday after the weekly digest's slot, so that all
// three find the digest due. Meanwhile gateways post usage to all three at once (the
// same events to every replica, and events of their own to each), and the manager clicks
// Approve on one unlock request on two replicas at once. One replica is then frozen while
// it has a digest in flight, and SIGKILLed once the others have taken that digest over:
// on one machine a killed process's claims are taken over at once (its pid is gone;
// nudges.Worker.Gone), so freezing it first makes the survivors rely on what replicas on
// other machines have, its heartbeat going stale (TOKENPAY_REPLICA_TIMEOUT, 5 s here).
// Afterwards: every event is counted once, the request granted once, every job slot run
// or skipped by one replica, every person got one digest and at most the one in flight at
// the freeze got two, and `tokenpay ledger verify` is clean on the PostgreSQL database.
func TestThreeReplicasOnOnePostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tokenpay and runs three serve processes on a PostgreSQL cluster for about 20 s; not run with -short")
	}
	begun := time.Now()
	dsn := pgtest.Start(t)
	bin := buildTokenpay(t)
	built := time.Now()

	// 40 people on Slack; a replica silent for 5 s is gone (it beats every 833 ms).
	const people, replicaTimeout = 40, 5 * time.Second
	fake := newFakeSlack(t)
	dir := t.TempDir()
	polPath := filepath.Join(dir, "policy.yaml")
	// One message in flight per replica: a replica killed mid-delivery leaves at most one
	// digest in doubt.
	polYAML := "slack:\n  approvals_channel: C0APPROVALS\nadmins: [p0@x.io]\noutbox:\n  concurrency: 1\n  slack_per_workspace_per_minute: 60000\n"
	if err := os.WriteFile(polPath, []byte(polYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(polPath)
	if err != nil {
		t.Fatal(err)
	}
	// Last week's digest ran, before the directory was imported, so this install has been
	// running and the replicas catch up this week's slot rather than skip it.
	env := map[string]string{"TOKENPAY_NOW": "2026-11-16T09:00:00Z", "TOKENPAY_DB": dsn, "TOKENPAY_POLICY": polPath}
	if code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest"); code != 0 || !strings.Contains(out, "queued 0 digests") {
		t.Fatalf("jobs run: exit %d\n%s%s", code, out, errOut)
	}
	env["TOKENPAY_NOW"] = "2026-11-16T10:00:00Z"
	if code, _, errOut := runCLI(t, slackPeopleCSV(people), env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	env["TOKENPAY_NOW"] = "2026-11-23T11:00:00Z"
	key := opsAPIKey(t, env)

	// Every post takes 150 ms, so the digest is still being delivered when a replica dies.
	fake.slow("chat.postMessage", 150*time.Millisecond)
	type replica struct {
		p     *proc
		base  string
		slack *replicaSlack
	}
	replicas := make([]*replica, 3)
	for i := range replicas {
		r := &replica{slack: newReplicaSlack(t, fake)}
		renv := map[string]string{}
		for k, v := range env {
			renv[k] = v
		}
		renv["SLACK_BOT_TOKEN"], renv["SLACK_SIGNING_SECRET"], renv["SLACK_API_URL"] = "xoxb-test", slackSecret, r.slack.URL+"/"
		renv["TOKENPAY_REPLICA_TIMEOUT"] = replicaTimeout.String()
		// Its sessions are told apart in pg_stat_activity by their application_name.
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("application_name", fmt.Sprintf("replica%d", i))
		u.RawQuery = q.Encode()
		renv["TOKENPAY_DB"] = u.String()
		r.p = startProc(t, bin, renv, "serve", "--addr", "127.0.0.1:0")
		replicas[i] = r
	}
	for i, r := range replicas {
		r.base = waitServing(t, r.p)
		t.Logf("replica %d serving at %s", i, r.base)
	}
	ready := time.Now()

	// Usage to all three at once: a shared batch posted to every replica (a gateway
	// retrying through the load balancer) and a batch of each replica's own, in chunks.
	const shared, own, chunk = 300, 200, 50
	events := map[string]int64{} // distinct event id -> credits
	batches := make([][]string, len(replicas))
	addBatch := func(to int, prefix string, from, n int) {
		var b strings.Builder
		b.WriteString(`{"events":[`)
		for i := from; i < from+n; i++ {
			if i > from {
				b.WriteByte(',')
			}
			in, out := int64(100+i), int64(7+i%13)
			id := fmt.Sprintf("%s-%d", prefix, i)
			fmt.Fprintf(&b, `{"id":%q,"email":"p%d@x.io","model":"m","input_tokens":%d,"output_tokens":%d,"occurred_at":"2026-11-23T08:00:00Z"}`,
				id, i%people, in, out)
			c, err := pol.WeightFor("m").Credits(in, out)
			if err != nil {
				t.Fatal(err)
			}
			events[id] = c
		}
		b.WriteString(`]}`)
		batches[to] = append(batches[to], b.String())
	}
	for to := range replicas {
		for from := 0; from < shared; from += chunk {
			addBatch(to, "shared", from, chunk)
		}
		for from := 0; from < own; from += chunk {
			addBatch(to, fmt.Sprintf("r%d", to), from, chunk)
		}
	}
	posted := shared*len(replicas) + own*len(replicas)
	var accepted, duplicates atomic.Int64
	var wg sync.WaitGroup
	for i, r := range replicas {
		for _, body := range batches[i] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, r.base+"/api/v1/usage", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("post usage to replica %d: %v", i, err)
					return
				}
				defer resp.Body.Close()
				var ur api.UsageResponse
				if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&ur) != nil {
					t.Errorf("post usage to replica %d: %s", i, resp.Status)
					return
				}
				accepted.Add(int64(ur.Accepted))
				duplicates.Add(int64(ur.Duplicates))
			}()
		}
	}

	// An unlock request filed on replica 0; the manager approves it on replicas 1 and 2
	// at once, several clicks on each (an impatient double click on a slow network).
	// Each replica answers on response_urls of its own Slack API host, its way to the fake.
	respond := func(r *replica) string { return r.slack.URL + "/respond" }
	const filed = "Request #1 for 50,000 credits sent to Person 0"
	resp, body := signedPost(t, replicas[0].base, "/slack/commands", slashBody("U1", "request 50k evaluate the new support bot", respond(replicas[0])), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	// Slack wants an answer within 3 s: while the usage batches hold the database, the
	// command is acknowledged empty and answered through its response_url.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(body, filed); time.Sleep(20 * time.Millisecond) {
		for _, c := range fake.snapshot("response_url") {
			if strings.Contains(c.text(), filed) {
				body = c.text()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("request: acknowledged %q, and no answer through response_url within 20 s", body)
		}
	}
	for range 3 {
		for _, r := range replicas[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if resp, _ := signedPost(t, r.base, "/slack/interactions", actionBody("U0", "approve:1", "C0APPROVALS", respond(r)), nil); resp.StatusCode != 200 {
					t.Errorf("approve on %s: %d", r.base, resp.StatusCode)
				}
			}()
		}
	}
	wg.Wait()
	usageDone := time.Now()

	db, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	// The digest's slot names its job run; its ISO week names its messages.
	const period, week = "2026-11-23T09:00Z", "2026-W48"
	// claimedBy returns the digest the process pid holds in flight (status sending).
	claimedBy := func(pid int) (ledger.OutboxRow, bool) {
		rows, err := db.OutboxMessages(ctx, nudges.KindDigest, week)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			if row.Status == ledger.OutboxSending && ownerPID(row.Owner) == fmt.Sprint(pid) {
				return row, true
			}
		}
		return ledger.OutboxRow{}, false
	}

	// inTransaction reports whether replica i, just stopped, was inside a transaction: a
	// frozen replica holding the write lock or row locks would stall the others, which is
	// not what this test is about.
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	inTransaction := func(i int) bool {
		time.Sleep(200 * time.Millisecond) // a statement sent before the stop completes
		var n int
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'`,
			fmt.Sprintf("replica%d", i)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	// sessions describes what every replica's database session is doing, for a failure.
	sessions := func() string {
		rows, err := raw.QueryContext(ctx, `SELECT application_name, state, COALESCE(wait_event_type, ''), COALESCE(wait_event, ''), left(query, 120)
			FROM pg_stat_activity WHERE application_name LIKE 'replica%' AND state <> 'idle' ORDER BY 1`)
		if err != nil {
			return err.Error()
		}
		defer rows.Close()
		var b strings.Builder
		for rows.Next() {
			var app, state, waitType, wait, query string
			if err := rows.Scan(&app, &state, &waitType, &wait, &query); err != nil {
				return err.Error()
			}
			fmt.Fprintf(&b, "\n  %s %s %s/%s: %s", app, state, waitType, wait, strings.Join(strings.Fields(query), " "))
		}
		return b.String()
	}

	// Once a quarter of the digests arrived, freeze a replica that has one in flight
	// (SIGSTOP: it neither finishes nor beats, as a replica cut off from the network),
	// wait until the others take its message over, which only its silence for
	// TOKENPAY_REPLICA_TIMEOUT can tell them (its pid is alive), then SIGKILL it.
	victim, pid := -1, 0
	var held ledger.OutboxRow
	deadline := time.Now().Add(30 * time.Second)
	for victim < 0 {
		if time.Now().After(deadline) {
			per, n := digestsByChannel(fake)
			t.Fatalf("no replica was caught delivering a digest in 30 s (%d digests to %d people)", n, len(per))
		}
		if _, n := digestsByChannel(fake); n < people/4 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		for i, r := range replicas {
			if r.slack.posting.Load() == 0 {
				continue
			}
			p := r.p.cmd.Process
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			if row, ok := claimedBy(p.Pid); ok && !inTransaction(i) {
				victim, pid, held = i, p.Pid, row
				break
			}
			// Between two messages (the post in flight was not a digest), or frozen inside a
			// write transaction, whose lock would stall every replica: let it go on.
			if err := p.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
	}
	frozen := time.Now()
	_, atFreeze := digestsByChannel(fake)
	if atFreeze >= people {
		t.Fatalf("all %d digests had arrived when replica %d was frozen; nothing was tested", atFreeze, victim)
	}
	for {
		if _, ok := claimedBy(pid); !ok {
			break
		}
		if time.Since(frozen) > 30*time.Second {
			t.Fatalf("30 s after replica %d went silent, its digest #%d is still held by it; sessions not idle:%s", victim, held.ID, sessions())
		}
		time.Sleep(20 * time.Millisecond)
	}
	takenOver := time.Now()
	// Stale means silent for the whole timeout; its last beat was up to a sixth of it
	// before the freeze.
	if took := takenOver.Sub(frozen); took < replicaTimeout*3/4 {
		t.Errorf("replica %d's digest was taken over %s after it went silent, before its heartbeat could be stale (%s)", victim, took, replicaTimeout)
	}
	if err := replicas[victim].p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-replicas[victim].p.done
	killed := time.Now()

	// The survivors finish: every person has a digest and nothing is left in flight.
	deadline = time.Now().Add(30 * time.Second)
	for {
		rows, err := db.OutboxMessages(ctx, nudges.KindDigest, week)
		if err != nil {
			t.Fatal(err)
		}
		done := len(rows) == people
		for _, row := range rows {
			done = done && row.Status == ledger.OutboxSent
		}
		per, _ := digestsByChannel(fake)
		if done && len(per) == people {
			break
		}
		if time.Now().After(deadline) {
			counts := map[string]int{}
			for _, row := range rows {
				counts[row.Status]++
			}
			t.Fatalf("30 s after the kill, the digest outbox is %v (%d rows), %d people reached", counts, len(rows), len(per))
		}
		time.Sleep(50 * time.Millisecond)
	}
	finished := time.Now()

	// Every event counted once: each accepted by exactly one replica, the rest answered
	// as duplicates, one ledger transaction each, and the credits spent are their sum.
	if int(accepted.Load()) != len(events) || int(accepted.Load()+duplicates.Load()) != posted {
		t.Errorf("%d events accepted and %d duplicates of %d posted; want %d accepted (the distinct events)",
			accepted.Load(), duplicates.Load(), posted, len(events))
	}
	var export strings.Builder
	if err := db.ExportPostings(ctx, &export); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(strings.NewReader(export.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	txs := map[string]map[string]bool{} // usage key -> transaction ids
	for _, rec := range recs[1:] {
		if rec[3] == "usage" {
			if txs[rec[2]] == nil {
				txs[rec[2]] = map[string]bool{}
			}
			txs[rec[2]][rec[0]] = true
		}
	}
	if len(txs) != len(events) {
		t.Errorf("%d usage transactions in the ledger, want %d (one per distinct event)", len(txs), len(events))
	}
	for k, ids := range txs {
		if len(ids) != 1 {
			t.Errorf("usage %s booked in %d transactions", k, len(ids))
		}
	}
	var wantSpent, spent int64
	for _, c := range events {
		wantSpent += c
	}
	everyone, err := db.People(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now, _ := time.Parse(time.RFC3339, env["TOKENPAY_NOW"])
	for _, p := range everyone {
		b, err := db.Balance(ctx, p.ID, pol.PeriodStart(now), pol.PeriodEnd(now))
		if err != nil {
			t.Fatal(err)
		}
		spent += b.Spent
	}
	if spent != wantSpent {
		t.Errorf("%s credits spent over everyone, want %s (the sum of the distinct events)", ledger.FormatCredits(spent), ledger.FormatCredits(wantSpent))
	}

	// One decision, one grant.
	req, err := db.Request(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	grants, err := db.Grants(ctx, req.RequesterID, 100)
	if err != nil {
		t.Fatal(err)
	}
	unlocks := 0
	for _, g := range grants {
		if g.Kind == ledger.GrantUnlock {
			unlocks++
		}
	}
	if req.Status != ledger.RequestApproved || unlocks != 1 {
		t.Errorf("request #1 is %s with %d unlock grants after six concurrent approvals on two replicas; want approved, one grant", req.Status, unlocks)
	}

	// The digest ran once across the replicas, and every person got it once, bar the one
	// in flight at the freeze.
	run, found, err := db.JobRunFor(ctx, policy.JobWeeklyDigest, period)
	if err != nil || !found || run.Status != ledger.JobDone {
		t.Errorf("weekly digest run for %s: %+v found=%v err=%v", period, run, found, err)
	}
	// Every job's slot was started once across the three: the digest run, and the other
	// jobs' first slots skipped (a fresh schedule) by one replica each.
	started := map[string]int{}
	for _, r := range replicas {
		for _, line := range strings.Split(r.p.stderr.String(), "\n") {
			var entry struct{ Job, Period, Message string }
			if json.Unmarshal([]byte(line), &entry) != nil || entry.Job == "" {
				continue
			}
			switch entry.Message {
			case "job run done", "first start: this slot is skipped, the next one runs":
				started[entry.Job+" "+entry.Period]++
			}
		}
	}
	if started[policy.JobWeeklyDigest+" "+period] != 1 {
		t.Errorf("the weekly digest for %s ran in %d replicas, want 1", period, started[policy.JobWeeklyDigest+" "+period])
	}
	if len(started) < 2 {
		t.Errorf("the replicas' logs name %d job slots (%v); want the digest and the skipped first slots of the other jobs", len(started), started)
	}
	for slot, n := range started {
		if n != 1 {
			t.Errorf("%s was run or skipped %d times across the replicas, want once", slot, n)
		}
	}
	per, total := digestsByChannel(fake)
	twice := 0
	for i := range people {
		switch n := per[fmt.Sprintf("D%d", i)]; {
		case n == 0:
			t.Errorf("p%d never got the digest", i)
		case n == 2:
			twice++
		case n > 2:
			t.Errorf("p%d got the digest %d times", i, n)
		}
	}
	if twice > 1 || total > people+1 {
		t.Errorf("%d digests to %d people, %d of them twice; at most the one in flight at the kill may arrive twice", total, len(per), twice)
	}
	recovered := 0
	for i, r := range replicas {
		if i != victim && strings.Contains(r.p.stderr.String(), "resending messages left in flight by a stopped process") {
			recovered++
		}
	}
	if recovered == 0 {
		t.Errorf("no surviving replica logged that it picked up the frozen replica's message in flight")
	}
	if after, err := db.OutboxMessages(ctx, nudges.KindDigest, week); err == nil {
		for _, row := range after {
			if row.ID == held.ID && (row.Status != ledger.OutboxSent || ownerPID(row.Owner) == fmt.Sprint(pid)) {
				t.Errorf("the frozen replica's digest #%d ended %s by %s", row.ID, row.Status, row.Owner)
			}
		}
	}
	verifyLedger(t, env)

	t.Logf("%d usage events posted (%d distinct) to 3 replicas: %d accepted, %d duplicates; 6 concurrent approvals on 2 replicas: %d grant; "+
		"%d people: %d digests arrived (%d twice), %d before replica %d was frozen with digest #%d in flight, %d chat.postMessage calls in all; "+
		"times: build %s, start %s, usage and approvals %s, freeze after %s, taken over %s after the freeze, survivors done %s after the kill, total %s",
		posted, len(events), accepted.Load(), duplicates.Load(), unlocks, people, total, twice, atFreeze, victim, held.ID, len(fake.snapshot("chat.postMessage")),
		built.Sub(begun).Round(time.Millisecond), ready.Sub(built).Round(time.Millisecond), usageDone.Sub(ready).Round(time.Millisecond),
		frozen.Sub(ready).Round(time.Millisecond), takenOver.Sub(frozen).Round(time.Millisecond), finished.Sub(killed).Round(time.Millisecond),
		time.Since(begun).Round(time.Millisecond))
}

// ownerPID is the pid in a worker's name (host/pid/space/random), "" when there is none.
func ownerPID(owner string) string {
	if parts := strings.Split(owner, "/"); len(parts) > 1 {
		return parts[1]
	}
	return ""
}

// waitServing waits until a `serve` process logs its address and answers /readyz, and
// returns its base URL.
func waitServing(t *testing.T, p *proc) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := servingAddr.FindStringSubmatch(p.stderr.String()); m != nil {
			base := "http://" + m[1]
			if resp, err := http.Get(base + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return base
				}
			}
		}
		select {
		case <-p.done:
			t.Fatalf("serve exited: %v\n%s", p.err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve did not become ready:\n%s", p.stderr.String())
	return ""
}
