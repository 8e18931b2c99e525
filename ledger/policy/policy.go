// Package policy holds an organisation's tokenpay policy: allowances, rollover,
// unlock approvals, model weights, fluency thresholds, schedules and outbox limits.
//
// A policy is read from one YAML file (see testdata/valid.yaml for every key);
// omitted keys keep the built-in defaults. The package is pure Go: it knows no
// database and no chat platform, so every other package can depend on it.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // zones must load on machines without a zoneinfo database

	"github.com/tokenpay/tokenpay/ledger"
	"go.yaml.in/yaml/v3"
)

// Period lengths.
const (
	PeriodMonthly = "monthly"
	PeriodWeekly  = "weekly"
)

// Names of the scheduled jobs, as used by Schedule and the `jobs run` command.
const (
	JobPeriodReset      = "period-reset"
	JobWeeklyDigest     = "weekly-digest"
	JobManagerDigest    = "manager-digest"
	JobNudges           = "nudges"
	JobAdminReport      = "admin-report"
	JobExpireRequests   = "expire-requests"
	JobQuarantineReplay = "quarantine-replay"
	JobPullOpenAI       = "pull-openai"
	JobPullAnthropic    = "pull-anthropic"
	JobUsageRollup      = "usage-rollup"
)

// maxFileSize bounds what Parse reads; a real policy is a few kilobytes.
const maxFileSize = 1 << 20

// Policy is the effective policy of one organisation. Decode it with Parse or
// Load reads and validates the policy file at path; "" is the built-in default. Its errors
// do not name the path (callers do): "cannot be read: …", or a *ValidationError.
//
// Load rather than yaml.Unmarshal: they apply the defaults and validate.
type Policy struct {
	Org      OrgPolicy      `yaml:"org"`
	Period   string         `yaml:"period"`
	Baseline BaselinePolicy `yaml:"baseline"`
	// RolloverLimits is the file's "rollover" section; the name Rollover is
	// the method that applies it.
	RolloverLimits RolloverPolicy   `yaml:"rollover"`
	Unlock         UnlockPolicy     `yaml:"unlock"`
	Usage          UsagePolicy      `yaml:"usage"`
	Models         ModelsPolicy     `yaml:"models"`
	Segments       SegmentsPolicy   `yaml:"segments"`
	Nudges         NudgesPolicy     `yaml:"nudges"`
	Schedules      SchedulesPolicy  `yaml:"schedules"`
	Outbox         OutboxPolicy     `yaml:"outbox"`
	Lessons        LessonsPolicy    `yaml:"lessons"`
	Slack          SlackPolicy      `yaml:"slack"`
	Admins         []string         `yaml:"admins"`
	Connectors     ConnectorsPolicy `yaml:"connectors"`
}

// OrgPolicy names the organisation and the time zone its periods, schedules
// and reports use.
type OrgPolicy struct {
	Name     string `yaml:"name"`
	TimeZone string `yaml:"time_zone"`
}

// BaselinePolicy is the allowance granted at each period reset.
type BaselinePolicy struct {
	Default int64          `yaml:"default"`
	Rules   []BaselineRule `yaml:"rules"`
	// ProrateJoiners gives someone who joins mid-period the share of the baseline for the
	// days left, counting the day they join (see ProratedBaseline).
	ProrateJoiners bool `yaml:"prorate_joiners"`
}

// BaselineRule overrides the default allowance for a team, a role, or both.
type BaselineRule struct {
	Team   string `yaml:"team,omitempty"`
	Role   string `yaml:"role,omitempty"`
	Amount int64  `yaml:"amount"`
}

// RolloverPolicy bounds what unspent credits carry into the next period.
type RolloverPolicy struct {
	Max int64 `yaml:"max"`
	Min int64 `yaml:"min"`
}

// UnlockPolicy governs requests for more credits.
type UnlockPolicy struct {
	ManagerLimit int64         `yaml:"manager_limit"`
	MaxRequest   int64         `yaml:"max_request"`
	ExpiresAfter time.Duration `yaml:"expires_after"`
	// MaxPending is how many requests one person may have waiting for a decision at once.
	MaxPending int `yaml:"max_pending"`
	// MinValidity is the shortest life of unlocked credits: approved late in a period,
	// they last this long after approval rather than until the period ends.
	MinValidity time.Duration       `yaml:"min_validity"`
	Delegates   map[string][]string `yaml:"delegates"`
}

