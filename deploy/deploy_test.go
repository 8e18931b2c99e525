package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is a FROM and the instructions after it.
type stage struct {
	image, name string
	body        []instruction
}

func parseDockerfile(t *testing.T, path string) (args map[string]string, stages []stage) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	var logical []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	for _, l := range logical {
		cmd, rest, _ := strings.Cut(l, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(rest)}
		switch {
		case in.cmd == "ARG" && len(stages) == 0:
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		case in.cmd == "FROM":
			f := strings.Fields(in.args)
			s := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				s.name = f[2]
			}
			stages = append(stages, s)
		case len(stages) > 0:
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	return args, stages
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s stage) one(t *testing.T, cmd string) string {
	t.Helper()
	got := s.all(cmd)
	if len(got) != 1 {
		t.Fatalf("stage %s: %d %s instructions, want 1", s.image, len(got), cmd)
	}
	return got[0]
}

// goModVersion is the go directive of the module's go.mod.
func goModVersion(t *testing.T) string {
	t.Helper()
	src, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(src)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func TestDockerfile(t *testing.T) {
	args, stages := parseDockerfile(t, "Dockerfile")
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[1]

	// The build stage compiles with the Go of go.mod, with cgo, on the runtime's Debian.
	if want := goModVersion(t); args["GO_VERSION"] != want {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %s", args["GO_VERSION"], want)
	}
	if build.image != "golang:${GO_VERSION}-bookworm" || build.name != "build" {
		t.Errorf("build stage FROM %s AS %s, want golang:${GO_VERSION}-bookworm AS build", build.image, build.name)
	}
	var compiles bool
	for _, run := range build.all("RUN") {
		if strings.Contains(run, "go build") {
			compiles = strings.Contains(run, "CGO_ENABLED=1") && strings.Contains(run, "./cmd/tokenpay")
		}
	}
	if !compiles {
		t.Error("the build stage has no RUN CGO_ENABLED=1 go build ... ./cmd/tokenpay (SQLite needs cgo)")
	}
	// bookworm is Debian 12: the binary's glibc is the runtime's.
	if !strings.HasPrefix(runtime.image, "gcr.io/distroless/base-debian12") {
		t.Errorf("runtime image %s: want distroless base-debian12 (glibc, same Debian as the build stage)", runtime.image)
	}

	copied := false
	for _, c := range runtime.all("COPY") {
		copied = copied || strings.HasPrefix(c, "--from=build /out/tokenpay /usr/local/bin/tokenpay")
	}
	if !copied {
		t.Error("the runtime stage does not copy the binary from the build stage")
	}
	if user := runtime.one(t, "USER"); user == "root" || user == "0" || strings.HasPrefix(user, "0:") {
		t.Errorf("USER %s: the service must not run as root", user)
	}
	if v := runtime.one(t, "VOLUME"); v != `["/data"]` {
		t.Errorf("VOLUME %s, want [\"/data\"]", v)
	}
	env := runtime.one(t, "ENV")
	if !strings.Contains(env, "TOKENPAY_DB=/data/") {
		t.Errorf("ENV %s: the database must live on the /data volume", env)
	}
	if !strings.Contains(env, "TOKENPAY_ADDR=:8080") || runtime.one(t, "EXPOSE") != "8080" {
		t.Errorf("the listen address and EXPOSE disagree: ENV %s, EXPOSE %s", env, runtime.one(t, "EXPOSE"))
	}
	hc := runtime.one(t, "HEALTHCHECK")
	if !strings.Contains(hc, `CMD ["/usr/local/bin/tokenpay", "healthcheck"]`) || !strings.Contains(hc, "--timeout=") {
		t.Errorf("HEALTHCHECK %s: want a timeout and the exec form of tokenpay healthcheck", hc)
	}
	if runtime.one(t, "ENTRYPOINT") != `["/usr/local/bin/tokenpay"]` || runtime.one(t, "CMD") != `["serve"]` {
		t.Error("the image should run tokenpay serve, with other commands available as arguments")
	}
}

// unit is a systemd unit file: section -> key -> values (a key may repeat).
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	for _, line := range strings.Split(string(src), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: malformed line %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestSystemdUnits(t *testing.T) {
	svc := parseUnit(t, "tokenpay.service")
	if u := svc.get("Service", "User"); u == "" || u == "root" {
		t.Errorf("User=%q: the service must not run as root", u)
	}
	if got := svc.get("Service", "ExecStart"); got != "/usr/local/bin/tokenpay serve" {
		t.Errorf("ExecStart=%s", got)
	}
	state := svc.get("Service", "StateDirectory")
	var db string
	for _, e := range svc["Service"]["Environment"] {
		if v, ok := strings.CutPrefix(e, "TOKENPAY_DB="); ok {
			db = v
		}
	}
	if state == "" || !strings.HasPrefix(db, "/var/lib/"+state+"/") {
		t.Errorf("TOKENPAY_DB=%s is not in the StateDirectory %s (the only writable path under ProtectSystem=strict)", db, state)
	}
	// serve drains in-flight requests for up to 20 s after SIGTERM; systemd must wait longer.
	stop, err := time.ParseDuration(svc.get("Service", "TimeoutStopSec") + "s")
	if svc.get("Service", "KillSignal") != "SIGTERM" || err != nil || stop <= 20*time.Second {
		t.Errorf("KillSignal=%s TimeoutStopSec=%s: want SIGTERM and more than serve's 20 s grace",
			svc.get("Service", "KillSignal"), svc.get("Service", "TimeoutStopSec"))
	}
	if svc.get("Service", "ProtectSystem") != "strict" || svc.get("Service", "NoNewPrivileges") != "yes" {
		t.Error("the service unit lost its hardening")
	}

	backup := parseUnit(t, "tokenpay-backup.service")
	if backup.get("Service", "User") != svc.get("Service", "User") || !strings.Contains(backup.get("Service", "ExecStart"), "tokenpay backup ") {
		t.Errorf("the backup must run tokenpay backup as the service user: %v", backup["Service"])
	}
	timer := parseUnit(t, "tokenpay-backup.timer")
	if timer.get("Timer", "OnCalendar") == "" || timer.get("Timer", "Persistent") != "true" {
		t.Errorf("timer: %v", timer["Timer"])
	}
}

// TestSystemdAnalyzeVerify runs systemd's own checker on the units when it is installed.
// It refuses units whose programs are missing, so /usr/local/bin/tokenpay is replaced by
// an executable that exists (this test binary); everything else is checked as written.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (Debian: apt-get install systemd)" + "; .ci/run installs it")
		}
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"tokenpay.service", "tokenpay-backup.service", "tokenpay-backup.timer"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), bytes.ReplaceAll(src, []byte("/usr/local/bin/tokenpay"), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, filepath.Join(dir, name))
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...)
	out, err := cmd.CombinedOutput()
	// Unknown keys and bad values are warnings with exit status 0: any output is a finding.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	t.Logf("systemd-analyze verify: %d units clean", len(units))
}
