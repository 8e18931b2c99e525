package bot_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// platformCalls is a fake platform that records who it was asked to reach.
type platformCalls struct {
	name  string
	calls *[]string
	fail  error
}

func (p platformCalls) Approval(_ context.Context, v bot.RequestView) error {
	*p.calls = append(*p.calls, p.name+":approval")
	return p.fail
}

func (p platformCalls) Direct(_ context.Context, to ledger.Person, _ bot.Reply) error {
	*p.calls = append(*p.calls, p.name+":direct:"+to.Email)
	return p.fail
}

func TestRouter(t *testing.T) {
	onSlack := ledger.Person{ID: 1, Email: "s@x.io", SlackUserID: "U1"}
	onTeams := ledger.Person{ID: 2, Email: "t@x.io", TeamsUserID: "29:1"}
	onBoth := ledger.Person{ID: 3, Email: "b@x.io", SlackUserID: "U3", TeamsUserID: "29:3", PreferredPlatform: "teams"}
	nowhere := ledger.Person{ID: 4, Email: "n@x.io"}
	broken := errors.New("chat.update: channel_not_found")
	tests := []struct {
		name      string
		slackFail error
		approval  *bot.RequestView
		direct    *ledger.Person
		want      []string
		wantErr   error
	}{
		{"approval goes once to each deciders' platform", nil,
			&bot.RequestView{Approver: onSlack, Deciders: []ledger.Person{onSlack, onTeams, onBoth}}, nil,
			[]string{"slack:approval", "teams:approval"}, nil},
		{"approval with nobody on a platform", nil,
			&bot.RequestView{Request: ledger.Request{ID: 7}, Approver: nowhere, Deciders: []ledger.Person{nowhere}}, nil,
			nil, bot.ErrUnreachable},
		{"approval failing on one platform still reaches the other", broken,
			&bot.RequestView{Approver: onSlack, Deciders: []ledger.Person{onTeams}}, nil,
			[]string{"slack:approval", "teams:approval"}, broken},
		{"direct prefers the platform last used", nil, nil, &onBoth, []string{"teams:direct:b@x.io"}, nil},
		{"direct falls back in order", nil, nil, &onTeams, []string{"teams:direct:t@x.io"}, nil},
		{"direct to nobody reachable", nil, nil, &nowhere, nil, bot.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			r := &bot.Router{Order: []string{"slack", "teams"}, Platforms: map[string]bot.Notifier{
				"slack": platformCalls{name: "slack", calls: &calls, fail: tt.slackFail},
				"teams": platformCalls{name: "teams", calls: &calls},
			}}
			var err error
			if tt.approval != nil {
				err = r.Approval(context.Background(), *tt.approval)
			} else {
				err = r.Direct(context.Background(), *tt.direct, bot.Reply{})
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			slices.Sort(calls)
			if !slices.Equal(calls, tt.want) {
				t.Errorf("calls %q, want %q", calls, tt.want)
			}
		})
	}
}

// lostPlatform is a platform that has lost some people: it says so before sending
// (Reaches), or finds out when sending (a 403: ErrUnreachable).
type lostPlatform struct {
	platformCalls
	gone    map[string]bool // emails it knows it cannot reach
	refuses map[string]bool // emails it finds out about when sending
}

func (p lostPlatform) Reaches(_ context.Context, to ledger.Person) bool { return !p.gone[to.Email] }

func (p lostPlatform) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	*p.calls = append(*p.calls, p.name+":direct:"+to.Email)
	if p.refuses[to.Email] {
		return errors.Join(bot.ErrUnreachable, errors.New("status 403"))
	}
	return nil
}

func TestRouterFallsBackWhenTeamsLostSomeone(t *testing.T) {
	onBoth := ledger.Person{ID: 3, Email: "b@x.io", SlackUserID: "U3", TeamsUserID: "29:3", PreferredPlatform: "teams"}
	onlyTeams := ledger.Person{ID: 4, Email: "t@x.io", TeamsUserID: "29:4", PreferredPlatform: "teams"}
	for _, tt := range []struct {
		name          string
		gone, refuses bool
		to            ledger.Person
		want          []string
		wantErr       error
	}{
		{"uninstalled: Slack without trying Teams", true, false, onBoth, []string{"slack:direct:b@x.io"}, nil},
		{"403 on send: Slack after the one Teams attempt", false, true, onBoth, []string{"slack:direct:b@x.io", "teams:direct:b@x.io"}, nil},
		{"uninstalled and on no other platform", true, false, onlyTeams, nil, bot.ErrUnreachable},
		{"403 and on no other platform", false, true, onlyTeams, []string{"teams:direct:t@x.io"}, bot.ErrUnreachable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var calls []string
			teams := lostPlatform{platformCalls: platformCalls{name: "teams", calls: &calls},
				gone: map[string]bool{tt.to.Email: tt.gone}, refuses: map[string]bool{tt.to.Email: tt.refuses}}
			r := &bot.Router{Order: []string{"slack", "teams"}, Platforms: map[string]bot.Notifier{
				"slack": platformCalls{name: "slack", calls: &calls}, "teams": teams}}
			err := r.Direct(context.Background(), tt.to, bot.Reply{})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			slices.Sort(calls)
			if !slices.Equal(calls, tt.want) {
				t.Errorf("calls %q, want %q", calls, tt.want)
			}
		})
	}
}
