package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Clock is a time of day in minutes after midnight, written "HH:MM".
type Clock int

// ParseClock reads "HH:MM" (24-hour; "8:00" is accepted too).
func ParseClock(s string) (Clock, error) {
	hh, mm, ok := strings.Cut(s, ":")
	h, errH := strconv.Atoi(hh)
	m, errM := strconv.Atoi(mm)
	if !ok || len(hh) < 1 || len(hh) > 2 || len(mm) != 2 || !allDigits(hh) || !allDigits(mm) ||
		errH != nil || errM != nil || h > 23 || m > 59 {
		return 0, fmt.Errorf("want a time of day HH:MM between 00:00 and 23:59, got %q", s)
	}
	return Clock(h*60 + m), nil
}

func (c Clock) String() string {
	return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60)
}

// MarshalYAML writes the clock as "HH:MM".
func (c Clock) MarshalYAML() (any, error) {
	return c.String(), nil
}

// UnmarshalYAML reads "HH:MM".
func (c *Clock) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a time of day HH:MM, got %s", describe(n))
	}
	v, err := ParseClock(n.Value)
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// QuietHours is a daily window, on a person's own wall clock, when nudges
// are held. Start is inside the window and End is not; a window whose End is
// before its Start crosses midnight (19:00–08:00). Start equal to End means no
// quiet hours at all.
type QuietHours struct {
	Start Clock `yaml:"start"`
	End   Clock `yaml:"end"`
}

// Contains reports whether t falls in the window on the wall clock of loc
// (nil means UTC).
func (q QuietHours) Contains(t time.Time, loc *time.Location) bool {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	now := Clock(lt.Hour()*60 + lt.Minute())
	switch {
	case q.Start == q.End:
		return false
	case q.Start < q.End:
		return now >= q.Start && now < q.End
	default:
		return now >= q.Start || now < q.End
	}
}

// NextEnd returns when a message held at t may go: t itself outside the
// window, else the next time the wall clock of loc (nil means UTC) reaches
// End. When a DST jump skips End, that is the moment of the jump.
func (q QuietHours) NextEnd(t time.Time, loc *time.Location) time.Time {
	if !q.Contains(t, loc) {
		return t
	}
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	y, m, d := lt.Date()
	// Inside the hour that repeats when clocks fall back, End may come again
	// at the current offset, before the next day's.
	_, offset := lt.Zone()
	want := time.Date(y, m, d, int(q.End)/60, int(q.End)%60, 0, 0, time.UTC)
	if u := want.Add(-time.Duration(offset) * time.Second).In(loc); u.After(t) && wallClock(u).Equal(want) {
		return u
	}
	if end := wallInstant(y, m, d, q.End, loc); end.After(t) {
		return end
	}
	return wallInstant(y, m, d+1, q.End, loc)
}

// wallClock returns the date and time t shows in its location, as a UTC time,
// so that wall clocks can be compared across offsets.
func wallClock(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

// wallInstant returns the first instant at which the wall clock of loc shows
// the given day (which may be out of range, as with time.Date) and time of
// day; if a DST jump skips that time, the instant of the jump.
func wallInstant(y int, m time.Month, d int, c Clock, loc *time.Location) time.Time {
	return WallInstant(time.Date(y, m, d, int(c)/60, int(c)%60, 0, 0, time.UTC), loc)
}

// WallInstant returns the first instant at which the wall clock of loc shows the date and
// time that wall shows (read as a wall clock: its own zone is ignored); when a DST jump
// skips that time, the instant of the jump. Schedules use it to fire once on the days
// clocks change.
//
// time.Date alone does not do: in a skipped hour it may return a time before the jump,
// and in a repeated hour it may return the second occurrence.
func WallInstant(wall time.Time, loc *time.Location) time.Time {
	want := wallClock(wall)
	y, m, d := wall.Date()
	t := time.Date(y, m, d, wall.Hour(), wall.Minute(), wall.Second(), wall.Nanosecond(), loc)
	if wallClock(t).Equal(want) {
		// The same wall time may also have occurred under the previous zone's offset,
		// just before the clocks went back.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			_, offset := start.Add(-time.Nanosecond).Zone()
			if u := want.Add(-time.Duration(offset) * time.Second).In(loc); u.Before(start) && wallClock(u).Equal(want) {
				return u
			}
		}
		return t
	}
	// The wall time was skipped: the jump bounds the zone t landed in.
	start, end := t.ZoneBounds()
	if wallClock(t).Before(want) {
		return end
	}
	return start
}
