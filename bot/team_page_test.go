package bot_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/bottest"
)

// TestTeamPages: with twelve requests waiting, the team view lists ten, each with its own
// buttons, says how many more there are and offers Show more; the next page lists the
// other two and offers Previous. No request is on two pages or on none.
func TestTeamPages(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	f.Handler.Policy.Unlock.MaxPending = 20
	eve, mia := f.People["eve@x.io"], f.People["mia@x.io"]
	for i := 1; i <= 12; i++ {
		f.Handler.Command(ctx, eve, fmt.Sprintf("request %dk idea number %d", i, i))
	}
	approves := func(r bot.Reply) (ids []string, nav []string) {
		for _, b := range r.Blocks {
			switch x := b.(type) {
			case *bot.List:
				if !strings.Contains(x.Title, "waiting for a decision") {
					continue
				}
				for _, it := range x.Items {
					if len(it.Buttons) != 3 || it.Buttons[0].Action.Kind != bot.ActApprove || !strings.HasPrefix(it.Text, "#"+it.Buttons[0].Action.Value+" ·") {
						t.Errorf("entry %q has buttons %v, want its own Approve, Deny, Ask", it.Text, it.Buttons)
						continue
					}
					ids = append(ids, it.Buttons[0].Action.Value)
				}
			case *bot.Buttons:
				for _, btn := range x.Buttons {
					nav = append(nav, btn.Label+"="+btn.Action.String())
				}
			}
		}
		return ids, nav
	}
	first := f.Handler.Command(ctx, mia, "team")
	ids1, nav1 := approves(first)
	if len(ids1) != 10 || !slices.Equal(nav1, []string{"Show more=team:1"}) || !strings.Contains(text(first), "…and 2 more.") {
		t.Fatalf("first page: %v, nav %v\n%s", ids1, nav1, text(first))
	}
	second := f.Handler.Act(ctx, mia, bot.Action{Kind: bot.ActTeam, Value: "1"}, nil)
	ids2, nav2 := approves(second)
	if len(ids2) != 2 || !slices.Equal(nav2, []string{"Previous=team:0"}) {
		t.Fatalf("second page: %v, nav %v\n%s", ids2, nav2, text(second))
	}
	all := append(ids1, ids2...)
	slices.Sort(all)
	if len(slices.Compact(all)) != 12 {
		t.Fatalf("requests across pages: %v", all)
	}
	if _, ok := bot.ParseAction("team:x"); ok {
		t.Error("team:x is not a page")
	}
	// A page past the end shows the last one, and the way back from there.
	far := f.Handler.Act(ctx, mia, bot.Action{Kind: bot.ActTeam, Value: "1000000"}, nil)
	if ids, nav := approves(far); !slices.Equal(ids, ids2) || !slices.Equal(nav, []string{"Previous=team:0"}) {
		t.Fatalf("far page: %v %v", ids, nav)
	}
}
