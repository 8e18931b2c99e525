package nudges

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/prompts"
)

// Every message here is about outcomes, learning and access: no ranking, no comparing
// people, no scolding (texts_test.go checks the words). Replies are neutral, so Slack,
// Teams and the console each render them.

func credits(n int64) string { return ledger.FormatCredits(n) }

func firstName(p ledger.Person) string {
	if f := strings.Fields(p.Name); len(f) > 0 {
		return f[0]
	}
	return "there"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%s %s", ledger.FormatCredits(int64(n)), many)
}

func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// Buttons shared by several messages.
var (
	tryLesson   = bot.Button{Label: "Take a 3-minute lesson", Action: bot.Action{Kind: prompts.ActLearn}}
	turnOff     = bot.Button{Label: "Turn off", Action: bot.Action{Kind: bot.ActNudgesOff}}
	seeBalance  = bot.Button{Label: "See balance", Action: bot.Action{Kind: bot.ActBalance}}
	logOutcome  = bot.Button{Label: "Log an outcome", Action: bot.Action{Kind: bot.ActOpenImpact}}
	requestMore = bot.Button{Label: "Request more", Action: bot.Action{Kind: bot.ActOpenRequest}, Style: bot.StylePrimary}
)

func tryPrompt(p ledger.Prompt, style bot.Style) bot.Button {
	return bot.Button{Label: "Try this prompt", Action: bot.Action{Kind: prompts.ActPromptUse, Value: fmt.Sprint(p.ID)}, Style: style}
}

// tipText introduces a prompt from the library.
func tipText(p ledger.Prompt) string {
	t := "*" + p.Title + "*"
	if p.Workflow != "" {
		t += " (" + strings.ReplaceAll(p.Workflow, "-", " ") + ")"
	}
	return t + "\n_" + excerpt(p.Body, 200) + "_"
}

// excerpt is clip of s with runs of white space as one space; it reads only as far as
// it needs (it runs once per message).
func excerpt(s string, n int) string {
	var b strings.Builder
	count := 0
	for w := range strings.FieldsSeq(s) {
		if count > 0 {
			b.WriteByte(' ')
			count++
		}
		b.WriteString(w)
		if count += utf8.RuneCountInString(w); count > n {
			break
		}
	}
	return clip(b.String(), n)
}

// NudgeReply is the nudge for someone dormant or just getting started: short and warm,
// one tip that fits their role, and the way out.
func NudgeReply(m Member, tip *ledger.Prompt, daysLeft int) bot.Reply {
	left := m.Activity.Available
	var opening string
	if m.Segment == Dormant {
		opening = fmt.Sprintf("Hi %s 👋 It has been a little while since you last used your AI tokens. You have %s credits to explore with",
			firstName(m.Person), credits(left))
	} else {
		opening = fmt.Sprintf("Hi %s 👋 You have %s credits to explore with", firstName(m.Person), credits(left))
	}
	if daysLeft > 0 {
		opening += fmt.Sprintf(" over the next %s", plural(daysLeft, "day", "days"))
	}
	opening += ", so there is room to try something small."
	r := bot.Reply{Blocks: []bot.Block{&bot.Text{Text: opening}}}
	buttons := []bot.Button{}
	if tip != nil {
		intro := "Here is a prompt colleagues found useful"
		if role := strings.TrimSpace(m.Person.Role); role != "" && slices.ContainsFunc(tip.Roles, func(r string) bool { return strings.EqualFold(r, role) }) {
			intro += " in work like yours as " + article(role) + " " + role
		}
		r.Blocks = append(r.Blocks, &bot.Text{Text: intro + ":\n" + tipText(*tip)})
		buttons = append(buttons, tryPrompt(*tip, bot.StylePrimary))
		tl := tryLesson
		buttons = append(buttons, tl)
	} else {
		tl := tryLesson
		tl.Style = bot.StylePrimary
		buttons = append(buttons, tl)
	}
	r.Blocks = append(r.Blocks,
		&bot.Context{Text: "Pick whatever suits you, or nothing at all. Turn these tips off any time with the button or /tokens nudges off."},
		&bot.Buttons{Buttons: append(buttons, turnOff)})
	return r
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiouAEIOU", rune(word[0])) {
		return "an"
	}
	return "a"
}

// qualityTips are habits that make output land first time; a heavy user without logged
// outcomes gets one a week, in turn.
var qualityTips = []string{
	"Say who the output is for and what done looks like: \"five bullets for the leadership team, each under 20 words, decisions first\".",
	"Paste one example of the result you want and ask for the same shape: a model follows an example better than a description.",
	"Ask for the answer and the assumptions behind it, then check the assumptions before you use the answer.",
	"Split a big task into steps and review each one before asking for the next: errors caught early cost the least.",
	"Give the context a colleague would need: the goal, the audience, what was tried already and what must not change.",
}

