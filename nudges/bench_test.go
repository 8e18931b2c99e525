package nudges

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/period"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/tokenpay/tokenpay/prompts"
)

// The digest fixture: 100,000 people in 25 teams and the starter prompt library, imported
// on 1 October 2026, November's baselines granted, and November's use up to the 23rd:
// two in ten people used nothing, one a trickle, six steadily (two of them with logged
// outcomes), one heavily (past the baseline). Every tenth person manages the nine after them.
const (
	benchPeople  = 100_000
	benchVersion = "digest-v3"
)

var benchAt = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// digestFixture returns the fixture's path, building it on first use under a name keyed
// by benchVersion and the schema, so later runs reuse it.
func digestFixture(b *testing.B) string {
	b.Helper()
	if testing.Short() {
		b.Skip("skipped with -short: the fixture holds 100,000 people and 390,000 usage events (about 15 s to build the first time)")
	}
	ctx := context.Background()
	// The schema is part of the name: a new migration gets a new fixture.
	migrations, err := filepath.Glob("../ledger/sqlite/migrations/*.sql")
	if err != nil || len(migrations) == 0 {
		b.Fatalf("migrations: %v %v", migrations, err)
	}
	h := sha256.New()
	for _, m := range migrations {
		body, err := os.ReadFile(m)
		if err != nil {
			b.Fatal(err)
		}
		h.Write([]byte(m))
		h.Write(body)
	}
	schema := hex.EncodeToString(h.Sum(nil))
	sum := sha256.Sum256([]byte(benchVersion + schema))
	path := filepath.Join(os.TempDir(), fmt.Sprintf("tokenpay-bench-%s-%s.db", benchVersion, hex.EncodeToString(sum[:])[:12]))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	tmp := fmt.Sprintf("%s.building-%d", path, os.Getpid())
	if err := buildDigestFixture(ctx, tmp); err != nil {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(tmp + suffix)
		}
		b.Fatalf("build digest fixture: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	return path
}

func buildDigestFixture(ctx context.Context, path string) error {
	db, err := ledgertest.OpenFile(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	pol := policy.Default()
	now := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	db.SetNow(func() time.Time { return now })
	roles := []string{"engineer", "analyst", "consultant", "designer", "manager", "sales", "operations", "hr"}
	recs := make([]ledger.PersonRecord, benchPeople)
	for i := range recs {
		recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%06d@example.com", i), Name: fmt.Sprintf("Person %d", i),
			Team: fmt.Sprintf("Team %02d", i%25), Role: roles[i%len(roles)], SlackUserID: fmt.Sprintf("U%06d", i)}
		if i%10 != 0 {
			recs[i].ManagerEmail = fmt.Sprintf("p%06d@example.com", i-i%10)
		}
	}
	if _, err := db.ImportPeople(ctx, recs); err != nil {
		return err
	}
	now = time.Date(2026, 11, 1, 0, 5, 0, 0, time.UTC)
	if _, err := period.Reset(ctx, db, pol, now); err != nil {
		return err
	}
	lib := &prompts.Library{Store: db, Policy: pol, Now: db.Now, Log: zerolog.Nop()}
	if err := lib.Seed(ctx); err != nil {
		return err
	}
	people, err := db.People(ctx)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(3, 5))
	novStart := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	span := int64(benchAt.Sub(novStart))
	var batch []ledger.UsagePosting
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := db.PostUsage(ctx, batch)
		batch = batch[:0]
		return err
	}
	seq := 0
	now = benchAt.Add(-48 * time.Hour) // outcomes are logged before the digest
	for i, p := range people {
		events, size := 0, int64(0)
		switch i % 10 {
		case 0, 1: // nothing
		case 2:
			events, size = 1, 500
		case 8:
			events, size = 8, 40_000
		default:
			events, size = 5, 16_000
		}
		for range events {
			seq++
			at := novStart.Add(time.Duration(rng.Int64N(span))).Truncate(time.Millisecond)
			credits := size/2 + rng.Int64N(size)
			batch = append(batch, ledger.UsagePosting{Credits: credits, Event: ledger.UsageEvent{EventID: fmt.Sprintf("b-%07d", seq),
				Email: p.Email, Model: "m", InputTokens: credits, OccurredAt: at}})
		}
		if len(batch) >= 10_000 {
			if err := flush(); err != nil {
				return err
			}
		}
		if i%10 == 3 || i%10 == 4 {
			if _, err := db.LogImpact(ctx, p.ID, "a brief that saved a day", 120, ""); err != nil {
				return err
			}
		}
	}
	return flush()
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// resetPeakRSS restarts the kernel's peak-RSS count of this process (Linux), so that
// peakRSS measures one section; ok is false where that is not possible.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is the process's peak resident set since the last reset, in bytes (VmHWM).
func peakRSS() (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// BenchmarkWeeklyDigest100k runs the weekly-digest job (segments, tips, rendering and
// enqueueing 100,000 messages) on a fresh copy of the fixture per op. Baselines from the
// same op: a plain SELECT of everyone, and enqueueing 100,000 messages with empty payloads.
//
//	go test -run '^$' -bench WeeklyDigest100k -benchtime 1x -count 5 -timeout 30m ./nudges
func BenchmarkWeeklyDigest100k(b *testing.B) {
	fixture := digestFixture(b)
	b.ResetTimer()
	ctx := context.Background()
	pol := policy.Default()
	var segS, jobS, selectS, emptyS, peakMB float64
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "digest.db")
		if err := copyFile(path, fixture); err != nil {
			b.Fatal(err)
		}
		db, err := ledgertest.OpenFile(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		db.SetNow(func() time.Time { return benchAt })
		lib := &prompts.Library{Store: db, Policy: pol, Now: db.Now, Log: zerolog.Nop()}
		svc := &Service{Store: db, Policy: pol, Tips: lib, Log: zerolog.Nop()}

		t0 := time.Now()
		people, err := db.People(ctx)
		if err != nil || len(people) != benchPeople {
			b.Fatalf("people: %d %v", len(people), err)
		}
		selectS += time.Since(t0).Seconds()
		t0 = time.Now()
		snap, err := svc.Segments(ctx, benchAt)
		if err != nil {
			b.Fatal(err)
		}
		segS += time.Since(t0).Seconds()
		counts := snap.Counts()
		snap = nil

		measured := resetPeakRSS()
		b.StartTimer()
		t0 = time.Now()
		result, err := svc.Run(ctx, Run{Job: policy.JobWeeklyDigest, Key: PeriodKey(benchAt), Slot: benchAt, At: benchAt})
		jobS += time.Since(t0).Seconds()
		b.StopTimer()
		if err != nil || !strings.Contains(result, "queued 100000 digests") {
			b.Fatalf("digest: %q %v", result, err)
		}
		if peak, ok := peakRSS(); ok && measured {
			peakMB += float64(peak) / (1 << 20)
		}

		empty := make([]ledger.OutboxMessage, len(people))
		for i, p := range people {
			empty[i] = ledger.OutboxMessage{Kind: "baseline", PersonID: p.ID, PeriodKey: "b", Payload: []byte("{}"), NotBefore: benchAt}
		}
		t0 = time.Now()
		if _, err := db.Enqueue(ctx, empty); err != nil {
			b.Fatal(err)
		}
		emptyS += time.Since(t0).Seconds()
		db.Close()
		b.Logf("segments %v", counts)
	}
	n := float64(b.N)
	b.ReportMetric(jobS/n, "digest-s")
	b.ReportMetric(segS/n, "segments-s")
	b.ReportMetric(peakMB/n, "peak-MB")
	b.ReportMetric(selectS/n, "select-people-s")
	b.ReportMetric(emptyS/n, "empty-enqueue-s")
	b.ReportMetric(jobS/emptyS, "digest/empty")
}

