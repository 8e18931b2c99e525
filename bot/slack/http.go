package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
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
	// Slack checks the certificate of a command URL now and then with ssl_check=1, a
	// request that may come unsigned (Slack's Bolt frameworks answer it before verifying).
	// It wants a 200 and nothing else, and gets nothing else, whoever sends it.
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err == nil && len(raw) <= maxBody && sslCheck(raw) {
		w.WriteHeader(http.StatusOK)
		return
	}
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(raw), r.Body))
	body, ok := a.verified(w, r)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return
	}
	if form.Get("ssl_check") != "" {
		w.WriteHeader(http.StatusOK)
		return
	}
	sc := slack.SlashCommand{TeamID: form.Get("team_id"), EnterpriseID: form.Get("enterprise_id"), ChannelID: form.Get("channel_id"),
		UserID: form.Get("user_id"), Command: form.Get("command"), Text: form.Get("text"), ResponseURL: form.Get("response_url"),
		TriggerID: form.Get("trigger_id"), IsEnterpriseInstall: form.Get("is_enterprise_install") == "true"}
	if resp, ok := a.Command(r.Context(), sc); ok {
		writeJSON(w, resp)
		return
	}
	w.WriteHeader(http.StatusOK) // answered later, or a modal was opened
}

// sslCheck says whether a body is Slack's certificate check: ssl_check exactly "1".
func sslCheck(body []byte) bool {
	form, err := url.ParseQuery(string(body))
	return err == nil && form.Get("ssl_check") == "1"
}

// Command runs a slash command. A command that opens a form (request with nothing
// else, share) opens it first, within the trigger_id's 3 seconds, and only then looks the
// person up (users.info on first contact, a database write). Otherwise the answer is
// returned for the acknowledgement when ready within AckTimeout, or goes to response_url
// when ready. The text is in Slack's message format and is decoded once (Unformat).
func (a *App) Command(ctx context.Context, sc slack.SlashCommand) (commandResponse, bool) {
	if a.refused("slash command", sc.TeamID, sc.EnterpriseID) {
		return responseFor(bot.Reply{Blocks: []bot.Block{&bot.Text{Text: otherWorkspace}}}), true
	}
	text := Unformat(sc.Text)
	meta := modalMetadata{Channel: sc.ChannelID, ResponseURL: sc.ResponseURL}
	done := make(chan bot.Reply, 1)
	if m, again, ok := a.Handler.CommandForm(text); ok {
		a.goBackground(ctx, "open form", func(ctx context.Context) error {
			if err := a.openModal(ctx, sc.TriggerID, m, meta); err != nil {
				done <- a.formFailed(err, again)
				return nil
			}
			done <- bot.Reply{}
			return a.firstContact(ctx, sc.UserID, meta)
		})
	} else {
		a.goBackground(ctx, "command", func(ctx context.Context) error {
			p, err := a.person(ctx, sc.UserID)
			if err != nil {
				done <- a.failure(err)
				return nil
			}
			done <- a.Handler.Command(ctx, p, text)
			return nil
		})
	}
	var reply bot.Reply
	select {
	case reply = <-done:
	case <-time.After(a.AckTimeout):
		a.goBackground(ctx, "late command answer", func(ctx context.Context) error {
			return a.deliver(ctx, <-done, sc.TriggerID, meta, sc.UserID)
		})
		return commandResponse{}, false
	}
	if empty(reply) {
		return commandResponse{}, false
	}
	if reply.Modal != nil {
		if err := a.openModal(ctx, sc.TriggerID, reply.Modal, meta); err != nil {
			return responseFor(a.formFailed(err, bot.Action{})), true
		}
		return commandResponse{}, false
	}
	return responseFor(reply), true
}

// empty is a reply with nothing to show: the work answered already (a form opened).
func empty(r bot.Reply) bool { return r.Header == "" && len(r.Blocks) == 0 && r.Modal == nil }

// firstContact looks up who opened a form, after it opened: a first contact's users.info
// and the link it stores are the slow part. Someone tokenpay cannot serve is told now
// rather than when they submit.
func (a *App) firstContact(ctx context.Context, userID string, meta modalMetadata) error {
	if _, err := a.person(ctx, userID); err != nil {
		return a.deliver(ctx, a.failure(err), "", meta, userID)
	}
	return nil
}

