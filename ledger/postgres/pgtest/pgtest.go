// Package pgtest starts a throwaway PostgreSQL cluster for tests and hands out fresh,
// empty databases on it.
//
// The cluster is created once per test binary, on first use: initdb in a temporary
// directory, then postgres listening on a free TCP port of 127.0.0.1 (and on a Unix socket
// inside that directory), trust authentication, user "postgres". PostgreSQL refuses to run
// as root, so when the tests run as root (CI, containers) initdb and postgres run as the
// user nobody, and the directory is handed to nobody.
//
// Nothing outlives the test binary:
//   - Main (for TestMain) stops the cluster and removes its directory when the tests end;
//   - postgres is started with a parent-death signal (Linux PR_SET_PDEATHSIG, SIGQUIT:
//     PostgreSQL's immediate shutdown), so a test binary that exits without Main, panics
//     or is killed takes its postgres with it;
//   - the directory of a cluster whose test binary died is removed by the next Start of
//     any test binary (each directory records the pid of the process that made it).
//
// The binaries are looked up on PATH, then in /usr/lib/postgresql/*/bin (the highest
// version). Without them Start skips the test with a sentence saying how to install
// PostgreSQL, and fails it instead when CI=true.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// dirPrefix names the cluster directories in os.TempDir(), so stale ones can be found.
const dirPrefix = "tokenpay-pgtest-"

// Start returns the DSN (a postgres:// URL) of a new, empty database on the test cluster,
// which it starts on first use. The cluster trades durability for speed (fsync,
// synchronous_commit and full_page_writes off): for tests only. The database is dropped
// when the test ends.
func Start(tb testing.TB) string {
	tb.Helper()
	return fast.database(tb)
}

// StartDurable is Start on a second cluster that keeps PostgreSQL's default durability
// settings (fsync, synchronous_commit and full_page_writes on), for benchmarks whose
// figures are compared with a durable SQLite.
func StartDurable(tb testing.TB) string {
	tb.Helper()
	return durable.database(tb)
}

// Main runs the tests and then stops the clusters and removes their directories; call it
// from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop shuts the clusters down (fast shutdown, then SIGKILL after 10 s) and removes their
// directories. Start after Stop fails the test.
func Stop() {
	fast.stop()
	durable.stop()
}

var (
	fast    = &cluster{name: "fast", settings: []string{"fsync=off", "synchronous_commit=off", "full_page_writes=off"}}
	durable = &cluster{name: "durable"}
)

type cluster struct {
	name     string
	settings []string // -c name=value beyond the common ones

	once    sync.Once
	err     error
	missing bool // the binaries are not installed
	dir     string
	port    int
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped atomic.Bool
	dbs     atomic.Int64
}

