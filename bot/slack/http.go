package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/tokenpay/tokenpay/bot"
)

// maxBody bounds every Slack request: real payloads are a few kilobytes, a large view
// submission a few dozen.
const maxBody = 256 << 10

// Register adds the Slack HTTP endpoints to mux.
func (a *App) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /slack/commands", a.serveCommand)
	mux.HandleFunc("POST /slack/interactions", a.serveInteraction)
	mux.HandleFunc("POST /slack/events", a.serveEvent)
}

// verified reads the body and checks its signature, answering 401/413 itself.
func (a *App) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, status, err := a.Verifier.ReadVerified(w, r, maxBody)
	if err != nil {
		a.Log.Warn().Err(err).Int("status", status).Str("path", r.URL.Path).Msg("rejected Slack request")
		http.Error(w, http.StatusText(status), status)
		return nil, false
	}
	return body, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (a *App) serveCommand(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return
	}
	sc := slack.SlashCommand{TeamID: form.Get("team_id"), ChannelID: form.Get("channel_id"), UserID: form.Get("user_id"),
		Command: form.Get("command"), Text: form.Get("text"), ResponseURL: form.Get("response_url"), TriggerID: form.Get("trigger_id")}
	if resp, ok := a.Command(r.Context(), sc); ok {
		writeJSON(w, resp)
		return
	}
	w.WriteHeader(http.StatusOK) // answered later, or a modal was opened
}

// Command runs a slash command. When the answer is ready within AckTimeout it is
// returned for the acknowledgement; otherwise it goes to response_url when ready. A modal
// is opened with the trigger id and nothing is returned.
func (a *App) Command(ctx context.Context, sc slack.SlashCommand) (commandResponse, bool) {
	done := make(chan bot.Reply, 1)
	a.goBackground(ctx, "command", func(ctx context.Context) error {
		p, err := a.person(ctx, sc.UserID)
		if err != nil {
			done <- a.failure(err)
			return nil
		}
		done <- a.Handler.Command(ctx, p, sc.Text)
		return nil
	})
	var reply bot.Reply
	select {
	case reply = <-done:
	case <-time.After(a.AckTimeout):
		a.goBackground(ctx, "late command answer", func(ctx context.Context) error {
			return a.deliver(ctx, <-done, sc.TriggerID, modalMetadata{Channel: sc.ChannelID, ResponseURL: sc.ResponseURL}, sc.UserID)
		})
		return commandResponse{}, false
	}
	if reply.Modal != nil {
		if err := a.openModal(ctx, sc.TriggerID, reply.Modal, modalMetadata{Channel: sc.ChannelID, ResponseURL: sc.ResponseURL}); err != nil {
			a.Log.Error().Err(err).Msg("open modal")
			return responseFor(a.failure(err)), true
		}
		return commandResponse{}, false
	}
	return responseFor(reply), true
}

// deliver sends a reply after the request was acknowledged: a modal through the trigger,
// a message through response_url, else as a DM.
func (a *App) deliver(ctx context.Context, reply bot.Reply, triggerID string, meta modalMetadata, userID string) error {
	if reply.Modal != nil {
		return a.openModal(ctx, triggerID, reply.Modal, meta)
	}
	if meta.ResponseURL != "" {
		return a.respond(ctx, meta.ResponseURL, reply)
	}
	if meta.Channel != "" && !strings.HasPrefix(meta.Channel, "D") {
		_, err := a.Client.PostEphemeralContext(ctx, meta.Channel, userID, slack.MsgOptionText(Fallback(reply), false), slack.MsgOptionBlocks(Blocks(reply)...))
		return err
	}
	ch, err := a.dm(ctx, userID)
	if err != nil {
		return err
	}
	_, _, err = a.Client.PostMessageContext(ctx, ch, slack.MsgOptionText(Fallback(reply), false), slack.MsgOptionBlocks(Blocks(reply)...))
	return err
}

func (a *App) serveInteraction(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || form.Get("payload") == "" {
		http.Error(w, "expected a form with a payload field", http.StatusBadRequest)
		return
	}
	var cb slack.InteractionCallback
	if err := json.Unmarshal([]byte(form.Get("payload")), &cb); err != nil {
		http.Error(w, "payload is not valid JSON", http.StatusBadRequest)
		return
	}
	a.Interaction(r.Context(), cb)
	w.WriteHeader(http.StatusOK)
}

