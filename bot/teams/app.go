package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/core"
	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// Platform is the name Teams goes by in the ledger (links, message refs, preferences).
const Platform = "teams"

// Config is what the Teams adapter needs from the environment.
type Config struct {
	AppID       string
	AppPassword string
	TenantID    string
	// MetadataURL is the OpenID metadata of the Bot Connector (sovereign clouds, tests).
	MetadataURL string
	// TokenURL is the OAuth endpoint for outgoing calls; empty: built from TenantID, or
	// the multi-tenant Bot Framework endpoint.
	TokenURL string
}

// App is the Teams adapter. It parses and authenticates activities with msbotbuilder-go
// (our Validator in its TokenValidator field), runs them through the core handler, and
// answers with Adaptive Cards through its own connector client.
type App struct {
	Handler   *bot.Handler
	Store     ledger.Store
	Connector *Connector
	Adapter   *core.BotFrameworkAdapter
	Log       zerolog.Logger

	background bot.Background
}

// Wait blocks until what requests recorded after their answer (first-contact links) has
// been written; serve calls it on shutdown.
func (a *App) Wait() { a.background.Wait() }

// New wires the adapter. Its validator and connector use the real clock: tokens expire in
// real time even when TOKENPAY_NOW fixes the ledger's.
func New(cfg Config, h *bot.Handler, store ledger.Store, log zerolog.Logger) *App {
	tokenURL := cfg.TokenURL
	if tokenURL == "" && cfg.TenantID != "" {
		tokenURL = "https://login.microsoftonline.com/" + cfg.TenantID + "/oauth2/v2.0/token"
	}
	log = log.With().Str("platform", Platform).Logger()
	validator := NewValidator(ValidatorConfig{AppID: cfg.AppID, MetadataURL: cfg.MetadataURL, Logger: log})
	adapter := &core.BotFrameworkAdapter{
		AdapterSetting: core.AdapterSetting{AppID: cfg.AppID, AppPassword: cfg.AppPassword},
		TokenValidator: validator,
	}
	return &App{Handler: h, Store: store, Adapter: adapter, Log: log,
		Connector: NewConnector(ConnectorConfig{AppID: cfg.AppID, AppPassword: cfg.AppPassword, TokenURL: tokenURL})}
}

// maxActivityBytes bounds an incoming activity; real ones are a few kilobytes.
const maxActivityBytes = 256 << 10

// Register adds POST /api/messages to mux.
func (a *App) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /api/messages", a.serveMessages)
}

