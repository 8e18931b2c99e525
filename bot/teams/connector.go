package teams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/tokenpay/tokenpay/bot"
)

const (
	defaultTokenURL   = "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token"
	defaultTokenScope = "https://api.botframework.com/.default"
	defaultMaxRetries = 4
	// A token is replaced this long before it expires, so one never lapses mid-request.
	tokenRefreshMargin = 5 * time.Minute
	// Backoff follows Teams' rate-limit guidance: exponential from 2 s, capped at 20 s,
	// plus up to a second of jitter so throttled senders do not retry in lockstep.
	backoffBase   = 2 * time.Second
	backoffMax    = 20 * time.Second
	backoffJitter = time.Second
	maxReplyBytes = 1 << 20
	snippetBytes  = 512
)

// ConnectorConfig configures a Connector; zero fields take the documented defaults.
type ConnectorConfig struct {
	AppID, AppPassword string
	// TokenURL is the OAuth client-credentials endpoint; single-tenant bots use
	// https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
	TokenURL   string
	Scope      string       // default "https://api.botframework.com/.default"
	HTTPClient *http.Client // default: 15 s timeout
	MaxRetries int          // 0 means 4; negative means no retries
	Now        func() time.Time
	Sleep      func(ctx context.Context, d time.Duration) error // default: a timer that honours ctx
}

// Connector sends activities to the Bot Connector service. It replaces the library's
// client, which has no timeouts, an unlocked token cache, panics when the token endpoint
// is unreachable, drops the response body and ignores Retry-After.
type Connector struct {
	cfg ConnectorConfig

	// mu guards the cached token and is held while fetching one, so concurrent senders
	// share a single token request.
	mu          sync.Mutex
	token       string
	tokenExpiry time.Time
}

// StatusError is a non-2xx answer from the Bot Connector. Callers can tell permanent
// failures (403: the user blocked the bot; 404: the conversation is gone) from the rest.
type StatusError struct {
	Method, URL string
	StatusCode  int
	Body        string // the start of the response body
	// RetryAfter is what the service asked to wait (429, 503), zero when it did not say.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.URL, e.StatusCode, e.Body)
}

// NewConnector returns a Connector with cfg's defaults filled in.
func NewConnector(cfg ConnectorConfig) *Connector {
	if cfg.TokenURL == "" {
		cfg.TokenURL = defaultTokenURL
	}
	if cfg.Scope == "" {
		cfg.Scope = defaultTokenScope
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	switch {
	case cfg.MaxRetries == 0:
		cfg.MaxRetries = defaultMaxRetries
	case cfg.MaxRetries < 0:
		cfg.MaxRetries = 0
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	return &Connector{cfg: cfg}
}

// SendToConversation posts activity to a conversation and returns the new activity's id,
// which is empty if the channel returns none.
func (c *Connector) SendToConversation(ctx context.Context, serviceURL, conversationID string, activity schema.Activity) (string, error) {
	if conversationID == "" {
		return "", errors.New("send to conversation: empty conversation id")
	}
	endpoint, err := connectorURL(serviceURL, "v3", "conversations", conversationID, "activities")
	if err != nil {
		return "", fmt.Errorf("send to conversation: %w", err)
	}
	var resp schema.ResourceResponse
	if err := c.call(ctx, http.MethodPost, endpoint, activity, &resp); err != nil {
		return "", fmt.Errorf("send to conversation %s: %w", conversationID, err)
	}
	return resp.ID, nil
}

// UpdateActivity replaces an activity in place, as done for an approval card after the
// decision.
func (c *Connector) UpdateActivity(ctx context.Context, serviceURL, conversationID, activityID string, activity schema.Activity) error {
	if conversationID == "" || activityID == "" {
		return errors.New("update activity: empty conversation or activity id")
	}
	endpoint, err := connectorURL(serviceURL, "v3", "conversations", conversationID, "activities", activityID)
	if err != nil {
		return fmt.Errorf("update activity: %w", err)
	}
	activity.ID = activityID
	if err := c.call(ctx, http.MethodPut, endpoint, activity, nil); err != nil {
		return fmt.Errorf("update activity %s in %s: %w", activityID, conversationID, err)
	}
	return nil
}

// Member is what the connector knows about a user of a conversation.
type Member struct {
	ID                string `json:"id"`
	Name              string `json:"name"`
	AADObjectID       string `json:"aadObjectId"`
	Email             string `json:"email"`
	UserPrincipalName string `json:"userPrincipalName"`
}

// GetMember looks a user up in a conversation (GET …/members/{id}); Teams answers with
// their email, which links them to the directory on first contact.
func (c *Connector) GetMember(ctx context.Context, serviceURL, conversationID, userID string) (Member, error) {
	var m Member
	endpoint, err := connectorURL(serviceURL, "v3", "conversations", conversationID, "members", userID)
	if err != nil {
		return m, fmt.Errorf("get member: %w", err)
	}
	if err := c.call(ctx, http.MethodGet, endpoint, nil, &m); err != nil {
		return m, fmt.Errorf("get member %s: %w", userID, err)
	}
	return m, nil
}

// createConversation is the body of a proactive 1:1 chat. schema.ConversationParameters
// is not used because it always serialises an empty activity.
type createConversation struct {
	IsGroup     bool                    `json:"isGroup"`
	Bot         schema.ChannelAccount   `json:"bot"`
	Members     []schema.ChannelAccount `json:"members"`
	TenantID    string                  `json:"tenantId,omitempty"`
	ChannelData map[string]any          `json:"channelData"`
}

// CreateConversation opens (or finds) the 1:1 chat between the bot and a user, for
// proactive messages, and returns its conversation id.
func (c *Connector) CreateConversation(ctx context.Context, serviceURL, tenantID, botID, userID string) (string, error) {
	if tenantID == "" || botID == "" || userID == "" {
		return "", errors.New("create conversation: tenant, bot and user ids are required")
	}
	endpoint, err := connectorURL(serviceURL, "v3", "conversations")
	if err != nil {
		return "", fmt.Errorf("create conversation: %w", err)
	}
	body := createConversation{
		Bot:         schema.ChannelAccount{ID: botID},
		Members:     []schema.ChannelAccount{{ID: userID}},
		TenantID:    tenantID,
		ChannelData: map[string]any{"tenant": map[string]string{"id": tenantID}},
	}
	var resp schema.ConversationResourceResponse
	if err := c.call(ctx, http.MethodPost, endpoint, body, &resp); err != nil {
		return "", fmt.Errorf("create conversation with %s: %w", userID, err)
	}
	if resp.ID == "" {
		return "", fmt.Errorf("create conversation with %s: response has no conversation id", userID)
	}
	return resp.ID, nil
}

// connectorURL joins path segments onto serviceURL. The bearer token goes wherever this
// URL points, so only https is accepted (plain http only to the local host, for tests).
func connectorURL(serviceURL string, segments ...string) (string, error) {
	u, err := url.Parse(serviceURL)
	if err != nil {
		return "", fmt.Errorf("service url %q: %w", serviceURL, err)
	}
	local := u.Scheme == "http" && (u.Hostname() == "127.0.0.1" || u.Hostname() == "localhost" || u.Hostname() == "::1")
	if (u.Scheme != "https" && !local) || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("service url %q is not an https url", serviceURL)
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(u.String(), "/"))
	for _, s := range segments {
		// Teams ids contain ':', '@' and ';' (channel threads), so each is escaped alone.
		b.WriteString("/" + url.PathEscape(s))
	}
	return b.String(), nil
}

// call sends one connector request, retrying throttling and transient failures, and
// decodes a JSON reply into out when out is not nil.
func (c *Connector) call(ctx context.Context, method, endpoint string, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		reply, wait, err := c.attempt(ctx, method, endpoint, payload)
		if err == nil {
			if out == nil || len(bytes.TrimSpace(reply)) == 0 {
				return nil
			}
			if err := json.Unmarshal(reply, out); err != nil {
				return fmt.Errorf("decode reply: %w", err)
			}
			return nil
		}
		var serr *StatusError
		if bot.IsBulk(ctx) && errors.As(err, &serr) && serr.StatusCode == http.StatusTooManyRequests {
			// The outbox waits out a 429 itself, so that its Budget for the tenant adapts.
			return err
		}
		if wait < 0 || attempt >= c.cfg.MaxRetries {
			if wait >= 0 {
				return fmt.Errorf("giving up after %d attempts: %w", attempt+1, err)
			}
			return err
		}
		if wait == 0 {
			wait = backoff(attempt)
		}
		if err := c.cfg.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("wait before retry: %w", err)
		}
	}
}

