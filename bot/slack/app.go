package slack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
)

// Platform is the name Slack goes by in the ledger (links, message refs, preferences).
const Platform = "slack"

// Config is what the Slack adapter needs from the environment.
type Config struct {
	BotToken      string
	SigningSecret string
	AppToken      string // Socket Mode when set
	APIURL        string // Web API base override (GovSlack, tests); empty: slack.com
	// ApprovalsChannel receives approval messages; empty means each decider gets a DM.
	ApprovalsChannel string
	// TeamID, when set (SLACK_TEAM_ID), is the only workspace (T…) or Enterprise Grid
	// organisation (E…) whose requests are served; others are refused.
	TeamID string
}

// App is the Slack adapter: it turns Slack requests into calls on the core handler and
// renders the answers, and it implements bot.Notifier for messages the core sends.
type App struct {
	Handler *bot.Handler
	Store   ledger.Store
	Client  *slack.Client
	Config  Config
	Log     zerolog.Logger
	// Verifier checks request signatures with the real clock (TOKENPAY_NOW must not
	// freeze signature windows).
	Verifier Verifier
	// AckTimeout is how long a slash command may take before it is answered later
	// through response_url (Slack wants an answer within 3 s).
	AckTimeout time.Duration
	// HTTP posts to response_url.
	HTTP *http.Client
	// Budget, when set, is the workspace's send budget shared with the outbox: every
	// chat.postMessage that is not the outbox's takes its slot at once, so that approvals
	// and replies go ahead of digests, and their 429s slow the outbox down.
	Budget *bot.Budget
	// bulk is Client without slack-go's own waiting on 429: the outbox's Direct reports a
	// 429 at once, so that its Budget adapts.
	bulk *slack.Client

	background bot.Background
	// stopped is set once the app is uninstalled or its bot token revoked: nothing more is
	// sent to the workspace until a restart with a new token.
	stopped atomic.Bool
	dmMu    sync.Mutex
	dms     map[string]string // user id -> DM channel id
}

// New builds the adapter with the real slack-go client pointed at cfg.APIURL.
func New(cfg Config, h *bot.Handler, store ledger.Store, log zerolog.Logger) *App {
	a := &App{Handler: h, Store: store, Config: cfg, Log: log.With().Str("platform", Platform).Logger(),
		Verifier: Verifier{Secret: []byte(cfg.SigningSecret), Now: time.Now}, AckTimeout: 2 * time.Second, dms: map[string]string{}}
	a.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: &budgetTransport{app: a, base: http.DefaultTransport}}
	retry := slack.DefaultRetryConfig()
	retry.MaxRetries = 4
	retry.Handlers = []slack.RetryHandler{slack.NewConnectionErrorRetryHandler(), slack.NewRateLimitErrorRetryHandler(retry),
		slack.NewServerErrorRetryHandler(retry)}
	bulkRetry := retry
	bulkRetry.Handlers = []slack.RetryHandler{slack.NewConnectionErrorRetryHandler(), slack.NewServerErrorRetryHandler(bulkRetry)}
	opts := []slack.Option{slack.OptionHTTPClient(a.HTTP)}
	if cfg.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
	}
	if cfg.AppToken != "" {
		opts = append(opts, slack.OptionAppLevelToken(cfg.AppToken))
	}
	a.Client = slack.New(cfg.BotToken, append(opts, slack.OptionRetryConfig(retry))...)
	a.bulk = slack.New(cfg.BotToken, append(opts, slack.OptionRetryConfig(bulkRetry))...)
	return a
}

// budgetTransport tells the workspace's Budget about every chat.postMessage that is not
// the outbox's (bot.IsBulk): it takes its slot without waiting, and a 429 it meets slows
// the outbox as much as one of its own.
type budgetTransport struct {
	app  *App
	base http.RoundTripper
}

func (t *budgetTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b := t.app.Budget
	if b == nil || bot.IsBulk(r.Context()) || !strings.HasSuffix(r.URL.Path, "/chat.postMessage") {
		return t.base.RoundTrip(r)
	}
	start := time.Now()
	b.Take(start)
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		b.Throttled(start, time.Now(), time.Duration(max(after, 1))*time.Second)
	}
	return resp, err
}

// Wait blocks until background work started by requests (late answers, notifications)
// has finished; serve calls it on shutdown.
func (a *App) Wait() { a.background.Wait() }