func (a *App) serveMessages(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxActivityBytes)
	act, err := a.Adapter.ParseRequest(r.Context(), r)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "activity too large", http.StatusRequestEntityTooLarge)
			return
		}
		a.Log.Warn().Err(err).Msg("rejected Bot Framework request")
		http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
		return
	}
	if act.Type == schema.Invoke {
		resp, err := a.Invoke(r.Context(), act)
		if err != nil {
			a.Log.Error().Err(err).Str("name", act.Name).Msg("teams invoke")
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
		return
	}
	if err := a.Activity(r.Context(), act); err != nil {
		a.Log.Error().Err(err).Str("type", string(act.Type)).Msg("teams activity")
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// firstDelivery records an activity's delivery by id: the Bot Connector retries, and a
// retry must not run a command twice.
func (a *App) firstDelivery(ctx context.Context, act schema.Activity) (bool, error) {
	if act.ID == "" {
		return true, nil
	}
	return a.Store.FirstDelivery(ctx, Platform, act.Conversation.ID+"|"+act.ID)
}

// Activity handles one authenticated activity (invokes go to Invoke).
func (a *App) Activity(ctx context.Context, act schema.Activity) error {
	first, err := a.firstDelivery(ctx, act)
	if err != nil || !first {
		return err
	}
	switch act.Type {
	case schema.ConversationUpdate:
		return a.conversationUpdate(ctx, act)
	case "installationUpdate":
		return a.installationUpdate(ctx, act)
	case schema.Message:
		return a.message(ctx, act)
	}
	return nil
}

func tenantOf(act schema.Activity) string {
	if t, ok := act.ChannelData["tenant"].(map[string]any); ok {
		id, _ := t["id"].(string)
		return id
	}
	return act.Conversation.TenantID
}

// personal says whether the activity comes from the user's personal chat with the bot;
// channels ("channel") and group chats ("groupChat") are seen by others.
func personal(act schema.Activity) bool {
	return act.Conversation.ConversationType == "" || act.Conversation.ConversationType == "personal"
}

// remember stores the personal-chat reference of the activity's sender.
func (a *App) remember(ctx context.Context, act schema.Activity, user schema.ChannelAccount) error {
	if user.AadObjectID == "" || !personal(act) {
		return nil
	}
	ref := activity.GetCoversationReference(act)
	return a.Store.SaveTeamsConversation(ctx, ledger.TeamsConversation{AADObjectID: user.AadObjectID, UserID: user.ID,
		ConversationID: ref.Conversation.ID, ServiceURL: ref.ServiceURL, TenantID: tenantOf(act), BotID: ref.Bot.ID, BotName: ref.Bot.Name})
}

// forget drops the stored personal chat the activity belongs to: the user removed the
// bot, so nothing more is sent there until they add it again.
func (a *App) forget(ctx context.Context, act schema.Activity, why string) error {
	if !personal(act) {
		return nil
	}
	removed, err := a.Store.DeleteTeamsConversation(ctx, act.Conversation.ID)
	if err != nil {
		return err
	}
	if removed {
		a.Log.Info().Str("conversation", act.Conversation.ID).Str("why", why).Msg("stored Teams conversation dropped")
	}
	return nil
}

// conversationUpdate stores the chat of a user who added the bot, so it can write first,
// and drops it when the bot is removed from that chat.
func (a *App) conversationUpdate(ctx context.Context, act schema.Activity) error {
	for _, m := range act.MembersRemoved {
		if m.ID == act.Recipient.ID {
			return a.forget(ctx, act, "bot removed from the conversation")
		}
	}
	if !personal(act) {
		return nil
	}
	for _, m := range act.MembersAdded {
		if m.ID == act.Recipient.ID {
			// The bot itself was added: the installing user is the sender.
			return a.remember(ctx, act, act.From)
		}
	}
	return nil
}

// installationUpdate follows the app's installation in a personal chat: "add" (and
// "add-upgrade") stores the chat, "remove" drops it.
// Source: Teams' "Conversation events" page, installationUpdate.
func (a *App) installationUpdate(ctx context.Context, act schema.Activity) error {
	switch act.Action {
	case "add", "add-upgrade":
		return a.remember(ctx, act, act.From)
	case "remove":
		return a.forget(ctx, act, "app uninstalled")
	}
	return nil
}

// mentionTag matches the bot's @mention in channel and group chat messages.
var mentionTag = regexp.MustCompile(`(?is)<at>.*?</at>`)

// origins a card may name for a redraw after an Action.Execute press.
var requestOrigin = regexp.MustCompile(`^request:([0-9]{1,18})$`)

func (a *App) message(ctx context.Context, act schema.Activity) error {
	if err := a.remember(ctx, act, act.From); err != nil {
		return err
	}
	p, err := a.person(ctx, act)
	var reply bot.Reply
	origin := ""
	switch {
	case err != nil:
		reply = a.failure(err)
	case len(act.Value) > 0:
		name, form := FormFrom(act.Value)
		action, ok := bot.ParseAction(name)
		if !ok {
			reply = bot.Reply{Blocks: []bot.Block{&bot.Text{Text: "That button is no longer supported. Type help to see what you can do."}}}
			break
		}
		if len(form) == 0 {
			form = nil
		}
		reply = a.Handler.Act(ctx, p, action, form)
		if action.Kind == bot.ActTeam {
			origin = "team"
		}
	default:
		text := strings.TrimSpace(mentionTag.ReplaceAllString(act.Text, ""))
		reply = a.Handler.Command(ctx, p, text)
		if bot.ParseCommand(text).Name == "team" {
			origin = "team"
		}
	}
	if personal(act) {
		_, err = a.send(ctx, act.ServiceURL, act.Conversation.ID, reply, origin)
		return err
	}
	return a.answerPrivately(ctx, act, p, err == nil, reply, origin)
}

// answerPrivately handles a command written in a channel or a group chat: everything the
// bot knows about a person is theirs alone, so the answer goes to their personal chat
// (opened if need be) and the conversation gets a short public pointer, never the answer.
func (a *App) answerPrivately(ctx context.Context, act schema.Activity, p ledger.Person, known bool, reply bot.Reply, origin string) error {
	pointer := "I answered you in our personal chat, where your tokens stay private."
	if !known {
		pointer = "I can't match you to the tokenpay directory from here. Open the tokenpay app and write to me in our personal chat."
	} else if c, err := a.personalChat(ctx, act); err != nil {
		a.Log.Warn().Err(err).Int64("person", p.ID).Msg("could not open a personal chat for a channel command")
		pointer = "Write to me in our personal chat (open the tokenpay app): answers about your tokens are private."
	} else if _, err := a.send(ctx, c.ServiceURL, c.ConversationID, reply, origin); err != nil {
		if !a.permanent(ctx, c, err) {
			return err
		}
		pointer = "I can't reach you in our personal chat. Open the tokenpay app there and ask again."
	}
	_, err := a.send(ctx, act.ServiceURL, act.Conversation.ID, bot.Reply{Public: true, Blocks: []bot.Block{&bot.Text{Text: pointer}}}, "")
	return err
}

// personalChat returns the sender's personal chat with the bot: the stored one, or one
// opened through the connector (and stored) when they never wrote to the bot directly.
func (a *App) personalChat(ctx context.Context, act schema.Activity) (ledger.TeamsConversation, error) {
	aad := act.From.AadObjectID
	if c, ok, err := a.Store.TeamsConversationFor(ctx, aad); err != nil || ok {
		return c, err
	}
	tenant := tenantOf(act)
	id, err := a.Connector.CreateConversation(ctx, act.ServiceURL, tenant, act.Recipient.ID, act.From.ID)
	if err != nil {
		return ledger.TeamsConversation{}, err
	}
	c := ledger.TeamsConversation{AADObjectID: aad, UserID: act.From.ID, ConversationID: id, ServiceURL: act.ServiceURL,
		TenantID: tenant, BotID: act.Recipient.ID, BotName: act.Recipient.Name}
	return c, a.Store.SaveTeamsConversation(ctx, c)
}

// Invoke answers an invoke activity. adaptiveCard/action is a Universal Action
// (Action.Execute): the action runs and the answer is the card to show in place of the
// pressed one, for the person who pressed it. The shape is the documented invoke
// response: {"statusCode": 200, "type": "application/vnd.microsoft.card.adaptive",
// "value": <card>}, or type "application/vnd.microsoft.activity.message" with a sentence.
// Source: Teams' "Universal Actions for Adaptive Cards" pages (Work with Universal
// Actions, invoke response).
func (a *App) Invoke(ctx context.Context, act schema.Activity) (InvokeResponse, error) {
	if act.Name != "adaptiveCard/action" {
		return InvokeResponse{StatusCode: http.StatusOK}, nil
	}
	if !personal(act) {
		return invokeMessage("Open our personal chat to do that: what you do with your tokens stays private."), nil
	}
	first, err := a.firstDelivery(ctx, act)
	if err != nil {
		return InvokeResponse{}, err
	}
	if err := a.remember(ctx, act, act.From); err != nil {
		return InvokeResponse{}, err
	}
	actionValue, _ := act.Value["action"].(map[string]any)
	data, _ := actionValue["data"].(map[string]any)
	name, form := FormFrom(data)
	if name == "" {
		name, _ = actionValue["verb"].(string)
	}
	origin, _ := data[originKey].(string)
	action, ok := bot.ParseAction(name)
	if !ok {
		return invokeMessage("That button is no longer supported. Type help to see what you can do."), nil
	}
	p, err := a.person(ctx, act)
	if err != nil {
		return invokeMessage(ledger.ErrorMessage(a.logged(err))), nil
	}
	if len(form) == 0 {
		form = nil
	}
	// A repeated delivery of the same press only redraws; paging changes nothing and
	// always runs.
	var reply bot.Reply
	if first || action.Kind == bot.ActTeam {
		reply = a.Handler.Act(ctx, p, action, form)
	}
	switch {
	case reply.Modal != nil:
		return invokeCard(CardFrom(reply, origin)), nil
	case action.Kind == bot.ActTeam:
		return invokeCard(CardFrom(reply, "team")), nil
	}
	// Redraw the card the press came from, with the answer on top.
	var redrawn bot.Reply
	switch m := requestOrigin.FindStringSubmatch(origin); {
	case origin == "team":
		redrawn = a.Handler.Command(ctx, p, "team")
	case m != nil:
		id, _ := strconv.ParseInt(m[1], 10, 64)
		if redrawn, err = a.Handler.ApprovalMessage(ctx, p, id); err != nil {
			return invokeMessage(ledger.ErrorMessage(a.logged(err))), nil
		}
	default:
		if !first {
			return invokeMessage("Done."), nil
		}
		return invokeCard(CardFrom(reply, origin)), nil
	}
	out := bot.Reply{Header: redrawn.Header}
	if first {
		out.Blocks = append(append(out.Blocks, reply.Blocks...), &bot.Divider{})
	}
	out.Blocks = append(out.Blocks, redrawn.Blocks...)
	return invokeCard(CardFrom(out, origin)), nil
}

// InvokeResponse is the body of the HTTP answer to an adaptiveCard/action invoke.
type InvokeResponse struct {
	StatusCode int    `json:"statusCode"`
	Type       string `json:"type,omitempty"`
	Value      any    `json:"value,omitempty"`
}

func invokeCard(c card) InvokeResponse {
	return InvokeResponse{StatusCode: http.StatusOK, Type: "application/vnd.microsoft.card.adaptive", Value: c}
}

func invokeMessage(s string) InvokeResponse {
	return InvokeResponse{StatusCode: http.StatusOK, Type: "application/vnd.microsoft.activity.message", Value: s}
}

// person finds the sender in the directory by their AAD object id; on first contact by the
// email the connector reports for them, then links them. The connector's record must
// carry the same AAD object id as the activity: the email of one account never links
// another.
func (a *App) person(ctx context.Context, act schema.Activity) (ledger.Person, error) {
	aad := act.From.AadObjectID
	if aad == "" {
		return ledger.Person{}, ledger.Errorf(ledger.NotFound, "I can't tell who you are in this chat. Write to me in a personal chat.")
	}
	// Finding someone only reads; the link and the preferred platform are written after
	// the answer, as in Slack: a person's message must not wait for the ledger's writer.
	p, err := a.Store.PersonByTeamsID(ctx, aad)
	if err == nil {
		if p.PreferredPlatform != Platform {
			id := p.ID
			a.background.Go(ctx, a.Log, "remember the preferred platform", func(ctx context.Context) error {
				return a.Store.SetPreferredPlatform(ctx, id, Platform)
			})
			p.PreferredPlatform = Platform
		}
		return p, nil
	}
	if ledger.ErrorCode(err) != ledger.NotFound {
		return p, err
	}
	m, err := a.Connector.GetMember(ctx, act.ServiceURL, act.Conversation.ID, act.From.ID)
	if err != nil {
		return p, fmt.Errorf("look up Teams member: %w", err)
	}
	if m.AADObjectID == "" || !strings.EqualFold(m.AADObjectID, aad) {
		a.Log.Warn().Str("activity_aad", aad).Str("member_aad", m.AADObjectID).Msg("Teams member lookup does not match the sender; not linking")
		return p, ledger.Errorf(ledger.Forbidden, "I could not confirm your Teams account, so I can't link it to the directory. Ask your admin to check your Teams id.")
	}
	email := m.Email
	if email == "" {
		email = m.UserPrincipalName
	}
	p, err = a.Store.PersonByEmail(ctx, email)
	if ledger.ErrorCode(err) == ledger.NotFound {
		return p, ledger.Errorf(ledger.NotFound, "You are not in the tokenpay directory yet (I looked for %s). Ask your admin to add you.", email)
	}
	if err != nil {
		return p, err
	}
	id, tz := p.ID, act.LocalTimezone
	a.background.Go(ctx, a.Log, "link a Teams user", func(ctx context.Context) error {
		return a.Store.LinkChat(ctx, id, Platform, aad, tz)
	})
	p.TeamsUserID, p.PreferredPlatform = aad, Platform
	if tz != "" {
		p.TimeZone = tz
	}
	return p, nil
}

func (a *App) failure(err error) bot.Reply {
	return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: ledger.ErrorMessage(a.logged(err))}}}
}

