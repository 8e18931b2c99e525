package nudges

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/console"
	slackbot "github.com/tokenpay/tokenpay/bot/slack"
	"github.com/tokenpay/tokenpay/bot/teams"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

// unkind mirrors the prompt library's list of words that turn use into a contest or a
// judgement of people, plus the segment names, which are for admins' eyes in the CLI and
// never said to a person.
var unkind = regexp.MustCompile(`(?i)\b(leaderboards?|rank(s|ed|ing|ings)?|top users?|lazy|laziness|slackers?|shame[ds]?|shameful|shaming|underusers?|dormant|hoard(ing|er|ers)?|wasted?|failing|behind|worst|best)\b`)

// everyMessage builds each message the jobs send, with realistic data.
func everyMessage(t *testing.T) map[string]bot.Reply {
	t.Helper()
	eve := ledger.Person{ID: 2, Email: "eve@x.io", Name: "Eve Analyst", Role: "analyst", Team: "Research", ManagerID: 1}
	tip := ledger.Prompt{ID: 7, Title: "Pull the themes out of interview notes", Body: "I ran {{n}} interviews about {{question}}.\nFind the themes.",
		Roles: []string{"analyst"}, Workflow: "research-synthesis"}
	act := ledger.PersonActivity{PersonID: 2, SpentPeriod: 170_000, SpentWindow: 80_000, Available: 30_000, ImpactsPeriod: 2, MinutesPeriod: 150}
	m := Member{Person: eve, Activity: act, Segment: Underuser, Expected: 120_000}
	dormant := m
	dormant.Segment, dormant.Activity.Available = Dormant, 200_000
	mia := ledger.Person{ID: 1, Email: "mia@x.io", Name: "Mia Boss", Role: "manager"}
	reports := []Member{dormant, {Person: ledger.Person{ID: 3, Name: "Pat Peer"}, Segment: Engaged},
		{Person: ledger.Person{ID: 4, Name: "Ann New"}, Segment: Underuser, Hoarding: true}, {Person: ledger.Person{ID: 5, Name: "Bo Heavy"}, Segment: HeavyNoGains}}
	pending := []ledger.Request{{ID: 12, RequesterID: 2, Amount: 50_000, UseCase: "Summarise 40 customer interviews <!channel>"}}
	expiry := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	report := AdminReport{Org: "Example Org", Period: "October 2026", Attempts: 8, Dead: 2, Gini: 0.18,
		Teams:   []ledger.TeamStat{{Team: "Research", People: 4, Granted: 800_000, Spent: 420_000, Approved: 3, Denied: 1}, {Team: "", People: 1, Granted: 200_000}},
		Closing: ledger.Closing{Expired: 350_000, Carried: 100_000, Reclaimed: 50_000, Hoarders: 1, Hoarded: 190_000},
		Lift:    ComputeLift(ledger.LiftCounts{Nudged: 120, NudgedActive: 54, HeldOut: 40, HeldOutActive: 10})}
	return map[string]bot.Reply{
		"nudge with a tip":     NudgeReply(m, &tip, 11),
		"nudge when dormant":   NudgeReply(dormant, &tip, 11),
		"nudge without a tip":  NudgeReply(m, nil, 0),
		"quality tip":          QualityReply(Member{Person: eve, Segment: HeavyNoGains}, 3),
		"heads-up":             HeadsUpReply(m, 9, "November"),
		"weekly digest":        DigestReply(m, &tip, 9, "November"),
		"digest without a tip": DigestReply(Member{Person: eve}, nil, 1, "this week"),
		"manager digest":       ManagerDigestReply(mia, reports, pending, map[int64]string{2: "Eve Analyst"}),
		"quiet manager digest": ManagerDigestReply(mia, reports[1:2], nil, nil),
		"admin report":         report.Reply(),
		"request expired":      ExpiredReply(ledger.Request{ID: 12, Amount: 50_000, ExpiresAt: expiry}, time.UTC),
	}
}