// goBackground runs fn after the request that started it has been answered (bot.Background).
func (a *App) goBackground(ctx context.Context, what string, fn func(ctx context.Context) error) {
	a.background.Go(ctx, a.Log, what, fn)
}

// person finds who is behind a Slack user: by linked id, else by their Slack email on first
// contact (then linked, with their time zone).
//
// Finding someone only reads; what it records (the link, the preferred platform) is
// written after the answer, because a write waits for the ledger's write in progress (a
// usage batch, under full ingestion) and a person's command must not. Until the link lands
// a second command finds them by email again, which is what the link spares, not what it
// decides.
func (a *App) person(ctx context.Context, userID string) (ledger.Person, error) {
	p, err := a.Store.PersonBySlackID(ctx, userID)
	if err == nil {
		if p.PreferredPlatform != Platform {
			id := p.ID
			a.goBackground(ctx, "remember the preferred platform", func(ctx context.Context) error {
				return a.Store.SetPreferredPlatform(ctx, id, Platform)
			})
			p.PreferredPlatform = Platform
		}
		return p, nil
	}
	if ledger.ErrorCode(err) != ledger.NotFound {
		return p, err
	}
	u, err := a.Client.GetUserInfoContext(ctx, userID)
	var slackErr slack.SlackErrorResponse
	if errors.As(err, &slackErr) {
		return p, ledger.Errorf(ledger.NotFound, "I couldn't look up your Slack account (%s). Ask your tokenpay admin to add your Slack user id (%s) to the directory.", slackErr.Err, userID)
	}
	if err != nil {
		return p, fmt.Errorf("users.info %s: %w", userID, err)
	}
	if why := noEmail(u); why != "" {
		return p, ledger.Errorf(ledger.NotFound, "%s", why)
	}
	p, err = a.Store.PersonByEmail(ctx, u.Profile.Email)
	if ledger.ErrorCode(err) == ledger.NotFound {
		return p, ledger.Errorf(ledger.NotFound, "You are not in the tokenpay directory yet (I looked for %s). Ask your admin to add you.", u.Profile.Email)
	}
	if err != nil {
		return p, err
	}
	id, tz := p.ID, u.TZ
	a.goBackground(ctx, "link a Slack user", func(ctx context.Context) error {
		return a.Store.LinkChat(ctx, id, Platform, userID, tz)
	})
	p.SlackUserID, p.PreferredPlatform = userID, Platform
	if tz != "" {
		p.TimeZone = tz
	}
	return p, nil
}

// noEmail says why a Slack account cannot use tokenpay when it has no email to be found
// by, or "" when it has one. Slack shows no email for bots and apps, and guests' emails
// only to some apps (https://docs.slack.dev/reference/methods/users.info).
func noEmail(u *slack.User) string {
	switch {
	case u.IsBot || u.IsAppUser:
		return "tokenpay is for people: this is a bot or app account, so it has no AI token allowance."
	case u.Profile.Email != "":
		return ""
	case u.IsRestricted || u.IsUltraRestricted:
		return fmt.Sprintf("tokenpay finds people by the email of their Slack account, and Slack does not show it for guest accounts like yours, so I can't tell who you are. If you should have an AI token allowance, ask your tokenpay admin to add your Slack user id (%s) to the directory.", u.ID)
	}
	return fmt.Sprintf("tokenpay finds people by the email of their Slack account, and Slack does not show me yours, so I can't tell who you are. Ask your tokenpay admin to add your Slack user id (%s) to the directory.", u.ID)
}

// ourWorkspace says whether a request comes from the configured workspace or Enterprise
// Grid organisation; any when SLACK_TEAM_ID is not set.
func (a *App) ourWorkspace(teamID, enterpriseID string) bool {
	want := a.Config.TeamID
	return want == "" || teamID == want || (enterpriseID != "" && enterpriseID == want)
}

// refused logs a request from another workspace; true when it must be refused.
func (a *App) refused(what, teamID, enterpriseID string) bool {
	if a.ourWorkspace(teamID, enterpriseID) {
		return false
	}
	a.Log.Warn().Str("team", teamID).Str("enterprise", enterpriseID).Str("request", what).
		Msg("refused a Slack request from a workspace other than SLACK_TEAM_ID")
	return true
}

