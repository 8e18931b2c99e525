package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// validFile is what testdata/valid.yaml holds.
func validFile() *Policy {
	p := Default()
	p.Org.TimeZone = "Europe/Paris"
	p.Baseline.Rules = []BaselineRule{
		{Role: "engineer", Amount: 400_000},
		{Team: "Research", Role: "analyst", Amount: 500_000},
	}
	p.Unlock.Delegates = map[string][]string{"ana@example.com": {"bo@example.com"}}
	p.Models.Weights = map[string]Weight{
		"gpt-4o":      {InputMilli: 2500, OutputMilli: 10_000, CachedInputMilli: 1250, CachedSet: true},
		"gpt-4o-mini": {InputMilli: 150, OutputMilli: 600},
	}
	p.Slack.ApprovalsChannel = "C0123456789"
	p.Admins = []string{"hr@example.com", "ops@example.com"}
	p.Connectors.LiteLLM = ConnectorPolicy{Users: map[string]string{"cust-4711": "bob@example.com"}, APIKeys: map[string]string{"ci-bot": "ana@example.com"}}
	p.Connectors.OTLP = ConnectorPolicy{Users: map[string]string{"u-123": "ana@example.com"}}
	p.Connectors.OpenAI = ConnectorPolicy{APIKeys: map[string]string{"key_abc123": "ops@example.com"}}
	p.Connectors.Anthropic = ConnectorPolicy{APIKeys: map[string]string{"apikey_01Abc": "ops@example.com"}}
	return p
}

func TestDefaults(t *testing.T) {
	p := Default()
	if err := p.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"zone", p.Location(), time.UTC},
		{"period", p.Period, PeriodMonthly},
		{"baseline", p.BaselineFor("any", "any"), int64(200_000)},
		{"rollover", p.RolloverLimits, RolloverPolicy{Max: 50_000}},
		{"manager limit", p.Unlock.ManagerLimit, int64(500_000)},
		{"max request", p.Unlock.MaxRequest, int64(5_000_000)},
		{"expiry", p.Unlock.ExpiresAfter, 168 * time.Hour},
		{"weight", p.WeightFor("gpt-4o"), Weight{InputMilli: 1000, OutputMilli: 1000}},
		{"segments", p.Segments, SegmentsPolicy{14, 14, 0.25, 10, 0, 1, 0.7, 7}},
		{"nudges", p.Nudges, NudgesPolicy{true, 10, 7, QuietHours{19 * 60, 8 * 60}, 80}},
		{"outbox", p.Outbox, OutboxPolicy{8, 1, 0, 1, 30, 8}},
		{"bonus", p.Lessons.Bonus, int64(10_000)},
		{"channel", p.Slack.ApprovalsChannel, ""},
		{"admins", len(p.Admins), 0},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if p := Default(); p == Default() {
		t.Error("Default returns a shared policy")
	}
}

func TestEmptyDocumentsGiveDefaults(t *testing.T) {
	for _, src := range []string{"", "\n", "# only a comment\n", "~\n", "{}\n", "---\n"} {
		p, err := Parse(strings.NewReader(src))
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if !reflect.DeepEqual(p, Default()) {
			t.Errorf("Parse(%q) = %+v, want the defaults", src, p)
		}
	}
	p, err := Load("")
	if err != nil || !reflect.DeepEqual(p, Default()) {
		t.Errorf(`Load("") = %+v, %v; want the defaults`, p, err)
	}
}