// UsagePolicy governs usage events that arrive late.
type UsagePolicy struct {
	// LateGrace is how long after a period ends usage dated in it is still charged to
	// it; later it is rejected as too late. At most a week, the shortest period.
	LateGrace time.Duration `yaml:"late_grace"`
	// RetentionMonths is how long usage keeps one row per event: usage dated in periods
	// that ended longer ago is rolled up into one row per person, model and day with the
	// same sums (RollupBefore, ledger.RollupInput). 0 keeps every row forever.
	RetentionMonths int `yaml:"retention_months"`
}

// ModelsPolicy turns raw model tokens into credits.
type ModelsPolicy struct {
	Default Weight            `yaml:"default"`
	Weights map[string]Weight `yaml:"weights"`
}

// SegmentsPolicy holds the thresholds of the fluency segments.
type SegmentsPolicy struct {
	WindowDays           int     `yaml:"window_days"`
	DormantDays          int     `yaml:"dormant_days"`
	UnderuserRatio       float64 `yaml:"underuser_ratio"`
	HeavyTopPercent      int     `yaml:"heavy_top_percent"`
	HeavyMaxImpacts      int     `yaml:"heavy_max_impacts"`
	EngagedMinImpacts    int     `yaml:"engaged_min_impacts"`
	HoardingBalanceRatio float64 `yaml:"hoarding_balance_ratio"`
	HoardingDaysLeft     int     `yaml:"hoarding_days_left"`
}

// NudgesPolicy caps and times nudges.
type NudgesPolicy struct {
	Enabled        bool       `yaml:"enabled"`
	HoldoutPercent int        `yaml:"holdout_percent"`
	MinDaysBetween int        `yaml:"min_days_between"`
	QuietHours     QuietHours `yaml:"quiet_hours"`
	HeadsUpPercent int        `yaml:"heads_up_percent"`
}

// SchedulesPolicy holds one robfig/cron expression per job, evaluated in the
// org time zone.
type SchedulesPolicy struct {
	PeriodReset      string `yaml:"period_reset"`
	WeeklyDigest     string `yaml:"weekly_digest"`
	ManagerDigest    string `yaml:"manager_digest"`
	Nudges           string `yaml:"nudges"`
	AdminReport      string `yaml:"admin_report"`
	ExpireRequests   string `yaml:"expire_requests"`
	QuarantineReplay string `yaml:"quarantine_replay"`
	PullOpenAI       string `yaml:"pull_openai"`
	PullAnthropic    string `yaml:"pull_anthropic"`
	UsageRollup      string `yaml:"usage_rollup"`
}

// OutboxPolicy paces delivery of chat messages (../shared/spec/platform-limits.md).
type OutboxPolicy struct {
	MaxAttempts int `yaml:"max_attempts"`
	// SlackPerChannelPerSecond is Slack's documented pace per channel; each DM is its own
	// channel.
	SlackPerChannelPerSecond int `yaml:"slack_per_channel_per_second"`
	// SlackPerWorkspacePerMinute is a fixed ceiling for the whole workspace; 0 means none:
	// the outbox learns what the workspace accepts from its 429s (bot.Budget).
	SlackPerWorkspacePerMinute    int `yaml:"slack_per_workspace_per_minute"`
	TeamsPerConversationPerSecond int `yaml:"teams_per_conversation_per_second"`
	// TeamsPerAppPerSecond is the ceiling for all of the app's sends in the tenant (Teams
	// documents 30 to 50); below it the outbox adapts to 429s as for Slack.
	TeamsPerAppPerSecond int `yaml:"teams_per_app_per_second"`
	// Concurrency is how many messages are in flight at once, each to its own channel.
	Concurrency int `yaml:"concurrency"`
}

// LessonsPolicy rewards the fluency path.
type LessonsPolicy struct {
	Bonus int64 `yaml:"bonus"`
}

// SlackPolicy holds Slack-only settings.
type SlackPolicy struct {
	// ApprovalsChannel is a channel id; empty means approvers get a DM.
	ApprovalsChannel string `yaml:"approvals_channel"`
}

// ConnectorsPolicy configures the usage connectors (LiteLLM, OpenTelemetry, OpenAI,
// Anthropic): how far the pull jobs read, and how vendor identities map to people.
type ConnectorsPolicy struct {
	// Backfill is how far back a pull connector's first run reads.
	Backfill time.Duration `yaml:"backfill"`
	// Reread is how much of the recent past every pull run reads again: vendor buckets
	// still grow after they are first read, and a grown bucket is booked as the difference.
	Reread    time.Duration   `yaml:"reread"`
	LiteLLM   ConnectorPolicy `yaml:"litellm"`
	OTLP      ConnectorPolicy `yaml:"otlp"`
	OpenAI    ConnectorPolicy `yaml:"openai"`
	Anthropic ConnectorPolicy `yaml:"anthropic"`
}