// otherWorkspace is what a person in another workspace reads.
const otherWorkspace = "This tokenpay serves another Slack workspace, so it can't answer you here. Ask your tokenpay admin which workspace to use."

// errStopped is why nothing is sent once the app was uninstalled or its token revoked.
var errStopped = fmt.Errorf("the Slack app was uninstalled or its token revoked: %w", bot.ErrUnreachable)

// stop ends delivery to the workspace, saying so in one log line however often Slack
// tells us, and records it so that a restart with the same token sends nothing either.
func (a *App) stop(ctx context.Context, teamID, why string) {
	if !a.stopped.CompareAndSwap(false, true) {
		return
	}
	a.Log.Warn().Str("team", teamID).Str("reason", why).
		Msg("Slack delivery stopped: nothing more is sent to this workspace; reinstall the app and restart with its new SLACK_BOT_TOKEN")
	if err := a.Store.StopSlack(context.WithoutCancel(ctx), a.tokenHash(), ledger.SlackStop{TeamID: teamID, Reason: why}); err != nil {
		a.Log.Error().Err(err).Msg("could not record that Slack delivery stopped; it stops until the next restart")
	}
}

// tokenHash names the bot token without keeping it: its SHA-256, in hex.
func (a *App) tokenHash() string {
	sum := sha256.Sum256([]byte(a.Config.BotToken))
	return hex.EncodeToString(sum[:])
}

// Restore stops delivery at start when an earlier process saw this bot token uninstalled
// or revoked, saying so in one log line.
func (a *App) Restore(ctx context.Context) error {
	s, ok, err := a.Store.SlackStopped(ctx, a.tokenHash())
	if err != nil || !ok {
		return err
	}
	a.stopped.Store(true)
	a.Log.Warn().Str("team", s.TeamID).Str("reason", s.Reason).Time("since", s.StoppedAt).
		Msg("Slack delivery stays stopped: this bot token was uninstalled or revoked; reinstall the app and restart with its new SLACK_BOT_TOKEN")
	return nil
}

// checkRevoked stops delivery when the Web API says the token no longer works (a restart
// after an uninstall nobody saw), and passes err on.
func (a *App) checkRevoked(ctx context.Context, err error) error {
	var slackErr slack.SlackErrorResponse
	if errors.As(err, &slackErr) {
		switch slackErr.Err {
		case "token_revoked", "account_inactive", "invalid_auth", "not_authed", "team_disabled":
			a.stop(ctx, a.Config.TeamID, "Slack answered "+slackErr.Err)
			return fmt.Errorf("%w (%v)", errStopped, err)
		}
	}
	return err
}

// commandResponse is the body of a slash command's answer (inline or via response_url).
type commandResponse struct {
	ResponseType    string        `json:"response_type"`
	ReplaceOriginal bool          `json:"replace_original"`
	Text            string        `json:"text"`
	Blocks          []slack.Block `json:"blocks,omitempty"`
}

func responseFor(r bot.Reply) commandResponse {
	t := "ephemeral"
	if r.Public {
		t = "in_channel"
	}
	return commandResponse{ResponseType: t, Text: Fallback(r), Blocks: Blocks(r)}
}

// failure turns an error met before the core could answer into a reply.
func (a *App) failure(err error) bot.Reply {
	if ledger.ErrorCode(err) == ledger.Internal {
		a.Log.Error().Err(err).Msg("slack request failed")
	}
	return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: ledger.ErrorMessage(err)}}}
}

// allowedResponseURL keeps response_url posts on Slack's hosts (or the configured API
// host, for GovSlack and tests), so a payload can never make the bot post elsewhere.
func (a *App) allowedResponseURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User != nil {
		return false
	}
	if u.Scheme == "https" && (u.Host == "hooks.slack.com" || u.Host == "hooks.slack-gov.com") {
		return true
	}
	if api, err := url.Parse(a.Config.APIURL); err == nil && a.Config.APIURL != "" {
		return u.Scheme == api.Scheme && u.Host == api.Host
	}
	return false
}

// respond posts a reply to a response_url (valid 30 minutes, five times).
func (a *App) respond(ctx context.Context, url string, r bot.Reply) error {
	if !a.allowedResponseURL(url) {
		return fmt.Errorf("response_url %q is not on a Slack host", url)
	}
	body, err := json.Marshal(responseFor(r))
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("response_url: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("response_url answered %s", resp.Status)
	}
	return nil
}