func TestLoadValidFile(t *testing.T) {
	p, err := Load("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := validFile(); !reflect.DeepEqual(p, want) {
		t.Errorf("Load(valid.yaml) =\n%+v\nwant\n%+v", p, want)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte("period: daily\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	var perr *Errors
	// The caller names the file, once (issue 16: no repeated prefixes).
	if !errors.As(err, &perr) || strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "policy") {
		t.Errorf("Load(bad) = %v, want *Errors that leave naming the file to the caller", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("Load(missing) = %v, want an error that leaves naming the file to the caller", err)
	}
}

func TestPartialSectionsKeepDefaults(t *testing.T) {
	p, err := Parse(strings.NewReader("rollover:\n  max: 10\nnudges:\n  quiet_hours: {end: '07:00'}\nmodels:\n  default: {input: 0.5, output: 2}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.RolloverLimits.Max = 10
	want.Nudges.QuietHours.End = 7 * 60
	want.Models.Default = Weight{InputMilli: 500, OutputMilli: 2000}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got %+v\nwant %+v", p, want)
	}
}

func TestRoundTrip(t *testing.T) {
	odd := validFile()
	odd.Org.Name = "Ünïcode: \"quotes\", #hash, 'single' & trailing space "
	odd.Period = PeriodWeekly
	odd.Baseline.Rules = append(odd.Baseline.Rules, BaselineRule{Team: "yes", Role: "null", Amount: 0})
	odd.Models.Weights["123"] = Weight{InputMilli: 1, OutputMilli: 999_999_999}
	odd.Models.Weights["a model: with colon"] = Weight{InputMilli: 0, OutputMilli: 0}
	odd.Unlock.ExpiresAfter = 90*time.Minute + time.Second
	odd.Segments.UnderuserRatio = 0.1
	odd.Nudges.QuietHours = QuietHours{Start: 0, End: 23*60 + 59}
	odd.Schedules.Nudges = "@every 1h30m"
	empty := Default()
	empty.Unlock.Delegates = map[string][]string{"ana@example.com": nil}

	for name, p := range map[string]*Policy{"defaults": Default(), "valid file": validFile(), "odd values": odd, "empty list": empty} {
		t.Run(name, func(t *testing.T) {
			if err := p.Validate(); err != nil {
				t.Fatalf("test policy is invalid: %v", err)
			}
			out, err := p.YAML()
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(strings.NewReader(string(out)))
			if err != nil {
				t.Fatalf("Parse(YAML()): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, p) {
				t.Errorf("round trip changed the policy:\n got %+v\nwant %+v\nYAML:\n%s", back, p, out)
			}
		})
	}
}

func TestBaselineFor(t *testing.T) {
	p := Default()
	p.Baseline.Default = 100
	p.Baseline.Rules = []BaselineRule{
		{Team: "Research", Role: "analyst", Amount: 500},
		{Role: "engineer", Amount: 400},
		{Team: "Research", Amount: 300},
		{Role: "analyst", Amount: 200},
	}
	tests := []struct {
		team, role string
		want       int64
	}{
		{"Research", "analyst", 500}, // team and role: both needed
		{"research", "ANALYST", 500}, // case does not matter
		{"Research", "engineer", 400},
		{"Sales", "engineer", 400},
		{"Research", "manager", 300},
		{"Sales", "analyst", 200},
		{"Sales", "manager", 100},
		{"", "", 100},
	}
	for _, tt := range tests {
		if got := p.BaselineFor(tt.team, tt.role); got != tt.want {
			t.Errorf("BaselineFor(%q, %q) = %d, want %d", tt.team, tt.role, got, tt.want)
		}
	}
}

func TestPeopleLookups(t *testing.T) {
	p := validFile()
	p.Unlock.Delegates["cy@example.com"] = []string{"Di@Example.com", "ed@example.com"}

	for _, tt := range []struct {
		email string
		want  bool
	}{{"hr@example.com", true}, {"HR@Example.COM", true}, {"ops@example.com", true}, {"ana@example.com", false}, {"", false}} {
		if got := p.IsAdmin(tt.email); got != tt.want {
			t.Errorf("IsAdmin(%q) = %v, want %v", tt.email, got, tt.want)
		}
	}

	for _, tt := range []struct {
		manager, email string
		want           bool
	}{
		{"ana@example.com", "bo@example.com", true},
		{"ANA@example.com", "Bo@Example.com", true},
		{"cy@example.com", "di@example.com", true},
		{"cy@example.com", "bo@example.com", false},
		{"bo@example.com", "ana@example.com", false},
		{"zed@example.com", "bo@example.com", false},
	} {
		if got := p.IsDelegate(tt.manager, tt.email); got != tt.want {
			t.Errorf("IsDelegate(%q, %q) = %v, want %v", tt.manager, tt.email, got, tt.want)
		}
	}

	if got := p.DelegatesOf("Cy@Example.com"); !slices.Equal(got, []string{"Di@Example.com", "ed@example.com"}) {
		t.Errorf("DelegatesOf = %q", got)
	}
	if got := p.DelegatesOf("zed@example.com"); got != nil {
		t.Errorf("DelegatesOf(unknown) = %q, want nil", got)
	}
	p.DelegatesOf("ana@example.com")[0] = "mallory@example.com"
	if !p.IsDelegate("ana@example.com", "bo@example.com") {
		t.Error("changing the result of DelegatesOf changed the policy")
	}
}

func TestSchedule(t *testing.T) {
	p := Default()
	want := map[string]string{
		JobPeriodReset:      "5 0 1 * *",
		JobWeeklyDigest:     "0 9 * * MON",
		JobManagerDigest:    "30 9 * * MON",
		JobNudges:           "0 10 * * TUE,THU",
		JobAdminReport:      "0 8 1 * *",
		JobExpireRequests:   "0 * * * *",
		JobQuarantineReplay: "*/15 * * * *",
		JobPullOpenAI:       "7 * * * *",
		JobPullAnthropic:    "9 * * * *",
		JobUsageRollup:      "30 3 * * *",
	}
	if got := Jobs(); len(got) != len(want) {
		t.Errorf("Jobs() = %q, want %d jobs", got, len(want))
	}
	for _, job := range Jobs() {
		got, ok := p.Schedule(job)
		if !ok || got != want[job] {
			t.Errorf("Schedule(%q) = %q, %v; want %q", job, got, ok, want[job])
		}
	}
	for _, j := range jobs {
		src := "schedules:\n  " + j.key + ": 'not cron'\n"
		if got := problemsOf(t, src); !slices.Equal(got, []string{"schedules." + j.key + ":2"}) {
			t.Errorf("job %s: problems = %q", j.name, got)
		}
	}
	if got, ok := p.Schedule("period_reset"); ok {
		t.Errorf("Schedule(period_reset) = %q, true; job names use dashes", got)
	}
}

func TestRollover(t *testing.T) {
	tests := []struct {
		min, max, unspent, want int64
	}{
		{0, 50_000, 10_000, 10_000},    // under max: all of it
		{0, 50_000, 50_000, 50_000},    // at max
		{0, 50_000, 80_000, 50_000},    // capped at max
		{0, 50_000, 0, 0},              // nothing left
		{0, 50_000, -5_000, 0},         // overspent: never negative
		{1_000, 50_000, 200, 1_000},    // topped up to min
		{1_000, 50_000, -200, 1_000},   // min applies after overage too
		{0, 0, 10_000, 0},              // rollover off
		{5_000, 5_000, 100, 5_000},     // fixed carry
		{0, -10, 100, 0},               // invalid max still never negative
		{10, 5, 100, 5},                // invalid min above max: max wins, as the formula says
		{0, 1 << 62, 1 << 61, 1 << 61}, // large amounts
	}
	for _, tt := range tests {
		p := Default()
		p.RolloverLimits = RolloverPolicy{Max: tt.max, Min: tt.min}
		if got := p.Rollover(tt.unspent); got != tt.want {
			t.Errorf("min %d max %d: Rollover(%d) = %d, want %d", tt.min, tt.max, tt.unspent, got, tt.want)
		}
	}
}

func TestLocation(t *testing.T) {
	p := Default()
	p.Org.TimeZone = "America/New_York"
	if got := p.Location().String(); got != "America/New_York" {
		t.Errorf("Location() = %s", got)
	}
	p.Org.TimeZone = "Nowhere/Special"
	if got := p.Location(); got != time.UTC {
		t.Errorf("Location() of a bad zone = %v, want UTC", got)
	}
}