// ConnectorPolicy maps one vendor's identities to directory emails, for usage whose
// person the vendor does not name by email.
type ConnectorPolicy struct {
	// Users maps a vendor user id (LiteLLM user or end-user id, OTLP enduser.id or user.id,
	// OpenAI user id, Anthropic account id) to an email.
	Users map[string]string `yaml:"users"`
	// APIKeys maps a vendor API key id (LiteLLM key alias or hash, OpenAI or Anthropic key
	// id) to the email of the person it bills.
	APIKeys map[string]string `yaml:"api_keys"`
}

// Connector returns the identity maps of a connector by name (litellm, otlp, openai,
// anthropic); an unknown name has none.
func (p *Policy) Connector(name string) ConnectorPolicy {
	switch name {
	case "litellm":
		return p.Connectors.LiteLLM
	case "otlp":
		return p.Connectors.OTLP
	case "openai":
		return p.Connectors.OpenAI
	case "anthropic":
		return p.Connectors.Anthropic
	}
	return ConnectorPolicy{}
}

// Default returns the built-in policy, used when no file is configured and as
// the base a file is laid over. Lists and maps (baseline rules, delegates,
// model weights, admins) start empty: the examples in the format are not
// defaults any organisation should inherit.
func Default() *Policy {
	return &Policy{
		Org:            OrgPolicy{Name: "Example Org", TimeZone: "UTC"},
		Period:         PeriodMonthly,
		Baseline:       BaselinePolicy{Default: 200_000, ProrateJoiners: true},
		RolloverLimits: RolloverPolicy{Max: 50_000, Min: 0},
		Unlock: UnlockPolicy{
			ManagerLimit: 500_000,
			MaxRequest:   5_000_000,
			ExpiresAfter: 168 * time.Hour,
			MaxPending:   3,
			MinValidity:  30 * 24 * time.Hour,
		},
		Usage:  UsagePolicy{LateGrace: 72 * time.Hour, RetentionMonths: 13},
		Models: ModelsPolicy{Default: Weight{InputMilli: 1000, OutputMilli: 1000}},
		Segments: SegmentsPolicy{
			WindowDays:           14,
			DormantDays:          14,
			UnderuserRatio:       0.25,
			HeavyTopPercent:      10,
			HeavyMaxImpacts:      0,
			EngagedMinImpacts:    1,
			HoardingBalanceRatio: 0.7,
			HoardingDaysLeft:     7,
		},
		Nudges: NudgesPolicy{
			Enabled:        true,
			HoldoutPercent: 10,
			MinDaysBetween: 7,
			QuietHours:     QuietHours{Start: 19 * 60, End: 8 * 60},
			HeadsUpPercent: 80,
		},
		Schedules: SchedulesPolicy{
			PeriodReset:      "5 0 1 * *",
			WeeklyDigest:     "0 9 * * MON",
			ManagerDigest:    "30 9 * * MON",
			Nudges:           "0 10 * * TUE,THU",
			AdminReport:      "0 8 1 * *",
			ExpireRequests:   "0 * * * *",
			QuarantineReplay: "*/15 * * * *",
			PullOpenAI:       "7 * * * *",
			PullAnthropic:    "9 * * * *",
			UsageRollup:      "30 3 * * *",
		},
		Outbox: OutboxPolicy{
			MaxAttempts:                   8,
			SlackPerChannelPerSecond:      1,
			SlackPerWorkspacePerMinute:    0,
			TeamsPerConversationPerSecond: 1,
			TeamsPerAppPerSecond:          30,
			Concurrency:                   8,
		},
		Lessons:    LessonsPolicy{Bonus: 10_000},
		Connectors: ConnectorsPolicy{Backfill: 7 * 24 * time.Hour, Reread: 24 * time.Hour},
	}
}

// Parse reads a policy file: the defaults, then the file on top, then
// Validate. Any problem, from YAML syntax to an out-of-range value, is
// reported in one *Errors listing all of them.
func Parse(r io.Reader) (*Policy, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, &Errors{Problems: []Problem{{Message: fmt.Sprintf("file is larger than %d bytes", maxFileSize)}}}
	}
	p := Default()
	d := newDecoder()
	d.decodeDocument(data, p)
	problems := append(d.problems, p.validate(d.lineOf)...)
	if len(problems) > 0 {
		sortProblems(problems)
		return nil, &Errors{Problems: problems}
	}
	return p, nil
}

// Load reads the policy file at path; an empty path means the defaults. Its errors do not
// name the path, which callers add: "cannot be read: …", or *Errors with every problem.
func Load(path string) (*Policy, error) {
	if path == "" {
		return Default(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		// The caller names the file; the OS error would name it again.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot be read: %w", err)
	}
	defer f.Close()
	return Parse(f)
}

// YAML renders the effective policy in the file format; Parse reads it back
// to an equal policy.
func (p *Policy) YAML() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(p); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode policy: %w", err)
	}
	return buf.Bytes(), nil
}

