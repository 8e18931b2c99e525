package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// latencies collects request durations.
type latencies struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

func (l *latencies) summary() latencySummary {
	l.mu.Lock()
	ds := slices.Clone(l.ds)
	l.mu.Unlock()
	slices.Sort(ds)
	return latencySummary{Count: len(ds), P50ms: ms(percentile(ds, 50)), P99ms: ms(percentile(ds, 99)), Maxms: ms(percentile(ds, 100))}
}

// percentile returns the nearest-rank p-th percentile of sorted durations, 0 for none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

type latencySummary struct {
	Count int     `json:"count"`
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	Maxms float64 `json:"max_ms"`
}

// memSampler reads the server's resident memory from /proc/PID/status.
type memSampler struct {
	pid       int
	last, max atomic.Int64
	hwm       atomic.Int64
	samples   atomic.Int64
}

func (m *memSampler) run(ctx context.Context, every time.Duration) {
	if m.pid == 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		m.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *memSampler) sample() {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.pid))
	if err != nil {
		return
	}
	defer f.Close()
	rss, hwm, err := parseStatus(f)
	if err != nil {
		return
	}
	m.samples.Add(1)
	m.last.Store(rss)
	if rss > m.max.Load() {
		m.max.Store(rss)
	}
	m.hwm.Store(hwm)
}

// parseStatus reads VmRSS and VmHWM (peak RSS), in bytes, from a /proc/PID/status file.
func parseStatus(r io.Reader) (rss, hwm int64, err error) {
	sc := bufio.NewScanner(r)
	found := 0
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("%s: unexpected %q", key, val)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %w", key, err)
		}
		if key == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("VmRSS or VmHWM missing")
	}
	return rss, hwm, sc.Err()
}

type reportConfig struct {
	Target       string `json:"target"`
	People       int    `json:"people"`
	Duration     string `json:"duration"`
	UsageRate    int    `json:"usage_batches_per_second"`
	UsageWorkers int    `json:"usage_workers"`
	Batch        int    `json:"batch"`
	CommandRate  int    `json:"command_rate"`
	RunID        string `json:"run_id"`
}

// report is what a run measured and what it checked.
type report struct {
	Config         reportConfig   `json:"config"`
	Seconds        float64        `json:"seconds"`
	EventsAccepted int64          `json:"events_accepted"`
	EventsOther    int64          `json:"events_not_accepted"`
	BatchesFailed  int64          `json:"batches_failed"`
	BatchesBehind  int64          `json:"batches_not_sent_behind"`
	EventsPerSec   float64        `json:"events_per_second"`
	Usage          latencySummary `json:"usage_batch_latency"`
	CommandsSent   int64          `json:"commands_sent"`
	CommandsInline int64          `json:"commands_answered_inline"`
	CommandsLate   int64          `json:"commands_answered_late"`
	LateAnswers    int64          `json:"late_answers_received"`
	CommandsFailed int64          `json:"commands_failed"`
	CommandsWrong  int64          `json:"commands_wrong_answer"`
	CommandsPerSec float64        `json:"commands_per_second"`
	Commands       latencySummary `json:"command_latency"`
	DMsDelivered   int64          `json:"dms_delivered"`
	DMChannels     int            `json:"dm_channels"`
	DMsPerChannel  [2]int         `json:"dms_per_channel_min_max"`
	RSSMaxMiB      float64        `json:"rss_max_mib"`
	RSSPeakMiB     float64        `json:"rss_hwm_mib"`
	RSSSamples     int64          `json:"rss_samples"`

	// From the ledger file, after the load and the drain.
	EventsInLedger int64            `json:"events_in_ledger"`
	Outbox         map[string]int64 `json:"outbox_by_kind_and_status"`
	OutboxOpen     int64            `json:"outbox_still_open"`
	Problems       []string         `json:"problems"`
	NothingLost    bool             `json:"nothing_lost"`
}

func (r *report) fill(elapsed time.Duration, u *usageLoad, c *commandLoad, s *fakeSlack, m *memSampler) {
	r.Seconds = elapsed.Seconds()
	r.EventsAccepted, r.EventsOther, r.BatchesFailed, r.BatchesBehind = u.accepted.Load(), u.other.Load(), u.failed.Load(), u.behind.Load()
	r.EventsPerSec = float64(r.EventsAccepted) / r.Seconds
	r.Usage = u.lat.summary()
	r.CommandsSent, r.CommandsInline, r.CommandsLate = c.sent.Load(), c.inline.Load(), c.late.Load()
	r.LateAnswers, r.CommandsFailed, r.CommandsWrong = s.responses.Load(), c.failed.Load(), c.wrong.Load()
	r.CommandsPerSec = float64(r.CommandsSent) / r.Seconds
	r.Commands = c.lat.summary()
	r.RSSMaxMiB, r.RSSPeakMiB, r.RSSSamples = float64(m.max.Load())/(1<<20), float64(m.hwm.Load())/(1<<20), m.samples.Load()
}