// modalMetadata travels in a modal's private_metadata so the submission can answer where
// the modal was opened.
type modalMetadata struct {
	Channel     string `json:"c,omitempty"`
	ResponseURL string `json:"r,omitempty"`
}

func (a *App) openModal(ctx context.Context, triggerID string, m *bot.Modal, meta modalMetadata) error {
	v := Modal(m)
	raw, _ := json.Marshal(meta)
	if len(raw) <= 3000 {
		v.PrivateMetadata = string(raw)
	}
	if _, err := a.Client.OpenViewContext(ctx, triggerID, v); err != nil {
		return fmt.Errorf("views.open: %w", err)
	}
	return nil
}

// formFailed is what a person reads when a form could not be opened: why, and a button
// that opens it again (a press brings a fresh trigger_id), never silence.
func (a *App) formFailed(err error, again bot.Action) bot.Reply {
	a.Log.Warn().Err(err).Str("action", again.String()).Msg("could not open a Slack form")
	msg := "I couldn't open the form"
	var slackErr slack.SlackErrorResponse
	switch {
	case errors.As(err, &slackErr) && slackErr.Err == "expired_trigger_id":
		msg += ": Slack gives an app 3 seconds to open it, and that time ran out."
	case errors.As(err, &slackErr):
		msg += fmt.Sprintf(" (Slack answered %q).", slackErr.Err)
	default:
		msg += ": Slack did not answer in time."
	}
	if again.Kind == "" {
		return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: msg + " Type the command again to retry."}}}
	}
	return bot.Reply{Blocks: []bot.Block{&bot.Text{Text: msg + " Press the button to try again."},
		&bot.Buttons{Buttons: []bot.Button{{Label: "Try again", Action: again, Style: bot.StylePrimary}}}}}
}

// dm returns the DM channel with a user, opening it once.
func (a *App) dm(ctx context.Context, userID string) (string, error) {
	a.dmMu.Lock()
	ch, ok := a.dms[userID]
	a.dmMu.Unlock()
	if ok {
		return ch, nil
	}
	c, _, _, err := a.Client.OpenConversationContext(ctx, &slack.OpenConversationParameters{Users: []string{userID}})
	if err != nil {
		return "", fmt.Errorf("conversations.open %s: %w", userID, err)
	}
	a.dmMu.Lock()
	a.dms[userID] = c.ID
	a.dmMu.Unlock()
	return c.ID, nil
}

// Direct implements bot.Notifier: a DM from the bot. It posts to the user id itself:
// chat.postMessage with a user id as channel posts in the app's DM with that user
// (https://docs.slack.dev/reference/methods/chat.postMessage, argument channel), so a
// cold process makes no conversations.open (Tier 3) per message; Slack answers with the
// DM's channel id, which is recorded for later updates. In a bulk ctx (the outbox) a 429
// is returned at once as a bot.RetryAfterError.
func (a *App) Direct(ctx context.Context, to ledger.Person, r bot.Reply) error {
	if to.SlackUserID == "" {
		return fmt.Errorf("direct message to %s: %w", to.Email, bot.ErrUnreachable)
	}
	if a.stopped.Load() {
		return fmt.Errorf("direct message to %s: %w", to.Email, errStopped)
	}
	client := a.Client
	if bot.IsBulk(ctx) {
		client = a.bulk
	}
	ch, ts, err := client.PostMessageContext(ctx, to.SlackUserID, slack.MsgOptionText(Fallback(r), false), slack.MsgOptionBlocks(Blocks(r)...))
	if err != nil {
		return retryAfter(a.checkRevoked(ctx, fmt.Errorf("chat.postMessage to %s: %w", to.Email, err)))
	}
	bot.RecordDelivery(ctx, bot.Delivery{Platform: Platform, Channel: ch, MessageID: ts})
	return nil
}

// retryAfter passes on a 429 that outlived slack-go's own retries as a bot.RetryAfterError,
// so that the caller (the outbox) waits as long as Slack asked.
func retryAfter(err error) error {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return &bot.RetryAfterError{After: rl.RetryAfter, Err: err}
	}
	return err
}

var errNoChannel = errors.New("no approvals channel and no decider on Slack")