func replyText(r bot.Reply) string {
	parts := []string{r.Header}
	for _, b := range r.Blocks {
		switch x := b.(type) {
		case *bot.Text:
			parts = append(parts, x.Text)
		case *bot.List:
			if x.Title != "" {
				parts = append(parts, x.Title)
			}
			for _, it := range x.Items {
				parts = append(parts, it.Line())
				for _, btn := range it.Buttons {
					parts = append(parts, btn.Label)
				}
			}
			if x.More != "" {
				parts = append(parts, x.More)
			}
		case *bot.Context:
			parts = append(parts, x.Text)
		case *bot.Progress:
			parts = append(parts, x.Label)
		case *bot.Fields:
			for _, f := range x.Fields {
				parts = append(parts, f.Label, f.Value)
			}
		case *bot.Buttons:
			for _, btn := range x.Buttons {
				parts = append(parts, btn.Label)
			}
		}
	}
	return strings.Join(parts, "\n")
}

func buttons(r bot.Reply) []string {
	var out []string
	for _, btn := range r.AllButtons() {
		out = append(out, btn.Label+"="+btn.Action.String())
	}
	return out
}

func TestUnkindPattern(t *testing.T) {
	for text, want := range map[string]bool{"our top users": true, "you are behind": true, "a dormant account": true,
		"teams ranked by use": true, "credits left": false, "a frank answer": false, "best practices": true} {
		if unkind.MatchString(text) != want {
			t.Errorf("unkind.MatchString(%q) != %v", text, want)
		}
	}
}

func TestMessagesAreKind(t *testing.T) {
	for name, r := range everyMessage(t) {
		text := replyText(r)
		if name == "admin report" {
			// Admins read about hoarding by name; the report still compares no person.
			text = strings.ReplaceAll(text, "Hoarding", "")
		}
		if m := unkind.FindAllString(text, -1); m != nil {
			t.Errorf("%s uses unkind words %q:\n%s", name, m, text)
		}
	}
}

func TestMessageContents(t *testing.T) {
	msgs := everyMessage(t)
	tests := []struct {
		name    string
		texts   []string
		buttons []string
	}{
		{"nudge with a tip", []string{"Hi Eve 👋", "30,000 credits", "11 days", "in work like yours as an analyst", "*Pull the themes out of interview notes* (research synthesis)",
			"_I ran {{n}} interviews about {{question}}. Find the themes._", "/tokens nudges off"},
			[]string{"Try this prompt=prompt_use:7", "Take a 3-minute lesson=learn", "Turn off=nudges_off"}},
		{"nudge when dormant", []string{"It has been a little while", "200,000 credits"}, []string{"Try this prompt=prompt_use:7", "Take a 3-minute lesson=learn", "Turn off=nudges_off"}},
		{"nudge without a tip", []string{"Hi Eve"}, []string{"Take a 3-minute lesson=learn", "Turn off=nudges_off"}},
		{"quality tip", []string{"a lot of work", "Split a big task into steps", "/tokens impact"}, []string{"Log an outcome=open_impact", "Take a 3-minute lesson=learn", "Turn off=nudges_off"}},
		{"heads-up", []string{"used 85% of your AI credits for November, with 9 days to go", "30,000 credits are left", "170,000 of 200,000 credits used"},
			[]string{"Request more=open_request", "See balance=balance"}},
		{"weekly digest", []string{"Your week with AI tokens", "170,000 credits used in November so far", "about 120,000 by now", "30,000 credits · 9 days to go",
			"2 this period", "2.5 hours", "Tip of the week"}, []string{"See balance=balance", "Try this prompt=prompt_use:7", "Log an outcome=open_impact"}},
		{"digest without a tip", []string{"none logged yet", "1 day to go"}, []string{"See balance=balance", "Log an outcome=open_impact"}},
		{"manager digest", []string{"your 4 reports", "Not used lately", "Getting started", "Heavy use, no outcomes logged yet", "Engaged, with outcomes",
			"Large balance close to expiry", "*Might welcome a hand:* Ann New, Eve Analyst.", "#12 · Eve Analyst asks for 50,000 credits", "1 request waiting"},
			[]string{"Approve=approve:12", "Deny=deny:12", "Ask=ask:12"}},
		{"quiet manager digest", []string{"your 1 report", "No requests are waiting"}, nil},
		{"admin report", []string{"Example Org: October 2026", "Research · 4 · 200,000 · 420,000 · 75% of 4", "(no team) · 1 · 200,000 · 0 · no decisions",
			"0.18", "350,000 credits", "1 person let most", "2 (after 8 attempts each)", "+20 points (95% interval"}, nil},
		{"request expired", []string{"request #12 for 50,000 credits expired on 20 Nov 10:00 UTC"}, []string{"Request more=open_request"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := msgs[tt.name]
			text := replyText(r)
			for _, want := range tt.texts {
				if !strings.Contains(text, want) {
					t.Errorf("lacks %q:\n%s", want, text)
				}
			}
			if got := buttons(r); !slices.Equal(got, tt.buttons) {
				t.Errorf("buttons %q, want %q", got, tt.buttons)
			}
		})
	}
}