// deliver sends a reply after the request was acknowledged: a modal through the trigger,
// a message through response_url, else ephemeral in the channel or as a DM. A modal that
// cannot be opened any more becomes a message that says so.
func (a *App) deliver(ctx context.Context, reply bot.Reply, triggerID string, meta modalMetadata, userID string) error {
	if empty(reply) {
		return nil
	}
	if a.stopped.Load() {
		return errStopped
	}
	if reply.Modal != nil {
		err := a.openModal(ctx, triggerID, reply.Modal, meta)
		if err == nil {
			return nil
		}
		reply = a.formFailed(err, bot.Action{})
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
	if team, enterprise := interactionTeam(cb); a.refused(string(cb.Type), team, enterprise) {
		http.Error(w, otherWorkspace, http.StatusForbidden)
		return
	}
	if resp := a.Interaction(r.Context(), cb); resp != nil {
		writeJSON(w, resp)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// interactionTeam is the workspace and organisation an interaction comes from.
func interactionTeam(cb slack.InteractionCallback) (teamID, enterpriseID string) {
	teamID, enterpriseID = cb.Team.ID, cb.Enterprise.ID
	if teamID == "" {
		teamID = cb.User.TeamID
	}
	if enterpriseID == "" {
		enterpriseID = cb.Team.EnterpriseID
	}
	return teamID, enterpriseID
}

// viewResponse answers a view_submission in its acknowledgement
// (https://docs.slack.dev/surfaces/modals#updating_apis).
type viewResponse struct {
	ResponseAction string                  `json:"response_action"`
	Errors         map[string]string       `json:"errors,omitempty"`
	View           *slack.ModalViewRequest `json:"view,omitempty"`
}

// Interaction handles one interactivity payload, of every type Slack sends to the
// interactivity URL (https://docs.slack.dev/reference/interaction-payloads). It returns
// the body to acknowledge with (a view_submission's response_action, a
// block_suggestion's options) or nil for an empty 200; longer work continues in the
// background and answers through response_url, a modal, or a DM.
func (a *App) Interaction(ctx context.Context, cb slack.InteractionCallback) any {
	switch cb.Type {
	case slack.InteractionTypeBlockActions:
		if len(cb.ActionCallback.BlockActions) == 0 {
			return nil
		}
		id := cb.ActionCallback.BlockActions[0].ActionID
		action, ok := bot.ParseAction(id)
		if !ok {
			a.Log.Warn().Str("action", id).Msg("unknown Slack action")
			return nil
		}
		meta := modalMetadata{Channel: cb.Channel.ID, ResponseURL: cb.ResponseURL}
		if m, ok := a.Handler.Form(action); ok {
			a.openFirst(ctx, cb.User.ID, cb.TriggerID, m, action, meta)
			return nil
		}
		a.act(ctx, cb.User.ID, action, meta)
	case slack.InteractionTypeViewSubmission:
		return a.submit(ctx, cb)
	case slack.InteractionTypeMessageAction:
		if cb.CallbackID != "save_prompt" {
			a.Log.Warn().Str("callback_id", cb.CallbackID).Msg("unknown Slack message shortcut")
			return nil
		}
		// The action is built here, never parsed from a button, so it may carry the whole
		// message for the share modal to prefill (bounded by the modal's input limit); the
		// retry button carries what fits on a button.
		text := clip(Unformat(cb.Message.Text), 3000)
		open := bot.Action{Kind: "share_open", Value: text}
		if m, ok := a.Handler.Form(open); ok {
			a.openFirst(ctx, cb.User.ID, cb.TriggerID, m, bot.Action{Kind: open.Kind, Value: bot.ClipValue(text)},
				modalMetadata{Channel: cb.Channel.ID, ResponseURL: cb.ResponseURL})
		}
	case slack.InteractionTypeBlockSuggestion:
		// No external select menus: an empty list is the documented answer.
		return map[string]any{"options": []any{}}
	case slack.InteractionTypeViewClosed, slack.InteractionTypeShortcut, slack.InteractionTypeInteractionMessage,
		slack.InteractionTypeDialogSubmission, slack.InteractionTypeDialogCancellation, slack.InteractionTypeDialogSuggestion,
		slack.InteractionTypeWorkflowStepEdit:
		// Closing a form needs nothing; the rest come from features the manifest does not
		// declare (global shortcuts, legacy attachments and dialogs, workflow steps).
		a.Log.Debug().Str("type", string(cb.Type)).Msg("Slack interaction acknowledged, nothing to do")
	default:
		a.Log.Warn().Str("type", string(cb.Type)).Msg("unknown Slack interaction type acknowledged")
	}
	return nil
}

// openFirst opens a form with the trigger at once, and only then does the slow work; when
// Slack refuses (an expired trigger, any error) the person gets a message with a button
// that opens it again.
func (a *App) openFirst(ctx context.Context, userID, triggerID string, m *bot.Modal, again bot.Action, meta modalMetadata) {
	a.goBackground(ctx, "open form", func(ctx context.Context) error {
		if err := a.openModal(ctx, triggerID, m, meta); err != nil {
			return a.deliver(ctx, a.formFailed(err, again), "", meta, userID)
		}
		return a.firstContact(ctx, userID, meta)
	})
}

func (a *App) act(ctx context.Context, userID string, action bot.Action, meta modalMetadata) {
	a.goBackground(ctx, "interaction "+string(action.Kind), func(ctx context.Context) error {
		p, err := a.person(ctx, userID)
		reply := a.failure(err)
		if err == nil {
			reply = a.Handler.Act(ctx, p, action, nil)
		}
		return a.deliver(ctx, reply, "", meta, userID)
	})
}

// submit performs a form submission while Slack waits (up to AckTimeout): a field that is
// wrong is answered with response_action errors keyed by block id, so the form stays open
// with the typed text and the message under the field. A form the core follows with
// another replaces it (update). Anything else closes the form and is answered where the
// form was opened from.
func (a *App) submit(ctx context.Context, cb slack.InteractionCallback) any {
	action, ok := bot.ParseAction(cb.View.CallbackID)
	if !ok {
		a.Log.Warn().Str("callback_id", cb.View.CallbackID).Msg("unknown Slack form")
		return nil
	}
	var meta modalMetadata
	_ = json.Unmarshal([]byte(cb.View.PrivateMetadata), &meta)
	form := FormValues(cb.View.State)
	done := make(chan bot.Reply, 1)
	a.goBackground(ctx, "submit "+string(action.Kind), func(ctx context.Context) error {
		p, err := a.person(ctx, cb.User.ID)
		reply := a.failure(err)
		if err == nil {
			reply = a.Handler.Act(ctx, p, action, form)
		}
		done <- reply
		return nil
	})
	select {
	case reply := <-done:
		if len(reply.Errors) > 0 {
			return viewResponse{ResponseAction: "errors", Errors: blockErrors(reply.Errors, cb.View)}
		}
		if reply.Modal != nil {
			v := Modal(reply.Modal)
			v.PrivateMetadata = cb.View.PrivateMetadata
			return viewResponse{ResponseAction: "update", View: &v}
		}
		a.goBackground(ctx, "answer form", func(ctx context.Context) error { return a.deliver(ctx, reply, "", meta, cb.User.ID) })
	case <-time.After(a.AckTimeout):
		a.goBackground(ctx, "late form answer", func(ctx context.Context) error { return a.deliver(ctx, <-done, "", meta, cb.User.ID) })
	}
	return nil
}

// blockErrors keeps the errors of blocks the view has (Slack refuses an answer naming
// another block) and puts the others under the first input.
func blockErrors(errs map[string]string, view slack.View) map[string]string {
	var inputs []string
	for _, b := range view.Blocks.BlockSet {
		if in, ok := b.(*slack.InputBlock); ok {
			inputs = append(inputs, in.BlockID)
		}
	}
	if len(inputs) == 0 && view.State != nil {
		for id := range view.State.Values {
			inputs = append(inputs, id)
		}
	}
	out := map[string]string{}
	var orphans []string
	for id, msg := range errs {
		if len(inputs) == 0 || slices.Contains(inputs, id) {
			out[id] = clip(msg, 2000)
		} else {
			orphans = append(orphans, msg)
		}
	}
	if len(orphans) > 0 && len(inputs) > 0 {
		sort.Strings(orphans)
		out[inputs[0]] = clip(strings.TrimSpace(out[inputs[0]]+" "+strings.Join(orphans, " ")), 2000)
	}
	return out
}

// outerEvent is the envelope of an Events API delivery.
type outerEvent struct {
	Type         string          `json:"type"`
	Challenge    string          `json:"challenge"`
	EventID      string          `json:"event_id"`
	TeamID       string          `json:"team_id"`
	EnterpriseID string          `json:"enterprise_id"`
	Event        json.RawMessage `json:"event"`
	// app_rate_limited
	MinuteRateLimited int64 `json:"minute_rate_limited"`
}

// serveEvent answers every request Slack sends to the Events API URL
// (https://docs.slack.dev/apis/events-api): url_verification, event_callback and
// app_rate_limited.
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
		if err := a.Event(r.Context(), ev, body); err != nil {
			a.Log.Error().Err(err).Msg("slack event")
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
	case slackevents.AppRateLimited:
		a.Log.Warn().Int64("minute", ev.MinuteRateLimited).Msg("Slack held back events for this app: more than 30,000 in an hour")
	default:
		a.Log.Warn().Str("type", ev.Type).Msg("unknown Slack event envelope acknowledged")
	}
	w.WriteHeader(http.StatusOK)
}

// Event handles one Events API callback once: Slack delivers at least once and retries
// (X-Slack-Retry-Num), so the event id is recorded before any work. The events handled
// are those the manifest subscribes to; any other is acknowledged and ignored.
func (a *App) Event(ctx context.Context, outer outerEvent, raw []byte) error {
	if a.refused("event", outer.TeamID, outer.EnterpriseID) {
		return nil
	}
	if outer.EventID != "" {
		first, err := a.Store.FirstDelivery(ctx, Platform, outer.EventID)
		if err != nil {
			return err
		}
		if !first {
			return nil
		}
	}
	parsed, err := slackevents.ParseEvent(json.RawMessage(raw), slackevents.OptionNoVerifyToken())
	if err != nil {
		// An event type slack-go does not know is not one we subscribe to.
		a.Log.Debug().Err(err).Str("event", outer.EventID).Msg("Slack event not understood; ignored")
		return nil
	}
	switch e := parsed.InnerEvent.Data.(type) {
	case *slackevents.AppHomeOpenedEvent:
		if (e.Tab == "home" || e.Tab == "") && !a.stopped.Load() {
			a.goBackground(ctx, "publish home", func(ctx context.Context) error { return a.PublishHome(ctx, e.User) })
		}
	case *slackevents.MessageEvent:
		a.directMessage(ctx, e)
	case *slackevents.AppUninstalledEvent:
		a.stop(ctx, outer.TeamID, "app_uninstalled")
	case *slackevents.TokensRevokedEvent:
		// Only the bot token matters: tokenpay holds no user tokens.
		if len(e.Tokens.Bot) > 0 {
			a.stop(ctx, outer.TeamID, "tokens_revoked")
		}
	default:
		a.Log.Debug().Str("type", parsed.InnerEvent.Type).Msg("Slack event not subscribed to; ignored")
	}
	return nil
}

// directMessage answers a command typed in the app's Messages tab (message.im) like
// /tokens, in the same DM. Only new messages from people count: the bot's own messages,
// edits, deletions and every other subtype are ignored.
func (a *App) directMessage(ctx context.Context, e *slackevents.MessageEvent) {
	if e.ChannelType != "im" || e.SubType != "" || e.BotID != "" || e.User == "" || a.stopped.Load() {
		return
	}
	text := Unformat(e.Text)
	a.goBackground(ctx, "direct message", func(ctx context.Context) error {
		var reply bot.Reply
		if p, err := a.person(ctx, e.User); err != nil {
			reply = a.failure(err)
		} else if m, again, ok := a.Handler.CommandForm(text); ok {
			// A message brings no trigger_id, so the form opens from a button.
			reply = bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "Press the button to open the form."},
				&bot.Buttons{Buttons: []bot.Button{{Label: m.Title, Action: again, Style: bot.StylePrimary}}}}}
		} else if reply = a.Handler.Command(ctx, p, text); reply.Modal != nil {
			reply = bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "That opens a form, which Slack opens from a button or a slash command: type /tokens " + strings.TrimSpace(text) + " instead."}}}
		}
		opts := []slack.MsgOption{slack.MsgOptionText(Fallback(reply), false), slack.MsgOptionBlocks(Blocks(reply)...)}
		if e.ThreadTimeStamp != "" {
			opts = append(opts, slack.MsgOptionTS(e.ThreadTimeStamp))
		}
		if _, _, err := a.Client.PostMessageContext(ctx, e.Channel, opts...); err != nil {
			return a.checkRevoked(ctx, fmt.Errorf("chat.postMessage answer in %s: %w", e.Channel, err))
		}
		return nil
	})
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
