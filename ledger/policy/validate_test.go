package policy

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// problemsOf parses src and returns its problems as "path:line".
func problemsOf(t *testing.T, src string) []string {
	t.Helper()
	p, err := Parse(strings.NewReader(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s", src)
	}
	if p != nil {
		t.Errorf("Parse returned a policy along with an error")
	}
	var perr *Errors
	if !errors.As(err, &perr) {
		t.Fatalf("error is %T, want *Errors: %v", err, err)
	}
	got := make([]string, len(perr.Problems))
	for i, pr := range perr.Problems {
		if pr.Message == "" {
			t.Errorf("problem at %q has no message", pr.Path)
		}
		got[i] = fmt.Sprintf("%s:%d", pr.Path, pr.Line)
	}
	return got
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // "path:line" of every problem, in order
	}{
		// amounts
		{"negative baseline", "baseline:\n  default: -1\n", []string{"baseline.default:2"}},
		{"negative rule amount", "baseline:\n  rules:\n    - {role: a, amount: 1}\n    - {role: b, amount: -1}\n", []string{"baseline.rules[1].amount:4"}},
		{"rule without team or role", "baseline:\n  rules:\n    - amount: 5\n", []string{"baseline.rules[0]:3"}},
		{"negative rollover max", "rollover:\n  max: -1\n  min: -2\n", []string{"rollover.max:2", "rollover.min:3"}},
		{"rollover min above max", "rollover:\n  max: 10\n  min: 11\n", []string{"rollover.min:3"}},
		{"rollover min above default max", "rollover:\n  min: 60000\n", []string{"rollover.min:2"}},
		{"manager limit above max request", "unlock:\n  manager_limit: 11\n  max_request: 10\n", []string{"unlock.manager_limit:2"}},
		{"negative max request", "unlock:\n  max_request: -1\n  manager_limit: -1\n", []string{"unlock.max_request:2", "unlock.manager_limit:3"}},
		{"negative lesson bonus", "lessons:\n  bonus: -1\n", []string{"lessons.bonus:2"}},

		// period, zone, schedules, durations
		{"unknown period", "period: daily\n", []string{"period:1"}},
		{"period is case-sensitive", "period: Monthly\n", []string{"period:1"}},
		{"bad zone", "org:\n  time_zone: Mars/Olympus\n", []string{"org.time_zone:2"}},
		{"Local zone", "org:\n  time_zone: Local\n", []string{"org.time_zone:2"}},
		{"empty zone", "org:\n  time_zone: ''\n", []string{"org.time_zone:2"}},
		{"bad cron", "schedules:\n  nudges: '0 10 * *'\n", []string{"schedules.nudges:2"}},
		{"bad cron field", "schedules:\n  period_reset: '61 * * * *'\n", []string{"schedules.period_reset:2"}},
		{"empty cron", "schedules:\n  weekly_digest: ''\n", []string{"schedules.weekly_digest:2"}},
		{"cron with zone", "schedules:\n  admin_report: 'CRON_TZ=UTC 0 8 1 * *'\n", []string{"schedules.admin_report:2"}},
		{"zero expiry", "unlock:\n  expires_after: 0s\n", []string{"unlock.expires_after:2"}},
		{"negative expiry", "unlock:\n  expires_after: -1h\n", []string{"unlock.expires_after:2"}},
		{"expiry without unit", "unlock:\n  expires_after: 168\n", []string{"unlock.expires_after:2"}},
		{"expiry not a duration", "unlock:\n  expires_after: a week\n", []string{"unlock.expires_after:2"}},

		// ratios and percents
		{"ratio above 1", "segments:\n  underuser_ratio: 1.5\n", []string{"segments.underuser_ratio:2"}},
		{"negative ratio", "segments:\n  hoarding_balance_ratio: -0.1\n", []string{"segments.hoarding_balance_ratio:2"}},
		{"NaN ratio", "segments:\n  underuser_ratio: .nan\n", []string{"segments.underuser_ratio:2"}},
		{"percent above 100", "segments:\n  heavy_top_percent: 101\n", []string{"segments.heavy_top_percent:2"}},
		{"negative percent", "nudges:\n  heads_up_percent: -1\n", []string{"nudges.heads_up_percent:2"}},
		{"holdout above 50", "nudges:\n  holdout_percent: 51\n", []string{"nudges.holdout_percent:2"}},
		{"zero window", "segments:\n  window_days: 0\n", []string{"segments.window_days:2"}},
		{"negative days left", "segments:\n  hoarding_days_left: -1\n", []string{"segments.hoarding_days_left:2"}},
		{"zero attempts", "outbox:\n  max_attempts: 0\n", []string{"outbox.max_attempts:2"}},
		{"negative rate", "outbox:\n  slack_per_workspace_per_minute: -1\n", []string{"outbox.slack_per_workspace_per_minute:2"}},
		{"zero rate", "outbox:\n  teams_per_app_per_second: 0\n", []string{"outbox.teams_per_app_per_second:2"}},
		{"no concurrency", "outbox:\n  concurrency: 0\n", []string{"outbox.concurrency:2"}},

		// quiet hours
		{"hour 25", "nudges:\n  quiet_hours: {start: '25:00', end: '08:00'}\n", []string{"nudges.quiet_hours.start:2"}},
		{"minute 60", "nudges:\n  quiet_hours:\n    end: '07:60'\n", []string{"nudges.quiet_hours.end:3"}},
		{"no minutes", "nudges:\n  quiet_hours:\n    end: '8'\n", []string{"nudges.quiet_hours.end:3"}},
		{"clock as number", "nudges:\n  quiet_hours:\n    start: 1900\n", []string{"nudges.quiet_hours.start:3"}},

		// weights
		{"negative weight", "models:\n  default: {input: -1, output: 1}\n", []string{"models.default.input:2"}},
		{"too many decimals", "models:\n  weights:\n    gpt-4o: {input: 2.5, output: 10.0005}\n", []string{"models.weights.gpt-4o.output:3"}},
		{"weight too large", "models:\n  weights:\n    big: {input: 1000000.001, output: 1}\n", []string{"models.weights.big.input:3"}},
		{"weight far too large", "models:\n  weights:\n    big: {input: 1, output: 99999999999999999999}\n", []string{"models.weights.big.output:3"}},
		{"weight with exponent", "models:\n  default: {input: 1e3, output: 1}\n", []string{"models.default.input:2"}},
		{"weight infinite", "models:\n  default: {input: .inf, output: 1}\n", []string{"models.default.input:2"}},
		{"weight as string", "models:\n  default: {input: '2', output: 1}\n", []string{"models.default.input:2"}},
		{"weight missing output", "models:\n  weights:\n    x: {input: 1}\n", []string{"models.weights.x.output:3"}},
		{"weight unknown key", "models:\n  default: {input: 1, output: 1, cached: 0.5}\n", []string{"models.default.cached:2"}},
		{"weight not a mapping", "models:\n  weights:\n    x: 2\n", []string{"models.weights.x:3"}},
		{"model with a dot is quoted", "models:\n  weights:\n    gpt-4.1: {input: -1, output: 1}\n", []string{`models.weights["gpt-4.1"].input:3`}},
		{"null model weight", "models:\n  weights:\n    x:\n", []string{"models.weights.x:3"}},

		// emails
		{"admin not an email", "admins: [hr@example.com, bob]\n", []string{"admins[1]:1"}},
		{"admin with a name", "admins:\n  - 'HR <hr@example.com>'\n", []string{"admins[0]:2"}},
		{"delegate key not an email", "unlock:\n  delegates:\n    ana: [bo@example.com]\n", []string{"unlock.delegates.ana:3"}},
		{"delegate not an email", "unlock:\n  delegates:\n    ana@example.com: [bo@example.com, bo]\n", []string{`unlock.delegates["ana@example.com"][1]:3`}},
		{"same manager twice", "unlock:\n  delegates:\n    Ana@example.com: [bo@example.com]\n    ana@example.com: [cy@example.com]\n", []string{`unlock.delegates["ana@example.com"]:4`}},

		// other values
		{"channel name instead of id", "slack:\n  approvals_channel: '#approvals'\n", []string{"slack.approvals_channel:2"}},
		{"control character in name", "org:\n  name: \"a\\u0007b\"\n", []string{"org.name:2"}},

		// keys and types
		{"unknown top-level key", "colour: blue\n", []string{"colour:1"}},
		{"unknown nested key", "unlock:\n  manager_limt: 5\n", []string{"unlock.manager_limt:2"}},
		{"unknown key in a rule", "baseline:\n  rules:\n    - {role: a, amount: 1, teams: x}\n", []string{"baseline.rules[0].teams:3"}},
		{"string for a number", "outbox:\n  max_attempts: eight\n", []string{"outbox.max_attempts:2"}},
		{"fraction for an integer", "lessons:\n  bonus: 1.5\n", []string{"lessons.bonus:2"}},
		{"quoted number for an integer", "lessons:\n  bonus: '15'\n", []string{"lessons.bonus:2"}},
		{"integer overflow", "lessons:\n  bonus: 9223372036854775808\n", []string{"lessons.bonus:2"}},
		{"yes for a boolean", "nudges:\n  enabled: yes\n", []string{"nudges.enabled:2"}},
		{"list for a mapping", "org: [a, b]\n", []string{"org:1"}},
		{"mapping for a list", "admins: {a: b}\n", []string{"admins:1"}},
		{"mapping for a string", "org:\n  name: {first: a}\n", []string{"org.name:2"}},
		{"document not a mapping", "- a\n- b\n", []string{":1"}},
		{"duplicate key", "period: weekly\nperiod: monthly\n", []string{"period:2"}},
		{"merge key", "base: &b {max: 1}\nrollover:\n  <<: *b\n", []string{"base:1", "rollover.<<:3"}},
		{"two documents", "period: weekly\n---\nperiod: monthly\n", []string{":2"}},
		{"syntax error", "org:\n  name: x\n   bad: indent\nperiod: daily\n", []string{":3"}},
		{"unknown anchor", "period: *nowhere\n", []string{":0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemsOf(t, tt.src); !slices.Equal(got, tt.want) {
				t.Errorf("problems = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	tests := []struct{ name, src string }{
		{"descriptor", "schedules:\n  nudges: '@daily'\n"},
		{"every", "schedules:\n  quarantine_replay: '@every 15m'\n"},
		{"weekly", "period: weekly\n"},
		{"ratio bounds", "segments: {underuser_ratio: 0, hoarding_balance_ratio: 1}\n"},
		{"integer ratio", "segments: {underuser_ratio: 1}\n"},
		{"holdout 50", "nudges: {holdout_percent: 50}\n"},
		{"trailing zeros in weight", "models:\n  default: {input: 2.5000, output: 0.001}\n"},
		{"largest weight", "models:\n  default: {input: 1000000, output: 1000000.000}\n"},
		{"quiet hours off", "nudges:\n  quiet_hours: {start: '00:00', end: '00:00'}\n"},
		{"one-digit hour", "nudges:\n  quiet_hours: {start: '7:30', end: '23:59'}\n"},
		{"manager limit equals max request", "unlock: {manager_limit: 10, max_request: 10}\n"},
		{"private channel", "slack: {approvals_channel: G01ABCDEF}\n"},
		{"null section keeps defaults", "rollover:\n"},
		{"anchors and aliases", "unlock:\n  delegates:\n    ana@example.com: &d [bo@example.com]\n    cy@example.com: *d\n"},
		{"only comments", "# nothing set\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse(strings.NewReader(tt.src)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestInvalidFile(t *testing.T) {
	src, err := os.ReadFile("testdata/invalid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"org.time_zone:4",
		"period:5",
		"baseline.default:7",
		"baseline.rules[0].amount:9",
		"baseline.rules[1]:10",
		"rollover.min:13",
		"unlock.manager_limit:15",
		"unlock.expires_after:17",
		`unlock.delegates["ana@example.com"][0]:19`,
		"models.default.input:21",
		"models.weights.gpt-4o.input:23",
		"models.weights.big.input:24",
		"segments.window_days:26",
		"segments.underuser_ratio:27",
		"segments.heavy_top_percent:28",
		"nudges.holdout_percent:30",
		"nudges.quiet_hours.start:31",
		"nudges.heads_up_percent:32",
		"nudges.colour:33",
		"schedules.nudges:35",
		"schedules.admin_report:36",
		"outbox.max_attempts:38",
		"lessons.bonus:40",
		"slack.approvals_channel:42",
		"admins[1]:43",
	}
	if got := problemsOf(t, string(src)); !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}

func TestErrorsListsOnePerLine(t *testing.T) {
	_, err := Parse(strings.NewReader("period: daily\nlessons:\n  bonus: -1\n"))
	want := "2 problems:\n" +
		"period (line 1): want \"monthly\" or \"weekly\", got \"daily\"\n" +
		"lessons.bonus (line 3): must not be negative, got -1"
	if err == nil || err.Error() != want {
		t.Errorf("error =\n%v\nwant\n%s", err, want)
	}

	_, err = Parse(strings.NewReader("period: daily\n"))
	if want := `period (line 1): want "monthly" or "weekly", got "daily"`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestValidateWithoutFile(t *testing.T) {
	p := Default()
	p.RolloverLimits.Min = 100_000
	p.Models.Default.OutputMilli = -1
	p.Nudges.QuietHours.End = 24 * 60
	p.Admins = []string{"x"}
	p.Baseline.Rules = []BaselineRule{{Team: "\xef", Amount: 1}} // YAML files cannot hold invalid UTF-8
	err := p.Validate()
	var perr *Errors
	if !errors.As(err, &perr) {
		t.Fatalf("Validate() = %v, want *Errors", err)
	}
	var got []string
	for _, pr := range perr.Problems {
		got = append(got, fmt.Sprintf("%s:%d", pr.Path, pr.Line))
	}
	want := []string{"baseline.rules[0].team:0", "rollover.min:0", "models.default.output:0", "nudges.quiet_hours.end:0", "admins[0]:0"}
	if !slices.Equal(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

func TestFileTooLarge(t *testing.T) {
	src := "# " + strings.Repeat("x", maxFileSize) + "\n"
	if got := problemsOf(t, src); !slices.Equal(got, []string{":0"}) {
		t.Errorf("problems = %q", got)
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// Every alias below re-walks a mapping of 2000 unknown keys: without a
	// bound, 4 million problems from a 40 kB file.
	var b strings.Builder
	b.WriteString("m: &m {")
	for i := range 2000 {
		fmt.Fprintf(&b, "k%d: 1, ", i)
	}
	b.WriteString("}\nbaseline:\n  rules: [")
	b.WriteString(strings.Repeat("*m, ", 2000))
	b.WriteString("]\n")

	_, err := Parse(strings.NewReader(b.String()))
	var perr *Errors
	if !errors.As(err, &perr) {
		t.Fatalf("Parse: %v", err)
	}
	stopped := slices.ContainsFunc(perr.Problems, func(p Problem) bool { return strings.Contains(p.Message, "too many aliases") })
	if len(perr.Problems) > 20_000 || !stopped {
		t.Errorf("got %d problems, stopped: %v; want the walk stopped early", len(perr.Problems), stopped)
	}
}
