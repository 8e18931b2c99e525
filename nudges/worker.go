package nudges

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
)

// Heartbeat timing: a worker beats every HeartbeatEvery; one silent for StaleAfter is gone.
const (
	HeartbeatEvery = 5 * time.Second
	StaleAfter     = 30 * time.Second
)

// Worker is this process as the owner of job runs and messages in flight. Its name holds
// the host and pid: processes sharing a SQLite file in WAL mode share a host, so a claim
// whose process has exited is taken over at once, not after StaleAfter (a killed
// process's message in flight is resent by the next start).
type Worker struct {
	Owner string
	Store ledger.Store
	Log   zerolog.Logger
	// Wall is the real clock; heartbeats never follow TOKENPAY_NOW.
	Wall func() time.Time

	host string
}

// NewWorker names this process.
func NewWorker(store ledger.Store, log zerolog.Logger) *Worker {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	host = strings.ReplaceAll(host, "/", "_")
	return &Worker{Owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), rand.Text()[:8]), Store: store, Log: log, Wall: time.Now, host: host}
}

// Beat records that the worker is alive.
func (w *Worker) Beat(ctx context.Context) error { return w.Store.Heartbeat(ctx, w.Owner, w.Wall()) }

// Run beats until ctx ends, then removes the worker (and workers long silent).
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := w.Store.RemoveWorker(context.WithoutCancel(ctx), w.Owner, w.Wall().Add(-24*time.Hour)); err != nil {
				w.Log.Warn().Err(err).Msg("remove worker")
			}
			return
		case <-t.C:
			if err := w.Beat(ctx); err != nil && ctx.Err() == nil {
				w.Log.Warn().Err(err).Msg("heartbeat failed")
			}
		}
	}
}

// Gone reports whether the worker named owner, last heard at heartbeat, is gone: its
// process has exited (same host), or it has been silent for StaleAfter.
func (w *Worker) Gone(owner string, heartbeat time.Time) bool {
	if owner == w.Owner {
		return false
	}
	parts := strings.SplitN(owner, "/", 3)
	if len(parts) == 3 && parts[0] == w.host {
		if pid, err := strconv.Atoi(parts[1]); err == nil && !processAlive(pid) {
			return true
		}
	}
	return heartbeat.IsZero() || w.Wall().Sub(heartbeat) > StaleAfter
}

// processAlive reports whether a process exists; where that cannot be told (Windows), it
// says yes and the heartbeat decides.
func processAlive(pid int) bool {
	if runtime.GOOS == "windows" || pid <= 0 {
		return true
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, syscall.EPERM)
}
