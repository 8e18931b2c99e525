package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// RunSocketMode receives Slack's requests over a websocket (SLACK_APP_TOKEN) instead of
// HTTP, with the same handlers. It reconnects with backoff until ctx is cancelled.
func (a *App) RunSocketMode(ctx context.Context) error {
	client := socketmode.New(a.Client)
	go a.socketEvents(ctx, client)
	backoff := time.Second
	for {
		started := time.Now()
		err := client.RunContext(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = time.Second
		}
		a.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("Socket Mode connection lost; reconnecting")
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func (a *App) socketEvents(ctx context.Context, client *socketmode.Client) {
	for {
		var evt socketmode.Event
		select {
		case <-ctx.Done():
			return
		case evt = <-client.Events:
		}
		a.Log.Debug().Str("type", string(evt.Type)).Msg("Socket Mode event")
		switch evt.Type {
		case socketmode.EventTypeConnectionError, socketmode.EventTypeInvalidAuth:
			a.Log.Warn().Str("type", string(evt.Type)).Str("detail", fmt.Sprintf("%+v", evt.Data)).Msg("Socket Mode problem")
		case socketmode.EventTypeConnected:
			a.Log.Info().Msg("Socket Mode connected")
		case socketmode.EventTypeSlashCommand:
			sc, ok := evt.Data.(slack.SlashCommand)
			if !ok || evt.Request == nil {
				continue
			}
			// The acknowledgement carries the answer, like the HTTP response does.
			resp, answered := a.Command(ctx, sc)
			var err error
			if answered {
				err = client.Ack(*evt.Request, resp)
			} else {
				err = client.Ack(*evt.Request)
			}
			if err != nil {
				a.Log.Error().Err(err).Msg("Socket Mode ack")
			}
		case socketmode.EventTypeInteractive:
			cb, ok := evt.Data.(slack.InteractionCallback)
			if !ok || evt.Request == nil {
				continue
			}
			// The acknowledgement carries what the HTTP response would: a form's errors.
			var resp any
			if team, enterprise := interactionTeam(cb); !a.refused(string(cb.Type), team, enterprise) {
				resp = a.Interaction(ctx, cb)
			}
			var err error
			if resp != nil {
				err = client.Ack(*evt.Request, resp)
			} else {
				err = client.Ack(*evt.Request)
			}
			if err != nil {
				a.Log.Error().Err(err).Msg("Socket Mode ack")
			}
		case socketmode.EventTypeEventsAPI:
			if evt.Request == nil {
				continue
			}
			_ = client.Ack(*evt.Request)
			var outer outerEvent
			if err := json.Unmarshal(evt.Request.Payload, &outer); err != nil || outer.Type != "event_callback" {
				continue
			}
			if err := a.Event(ctx, outer, evt.Request.Payload); err != nil {
				a.Log.Error().Err(err).Msg("Socket Mode event")
			}
		}
	}
}