// Interaction handles a button press, a modal submission or a message shortcut. It
// returns at once; the work continues in the background and answers through
// response_url, a modal, or a DM.
func (a *App) Interaction(ctx context.Context, cb slack.InteractionCallback) {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 {
			return
		}
		action, ok := bot.ParseAction(cb.ActionCallback.BlockActions[0].ActionID)
		if !ok {
			a.Log.Warn().Str("action", cb.ActionCallback.BlockActions[0].ActionID).Msg("unknown Slack action")
			return
		}
		meta := modalMetadata{Channel: cb.Channel.ID, ResponseURL: cb.ResponseURL}
		a.act(ctx, cb.User.ID, cb.TriggerID, action, nil, meta)
	case slack.InteractionTypeViewSubmission:
		action, ok := bot.ParseAction(cb.View.CallbackID)
		if !ok {
			return
		}
		var meta modalMetadata
		_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta)
		a.act(ctx, cb.User.ID, "", action, FormValues(cb.View.State), meta)
	case slack.InteractionTypeMessageAction:
		if cb.CallbackID != "save_prompt" {
			return
		}
		// The action is built here, never parsed from a button, so it may carry the whole
		// message for the share modal to prefill (bounded by the modal's input limit).
		text := clip(cb.Message.Text, 3000)
		a.act(ctx, cb.User.ID, cb.TriggerID, bot.Action{Kind: "share_open", Value: text}, nil, modalMetadata{Channel: cb.Channel.ID})
	}
}

func (a *App) act(ctx context.Context, userID, triggerID string, action bot.Action, form map[string]string, meta modalMetadata) {
	a.goBackground(ctx, "interaction "+string(action.Kind), func(ctx context.Context) error {
		p, err := a.person(ctx, userID)
		reply := a.failure(err)
		if err == nil {
			reply = a.Handler.Act(ctx, p, action, form)
		}
		return a.deliver(ctx, reply, triggerID, meta, userID)
	})
}

// outerEvent is the envelope of an Events API delivery.
type outerEvent struct {
	Type      string          `json:"type"`
	Challenge string          `json:"challenge"`
	EventID   string          `json:"event_id"`
	Event     json.RawMessage `json:"event"`
}

func (a *App) serveEvent(w http.ResponseWriter, r *http.Request) {
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	var ev outerEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "body is not a Slack event", http.StatusBadRequest)
		return
	}
	switch ev.Type {
	case slackevents.URLVerification:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(ev.Challenge))
		return
	case slackevents.CallbackEvent:
		if err := a.Event(r.Context(), ev.EventID, body); err != nil {
			a.Log.Error().Err(err).Msg("slack event")
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
	}
	w.WriteHeader(http.StatusOK)
}

// Event handles one Events API callback once: Slack delivers at least once and retries
// (X-Slack-Retry-Num), so the event id is recorded before any work.
func (a *App) Event(ctx context.Context, eventID string, raw []byte) error {
	if eventID != "" {
		first, err := a.Store.FirstDelivery(ctx, Platform, eventID)
		if err != nil {
			return err
		}
		if !first {
			return nil
		}
	}
	parsed, err := slackevents.ParseEvent(json.RawMessage(raw), slackevents.OptionNoVerifyToken())
	if err != nil {
		return fmt.Errorf("parse event %s: %w", eventID, err)
	}
	switch e := parsed.InnerEvent.Data.(type) {
	case *slackevents.AppHomeOpenedEvent:
		if e.Tab == "home" || e.Tab == "" {
			a.goBackground(ctx, "publish home", func(ctx context.Context) error { return a.PublishHome(ctx, e.User) })
		}
	}
	return nil
}

// PublishHome renders the App Home tab: balance and bar, recent activity, and buttons.
func (a *App) PublishHome(ctx context.Context, userID string) error {
	var blocks []slack.Block
	p, err := a.person(ctx, userID)
	if err != nil {
		blocks = Blocks(a.failure(err))
	} else {
		balance := a.Handler.Command(ctx, p, "balance")
		// The balance reply ends with its own buttons; Home has a fuller row.
		if n := len(balance.Blocks); n > 0 {
			if _, ok := balance.Blocks[n-1].(*bot.Buttons); ok {
				balance.Blocks = balance.Blocks[:n-1]
			}
		}
		history := a.Handler.Command(ctx, p, "history")
		history.Header = ""
		if len(history.Blocks) > 0 {
			if t, ok := history.Blocks[0].(*bot.Text); ok {
				lines := strings.Split(t.Text, "\n")
				t.Text = "*Recent activity*\n" + strings.Join(lines[:min(5, len(lines))], "\n")
			}
		}
		home := bot.Reply{Header: balance.Header, Blocks: append(balance.Blocks, &bot.Divider{})}
		home.Blocks = append(home.Blocks, history.Blocks...)
		home.Blocks = append(home.Blocks, &bot.Buttons{Buttons: []bot.Button{
			{Label: "Request more", Action: bot.Action{Kind: bot.ActOpenRequest}, Style: bot.StylePrimary},
			{Label: "Log impact", Action: bot.Action{Kind: bot.ActOpenImpact}},
			{Label: "Browse prompts", Action: bot.Action{Kind: "prompt_page", Value: "1:"}},
		}})
		blocks = Blocks(home)
	}
	_, err = a.Client.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: userID,
		View: slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}})
	if err != nil {
		return fmt.Errorf("views.publish for %s: %w", userID, err)
	}
	return nil
}