// QualityReply is the nudge for heavy use without logged outcomes: habits that get more
// specific output, and an invitation to log what works. Never a scolding.
func QualityReply(m Member, week int) bot.Reply {
	tip := qualityTips[(week%len(qualityTips)+len(qualityTips))%len(qualityTips)]
	return bot.Reply{Blocks: []bot.Block{
		&bot.Text{Text: fmt.Sprintf("Hi %s 👋 You are putting AI to a lot of work this month. One habit that helps output land first time:", firstName(m.Person))},
		&bot.Text{Text: "*" + tip + "*"},
		&bot.Context{Text: "When something pays off, log it with /tokens impact: it shows your team what works and helps your next unlock request."},
		&bot.Buttons{Buttons: []bot.Button{{Label: logOutcome.Label, Action: logOutcome.Action, Style: bot.StylePrimary}, tryLesson, turnOff}},
	}}
}

// HeadsUpReply tells someone they have used most of this period's credits while days
// remain, with a one-click way to ask for more.
func HeadsUpReply(m Member, daysLeft int, periodName string) bot.Reply {
	pct := int(m.UsedRatio()*100 + 0.5)
	return bot.Reply{Blocks: []bot.Block{
		&bot.Text{Text: fmt.Sprintf("Heads-up, %s: you have used %d%% of your AI credits for %s, with %s to go. %s credits are left.",
			firstName(m.Person), pct, periodName, plural(daysLeft, "day", "days"), credits(m.Activity.Available))},
		&bot.Progress{Label: fmt.Sprintf("%s of %s credits used", credits(m.Used()), credits(m.Activity.Allowance())), Value: m.Used(), Max: m.Activity.Allowance()},
		&bot.Context{Text: "If you are in the middle of something that needs more, ask for an unlock with the use case: your manager approves with one click."},
		&bot.Buttons{Buttons: []bot.Button{requestMore, seeBalance}},
	}}
}

// DigestReply is the weekly personal digest: use against the prorated allowance, outcomes
// and time saved this period, one tip, and buttons.
func DigestReply(m Member, tip *ledger.Prompt, daysLeft int, periodName string) bot.Reply {
	a := m.Activity
	r := bot.Reply{Header: "Your week with AI tokens"}
	pace := fmt.Sprintf("%s credits used in %s so far · an even pace would be about %s by now", credits(m.Used()), periodName, credits(m.Expected))
	r.Blocks = append(r.Blocks,
		&bot.Progress{Label: pace, Value: m.Used(), Max: m.Expected},
		&bot.Fields{Fields: []bot.Field{
			{Label: "Left", Value: fmt.Sprintf("%s credits · %s to go", credits(a.Available), plural(daysLeft, "day", "days"))},
			{Label: "Outcomes logged", Value: plural(a.ImpactsPeriod, "this period", "this period")},
			{Label: "Time saved", Value: hoursText(a.MinutesPeriod)},
		}})
	buttons := []bot.Button{seeBalance}
	if tip != nil {
		r.Blocks = append(r.Blocks, &bot.Text{Text: "*Tip of the week*\n" + tipText(*tip)})
		buttons = append(buttons, tryPrompt(*tip, bot.StyleDefault))
	}
	r.Blocks = append(r.Blocks,
		&bot.Context{Text: "Your weekly digest from tokenpay. Outcomes you log help your team learn what works. Turn the digest off with /tokens digests off."},
		&bot.Buttons{Buttons: append(buttons, logOutcome)})
	return r
}

func hoursText(minutes int64) string {
	if minutes == 0 {
		return "none logged yet"
	}
	h := float64(minutes) / 60
	if h == 1 {
		return "1 hour"
	}
	if h == float64(int64(h)) {
		return fmt.Sprintf("%d hours", int64(h))
	}
	return fmt.Sprintf("%.1f hours", h)
}

// segmentLabels are the words managers and admins see for each segment.
var segmentLabels = map[string]string{
	string(Dormant):      "Not used lately",
	string(Underuser):    "Getting started",
	string(HeavyNoGains): "Heavy use, no outcomes logged yet",
	string(Engaged):      "Engaged, with outcomes",
	string(Steady):       "Steady use",
	HoardingRisk:         "Large balance close to expiry",
}

// SegmentLabel is the words people see for a segment (or HoardingRisk).
func SegmentLabel(s string) string {
	if l, ok := segmentLabels[s]; ok {
		return l
	}
	return s
}

// maxListed keeps a message within what every platform shows comfortably.
const maxListed = 10

// teamSummary is what a manager's digest says about their reports: how many, how many
// in each segment and at hoarding risk, and who might welcome a hand (the maxListed
// first names in order, and how many in all). It holds no Member, so a job sums up every
// team of a large directory in little memory.
type teamSummary struct {
	reports  int
	counts   map[string]int
	welcome  []string // sorted, at most maxListed
	welcomeN int
}

