package nudges

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
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

// Heartbeat timing by default: a worker beats every HeartbeatEvery; one silent for
// StaleAfter is gone (Worker.StaleAfter changes both).
const (
	HeartbeatEvery = 5 * time.Second
	StaleAfter     = 30 * time.Second
)

// Worker is this process as the owner of job runs and messages in flight. Its name,
// "host/pid/space/random", is unique across machines (the random part) and says where its
// pid means something: space identifies the kernel boot and pid namespace (Linux), so a
// claim whose process has exited on this machine, in this container, is taken over at
// once, not after StaleAfter (processes sharing a SQLite file in WAL mode share a host;
// a killed process's message in flight is resent by the next start). A worker elsewhere,
// even on a host of the same name (cloned machines, containers given one hostname), is
// judged by its heartbeat alone: its pid is not ours to look up.
type Worker struct {
	Owner string
	Store ledger.Store
	Log   zerolog.Logger
	// Wall is the real clock; heartbeats never follow TOKENPAY_NOW.
	Wall func() time.Time
	// StaleAfter is how long another worker may be silent before it is gone and its job
	// runs and messages in flight are taken over (default StaleAfter). This worker beats
	// every sixth of it. Every process on one database should use the same value.
	StaleAfter time.Duration

	host  string
	space string
}

// NewWorker names this process.
func NewWorker(store ledger.Store, log zerolog.Logger) *Worker {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	host = strings.ReplaceAll(host, "/", "_")
	space := pidSpace()
	return &Worker{Owner: fmt.Sprintf("%s/%d/%s/%s", host, os.Getpid(), space, rand.Text()[:8]), Store: store, Log: log, Wall: time.Now,
		host: host, space: space}
}

// pidSpace names the space this process's pid is valid in: a short hash of the kernel's
// boot id and the pid namespace (Linux); "-" where neither can be read (the host name
// then stands for the machine, as it did before).
func pidSpace() string {
	boot, err1 := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, err2 := os.Readlink("/proc/self/ns/pid")
	if err1 != nil || err2 != nil {
		return "-"
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(string(boot)) + "|" + ns))
	return hex.EncodeToString(sum[:4])
}

func (w *Worker) staleAfter() time.Duration {
	if w.StaleAfter > 0 {
		return w.StaleAfter
	}
	return StaleAfter
}

// Beat records that the worker is alive.
func (w *Worker) Beat(ctx context.Context) error { return w.Store.Heartbeat(ctx, w.Owner, w.Wall()) }

// Run beats until ctx ends, then removes the worker (and workers long silent).
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(max(w.staleAfter()/6, 10*time.Millisecond))
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
// process has exited (same machine and pid namespace), or it has been silent for
// StaleAfter.
func (w *Worker) Gone(owner string, heartbeat time.Time) bool {
	if owner == w.Owner {
		return false
	}
	// Names from before the pid space was part of them ("host/pid/random") have 3 parts:
	// their heartbeat decides.
	parts := strings.Split(owner, "/")
	if len(parts) == 4 && parts[0] == w.host && parts[2] == w.space {
		if pid, err := strconv.Atoi(parts[1]); err == nil && !processAlive(pid) {
			return true
		}
	}
	return heartbeat.IsZero() || w.Wall().Sub(heartbeat) > w.staleAfter()
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