// attempt makes a single request. wait is negative when the failure must not be retried,
// zero when it may be retried after the usual backoff, and positive when the server said
// how long to wait.
func (c *Connector) attempt(ctx context.Context, method, endpoint string, payload []byte) (reply []byte, wait time.Duration, err error) {
	token, err := c.accessToken(ctx)
	if err != nil {
		return nil, -1, err
	}
	var send io.Reader
	if method != http.MethodGet {
		send = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, send)
	if err != nil {
		return nil, -1, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, err
		}
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: read reply: %w", method, endpoint, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, 0, nil
	}
	serr := &StatusError{Method: method, URL: endpoint, StatusCode: resp.StatusCode, Body: bodySnippet(body),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusPreconditionFailed, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return nil, retryAfter(resp.Header.Get("Retry-After")), serr
	case http.StatusUnauthorized:
		// The token may have been revoked early; the next call fetches a fresh one.
		c.dropToken(token)
	}
	return nil, -1, serr
}

func retryAfter(h string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}

func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 8 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d + rand.N(backoffJitter)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func bodySnippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if len(s) > snippetBytes {
		s = s[:snippetBytes] + "…"
	}
	return s
}

type tokenReply struct {
	AccessToken string      `json:"access_token"`
	ExpiresIn   json.Number `json:"expires_in"` // a number, or a numeric string from older endpoints
}

// accessToken returns the cached token, fetching a new one when it is missing or within
// the refresh margin of expiry.
func (c *Connector) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.token != "" && now.Before(c.tokenExpiry) {
		return c.token, nil
	}
	if c.cfg.AppID == "" || c.cfg.AppPassword == "" {
		return "", errors.New("bot connector token: app id or password not configured")
	}
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.cfg.AppID},
		"client_secret": {c.cfg.AppPassword},
		"scope":         {c.cfg.Scope},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("bot connector token: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("bot connector token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return "", fmt.Errorf("bot connector token: read reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("bot connector token: status %d: %s", resp.StatusCode, bodySnippet(body))
	}
	var tr tokenReply
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", fmt.Errorf("bot connector token: decode reply: %w", err)
	}
	secs, err := tr.ExpiresIn.Int64()
	if tr.AccessToken == "" || err != nil || secs <= 0 {
		return "", errors.New("bot connector token: reply lacks access_token or expires_in")
	}
	// A token that lives less than the margin is used for this call only.
	c.token = tr.AccessToken
	c.tokenExpiry = now.Add(time.Duration(secs)*time.Second - tokenRefreshMargin)
	return c.token, nil
}

// dropToken forgets token if it is still the cached one.
func (c *Connector) dropToken(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}
