package teams

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/infracloudio/msbotbuilder-go/core"
	"github.com/infracloudio/msbotbuilder-go/core/activity"
	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
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
	Store     *sqlite.DB
	Connector *Connector
	Adapter   *core.BotFrameworkAdapter
	Log       zerolog.Logger
}

// New wires the adapter. Its validator and connector use the real clock: tokens expire in
// real time even when TOKENPAY_NOW fixes the ledger's.
func New(cfg Config, h *bot.Handler, store *sqlite.DB, log zerolog.Logger) *App {
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
	if err := a.Activity(r.Context(), act); err != nil {
		a.Log.Error().Err(err).Str("type", string(act.Type)).Msg("teams activity")
		http.Error(w, "try again", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Activity handles one authenticated activity. Deliveries are recorded by id first:
// the Bot Connector retries, and a retry must not run a command twice.
func (a *App) Activity(ctx context.Context, act schema.Activity) error {
	if act.ID != "" {
		first, err := a.Store.FirstDelivery(ctx, Platform, act.Conversation.ID+"|"+act.ID)
		if err != nil {
			return err
		}
		if !first {
			return nil
		}
	}
	switch act.Type {
	case schema.ConversationUpdate, "installationUpdate":
		return a.installed(ctx, act)
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

func personal(act schema.Activity) bool {
	return act.Conversation.ConversationType == "" || act.Conversation.ConversationType == "personal"
}

// remember stores the personal-chat reference of the activity's sender.
func (a *App) remember(ctx context.Context, act schema.Activity, user schema.ChannelAccount) error {
	if user.AadObjectID == "" || !personal(act) {
		return nil
	}
	ref := activity.GetCoversationReference(act)
	return a.Store.SaveTeamsConversation(ctx, sqlite.TeamsConversation{AADObjectID: user.AadObjectID, UserID: user.ID,
		ConversationID: ref.Conversation.ID, ServiceURL: ref.ServiceURL, TenantID: tenantOf(act), BotID: ref.Bot.ID, BotName: ref.Bot.Name})
}

// installed stores the conversation of a user who added the bot, so it can write first.
func (a *App) installed(ctx context.Context, act schema.Activity) error {
	if !personal(act) {
		return nil
	}
	for _, m := range act.MembersAdded {
		if m.ID == act.Recipient.ID {
			// The bot itself was added: the installing user is the sender.
			return a.remember(ctx, act, act.From)
		}
	}
	if act.Action == "add" {
		return a.remember(ctx, act, act.From)
	}
	return nil
}

// mentionTag matches the bot's @mention in channel and group chat messages.
var mentionTag = regexp.MustCompile(`(?is)<at>.*?</at>`)

func (a *App) message(ctx context.Context, act schema.Activity) error {
	if err := a.remember(ctx, act, act.From); err != nil {
		return err
	}
	p, err := a.person(ctx, act)
	var reply bot.Reply
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
	default:
		text := strings.TrimSpace(mentionTag.ReplaceAllString(act.Text, ""))
		reply = a.Handler.Command(ctx, p, text)
	}
	_, err = a.send(ctx, act.ServiceURL, act.Conversation.ID, reply)
	return err
}

// person finds the sender in the directory by their AAD object id; on first contact by the
// email the connector reports for them, then links them.
func (a *App) person(ctx context.Context, act schema.Activity) (ledger.Person, error) {
	aad := act.From.AadObjectID
	if aad == "" {
		return ledger.Person{}, ledger.Errorf(ledger.NotFound, "I can't tell who you are in this chat. Write to me in a personal chat.")
	}
	p, err := a.Store.PersonByTeamsID(ctx, aad)
	if err == nil {
		if p.PreferredPlatform != Platform {
			if err := a.Store.SetPreferredPlatform(ctx, p.ID, Platform); err != nil {
				return p, err
			}
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
	if err := a.Store.LinkChat(ctx, p.ID, Platform, aad, act.LocalTimezone); err != nil {
		return p, err
	}
	return a.Store.PersonByID(ctx, p.ID)
}

func (a *App) failure(err error) bot.Reply {
	if ledger.ErrorCode(err) == ledger.Internal {
		a.Log.Error().Err(err).Msg("teams request failed")
	}
	return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: ledger.ErrorMessage(err)}}}
}

// cardActivity wraps a reply as a message with one Adaptive Card.
func cardActivity(r bot.Reply) schema.Activity {
	return schema.Activity{Type: schema.Message, Attachments: []schema.Attachment{{
		ContentType: "application/vnd.microsoft.card.adaptive", Content: Card(r)}}}
}

func (a *App) send(ctx context.Context, serviceURL, conversationID string, r bot.Reply) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return a.Connector.SendToConversation(ctx, serviceURL, conversationID, cardActivity(r))
}

// conversation returns where to reach a person proactively.
func (a *App) conversation(ctx context.Context, p ledger.Person) (sqlite.TeamsConversation, error) {
	if p.TeamsUserID == "" {
		return sqlite.TeamsConversation{}, fmt.Errorf("%s: %w", p.Email, bot.ErrUnreachable)
	}
	c, ok, err := a.Store.TeamsConversationFor(ctx, p.TeamsUserID)
	if err != nil {
		return c, err
	}
	if !ok {
		return c, fmt.Errorf("%s has not installed the bot in Teams: %w", p.Email, bot.ErrUnreachable)
	}
	return c, nil
}

// Direct implements bot.Notifier: a proactive message in the person's personal chat.
func (a *App) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	c, err := a.conversation(ctx, to)
	if err != nil {
		return err
	}
	id, err := a.send(ctx, c.ServiceURL, c.ConversationID, r)
	var serr *StatusError
	if errors.As(err, &serr) && serr.StatusCode == http.StatusTooManyRequests {
		// Throttled beyond the connector's own retries: the outbox waits as asked.
		return &bot.RetryAfterError{After: max(serr.RetryAfter, time.Second), Err: err}
	}
	if err != nil {
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
	act := cardActivity(v.Message)
	var errs []error
	for _, ref := range known {
		if err := a.Connector.UpdateActivity(ctx, ref.ThreadID, ref.Channel, ref.MessageID, act); err != nil {
			errs = append(errs, err)
		}
	}
	if v.Request.Status != ledger.RequestPending {
		return errors.Join(errs...)
	}
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
			errs = append(errs, err)
			continue
		}
		// ThreadID holds the service URL: an update must go back to the same endpoint.
		if err := a.Store.SaveMessageRef(ctx, Platform, subject, sqlite.MessageRef{Channel: c.ConversationID, MessageID: id, ThreadID: c.ServiceURL}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
