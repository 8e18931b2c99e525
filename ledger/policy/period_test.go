package policy

import (
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestPeriods(t *testing.T) {
	tests := []struct {
		name, zone, period string
		at                 string // RFC3339
		start, end         string // RFC3339, UTC
		key                string
	}{
		{"monthly UTC", "UTC", PeriodMonthly, "2026-11-15T12:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11"},
		{"monthly first instant", "UTC", PeriodMonthly, "2026-11-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11"},
		{"monthly last instant", "UTC", PeriodMonthly, "2026-11-30T23:59:59.999Z", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z", "2026-11"},
		{"monthly year end", "UTC", PeriodMonthly, "2026-12-31T23:00:00Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z", "2026-12"},
		{"monthly leap February", "UTC", PeriodMonthly, "2028-02-29T12:00:00Z", "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z", "2028-02"},

		// Paris: clocks go forward on 2026-03-29 and back on 2026-10-25.
		{"Paris March, month of the jump", "Europe/Paris", PeriodMonthly, "2026-03-31T12:00:00+02:00", "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z", "2026-03"},
		{"Paris April starts in CEST", "Europe/Paris", PeriodMonthly, "2026-03-31T22:30:00Z", "2026-03-31T22:00:00Z", "2026-04-30T22:00:00Z", "2026-04"},
		{"Paris October", "Europe/Paris", PeriodMonthly, "2026-10-25T02:30:00+01:00", "2026-09-30T22:00:00Z", "2026-10-31T23:00:00Z", "2026-10"},
		{"Paris November is already UTC+1", "Europe/Paris", PeriodMonthly, "2026-10-31T23:30:00Z", "2026-10-31T23:00:00Z", "2026-11-30T23:00:00Z", "2026-11"},
		{"Paris week of the spring jump is 167h", "Europe/Paris", PeriodWeekly, "2026-03-29T12:00:00+02:00", "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z", "2026-W13"},
		{"Paris week of the autumn jump is 169h", "Europe/Paris", PeriodWeekly, "2026-10-25T02:30:00+02:00", "2026-10-18T22:00:00Z", "2026-10-25T23:00:00Z", "2026-W43"},

		// New York: forward on 2026-03-08, back on 2026-11-01 at 02:00.
		{"New York week of the spring jump", "America/New_York", PeriodWeekly, "2026-03-08T12:00:00-04:00", "2026-03-02T05:00:00Z", "2026-03-09T04:00:00Z", "2026-W10"},
		{"New York November, in the repeated hour", "America/New_York", PeriodMonthly, "2026-11-01T01:30:00-05:00", "2026-11-01T04:00:00Z", "2026-12-01T05:00:00Z", "2026-11"},
		{"New York October's last minute", "America/New_York", PeriodMonthly, "2026-11-01T03:59:00Z", "2026-10-01T04:00:00Z", "2026-11-01T04:00:00Z", "2026-10"},
		{"New York Monday before UTC's", "America/New_York", PeriodWeekly, "2026-11-23T02:00:00Z", "2026-11-16T05:00:00Z", "2026-11-23T05:00:00Z", "2026-W47"},

		// ISO weeks across years.
		{"week 48", "UTC", PeriodWeekly, "2026-11-26T10:00:00Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z", "2026-W48"},
		{"Monday is the first day", "UTC", PeriodWeekly, "2026-11-30T00:00:00Z", "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z", "2026-W49"},
		{"Sunday is the last day", "UTC", PeriodWeekly, "2026-11-29T23:59:59Z", "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z", "2026-W48"},
		{"week 53", "UTC", PeriodWeekly, "2027-01-01T12:00:00Z", "2026-12-28T00:00:00Z", "2027-01-04T00:00:00Z", "2026-W53"},
		{"week 1 starts in December", "UTC", PeriodWeekly, "2025-12-31T12:00:00Z", "2025-12-29T00:00:00Z", "2026-01-05T00:00:00Z", "2026-W01"},

		// Midnight skipped (the period starts at the jump) or repeated (at
		// its first occurrence), where time.Date alone gets it wrong.
		{"Asuncion skips midnight on the 1st", "America/Asuncion", PeriodMonthly, "2017-10-15T12:00:00Z", "2017-10-01T04:00:00Z", "2017-11-01T03:00:00Z", "2017-10"},
		{"Asuncion month before the skip", "America/Asuncion", PeriodMonthly, "2017-09-30T23:59:00-04:00", "2017-09-01T04:00:00Z", "2017-10-01T04:00:00Z", "2017-09"},
		{"Tehran skips Monday midnight", "Asia/Tehran", PeriodWeekly, "2021-03-24T12:00:00Z", "2021-03-21T20:30:00Z", "2021-03-28T19:30:00Z", "2021-W12"},
		{"Gaza repeats midnight on the 1st", "Asia/Gaza", PeriodMonthly, "2004-10-10T12:00:00Z", "2004-09-30T21:00:00Z", "2004-10-31T22:00:00Z", "2004-10"},
		{"Jerusalem repeats Monday midnight", "Asia/Jerusalem", PeriodWeekly, "2002-10-07T00:30:00+02:00", "2002-10-06T21:00:00Z", "2002-10-13T22:00:00Z", "2002-W41"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Default()
			p.Org.TimeZone = tt.zone
			p.Period = tt.period
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			at := utc(tt.at)
			start, end := p.PeriodStart(at), p.PeriodEnd(at)
			if !start.Equal(utc(tt.start)) {
				t.Errorf("PeriodStart = %v (%v), want %s", start, start.UTC(), tt.start)
			}
			if !end.Equal(utc(tt.end)) {
				t.Errorf("PeriodEnd = %v (%v), want %s", end, end.UTC(), tt.end)
			}
			if got := p.PeriodKey(at); got != tt.key {
				t.Errorf("PeriodKey = %q, want %q", got, tt.key)
			}
			if start.Location() != p.Location() {
				t.Errorf("PeriodStart is in %v, want the org zone", start.Location())
			}
		})
	}
}

// TestPeriodsTileTime walks every hour of two years in zones with unusual
// transitions: periods must follow one another with no gap or overlap.
func TestPeriodsTileTime(t *testing.T) {
	zones := []string{"UTC", "Europe/Paris", "America/New_York", "America/Asuncion", "Asia/Tehran", "Australia/Lord_Howe", "Asia/Kolkata"}
	for _, zone := range zones {
		for _, period := range []string{PeriodMonthly, PeriodWeekly} {
			p := Default()
			p.Org.TimeZone, p.Period = zone, period
			from := time.Date(2020, 12, 20, 0, 0, 0, 0, time.UTC)
			prevEnd, prevKey := p.PeriodStart(from), ""
			for at := from; at.Year() < 2023; at = at.Add(time.Hour) {
				start, end, key := p.PeriodStart(at), p.PeriodEnd(at), p.PeriodKey(at)
				if at.Before(start) || !at.Before(end) {
					t.Fatalf("%s %s: %v not in [%v, %v)", zone, period, at, start, end)
				}
				if key != prevKey {
					if !start.Equal(prevEnd) {
						t.Fatalf("%s %s: period %s starts at %v, previous ended at %v", zone, period, key, start, prevEnd)
					}
					prevKey, prevEnd = key, end
				}
			}
		}
	}
}
