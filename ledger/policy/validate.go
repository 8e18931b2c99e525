package policy

import (
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
)

// Problem is one thing wrong with a policy.
type Problem struct {
	// Path names the key in the file, e.g. "unlock.manager_limit" or
	// "baseline.rules[1].amount"; empty for the document as a whole.
	Path string
	// Line is the 1-based line in the file, or 0 when unknown.
	Line    int
	Message string
}

func (p Problem) String() string {
	switch {
	case p.Path != "" && p.Line > 0:
		return fmt.Sprintf("%s (line %d): %s", p.Path, p.Line, p.Message)
	case p.Path != "":
		return p.Path + ": " + p.Message
	case p.Line > 0:
		return fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	return p.Message
}

// Errors lists every problem found in a policy, so an admin can fix a file in
// one pass.
type Errors struct {
	Problems []Problem
}

func (e *Errors) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems:", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n")
		b.WriteString(p.String())
	}
	return b.String()
}

// sortProblems orders problems as they appear in the file; those without a
// line keep their order after the rest.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
}

// Validate checks the whole policy and returns an *Errors listing every
// problem, or nil.
func (p *Policy) Validate() error {
	if problems := p.validate(nil); len(problems) > 0 {
		return &Errors{Problems: problems}
	}
	return nil
}

type validator struct {
	problems []Problem
	lineOf   func(path string) int
}

