package teams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// connectorFake is a token endpoint and a Bot Connector in one server. Each connector
// request is answered by the next scripted status (200 once the script runs out).
type connectorFake struct {
	srv          *httptest.Server
	tokenFetches atomic.Int32
	tokenDown    atomic.Bool

	mu       sync.Mutex
	script   []scripted
	requests []recorded
}

type scripted struct {
	status     int
	retryAfter string
	body       string
}

type recorded struct {
	method, path, auth string
	body               []byte
}

func newConnectorFake(t *testing.T) *connectorFake {
	t.Helper()
	f := &connectorFake{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n := f.tokenFetches.Add(1)
		if f.tokenDown.Load() {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		want := map[string]string{
			"grant_type": "client_credentials", "client_id": "app-id", "client_secret": "app-secret",
			"scope": "https://api.botframework.com/.default",
		}
		for k, v := range want {
			if got := r.PostForm.Get(k); got != v {
				http.Error(w, fmt.Sprintf("%s = %q, want %q", k, got, v), http.StatusBadRequest)
				return
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": 3600, "access_token": fmt.Sprintf("token-%d", n),
		})
	})
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.requests = append(f.requests, recorded{method: r.Method, path: r.URL.EscapedPath(), auth: r.Header.Get("Authorization"), body: body})
		next := scripted{status: http.StatusOK}
		if len(f.script) > 0 {
			next, f.script = f.script[0], f.script[1:]
		}
		f.mu.Unlock()
		if next.retryAfter != "" {
			w.Header().Set("Retry-After", next.retryAfter)
		}
		if next.status != http.StatusOK {
			w.WriteHeader(next.status)
			_, _ = io.WriteString(w, next.body)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v3/conversations":
			_, _ = io.WriteString(w, `{"id":"a:1new-conversation"}`)
		case r.Method == http.MethodPost:
			_, _ = io.WriteString(w, `{"id":"1:activity-42"}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *connectorFake) setScript(s ...scripted) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = s
}

func (f *connectorFake) recorded() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.requests...)
}

// recordedSleeps records requested waits instead of sleeping.
type recordedSleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *recordedSleeps) Sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *recordedSleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func (f *connectorFake) connector(c *fakeClock, s *recordedSleeps) *Connector {
	return NewConnector(ConnectorConfig{
		AppID:       "app-id",
		AppPassword: "app-secret",
		TokenURL:    f.srv.URL + "/token",
		HTTPClient:  f.srv.Client(),
		Now:         c.Now,
		Sleep:       s.Sleep,
	})
}

func textActivity(text string) schema.Activity {
	return schema.Activity{Type: schema.Message, Text: text}
}

func TestSendToConversation(t *testing.T) {
	f := newConnectorFake(t)
	conn := f.connector(newClock(), &recordedSleeps{})
	id, err := conn.SendToConversation(context.Background(), f.srv.URL+"/", "a:1xyz", textActivity("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if id != "1:activity-42" {
		t.Fatalf("activity id = %q", id)
	}
	reqs := f.recorded()
	if len(reqs) != 1 {
		t.Fatalf("requests = %d, want 1", len(reqs))
	}
	r := reqs[0]
	if r.method != http.MethodPost || r.path != "/v3/conversations/a:1xyz/activities" || r.auth != "Bearer token-1" {
		t.Fatalf("request = %s %s auth %q", r.method, r.path, r.auth)
	}
	var sent schema.Activity
	if err := json.Unmarshal(r.body, &sent); err != nil || sent.Text != "hello" || sent.Type != schema.Message {
		t.Fatalf("sent body %s (%v)", r.body, err)
	}
}

func TestUpdateActivity(t *testing.T) {
	f := newConnectorFake(t)
	conn := f.connector(newClock(), &recordedSleeps{})
	// Channel thread ids carry ';', which must stay inside one path segment.
	conv := "19:abc@thread.tacv2;messageid=1700000000000"
	if err := conn.UpdateActivity(context.Background(), f.srv.URL, conv, "1:activity-42", textActivity("approved")); err != nil {
		t.Fatal(err)
	}
	r := f.recorded()[0]
	want := "/v3/conversations/19:abc@thread.tacv2%3Bmessageid=1700000000000/activities/1:activity-42"
	if r.method != http.MethodPut || r.path != want {
		t.Fatalf("request = %s %s, want PUT %s", r.method, r.path, want)
	}
	var sent schema.Activity
	if err := json.Unmarshal(r.body, &sent); err != nil || sent.ID != "1:activity-42" || sent.Text != "approved" {
		t.Fatalf("sent body %s (%v)", r.body, err)
	}
}

func TestCreateConversation(t *testing.T) {
	f := newConnectorFake(t)
	conn := f.connector(newClock(), &recordedSleeps{})
	id, err := conn.CreateConversation(context.Background(), f.srv.URL, "tenant-1", "28:bot", "29:user")
	if err != nil {
		t.Fatal(err)
	}
	if id != "a:1new-conversation" {
		t.Fatalf("conversation id = %q", id)
	}
	r := f.recorded()[0]
	if r.method != http.MethodPost || r.path != "/v3/conversations" {
		t.Fatalf("request = %s %s", r.method, r.path)
	}
	var body struct {
		Bot         struct{ ID string }
		Members     []struct{ ID string }
		ChannelData struct {
			Tenant struct{ ID string }
		}
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Bot.ID != "28:bot" || len(body.Members) != 1 || body.Members[0].ID != "29:user" || body.ChannelData.Tenant.ID != "tenant-1" {
		t.Fatalf("body = %s", r.body)
	}
}

func TestConnectorTokenCached(t *testing.T) {
	f := newConnectorFake(t)
	c := newClock()
	conn := f.connector(c, &recordedSleeps{})
	send := func() {
		t.Helper()
		if _, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi")); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		send()
	}
	if n := f.tokenFetches.Load(); n != 1 {
		t.Fatalf("token fetches = %d after 10 calls, want 1", n)
	}
	c.Advance(54 * time.Minute) // still more than 5 minutes left of the hour
	send()
	if n := f.tokenFetches.Load(); n != 1 {
		t.Fatalf("token fetches = %d at 54 min, want 1", n)
	}
	c.Advance(2 * time.Minute) // inside the 5-minute margin
	send()
	if n := f.tokenFetches.Load(); n != 2 {
		t.Fatalf("token fetches = %d at 56 min, want 2", n)
	}
	reqs := f.recorded()
	if got := reqs[len(reqs)-1].auth; got != "Bearer token-2" {
		t.Fatalf("auth after refresh = %q, want the new token", got)
	}
}

func TestConnectorRetries(t *testing.T) {
	tests := []struct {
		name       string
		maxRetries int
		script     []scripted
		wantCalls  int
		wantStatus int // 0: success
		checkWaits func([]time.Duration) error
	}{
		{
			name:      "429 honours Retry-After",
			script:    []scripted{{status: 429, retryAfter: "3"}, {status: 429, retryAfter: "7"}},
			wantCalls: 3,
			checkWaits: func(d []time.Duration) error {
				if len(d) != 2 || d[0] != 3*time.Second || d[1] != 7*time.Second {
					return fmt.Errorf("waits %v, want [3s 7s]", d)
				}
				return nil
			},
		},
		{
			name:      "412 retried with backoff",
			script:    []scripted{{status: 412}, {status: 502}, {status: 504}},
			wantCalls: 4,
			checkWaits: func(d []time.Duration) error {
				if len(d) != 3 {
					return fmt.Errorf("waits %v, want 3", d)
				}
				for i, lo := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second} {
					if d[i] < lo || d[i] >= lo+time.Second {
						return fmt.Errorf("wait %d = %s, want in [%s, %s)", i, d[i], lo, lo+time.Second)
					}
				}
				return nil
			},
		},
		{
			name:       "400 not retried",
			script:     []scripted{{status: 400, body: `{"error":{"code":"BadArgument","message":"Activity text is too long"}}`}},
			wantCalls:  1,
			wantStatus: 400,
		},
		{
			name:       "403 not retried",
			script:     []scripted{{status: 403, body: `{"error":{"code":"BotDisabledByAdmin"}}`}},
			wantCalls:  1,
			wantStatus: 403,
		},
		{
			name:       "503 exhausts retries",
			maxRetries: 2,
			script:     []scripted{{status: 503}, {status: 503}, {status: 503}, {status: 503}},
			wantCalls:  3,
			wantStatus: 503,
		},
		{
			name:       "retries disabled",
			maxRetries: -1,
			script:     []scripted{{status: 429, retryAfter: "1"}},
			wantCalls:  1,
			wantStatus: 429,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newConnectorFake(t)
			f.setScript(tt.script...)
			s := &recordedSleeps{}
			conn := NewConnector(ConnectorConfig{
				AppID: "app-id", AppPassword: "app-secret", TokenURL: f.srv.URL + "/token",
				HTTPClient: f.srv.Client(), MaxRetries: tt.maxRetries, Now: newClock().Now, Sleep: s.Sleep,
			})
			id, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi"))
			if got := len(f.recorded()); got != tt.wantCalls {
				t.Fatalf("connector calls = %d, want %d", got, tt.wantCalls)
			}
			if tt.wantStatus == 0 {
				if err != nil || id != "1:activity-42" {
					t.Fatalf("id %q, err %v", id, err)
				}
			} else {
				serr, ok := errors.AsType[*StatusError](err)
				if !ok || serr.StatusCode != tt.wantStatus {
					t.Fatalf("error = %v, want status %d", err, tt.wantStatus)
				}
				if want := tt.script[0].body; want != "" && !strings.Contains(err.Error(), want) {
					t.Fatalf("error %q lacks the body snippet %q", err, want)
				}
			}
			if tt.checkWaits != nil {
				if err := tt.checkWaits(s.all()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestConnectorNetworkErrorRetried(t *testing.T) {
	f := newConnectorFake(t)
	var calls atomic.Int32
	// Fail the first connector request at the transport level, as a reset connection would.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasPrefix(r.URL.Path, "/v3/") && calls.Add(1) == 1 {
			return nil, errors.New("connection reset by peer")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	s := &recordedSleeps{}
	conn := NewConnector(ConnectorConfig{
		AppID: "app-id", AppPassword: "app-secret", TokenURL: f.srv.URL + "/token",
		HTTPClient: client, Now: newClock().Now, Sleep: s.Sleep,
	})
	if _, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi")); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || len(s.all()) != 1 {
		t.Fatalf("transport calls %d, waits %v; want 2 calls and 1 wait", calls.Load(), s.all())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestConnectorStopsWhenContextEnds(t *testing.T) {
	f := newConnectorFake(t)
	f.setScript(scripted{status: 429, retryAfter: "30"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := NewConnector(ConnectorConfig{
		AppID: "app-id", AppPassword: "app-secret", TokenURL: f.srv.URL + "/token",
		HTTPClient: f.srv.Client(), Now: newClock().Now,
		// The caller gives up while the default timer waits out the 30 s Retry-After.
		Sleep: func(ctx context.Context, d time.Duration) error {
			cancel()
			return sleepCtx(ctx, d)
		},
	})
	start := time.Now()
	_, err := conn.SendToConversation(ctx, f.srv.URL, "a:1", textActivity("hi"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("the wait did not stop when the context ended")
	}
	if n := len(f.recorded()); n != 1 {
		t.Fatalf("connector calls = %d, want 1", n)
	}
}

func TestConnectorTokenEndpointDown(t *testing.T) {
	t.Run("error status", func(t *testing.T) {
		f := newConnectorFake(t)
		f.tokenDown.Store(true)
		conn := f.connector(newClock(), &recordedSleeps{})
		_, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi"))
		if err == nil || !strings.Contains(err.Error(), "status 503") {
			t.Fatalf("error = %v, want the token endpoint's status", err)
		}
		if n := len(f.recorded()); n != 0 {
			t.Fatalf("connector called %d times without a token", n)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		f := newConnectorFake(t)
		dead := httptest.NewServer(http.NotFoundHandler())
		deadURL := dead.URL
		dead.Close()
		conn := NewConnector(ConnectorConfig{
			AppID: "app-id", AppPassword: "app-secret", TokenURL: deadURL + "/token",
			HTTPClient: f.srv.Client(), Now: newClock().Now, Sleep: (&recordedSleeps{}).Sleep,
		})
		if err := conn.UpdateActivity(context.Background(), f.srv.URL, "a:1", "1:x", textActivity("hi")); err == nil {
			t.Fatal("update succeeded without a token")
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		f := newConnectorFake(t)
		conn := NewConnector(ConnectorConfig{TokenURL: f.srv.URL + "/token", HTTPClient: f.srv.Client()})
		if _, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi")); err == nil {
			t.Fatal("send succeeded without credentials")
		}
		if n := f.tokenFetches.Load(); n != 0 {
			t.Fatalf("token endpoint called %d times without credentials", n)
		}
	})
}

func TestConnectorUnauthorizedDropsToken(t *testing.T) {
	f := newConnectorFake(t)
	f.setScript(scripted{status: 401, body: "token revoked"})
	conn := f.connector(newClock(), &recordedSleeps{})
	if _, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi")); err == nil {
		t.Fatal("401 reported as success")
	}
	if _, err := conn.SendToConversation(context.Background(), f.srv.URL, "a:1", textActivity("hi")); err != nil {
		t.Fatal(err)
	}
	if n := f.tokenFetches.Load(); n != 2 {
		t.Fatalf("token fetches = %d, want 2 (the 401 drops the cached token)", n)
	}
}

func TestConnectorURL(t *testing.T) {
	tests := []struct {
		serviceURL string
		want       string // empty: rejected
	}{
		{serviceURL: "https://smba.trafficmanager.net/amer/", want: "https://smba.trafficmanager.net/amer/v3/conversations/a:1"},
		{serviceURL: "https://smba.trafficmanager.net/emea", want: "https://smba.trafficmanager.net/emea/v3/conversations/a:1"},
		{serviceURL: "http://127.0.0.1:8080", want: "http://127.0.0.1:8080/v3/conversations/a:1"},
		{serviceURL: "http://localhost:3978/", want: "http://localhost:3978/v3/conversations/a:1"},
		{serviceURL: "http://smba.trafficmanager.net/amer/"},
		{serviceURL: "http://127.0.0.1.attacker.example/"},
		{serviceURL: "ftp://smba.trafficmanager.net/"},
		{serviceURL: "https://"},
		{serviceURL: "https:smba.trafficmanager.net"},
		{serviceURL: "https://user:pass@smba.trafficmanager.net/"},
		{serviceURL: "https://smba.trafficmanager.net/?x=1"},
		{serviceURL: ""},
		{serviceURL: "://bad"},
	}
	for _, tt := range tests {
		got, err := connectorURL(tt.serviceURL, "v3", "conversations", "a:1")
		if tt.want == "" {
			if err == nil {
				t.Errorf("connectorURL(%q) = %q, want rejection", tt.serviceURL, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("connectorURL(%q) = %q, %v; want %q", tt.serviceURL, got, err, tt.want)
		}
	}
}

func TestConnectorRejectsForeignServiceURL(t *testing.T) {
	f := newConnectorFake(t)
	conn := f.connector(newClock(), &recordedSleeps{})
	if _, err := conn.SendToConversation(context.Background(), "http://example.com/", "a:1", textActivity("hi")); err == nil {
		t.Fatal("sent to a plain-http service url")
	}
	if n := f.tokenFetches.Load(); n != 0 {
		t.Fatalf("token fetched %d times for a rejected url", n)
	}
}

func TestConnectorConcurrent(t *testing.T) {
	f := newConnectorFake(t)
	conn := f.connector(newClock(), &recordedSleeps{})
	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = conn.SendToConversation(context.Background(), f.srv.URL, fmt.Sprintf("a:%d", i), textActivity("hi"))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("send %d: %v", i, err)
		}
	}
	if got := f.tokenFetches.Load(); got != 1 {
		t.Fatalf("token fetches = %d, want 1", got)
	}
	if got := len(f.recorded()); got != n {
		t.Fatalf("connector calls = %d, want %d", got, n)
	}
}