// check reads the ledger (read-only) once queued messages are delivered, and lists every
// loss: accepted events missing from the ledger, commands without an answer, messages not
// delivered or delivered twice.
func (r *report) check(ctx context.Context, c config, s *fakeSlack, cmds *commandLoad) error {
	db, err := openLedger(c.db)
	if err != nil {
		return fmt.Errorf("open %s: %w", c.db, err)
	}
	defer db.Close()
	deadline := time.Now().Add(c.drainWait)
	for {
		var open, running int64
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')),
			(SELECT count(*) FROM job_runs WHERE status = 'running')`).Scan(&open, &running); err != nil {
			return fmt.Errorf("read the outbox: %w", err)
		}
		r.OutboxOpen = open
		if (open == 0 && running == 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	// Event ids are <run id>-<n>; their transactions' keys sort between "usage:<run id>-" and "usage:<run id>.".
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM transactions WHERE idem_key >= ? AND idem_key < ?`,
		"usage:"+c.runID+"-", "usage:"+c.runID+".").Scan(&r.EventsInLedger); err != nil {
		return fmt.Errorf("count events: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT kind || ' ' || status, count(*) FROM outbox GROUP BY 1 ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("read the outbox: %w", err)
	}
	r.Outbox = map[string]int64{}
	var sent int64
	for rows.Next() {
		var k string
		var n int64
		if err := rows.Scan(&k, &n); err != nil {
			rows.Close()
			return err
		}
		r.Outbox[k] = n
		if strings.HasSuffix(k, " sent") {
			sent += n
		}
	}
	rows.Close()
	r.DMsDelivered = s.dmPosts.Load()
	r.DMChannels, r.DMsPerChannel[0], r.DMsPerChannel[1] = s.dmSpread()

	if r.EventsInLedger != r.EventsAccepted {
		r.Problems = append(r.Problems, fmt.Sprintf("%d events accepted, %d in the ledger", r.EventsAccepted, r.EventsInLedger))
	}
	if r.EventsOther > 0 || r.BatchesFailed > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d events not accepted, %d batches failed", r.EventsOther, r.BatchesFailed))
	}
	if answered := r.CommandsInline + min(r.CommandsLate, r.LateAnswers); answered != r.CommandsSent || r.CommandsFailed+r.CommandsWrong > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d commands sent, %d answered (%d failed, %d wrong answers)", r.CommandsSent, answered,
			r.CommandsFailed, r.CommandsWrong))
	}
	if r.OutboxOpen > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%d messages still queued after %s", r.OutboxOpen, c.drainWait))
	}
	for k, n := range r.Outbox {
		if strings.HasSuffix(k, " dead") {
			r.Problems = append(r.Problems, fmt.Sprintf("%d messages given up (%s)", n, k))
		}
	}
	if sent != r.DMsDelivered {
		r.Problems = append(r.Problems, fmt.Sprintf("the outbox marked %d messages sent, Slack received %d direct messages", sent, r.DMsDelivered))
	}
	r.NothingLost = len(r.Problems) == 0
	return nil
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s of mixed load, %d people ==\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Second), r.Config.People)
	fmt.Fprintf(w, "usage      %d events accepted (%.0f events/s) in batches of %d; batch latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d batches not sent (behind)\n",
		r.EventsAccepted, r.EventsPerSec, r.Config.Batch, r.Usage.P50ms, r.Usage.P99ms, r.Usage.Maxms, r.BatchesBehind)
	fmt.Fprintf(w, "commands   %d sent (%.1f/s): %d answered inline, %d acknowledged then answered late (%d late answers); p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		r.CommandsSent, r.CommandsPerSec, r.CommandsInline, r.CommandsLate, r.LateAnswers, r.Commands.P50ms, r.Commands.P99ms, r.Commands.Maxms)
	fmt.Fprintf(w, "fan-out    %d direct messages delivered to Slack in %d DM channels (%d to %d each); outbox %v\n",
		r.DMsDelivered, r.DMChannels, r.DMsPerChannel[0], r.DMsPerChannel[1], r.Outbox)
	fmt.Fprintf(w, "memory     serve RSS max %.0f MiB (peak %.0f MiB, %d samples)\n", r.RSSMaxMiB, r.RSSPeakMiB, r.RSSSamples)
	if r.Outbox != nil {
		fmt.Fprintf(w, "ledger     %d of this run's events in the ledger\n", r.EventsInLedger)
		if r.NothingLost {
			fmt.Fprintln(w, "nothing lost: every accepted event is in the ledger, every command answered, every queued message delivered")
		}
		for _, p := range r.Problems {
			fmt.Fprintln(w, "LOST:", p)
		}
	}
}