func (v *validator) addf(path, format string, args ...any) {
	line := 0
	if v.lineOf != nil {
		line = v.lineOf(path)
	}
	v.problems = append(v.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) atLeast(path string, n, lo int64) {
	if n < lo {
		if lo == 0 {
			v.addf(path, "must not be negative, got %d", n)
			return
		}
		v.addf(path, "must be at least %d, got %d", lo, n)
	}
}

func (v *validator) between(path string, n, lo, hi int64) {
	if n < lo || n > hi {
		v.addf(path, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (v *validator) ratio(path string, r float64) {
	// Written so that NaN fails too.
	if !(r >= 0 && r <= 1) {
		v.addf(path, "must be between 0 and 1, got %v", r)
	}
}

func (v *validator) email(path, s string) {
	if !isEmail(s) {
		v.addf(path, "want an email address such as ana@example.com, got %q", s)
	}
}

// isEmail accepts a bare address only: "Ana <ana@example.com>" would never
// match the directory.
func isEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// validate returns every problem; lineOf, when not nil, places them in the file.
func (p *Policy) validate(lineOf func(string) int) []Problem {
	v := &validator{lineOf: lineOf}

	v.text("org.name", p.Org.Name)
	if _, err := loadZone(p.Org.TimeZone); err != nil {
		v.addf("org.time_zone", "%s", err.Error())
	}
	if p.Period != PeriodMonthly && p.Period != PeriodWeekly {
		v.addf("period", "want %q or %q, got %q", PeriodMonthly, PeriodWeekly, p.Period)
	}

	v.atLeast("baseline.default", p.Baseline.Default, 0)
	for i, r := range p.Baseline.Rules {
		path := fmt.Sprintf("baseline.rules[%d]", i)
		if r.Team == "" && r.Role == "" {
			v.addf(path, "a rule names a team, a role or both; for everyone set baseline.default")
		}
		v.text(path+".team", r.Team)
		v.text(path+".role", r.Role)
		v.atLeast(path+".amount", r.Amount, 0)
	}

	v.atLeast("rollover.max", p.RolloverLimits.Max, 0)
	v.atLeast("rollover.min", p.RolloverLimits.Min, 0)
	if p.RolloverLimits.Min > p.RolloverLimits.Max {
		v.addf("rollover.min", "must not exceed rollover.max (%d), got %d", p.RolloverLimits.Max, p.RolloverLimits.Min)
	}

	u := p.Unlock
	v.atLeast("unlock.manager_limit", u.ManagerLimit, 0)
	v.atLeast("unlock.max_request", u.MaxRequest, 0)
	if u.ManagerLimit > u.MaxRequest {
		v.addf("unlock.manager_limit", "must not exceed unlock.max_request (%d), got %d", u.MaxRequest, u.ManagerLimit)
	}
	v.atLeast("unlock.max_pending", int64(u.MaxPending), 1)
	if u.ExpiresAfter <= 0 {
		v.addf("unlock.expires_after", "must be a positive duration such as 168h, got %s", u.ExpiresAfter)
	}
	if u.MinValidity < 0 || u.MinValidity > MaxMinValidity {
		v.addf("unlock.min_validity", "must be a duration from 0s to %s, got %s", MaxMinValidity, u.MinValidity)
	}
	if g := p.Usage.LateGrace; g < 0 || g > MaxLateGrace {
		v.addf("usage.late_grace", "must be a duration from 0s to %s (a week, the shortest period), got %s", MaxLateGrace, g)
	}
	if r := p.Usage.RetentionMonths; r < 0 || r > MaxRetentionMonths {
		v.addf("usage.retention_months", "must be 0 (keep every usage row) or a number of months from 1 to %d, got %d", MaxRetentionMonths, r)
	}
	managers := make(map[string]string, len(u.Delegates))
	for _, manager := range slices.Sorted(maps.Keys(u.Delegates)) {
		path := keyPath("unlock.delegates", manager)
		v.email(path, manager)
		if other, dup := managers[strings.ToLower(manager)]; dup {
			v.addf(path, "same manager as %q (emails ignore case)", other)
		}
		managers[strings.ToLower(manager)] = manager
		for i, delegate := range u.Delegates[manager] {
			v.email(fmt.Sprintf("%s[%d]", path, i), delegate)
		}
	}

	v.weight("models.default", p.Models.Default)
	for _, model := range slices.Sorted(maps.Keys(p.Models.Weights)) {
		path := keyPath("models.weights", model)
		if strings.TrimSpace(model) == "" {
			v.addf(path, "model name is empty")
		}
		v.text(path, model)
		v.weight(path, p.Models.Weights[model])
	}

	s := p.Segments
	v.atLeast("segments.window_days", int64(s.WindowDays), 1)
	v.atLeast("segments.dormant_days", int64(s.DormantDays), 1)
	v.ratio("segments.underuser_ratio", s.UnderuserRatio)
	v.between("segments.heavy_top_percent", int64(s.HeavyTopPercent), 0, 100)
	v.atLeast("segments.heavy_max_impacts", int64(s.HeavyMaxImpacts), 0)
	v.atLeast("segments.engaged_min_impacts", int64(s.EngagedMinImpacts), 0)
	v.ratio("segments.hoarding_balance_ratio", s.HoardingBalanceRatio)
	v.atLeast("segments.hoarding_days_left", int64(s.HoardingDaysLeft), 0)

	n := p.Nudges
	// A larger holdout would withhold nudges from most people to measure them.
	v.between("nudges.holdout_percent", int64(n.HoldoutPercent), 0, 50)
	v.atLeast("nudges.min_days_between", int64(n.MinDaysBetween), 0)
	v.clock("nudges.quiet_hours.start", n.QuietHours.Start)
	v.clock("nudges.quiet_hours.end", n.QuietHours.End)
	v.between("nudges.heads_up_percent", int64(n.HeadsUpPercent), 0, 100)

	for _, j := range jobs {
		v.schedule("schedules."+j.key, j.expr(&p.Schedules))
	}

	o := p.Outbox
	v.atLeast("outbox.max_attempts", int64(o.MaxAttempts), 1)
	v.atLeast("outbox.slack_per_channel_per_second", int64(o.SlackPerChannelPerSecond), 1)
	v.atLeast("outbox.slack_per_workspace_per_minute", int64(o.SlackPerWorkspacePerMinute), 0)
	v.atLeast("outbox.teams_per_conversation_per_second", int64(o.TeamsPerConversationPerSecond), 1)
	v.atLeast("outbox.teams_per_app_per_second", int64(o.TeamsPerAppPerSecond), 1)
	v.between("outbox.concurrency", int64(o.Concurrency), 1, 64)

	v.atLeast("lessons.bonus", p.Lessons.Bonus, 0)

	if c := p.Slack.ApprovalsChannel; c != "" && !slackChannelID.MatchString(c) {
		v.addf("slack.approvals_channel", "want a channel id such as C0123456789 (not a #name), got %q", c)
	}

	for i, admin := range p.Admins {
		v.email(fmt.Sprintf("admins[%d]", i), admin)
	}

	c := p.Connectors
	v.window("connectors.backfill", c.Backfill, 90*24*time.Hour)
	v.window("connectors.reread", c.Reread, 31*24*time.Hour)
	for _, name := range []string{"litellm", "otlp", "openai", "anthropic"} {
		cp := p.Connector(name)
		for _, m := range []struct {
			key string
			ids map[string]string
		}{{"users", cp.Users}, {"api_keys", cp.APIKeys}} {
			for _, id := range slices.Sorted(maps.Keys(m.ids)) {
				path := keyPath("connectors."+name+"."+m.key, id)
				v.text(path, id)
				v.email(path, m.ids[id])
			}
		}
	}
	return v.problems
}

var slackChannelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// text rejects invalid UTF-8 and control characters in names that end up in
// chat messages and reports.
func (v *validator) text(path, s string) {
	if !utf8.ValidString(s) {
		v.addf(path, "must be valid UTF-8, got %q", s)
		return
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }) {
		v.addf(path, "must not contain control characters, got %q", s)
	}
}

func (v *validator) weight(path string, w Weight) {
	v.betweenMilli(path+".input", w.InputMilli)
	v.betweenMilli(path+".output", w.OutputMilli)
	if w.CachedSet {
		v.betweenMilli(path+".cached_input", w.CachedInputMilli)
	}
}

// window checks a pull connector's look-back: at least an hour (the buckets are hourly),
// at most hi (vendors keep and page usage reports only so far back).
func (v *validator) window(path string, d, hi time.Duration) {
	if d < time.Hour || d > hi {
		v.addf(path, "want a duration from 1h to %s, got %s", hi, d)
	}
}

func (v *validator) betweenMilli(path string, m int64) {
	if m < 0 || m > maxWeightMilli {
		v.addf(path, "must be between 0 and %s, got %s", formatMilli(maxWeightMilli), formatMilli(m))
	}
}

func (v *validator) clock(path string, c Clock) {
	if c < 0 || c >= 24*60 {
		v.addf(path, "want a time of day between 00:00 and 23:59, got %d minutes", int(c))
	}
}

func (v *validator) schedule(path, expr string) {
	// The org time zone applies to every job; a zone in one expression would
	// make it run at a different hour from everything else.
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		v.addf(path, "must not set a time zone; org.time_zone applies to all schedules")
		return
	}
	if _, err := cron.ParseStandard(expr); err != nil {
		v.addf(path, "want a cron expression such as \"0 9 * * MON\" or \"@daily\": %v", err)
	}
}

// maxWeightMilli is the largest weight, 1,000,000 credits per token.
const maxWeightMilli = 1_000_000 * 1000