// Each message renders on Slack, Teams and the console from the one neutral reply, and
// survives the outbox's encoding unchanged.
func TestMessagesRenderEverywhere(t *testing.T) {
	for name, r := range everyMessage(t) {
		t.Run(name, func(t *testing.T) {
			data, err := bot.MarshalReply(r)
			if err != nil {
				t.Fatal(err)
			}
			back, err := bot.UnmarshalReply(data)
			if err != nil || !reflect.DeepEqual(back, r) {
				t.Fatalf("outbox encoding changed the message: %v", err)
			}
			blocks := slackbot.Blocks(back)
			if len(blocks) == 0 || len(blocks) > 50 {
				t.Errorf("%d Slack blocks (1 to 50 allowed)", len(blocks))
			}
			raw, err := json.Marshal(blocks)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw), "<!channel>") {
				t.Error("a user's text reached Slack unescaped")
			}
			card, err := json.Marshal(teams.Card(back))
			if err != nil {
				t.Fatal(err)
			}
			spectest.Validate(t, "adaptive-card.schema.json", card)
			text, _ := console.Render(back, 1)
			if first := strings.SplitN(replyText(back), "\n", 3); !strings.Contains(text, strings.ReplaceAll(strings.ReplaceAll(first[1], "*", ""), "\n", "")) {
				t.Errorf("console text lacks the first line %q:\n%s", first[1], text)
			}
		})
	}
}

func TestExcerpt(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 10, ""},
		{"  short \n text ", 20, "short text"},
		{"exactly ten", 11, "exactly ten"},
		{"one two three", 7, "one tw…"},
		{"a\n\n\tb", 3, "a b"},
		{"zoë ünïcode words", 8, "zoë ünï…"},
		{strings.Repeat("word ", 1000), 12, "word word w…"},
	}
	for _, tt := range tests {
		if got := excerpt(tt.in, tt.n); got != tt.want || got != clip(strings.Join(strings.Fields(tt.in), " "), tt.n) {
			t.Errorf("excerpt(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestHoursText: the digest's "Time saved" reads "1 hour", never "1 hours".
func TestHoursText(t *testing.T) {
	for _, tc := range []struct {
		minutes int64
		want    string
	}{
		{0, "none logged yet"},
		{30, "0.5 hours"},
		{60, "1 hour"},
		{90, "1.5 hours"},
		{120, "2 hours"},
		{660, "11 hours"},
	} {
		if got := hoursText(tc.minutes); got != tc.want {
			t.Errorf("hoursText(%d) = %q, want %q", tc.minutes, got, tc.want)
		}
	}
}
