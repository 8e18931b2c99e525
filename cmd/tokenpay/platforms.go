package main

import (
	"context"
	"net/http"
	"sync"

	"github.com/tokenpay/tokenpay/bot"
	slackbot "github.com/tokenpay/tokenpay/bot/slack"
	"github.com/tokenpay/tokenpay/bot/teams"
	"github.com/tokenpay/tokenpay/nudges"
)

// platforms tracks the chat adapters serve started, so shutdown can wait for their
// background work.
type platforms struct {
	wg    sync.WaitGroup
	slack *slackbot.App
	teams *teams.App
	// router reaches each person on their platform; the scheduler's outbox sends through it.
	router *bot.Router
	// handler is the conversation core behind every platform; the scheduler's expiry job
	// updates approval messages through it.
	handler *bot.Handler
	// budgets pace each platform as a whole, shared by the outbox and the adapters.
	budgets map[string]*bot.Budget
}

// Wait blocks until every adapter's loops and late answers have finished.
func (p *platforms) Wait() {
	p.wg.Wait()
	if p.slack != nil {
		p.slack.Wait()
	}
	if p.teams != nil {
		p.teams.Wait()
	}
}

// startPlatforms starts each chat platform whose credentials are present; a missing
// credential disables that platform with one log line and is never a crash.
func (s *server) startPlatforms(ctx context.Context, mux *http.ServeMux) *platforms {
	get := s.app.getenv
	router := &bot.Router{Platforms: map[string]bot.Notifier{}, Order: []string{slackbot.Platform, teams.Platform}}
	handler := s.app.newHandler(s.db, s.pol, router)
	p := &platforms{router: router, handler: handler, budgets: nudges.Budgets(s.pol.Outbox)}

	cfg := slackbot.Config{BotToken: get("SLACK_BOT_TOKEN"), SigningSecret: get("SLACK_SIGNING_SECRET"), AppToken: get("SLACK_APP_TOKEN"),
		APIURL: get("SLACK_API_URL"), ApprovalsChannel: s.pol.Slack.ApprovalsChannel, TeamID: get("SLACK_TEAM_ID")}
	if cfg.BotToken == "" || (cfg.SigningSecret == "" && cfg.AppToken == "") {
		s.app.log.Info().Str("platform", "slack").Msg("Slack disabled: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode) to enable it")
	} else {
		app := slackbot.New(cfg, handler, s.db, s.app.log)
		if err := app.Restore(ctx); err != nil {
			s.app.log.Error().Err(err).Msg("could not read whether Slack delivery was stopped")
		}
		app.Budget = p.budgets[slackbot.Platform]
		router.Platforms[slackbot.Platform] = app
		p.slack = app
		if cfg.SigningSecret != "" {
			app.Register(mux)
			s.app.log.Info().Str("platform", "slack").Msg("Slack enabled over HTTP at /slack/commands, /slack/interactions, /slack/events")
		}
		if cfg.AppToken != "" {
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				if err := app.RunSocketMode(ctx); err != nil {
					s.app.log.Error().Err(err).Msg("Socket Mode stopped")
				}
			}()
			s.app.log.Info().Str("platform", "slack").Msg("Slack enabled over Socket Mode")
		}
	}
	tcfg := teams.Config{AppID: get("TEAMS_APP_ID"), AppPassword: get("TEAMS_APP_PASSWORD"), TenantID: get("TEAMS_TENANT_ID"),
		MetadataURL: get("TEAMS_OPENID_METADATA_URL"), TokenURL: get("TEAMS_OAUTH_TOKEN_URL")}
	if tcfg.AppID == "" || tcfg.AppPassword == "" {
		s.app.log.Info().Str("platform", teams.Platform).Msg("Teams disabled: set TEAMS_APP_ID and TEAMS_APP_PASSWORD to enable it")
	} else {
		app := teams.New(tcfg, handler, s.db, s.app.log)
		p.teams = app
		router.Platforms[teams.Platform] = app
		app.Register(mux)
		s.app.log.Info().Str("platform", teams.Platform).Msg("Teams enabled at /api/messages")
	}
	return p
}
