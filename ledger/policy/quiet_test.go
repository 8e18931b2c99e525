package policy

import (
	"testing"
	"time"
)

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		want Clock
		ok   bool
	}{
		{"00:00", 0, true},
		{"08:00", 480, true},
		{"8:00", 480, true},
		{"19:30", 1170, true},
		{"23:59", 1439, true},
		{"24:00", 0, false},
		{"12:60", 0, false},
		{"8", 0, false},
		{"08:0", 0, false},
		{"08:00:00", 0, false},
		{"+8:00", 0, false},
		{"-1:00", 0, false},
		{" 8:00", 0, false},
		{"008:00", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseClock(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseClock(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in && "0"+tt.in != got.String() {
			t.Errorf("Clock(%d).String() = %q, want %q", got, got.String(), tt.in)
		}
	}
}

func TestQuietHoursContains(t *testing.T) {
	night := QuietHours{Start: 19 * 60, End: 8 * 60}
	lunch := QuietHours{Start: 12 * 60, End: 14 * 60}
	off := QuietHours{Start: 9 * 60, End: 9 * 60}
	paris, newYork := zone(t, "Europe/Paris"), zone(t, "America/New_York")
	tests := []struct {
		name string
		q    QuietHours
		at   string
		loc  *time.Location
		want bool
	}{
		{"evening before", night, "2026-06-01T18:59:59Z", time.UTC, false},
		{"start is quiet", night, "2026-06-01T19:00:00Z", time.UTC, true},
		{"before midnight", night, "2026-06-01T23:59:00Z", time.UTC, true},
		{"midnight", night, "2026-06-02T00:00:00Z", time.UTC, true},
		{"early morning", night, "2026-06-02T07:59:59Z", time.UTC, true},
		{"end is not quiet", night, "2026-06-02T08:00:00Z", time.UTC, false},
		{"noon", night, "2026-06-02T12:00:00Z", time.UTC, false},
		{"nil means UTC", night, "2026-06-02T07:00:00Z", nil, true},
		{"own zone: 19:30 in Paris", night, "2026-06-01T17:30:00Z", paris, true},
		{"own zone: 13:30 in New York", night, "2026-06-01T17:30:00Z", newYork, false},
		{"daytime window", lunch, "2026-06-01T12:00:00Z", time.UTC, true},
		{"daytime window end", lunch, "2026-06-01T14:00:00Z", time.UTC, false},
		{"daytime window before", lunch, "2026-06-01T11:59:00Z", time.UTC, false},
		{"start equals end is off", off, "2026-06-01T09:00:00Z", time.UTC, false},
		// New York skips 02:00-03:00 on 2026-03-08 and repeats 01:00-02:00 on 2026-11-01.
		{"wall clock after the spring jump", QuietHours{Start: 3 * 60, End: 4 * 60}, "2026-03-08T07:00:00Z", newYork, true},
		{"repeated hour, first pass", QuietHours{Start: 60, End: 90}, "2026-11-01T05:15:00Z", newYork, true},
		{"repeated hour, second pass", QuietHours{Start: 60, End: 90}, "2026-11-01T06:15:00Z", newYork, true},
	}
	for _, tt := range tests {
		if got := tt.q.Contains(utc(tt.at), tt.loc); got != tt.want {
			t.Errorf("%s: Contains(%s) = %v, want %v", tt.name, tt.at, got, tt.want)
		}
	}
}

func TestQuietHoursNextEnd(t *testing.T) {
	night := QuietHours{Start: 19 * 60, End: 8 * 60}
	paris, newYork := zone(t, "Europe/Paris"), zone(t, "America/New_York")
	tests := []struct {
		name string
		q    QuietHours
		at   string
		loc  *time.Location
		want string
	}{
		{"outside: now", night, "2026-06-01T12:00:00+02:00", paris, "2026-06-01T12:00:00+02:00"},
		{"evening: tomorrow morning", night, "2026-06-01T22:00:00+02:00", paris, "2026-06-02T08:00:00+02:00"},
		{"night: this morning", night, "2026-06-02T06:00:00+02:00", paris, "2026-06-02T08:00:00+02:00"},
		{"last day of the month", night, "2026-06-30T23:00:00+02:00", paris, "2026-07-01T08:00:00+02:00"},
		{"nil means UTC", night, "2026-06-30T23:00:00Z", nil, "2026-07-01T08:00:00Z"},
		{"spring jump overnight", night, "2026-03-28T23:00:00+01:00", paris, "2026-03-29T08:00:00+02:00"},
		{"autumn jump overnight", night, "2026-10-24T22:00:00+02:00", paris, "2026-10-25T08:00:00+01:00"},
		{"end skipped by the jump", QuietHours{Start: 0, End: 150}, "2026-03-08T01:30:00-05:00", newYork, "2026-03-08T03:00:00-04:00"},
		{"end repeated, first pass", QuietHours{Start: 0, End: 90}, "2026-11-01T00:45:00-04:00", newYork, "2026-11-01T01:30:00-04:00"},
		{"end repeated, second pass", QuietHours{Start: 0, End: 90}, "2026-11-01T01:15:00-05:00", newYork, "2026-11-01T01:30:00-05:00"},
	}
	for _, tt := range tests {
		at := utc(tt.at)
		got := tt.q.NextEnd(at, tt.loc)
		if !got.Equal(utc(tt.want)) {
			t.Errorf("%s: NextEnd(%s) = %v, want %s", tt.name, tt.at, got, tt.want)
		}
		if got.Before(at) || tt.q.Contains(got, tt.loc) {
			t.Errorf("%s: NextEnd(%s) = %v is before it or still quiet", tt.name, tt.at, got)
		}
	}
}

// TestNextEndAcrossYear checks, every 10 minutes of a year with two DST
// changes, that a held message goes at the first instant the window is over.
func TestNextEndAcrossYear(t *testing.T) {
	for _, name := range []string{"Europe/Paris", "America/New_York", "Australia/Lord_Howe"} {
		loc := zone(t, name)
		for _, q := range []QuietHours{{19 * 60, 8 * 60}, {60, 150}, {150, 60}} {
			for at := utc("2026-01-01T00:00:00Z"); at.Year() < 2027; at = at.Add(10 * time.Minute) {
				end := q.NextEnd(at, loc)
				if end.Before(at) || q.Contains(end, loc) {
					t.Fatalf("%s %v: NextEnd(%v) = %v is before it or still quiet", name, q, at, end)
				}
				// A minute before the end, the window held (the minute-wise
				// clock makes this exact).
				if end.After(at) && !q.Contains(end.Add(-time.Minute), loc) && end.Sub(at) > time.Minute {
					t.Fatalf("%s %v: NextEnd(%v) = %v, but %v was already outside", name, q, at, end, end.Add(-time.Minute))
				}
			}
		}
	}
}