// zones caches loaded locations by name: LoadLocation parses zone data on
// every call, and periods are computed for every usage event.
var zones sync.Map

func loadZone(name string) (*time.Location, error) {
	if loc, ok := zones.Load(name); ok {
		return loc.(*time.Location), nil
	}
	// "" and "Local" would make periods depend on the machine the service runs on.
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("want an IANA zone name such as Europe/Paris, got %q", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	zones.Store(name, loc)
	return loc, nil
}

// Location returns the org time zone. A policy that failed validation falls
// back to UTC, so callers never get nil.
func (p *Policy) Location() *time.Location {
	loc, err := loadZone(p.Org.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// BaselineFor returns the allowance of a person: the amount of the first rule
// whose team and role (those it names) match, else the default. Names match
// case-insensitively, as directory imports are not consistent about case.
func (p *Policy) BaselineFor(team, role string) int64 {
	for _, r := range p.Baseline.Rules {
		if (r.Team == "" || strings.EqualFold(r.Team, team)) && (r.Role == "" || strings.EqualFold(r.Role, role)) {
			return r.Amount
		}
	}
	return p.Baseline.Default
}

// IsAdmin reports whether email belongs to an admin, ignoring case and Unicode composition.
func (p *Policy) IsAdmin(email string) bool {
	return containsFold(p.Admins, email)
}

// DelegatesOf returns the people allowed to decide for managerEmail (matched
// ignoring case). The slice is a copy.
func (p *Policy) DelegatesOf(managerEmail string) []string {
	for manager, delegates := range p.Unlock.Delegates {
		if ledger.SameEmail(manager, managerEmail) {
			return slices.Clone(delegates)
		}
	}
	return nil
}

// IsDelegate reports whether email may decide for managerEmail.
func (p *Policy) IsDelegate(managerEmail, email string) bool {
	for manager, delegates := range p.Unlock.Delegates {
		if ledger.SameEmail(manager, managerEmail) && containsFold(delegates, email) {
			return true
		}
	}
	return false
}

// containsFold reports whether list names email, compared as the directory compares
// emails (ledger.NormalizeEmail).
func containsFold(list []string, email string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return ledger.SameEmail(x, email) })
}

// jobs maps job names to their schedule and its key in the file, in the
// order Jobs lists them.
var jobs = []struct {
	name, key string
	expr      func(*SchedulesPolicy) string
}{
	{JobPeriodReset, "period_reset", func(s *SchedulesPolicy) string { return s.PeriodReset }},
	{JobWeeklyDigest, "weekly_digest", func(s *SchedulesPolicy) string { return s.WeeklyDigest }},
	{JobManagerDigest, "manager_digest", func(s *SchedulesPolicy) string { return s.ManagerDigest }},
	{JobNudges, "nudges", func(s *SchedulesPolicy) string { return s.Nudges }},
	{JobAdminReport, "admin_report", func(s *SchedulesPolicy) string { return s.AdminReport }},
	{JobExpireRequests, "expire_requests", func(s *SchedulesPolicy) string { return s.ExpireRequests }},
	{JobQuarantineReplay, "quarantine_replay", func(s *SchedulesPolicy) string { return s.QuarantineReplay }},
	{JobPullOpenAI, "pull_openai", func(s *SchedulesPolicy) string { return s.PullOpenAI }},
	{JobPullAnthropic, "pull_anthropic", func(s *SchedulesPolicy) string { return s.PullAnthropic }},
	{JobUsageRollup, "usage_rollup", func(s *SchedulesPolicy) string { return s.UsageRollup }},
}

// Jobs returns the names of all scheduled jobs.
func Jobs() []string {
	names := make([]string, len(jobs))
	for i, j := range jobs {
		names[i] = j.name
	}
	return names
}

// Schedule returns the cron expression of a job (see the Job constants);
// false means there is no such job.
func (p *Policy) Schedule(job string) (string, bool) {
	for _, j := range jobs {
		if j.name == job {
			return j.expr(&p.Schedules), true
		}
	}
	return "", false
}

// Rollover returns the credits carried into the next period:
// min(max, max(unspent, min)), never negative (the ledger's rule, ledger.RolloverLimits.Carry).
func (p *Policy) Rollover(unspent int64) int64 {
	return ledger.RolloverLimits{Max: p.RolloverLimits.Max, Min: p.RolloverLimits.Min}.Carry(unspent)
}