// logged logs an internal error and returns err.
func (a *App) logged(err error) error {
	if ledger.ErrorCode(err) == ledger.Internal {
		a.Log.Error().Err(err).Msg("teams request failed")
	}
	return err
}

// cardActivity wraps a reply as a message with one Adaptive Card; origin names the card
// for redraws after an Action.Execute press.
func cardActivity(r bot.Reply, origin string) schema.Activity {
	// The summary is what Teams shows in a notification or the chat list instead of
	// "Card", so a manager sees who asks for what before opening it.
	return schema.Activity{Type: schema.Message, Summary: summary(r), Attachments: []schema.Attachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: CardFrom(r, origin)}}}
}

// summary is the reply's one line for notifications: its Summary, else its header or
// first line of text, without markup.
func summary(r bot.Reply) string {
	s := r.Summary
	if s == "" {
		s = r.Header
	}
	for _, b := range r.Blocks {
		if s != "" {
			break
		}
		if t, ok := b.(*bot.Text); ok {
			s, _, _ = strings.Cut(t.Text, "\n")
		}
	}
	var b strings.Builder
	for _, sp := range spans(s) {
		b.WriteString(sp.text)
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if r := []rune(out); len(r) > 200 {
		out = string(r[:199]) + "…"
	}
	return out
}

func (a *App) send(ctx context.Context, serviceURL, conversationID string, r bot.Reply, origin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return a.Connector.SendToConversation(ctx, serviceURL, conversationID, cardActivity(r, origin))
}

// conversation returns where to reach a person proactively.
func (a *App) conversation(ctx context.Context, p ledger.Person) (ledger.TeamsConversation, error) {
	if p.TeamsUserID == "" {
		return ledger.TeamsConversation{}, fmt.Errorf("%s: %w", p.Email, bot.ErrUnreachable)
	}
	c, ok, err := a.Store.TeamsConversationFor(ctx, p.TeamsUserID)
	if err != nil {
		return c, err
	}
	if !ok {
		return c, fmt.Errorf("%s has no personal chat with the bot in Teams (never installed, or removed it): %w", p.Email, bot.ErrUnreachable)
	}
	return c, nil
}

// Reaches implements bot.Reacher: Teams reaches a person while it holds a personal chat
// with them.
func (a *App) Reaches(ctx context.Context, p ledger.Person) bool {
	if p.TeamsUserID == "" {
		return false
	}
	_, ok, err := a.Store.TeamsConversationFor(ctx, p.TeamsUserID)
	return ok || err != nil // a failing store is no proof that the chat is gone
}

// permanent reports whether err is the connector's permanent refusal of conversation c:
// 403 (the user blocked or removed the bot) or 404 (the conversation is gone). Such a
// conversation is dropped once, so nothing more is tried there (no retries, no repeat on
// every later message) until the user adds the bot again.
func (a *App) permanent(ctx context.Context, c ledger.TeamsConversation, err error) bool {
	var serr *StatusError
	if !errors.As(err, &serr) || (serr.StatusCode != http.StatusForbidden && serr.StatusCode != http.StatusNotFound) {
		return false
	}
	removed, derr := a.Store.DeleteTeamsConversation(context.WithoutCancel(ctx), c.ConversationID)
	if derr != nil {
		a.Log.Error().Err(derr).Str("conversation", c.ConversationID).Msg("could not drop an unreachable Teams conversation")
	}
	if removed {
		a.Log.Warn().Int("status", serr.StatusCode).Str("conversation", c.ConversationID).Str("body", serr.Body).
			Msg("Teams conversation unreachable; dropped until the user adds the bot again")
	}
	return true
}

// Direct implements bot.Notifier: a proactive message in the person's personal chat. A
// permanent refusal (403, 404) is bot.ErrUnreachable, so the router tries the person's
// other platform and the outbox does not retry.
func (a *App) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	c, err := a.conversation(ctx, to)
	if err != nil {
		return err
	}
	id, err := a.send(ctx, c.ServiceURL, c.ConversationID, r, "")
	var serr *StatusError
	switch {
	case err == nil:
	case a.permanent(ctx, c, err):
		return fmt.Errorf("%s: %w: %w", to.Email, bot.ErrUnreachable, err)
	case errors.As(err, &serr) && serr.StatusCode == http.StatusTooManyRequests:
		// Throttled beyond the connector's own retries: the outbox waits as asked.
		return &bot.RetryAfterError{After: max(serr.RetryAfter, time.Second), Err: err}
	default:
		return err
	}
	bot.RecordDelivery(ctx, bot.Delivery{Platform: Platform, Channel: c.ConversationID, MessageID: id})
	return nil
}