// BenchmarkOutboxDrainRate drains 2,000 messages to 2,000 Slack DMs through a fake that
// answers at once, with the workspace limit at 12,000 a minute (200 a second), and
// reports the rate held from the first send to the last. The baseline drains the same
// messages with the limit out of the way: the drainer's own capacity.
//
//	go test -run '^$' -bench OutboxDrainRate -benchtime 1x -count 5 ./nudges
func BenchmarkOutboxDrainRate(b *testing.B) {
	const n, perMinute = 2000, 12_000
	ctx := context.Background()
	var rate, capacity float64
	for range b.N {
		b.StopTimer()
		drain := func(limit int) float64 {
			db := ledgertest.Open(b)
			defer db.Close()
			db.SetNow(func() time.Time { return benchAt })
			recs := make([]ledger.PersonRecord, n)
			for i := range recs {
				recs[i] = ledger.PersonRecord{Line: i + 2, Email: fmt.Sprintf("p%d@x.io", i), Name: "P", SlackUserID: fmt.Sprintf("U%d", i)}
			}
			if _, err := db.ImportPeople(ctx, recs); err != nil {
				b.Fatal(err)
			}
			people, _ := db.People(ctx)
			payload, _ := bot.MarshalReply(DigestReply(Member{Person: people[0], Expected: 1000}, nil, 7, "November"))
			msgs := make([]ledger.OutboxMessage, n)
			for i, p := range people {
				msgs[i] = ledger.OutboxMessage{Kind: "digest", PersonID: p.ID, PeriodKey: "w", Payload: payload, NotBefore: benchAt}
			}
			if _, err := db.Enqueue(ctx, msgs); err != nil {
				b.Fatal(err)
			}
			pol := policy.Default()
			pol.Outbox.SlackPerWorkspacePerMinute = limit
			chat := newFakeChat()
			// A fixed ceiling from the first message: the budget's slow start is not measured.
			perSecond := float64(limit) / 60
			d := &Drainer{Store: db, Policy: pol, Notifier: chat, Worker: NewWorker(db, zerolog.Nop()), Now: db.Now, Log: zerolog.Nop(),
				Budgets: map[string]*bot.Budget{"slack": bot.NewBudget(bot.BudgetConfig{Start: perSecond, Max: perSecond})}}
			b.StartTimer()
			rep, err := d.Drain(ctx)
			b.StopTimer()
			if err != nil || rep.Sent != n {
				b.Fatalf("drain: %+v %v", rep, err)
			}
			first, last := chat.times[0], chat.times[len(chat.times)-1]
			return float64(n-1) / last.Sub(first).Seconds()
		}
		rate += drain(perMinute)
		capacity += drain(1 << 30)
	}
	rate /= float64(b.N)
	b.ReportMetric(rate, "sent/s")
	b.ReportMetric(rate/(perMinute/60.0), "rate/configured")
	b.ReportMetric(capacity/float64(b.N), "unlimited-sent/s")
}
