package nudges

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A custom schedule at 02:30 (and 01:30 for New York's repeated hour) on the days clocks
// change: a slot in the skipped hour runs once, right after the jump; a slot in the
// repeated hour runs once, the first time; Next (what `jobs list` shows) and Slot agree.
func TestScheduleAcrossDSTChanges(t *testing.T) {
	tests := []struct {
		name string
		zone string
		expr string
		day  [3]int // the day clocks change
		want []string
	}{
		// Paris springs forward on 29 March 2026 at 02:00 -> 03:00.
		{"Paris spring forward", "Europe/Paris", "30 2 * * *", [3]int{2026, 3, 29},
			[]string{"2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"}},
		// Paris falls back on 25 October 2026 at 03:00 -> 02:00: 02:30 comes twice.
		{"Paris fall back", "Europe/Paris", "30 2 * * *", [3]int{2026, 10, 25},
			[]string{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"}},
		// New York springs forward on 8 March 2026 at 02:00 -> 03:00.
		{"New York spring forward", "America/New_York", "30 2 * * *", [3]int{2026, 3, 8},
			[]string{"2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"}},
		// New York falls back on 1 November 2026 at 02:00 -> 01:00: 02:30 comes once...
		{"New York fall back", "America/New_York", "30 2 * * *", [3]int{2026, 11, 1},
			[]string{"2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"}},
		// ... and 01:30 twice, run once.
		{"New York fall back, repeated hour", "America/New_York", "30 1 * * *", [3]int{2026, 11, 1},
			[]string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"}},
		// Every half hour: the skipped hour's slots are the jump, once.
		{"Paris spring forward, every 30 minutes", "Europe/Paris", "*/30 1-3 * * *", [3]int{2026, 3, 29},
			[]string{"2026-03-29T00:00:00Z", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := mustZone(t, tt.zone)
			pol := policy.Default()
			pol.Org.TimeZone = tt.zone
			pol.Schedules.PeriodReset = tt.expr
			s := &Scheduler{Policy: pol}
			from := time.Date(tt.day[0], time.Month(tt.day[1]), tt.day[2]-1, 0, 0, 0, 0, loc)
			if tt.expr[0] == '*' { // frequent: from the start of the day itself
				from = from.AddDate(0, 0, 1)
			}
			var got []string
			at := from
			for range tt.want {
				next, err := s.Next(policy.JobPeriodReset, at)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, next.UTC().Format(time.RFC3339))
				// The slot of any instant up to the next run is the previous run.
				if slot, ok, err := s.Slot(policy.JobPeriodReset, next.Add(-time.Second)); err != nil || (ok && !slot.Before(next)) {
					t.Errorf("slot before %s: %s %v %v", next, slot, ok, err)
				}
				if slot, ok, err := s.Slot(policy.JobPeriodReset, next); err != nil || !ok || !slot.Equal(next) {
					t.Errorf("slot at %s: %s %v %v", next, slot, ok, err)
				}
				at = next
			}
			for i := range tt.want {
				if i >= len(got) || got[i] != tt.want[i] {
					t.Fatalf("runs %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// The scheduler ticking every five minutes through both DST days in Paris runs a 02:30
// job once a day: on the spring day at 03:00 CEST, on the autumn day at 02:30 CEST only.
func TestTickRunsOnceOnDSTDays(t *testing.T) {
	paris := mustZone(t, "Europe/Paris")
	pol := policy.Default()
	pol.Org.TimeZone = "Europe/Paris"
	pol.Schedules.PeriodReset = "30 2 * * *"
	for _, day := range []time.Time{time.Date(2026, 3, 29, 0, 0, 0, 0, paris), time.Date(2026, 10, 25, 0, 0, 0, 0, paris)} {
		db := openAt(t, filepath.Join(t.TempDir(), "t.db"))
		clk := &clock{t: day}
		jobs := newCounter()
		s := newScheduler(db, pol, clk, jobs.Run, zerolog.Nop())
		for at := day; at.Before(day.Add(24 * time.Hour)); at = at.Add(5 * time.Minute) {
			clk.Set(at)
			if err := s.Tick(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		// The first tick catches up the day before's slot; the day's own slot runs once.
		before := PeriodKey(day.Add(-24 * time.Hour).Add(150 * time.Minute))
		want := map[time.Month]string{time.March: "2026-03-29T01:00Z", time.October: "2026-10-25T00:30Z"}[day.Month()]
		got := map[string]int{}
		for key, n := range jobs.runs {
			if job, slot, _ := strings.Cut(key, " "); job == policy.JobPeriodReset {
				got[slot] = n
			}
		}
		if len(got) != 2 || got[before] != 1 || got[want] != 1 {
			t.Errorf("%s: period-reset ran %v, want %s (catch-up) and %s once each", day.Format("2 Jan"), got, before, want)
		}
	}
}
