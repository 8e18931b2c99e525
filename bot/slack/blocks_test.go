package slack

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/bottest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "golden", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./bot/slack -run Golden -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

// TestGoldenBlockKit renders what each command answers in Slack and compares it with the
// files in testdata/golden.
func TestGoldenBlockKit(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	h, rec, p := f.Handler, f.Sent, f.People
	eve, mia := p["eve@x.io"], p["mia@x.io"]
	replies := []struct {
		name  string
		reply func() bot.Reply
	}{
		{"balance", func() bot.Reply { return h.Command(ctx, eve, "") }},
		{"help", func() bot.Reply { return h.Command(ctx, eve, "help") }},
		{"request", func() bot.Reply {
			return h.Command(ctx, eve, "request 50k summarise 40 interviews for <!channel> & the readout")
		}},
		{"approval-pending", func() bot.Reply { return rec.Approvals[0].Message }},
		{"team", func() bot.Reply { return h.Command(ctx, mia, "team") }},
		{"approve", func() bot.Reply { return h.Act(ctx, mia, bot.Action{Kind: bot.ActApprove, Value: "1"}, nil) }},
		{"approval-decided", func() bot.Reply { return rec.Approvals[len(rec.Approvals)-1].Message }},
		{"requester-told", func() bot.Reply { return rec.Directs[len(rec.Directs)-1] }},
		{"impact", func() bot.Reply { return h.Command(ctx, eve, "impact drafted the readout in an hour --hours 3") }},
		{"history", func() bot.Reply { return h.Command(ctx, eve, "history") }},
		{"bad-amount", func() bot.Reply { return h.Command(ctx, eve, "request -5 more please") }},
		{"admin-report", func() bot.Reply { return h.Command(ctx, p["ada@x.io"], "admin report") }},
		{"cancel", func() bot.Reply {
			h.Command(ctx, eve, "request 5k a second idea")
			return h.Command(ctx, eve, "cancel 2")
		}},
		{"nudges-off", func() bot.Reply { return h.Command(ctx, eve, "nudges off") }},
		{"digests-on", func() bot.Reply { return h.Command(ctx, eve, "digests on") }},
		{"team-not-manager", func() bot.Reply { return h.Command(ctx, eve, "team") }},
		{"unknown", func() bot.Reply { return h.Command(ctx, eve, "frobnicate") }},
		{"prompts", func() bot.Reply { return h.Command(ctx, eve, "prompts interview themes") }},
		{"learn", func() bot.Reply { return h.Command(ctx, eve, "learn") }},
	}
	for _, r := range replies {
		t.Run(r.name, func(t *testing.T) {
			reply := r.reply()
			checkGolden(t, r.name, map[string]any{"text": Fallback(reply), "blocks": Blocks(reply)})
		})
	}
	modal := h.Command(ctx, eve, "request")
	if modal.Modal == nil {
		t.Fatal("request without arguments must open a modal")
	}
	checkGolden(t, "request-modal", Modal(modal.Modal))
	deny := h.Act(ctx, mia, bot.Action{Kind: bot.ActDeny, Value: "1"}, nil)
	checkGolden(t, "deny-modal", Modal(deny.Modal))
	share := h.Command(ctx, eve, "share")
	if share.Modal == nil {
		t.Fatal("share must open a modal")
	}
	checkGolden(t, "share-modal", Modal(share.Modal))
}

func TestEscapeUserText(t *testing.T) {
	r := bot.Reply{Header: "<!here>", Blocks: []bot.Block{
		&bot.Text{Text: "use case: <!channel> <@U123> <https://evil|click> a&b"},
		&bot.Fields{Fields: []bot.Field{{Label: "<!everyone>", Value: "<@U1>"}}},
		&bot.Context{Text: "<!subteam^S1>"},
	}}
	raw, err := json.Marshal(Blocks(r))
	if err != nil {
		t.Fatal(err)
	}
	s := string(raw)
	for _, bad := range []string{"<!channel>", "<@U123>", "<https://evil", "<!everyone>", "<@U1>", "<!subteam"} {
		if strings.Contains(s, bad) {
			t.Errorf("rendered blocks contain the live mention %q: %s", bad, s)
		}
	}
	if !strings.Contains(s, "\\u0026lt;!channel\\u0026gt;") || !strings.Contains(s, "a\\u0026amp;b") {
		t.Errorf("user text not escaped as entities: %s", s)
	}
	// Headers are plain_text, which Slack never parses for mentions; the text stays readable.
	if !strings.Contains(s, `"text":"\u003c!here\u003e"`) {
		t.Errorf("header should be plain text as typed: %s", s)
	}
}

func TestBlockKitLimits(t *testing.T) {
	long := strings.Repeat("é", 5000)
	var buttons []bot.Button
	for i := 0; i < 30; i++ {
		buttons = append(buttons, bot.Button{Label: long, Action: bot.Action{Kind: bot.ActApprove, Value: "1"}})
	}
	var fields []bot.Field
	for i := 0; i < 12; i++ {
		fields = append(fields, bot.Field{Label: "l", Value: long})
	}
	blocks := Blocks(bot.Reply{Header: long, Blocks: []bot.Block{&bot.Text{Text: long}, &bot.Fields{Fields: fields}, &bot.Buttons{Buttons: buttons}}})
	raw, _ := json.Marshal(blocks)
	var decoded []struct {
		Type     string
		Text     *struct{ Text string }
		Fields   []struct{ Text string }
		Elements []struct{ Text struct{ Text string } }
	}
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	runes := func(s string) int { return len([]rune(s)) }
	if runes(decoded[0].Text.Text) > maxHeader || runes(decoded[1].Text.Text) > maxSectionText {
		t.Error("header or section over its limit")
	}
	if len(decoded[2].Fields) != maxFields || runes(decoded[2].Fields[0].Text) > maxFieldText {
		t.Error("fields over their limit")
	}
	if len(decoded[3].Elements) != maxButtonsInRow || runes(decoded[3].Elements[0].Text.Text) > maxButtonText {
		t.Error("buttons over their limit")
	}
}
