package nudges

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestWorkerGone: a claim's owner is gone when its process exited here (same machine and
// pid namespace) or when it has been silent for StaleAfter; a worker on another machine
// or in another container is judged by its heartbeat alone, even when its host has the
// same name and its pid does not exist here.
func TestWorkerGone(t *testing.T) {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	w := NewWorker(nil, zerolog.Nop())
	w.Wall = func() time.Time { return now }
	parts := strings.Split(w.Owner, "/")
	if len(parts) != 4 || parts[1] != fmt.Sprint(os.Getpid()) || parts[2] == "" || len(parts[3]) != 8 {
		t.Fatalf("worker name %q, want host/pid/space/random", w.Owner)
	}
	host, space := parts[0], parts[2]
	const deadPID = 1 << 30
	fresh, silent := now.Add(-time.Second), now.Add(-StaleAfter-time.Second)
	for _, c := range []struct {
		name      string
		owner     string
		heartbeat time.Time
		stale     time.Duration
		gone      bool
	}{
		{"itself, however silent", w.Owner, silent, 0, false},
		{"exited here", fmt.Sprintf("%s/%d/%s/x", host, deadPID, space), fresh, 0, true},
		{"running here", fmt.Sprintf("%s/%d/%s/x", host, os.Getpid(), space), fresh, 0, false},
		{"same host name, other pid namespace, beating", fmt.Sprintf("%s/%d/other/x", host, deadPID), fresh, 0, false},
		{"same host name, other pid namespace, silent", fmt.Sprintf("%s/%d/other/x", host, deadPID), silent, 0, true},
		{"older name without a space, beating", fmt.Sprintf("%s/%d/x", host, deadPID), fresh, 0, false},
		{"other host, beating", "elsewhere/1/ab/x", fresh, 0, false},
		{"other host, silent", "elsewhere/1/ab/x", silent, 0, true},
		{"never beat", "elsewhere/1/ab/x", time.Time{}, 0, true},
		{"silent past a shorter StaleAfter", "elsewhere/1/ab/x", now.Add(-3 * time.Second), 2 * time.Second, true},
		{"within a shorter StaleAfter", "elsewhere/1/ab/x", now.Add(-time.Second), 2 * time.Second, false},
	} {
		w.StaleAfter = c.stale
		if got := w.Gone(c.owner, c.heartbeat); got != c.gone {
			t.Errorf("%s (%s): gone %v, want %v", c.name, c.owner, got, c.gone)
		}
	}
}