// Approval implements bot.Notifier: a card to each decider in their personal chat, replaced
// in place (update activity) once something changes.
func (a *App) Approval(ctx context.Context, v bot.RequestView) error {
	prefix := fmt.Sprintf("request:%d:", v.Request.ID)
	known, err := a.Store.MessageRefsWithPrefix(ctx, Platform, prefix)
	if err != nil {
		return err
	}
	act := cardActivity(v.Message, fmt.Sprintf("request:%d", v.Request.ID))
	var errs []error
	for _, ref := range known {
		if err := a.Connector.UpdateActivity(ctx, ref.ThreadID, ref.Channel, ref.MessageID, act); err != nil {
			if a.permanent(ctx, ledger.TeamsConversation{ConversationID: ref.Channel}, err) {
				continue
			}
			errs = append(errs, err)
		}
	}
	if v.Request.Status != ledger.RequestPending {
		return errors.Join(errs...)
	}
	reached := len(known) > 0
	for _, d := range v.Deciders {
		subject := prefix + d.Email
		if _, done := known[subject]; done || d.TeamsUserID == "" {
			continue
		}
		c, err := a.conversation(ctx, d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id, err := a.Connector.SendToConversation(ctx, c.ServiceURL, c.ConversationID, act)
		if err != nil {
			if a.permanent(ctx, c, err) {
				err = fmt.Errorf("%s: %w: %w", d.Email, bot.ErrUnreachable, err)
			}
			errs = append(errs, err)
			continue
		}
		reached = true
		// ThreadID holds the service URL: an update must go back to the same endpoint.
		if err := a.Store.SaveMessageRef(ctx, Platform, subject, ledger.MessageRef{Channel: c.ConversationID, MessageID: id, ThreadID: c.ServiceURL}); err != nil {
			errs = append(errs, err)
		}
	}
	if !reached && len(errs) > 0 {
		return fmt.Errorf("approval card of request %d: %w", v.Request.ID, errors.Join(errs...))
	}
	return errors.Join(errs...)
}