func (c *cluster) database(tb testing.TB) string {
	tb.Helper()
	if err := c.ensure(); err != nil {
		if c.missing && os.Getenv("CI") != "true" {
			tb.Skip(err.Error())
		}
		tb.Fatal(err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := c.create(ctx)
	if err != nil {
		tb.Fatal(err.Error())
	}
	tb.Cleanup(func() {
		if c.stopped.Load() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends the connections a pool the test forgot to close still holds.
		if err := c.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	return c.dsn(name)
}

// ensure starts the cluster once; every later call returns the first one's error.
func (c *cluster) ensure() error {
	c.once.Do(func() { c.err = c.start() })
	if c.err != nil {
		return c.err
	}
	if c.stopped.Load() {
		return errors.New("pgtest: the PostgreSQL test cluster was already stopped")
	}
	return nil
}

// create makes the next database t_<n> and returns its name.
func (c *cluster) create(ctx context.Context) (string, error) {
	name := fmt.Sprintf("t_%d", c.dbs.Add(1))
	if err := c.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return name, nil
}

func (c *cluster) dsn(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// admin runs one statement on the cluster's postgres database.
func (c *cluster) admin(ctx context.Context, stmt string) error {
	conn, err := pgx.Connect(ctx, c.dsn("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, stmt)
	return err
}

// binaries finds initdb and postgres: on PATH, then in the highest-versioned
// /usr/lib/postgresql/*/bin (Debian's layout, which is not on PATH).
func binaries() (initdb, postgres string, err error) {
	if i, err := exec.LookPath("initdb"); err == nil {
		if p, err := exec.LookPath("postgres"); err == nil {
			return i, p, nil
		}
	}
	dirs, _ := filepath.Glob(debianBins)
	sort.Slice(dirs, func(a, b int) bool { return version(dirs[a]) > version(dirs[b]) })
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExec(i) && isExec(p) {
			return i, p, nil
		}
	}
	return "", "", fmt.Errorf("these tests need PostgreSQL (initdb and postgres, looked for on PATH and in %s); "+
		"install it with `apt-get install postgresql` (Debian, Ubuntu), or run `bash .ci/run`, which installs it", debianBins)
}

// debianBins is where Debian's postgresql packages put their binaries.
var debianBins = "/usr/lib/postgresql/*/bin"

// version reads 15 from /usr/lib/postgresql/15/bin (0 when it is not a number).
func version(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runAs is the user initdb and postgres run as: nil (this process's) unless it is root,
// which PostgreSQL refuses; then nobody.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses root, but there is no user nobody to run it as: %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: user nobody: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func (c *cluster) start() error {
	initdb, postgres, err := binaries()
	if err != nil {
		c.missing = true
		return err
	}
	removeStale()
	cred, err := runAs()
	if err != nil {
		return err
	}
	if c.dir, err = os.MkdirTemp(baseDir(), dirPrefix+c.name+"-"); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if cred != nil {
		if err := os.Chown(c.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: hand %s to nobody: %w", c.dir, err)
		}
	}
	data := filepath.Join(c.dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb in %s: %v\n%s", data, err, out)
	}
	// A free port can be taken by another process before postgres binds it: try a few.
	for attempt := 0; ; attempt++ {
		err = c.run(postgres, data, cred)
		if err == nil || attempt == 4 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "in use") {
			return err
		}
	}
}

// run starts postgres on a free port and waits until it accepts connections.
func (c *cluster) run(postgres, data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return fmt.Errorf("pgtest: free port: %w", err)
	}
	c.port = port
	logPath := filepath.Join(c.dir, "postgres.log")
	log, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer log.Close()
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
		"-c", "max_connections=300",
		"-c", "shared_buffers=32MB",
		// /dev/shm is small in many containers.
		"-c", "dynamic_shared_memory_type=mmap",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
	}
	for _, s := range c.settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(postgres, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	// SIGQUIT when this process dies: postgres's immediate shutdown, which also ends its
	// backends. The signal is tied to the thread that forks (and is set after the switch to
	// nobody, so the switch does not clear it), hence the locked thread below, which lives
	// as long as postgres does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
		// The goroutine ends locked, so its thread ends too: nothing else inherits it.
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	c.cmd, c.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, c.dsn("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres exited at start: %s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.kill()
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("pgtest: postgres did not accept connections within 60 s: %v\n%s", err, out)
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	// SIGINT is PostgreSQL's fast shutdown: it ends the sessions and stops cleanly.
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.exited:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

func (c *cluster) stop() {
	if c.stopped.Swap(true) {
		return
	}
	c.once.Do(func() { c.err = errors.New("pgtest: stopped before start") })
	c.kill()
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

// baseDir holds the cluster directories: os.TempDir(), unless the tests run as root and
// nobody, who runs postgres then, could not reach it (a TMPDIR under /root): then /tmp.
func baseDir() string {
	d := os.TempDir()
	if os.Geteuid() != 0 || searchable(d) {
		return d
	}
	return "/tmp"
}

// searchable reports whether every directory from / to dir lets others through.
func searchable(dir string) bool {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// removeStale removes the cluster directories of test binaries that are gone (killed
// before Main could clean up); their postgres went with them (the parent-death signal).
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(baseDir(), dirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || alive(pid) {
			continue
		}
		if pm, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			// A postmaster still running there (it outlived its test binary somehow) keeps
			// its directory; its first line is its pid.
			if p, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pm), "\n", 2)[0])); err == nil && alive(p) {
				continue
			}
		}
		_ = os.RemoveAll(d)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