func (t *teamSummary) add(m Member) {
	t.reports++
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[string(m.Segment)]++
	if m.Hoarding {
		t.counts[HoardingRisk]++
	}
	if m.Segment != Dormant && m.Segment != Underuser {
		return
	}
	t.welcomeN++
	name := m.Person.Name
	if len(t.welcome) == maxListed && name >= t.welcome[maxListed-1] {
		return
	}
	i, _ := slices.BinarySearch(t.welcome, name)
	t.welcome = slices.Insert(t.welcome, i, name)
	if len(t.welcome) > maxListed {
		t.welcome = t.welcome[:maxListed]
	}
}

// ManagerDigestReply is a manager's weekly view of their team: where people are, who
// might welcome a hand (framed as coaching), and requests waiting for them, with buttons.
// reports are the manager's direct reports; requesters names the people behind pending.
func ManagerDigestReply(manager ledger.Person, reports []Member, pending []ledger.Request, requesters map[int64]string) bot.Reply {
	var t teamSummary
	for _, m := range reports {
		t.add(m)
	}
	return managerDigestReply(manager, &t, pending, requesters)
}

func managerDigestReply(manager ledger.Person, team *teamSummary, pending []ledger.Request, requesters map[int64]string) bot.Reply {
	r := bot.Reply{Header: "Your team's week with AI tokens"}
	counts := team.counts
	var fields []bot.Field
	for _, s := range Segments() {
		if n := counts[string(s)]; n > 0 {
			fields = append(fields, bot.Field{Label: SegmentLabel(string(s)), Value: plural(n, "person", "people")})
		}
	}
	if n := counts[HoardingRisk]; n > 0 {
		fields = append(fields, bot.Field{Label: SegmentLabel(HoardingRisk), Value: plural(n, "person", "people")})
	}
	r.Blocks = append(r.Blocks, &bot.Text{Text: fmt.Sprintf("Hi %s, here is where your %s are with their AI allowance this period.",
		firstName(manager), plural(team.reports, "report", "reports"))}, &bot.Fields{Fields: fields})
	if team.welcomeN > 0 {
		more := ""
		if team.welcomeN > maxListed {
			more = fmt.Sprintf(" and %d more", team.welcomeN-maxListed)
		}
		r.Blocks = append(r.Blocks, &bot.Text{Text: fmt.Sprintf("*Might welcome a hand:* %s%s. A prompt that worked for you, or ten minutes pairing on a real task, often gets people going.",
			strings.Join(team.welcome, ", "), more)})
	}
	if len(pending) == 0 {
		r.Blocks = append(r.Blocks, &bot.Context{Text: "No requests are waiting for your decision."})
	} else {
		list := &bot.List{Title: fmt.Sprintf("%s waiting for your decision", plural(len(pending), "request", "requests"))}
		for i, q := range pending {
			if i == maxListed {
				list.More = fmt.Sprintf("…and %d more: /tokens team lists them all.", len(pending)-maxListed)
				break
			}
			id := fmt.Sprint(q.ID)
			list.Items = append(list.Items, bot.Item{
				Text:  fmt.Sprintf("#%d · %s asks for %s credits: ", q.ID, requesters[q.RequesterID], credits(q.Amount)),
				Quote: clip(q.UseCase, 300),
				Buttons: []bot.Button{
					{Label: "Approve", Action: bot.Action{Kind: bot.ActApprove, Value: id}, Style: bot.StylePrimary},
					{Label: "Deny", Action: bot.Action{Kind: bot.ActDeny, Value: id}, Style: bot.StyleDanger},
					{Label: "Ask", Action: bot.Action{Kind: bot.ActAsk, Value: id}},
				}})
		}
		r.Blocks = append(r.Blocks, &bot.Divider{}, list)
		if len(pending) > maxListed {
			r.Blocks = append(r.Blocks, &bot.Buttons{Buttons: []bot.Button{{Label: "See them all", Action: bot.Action{Kind: bot.ActTeam, Value: "0"}}}})
		}
	}
	r.Blocks = append(r.Blocks, &bot.Context{Text: "Nobody is compared with anybody here: low use is a chance to help, not a problem."})
	return r
}

// ExpiredReply tells a requester that their request ran out of time.
func ExpiredReply(req ledger.Request, loc *time.Location) bot.Reply {
	return bot.Reply{Blocks: []bot.Block{
		&bot.Text{Text: fmt.Sprintf("Your request #%d for %s credits expired on %s without a decision. If you still need it, file it again: a line on the expected outcome helps.",
			req.ID, credits(req.Amount), req.ExpiresAt.In(loc).Format("2 Jan 15:04 MST"))},
		&bot.Buttons{Buttons: []bot.Button{requestMore}},
	}}
}
