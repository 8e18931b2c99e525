package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/ledgertest"
	"github.com/tokenpay/tokenpay/ledger/policy"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// A real OpenID Provider in the test: zitadel/oidc's op package with its example storage
// and login page, wrapped so that one test case can make it issue an ID token for another
// audience or one already expired. tokenpay's sign-in runs unchanged against it.

type testUsers map[string]*storage.User

func (u testUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u testUsers) GetUserByUsername(name string) *storage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}
func (u testUsers) ExampleClientID() string { return storage.ServiceUserID }

// testOP is the example storage with a switch for what goes wrong.
type testOP struct {
	*storage.Storage
	mode atomic.Value // "", "audience" or "expired"
}

func (s *testOP) modeIs(m string) bool { v, _ := s.mode.Load().(string); return v == m }

type testClient struct {
	op.Client
	lifetime time.Duration
	id       string // another application's id, when set
}

func (c testClient) GetID() string {
	if c.id != "" {
		return c.id
	}
	return c.Client.GetID()
}

// Claims such as email go into the ID token, as Slack's and Entra's do.
func (c testClient) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c testClient) IDTokenLifetime() time.Duration       { return c.lifetime }

func (s *testOP) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, id)
	if err != nil {
		return nil, err
	}
	tc := testClient{Client: c, lifetime: time.Hour}
	if s.modeIs("expired") {
		tc.lifetime = -time.Minute
	}
	if s.modeIs("audience") {
		tc.id = otherApp
	}
	return tc, nil
}

// otherApp is the application the provider issues the ID token to in the wrong-audience
// case: the token's aud and azp name it, not tokenpay.
const otherApp = "another-application"

// SetUserinfoFromRequest fills the ID token's claims; in the "entra" case it adds
// xms_edov, the claim Entra ID sends instead of email_verified.
func (s *testOP) SetUserinfoFromRequest(ctx context.Context, userinfo *oidc.UserInfo, token op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, token, scopes); err != nil {
		return err
	}
	if s.modeIs("entra") {
		userinfo.AppendClaims("xms_edov", true)
	}
	return nil
}

type otherAudience struct{ op.AuthRequest }

func (otherAudience) GetAudience() []string { return []string{otherApp} }
func (otherAudience) GetClientID() string   { return otherApp }

func (s *testOP) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	r, err := s.Storage.AuthRequestByCode(ctx, code)
	if err == nil && s.modeIs("audience") {
		return otherAudience{r}, nil
	}
	return r, err
}

type oidcFixture struct {
	op      *testOP
	opURL   string
	appURL  string
	store   ledgertest.Store
	logBuff *strings.Builder
}

func newOIDCFixture(t *testing.T) *oidcFixture {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	db := ledgertest.Open(t)
	if _, err := db.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "ada@x.io", Name: "Ada Admin", Team: "Ops", Role: "admin"},
		{Line: 3, Email: "una@x.io", Name: "Una Verified-Not", Team: "Ops", Role: "analyst"},
	}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Parse(strings.NewReader("admins: [ada@x.io]\n"))
	if err != nil {
		t.Fatal(err)
	}
	app := httptest.NewUnstartedServer(nil)
	app.Start()
	t.Cleanup(app.Close)
	opSrv := httptest.NewUnstartedServer(nil)
	opSrv.Start()
	t.Cleanup(opSrv.Close)

	users := testUsers{
		"u1": {ID: "u1", Username: "ada", Password: "pw", FirstName: "Ada", LastName: "Admin", Email: "ada@x.io", EmailVerified: true, PreferredLanguage: language.English},
		"u2": {ID: "u2", Username: "una", Password: "pw", FirstName: "Una", LastName: "N", Email: "una@x.io", EmailVerified: false, PreferredLanguage: language.English},
		"u3": {ID: "u3", Username: "zed", Password: "pw", FirstName: "Zed", LastName: "Stranger", Email: "zed@elsewhere.io", EmailVerified: true, PreferredLanguage: language.English},
	}
	clients := map[string]*storage.Client{"tokenpay": storage.WebClient("tokenpay", "s3cret", app.URL+"/auth/callback")}
	store := &testOP{Storage: storage.NewStorageWithClients(users, clients)}
	opSrv.Config.Handler = exampleop.SetupServer(opSrv.URL, store, nil, false)

	logs := &strings.Builder{}
	s := &Server{Store: db, Policy: pol, Now: time.Now, Log: zerolog.New(logs),
		OIDC: &OIDC{Issuer: opSrv.URL, ClientID: "tokenpay", ClientSecret: "s3cret", RedirectURL: app.URL + "/auth/callback"}}
	mux := http.NewServeMux()
	if err := s.Register(mux); err != nil {
		t.Fatal(err)
	}
	app.Config.Handler = mux
	return &oidcFixture{op: store, opURL: opSrv.URL, appURL: app.URL, store: db, logBuff: logs}
}

var loginID = regexp.MustCompile(`name="id" value="([^"]+)"`)

// signIn walks the whole flow as a browser would: tokenpay's sign-in button, the
// provider's login form, back to tokenpay. It returns the last answer and its body.
func (f *oidcFixture) signIn(t *testing.T, username string) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	resp, err := c.Get(f.appURL + "/auth/oidc")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := loginID.FindSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.HasPrefix(resp.Request.URL.String(), f.opURL) {
		t.Fatalf("expected the provider's login form, got %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}
	resp, err = c.PostForm(f.opURL+"/login/username", url.Values{"username": {username}, "password": {"pw"}, "id": {string(m[1])}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

func TestOIDCSignIn(t *testing.T) {
	f := newOIDCFixture(t)

	resp, body := f.signIn(t, "ada")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dashboard/org" || !strings.Contains(body, "the organisation") {
		t.Fatalf("verified admin: %d at %s: %.300s\nlog: %s", resp.StatusCode, resp.Request.URL, body, f.logBuff)
	}
	log, _ := f.store.AuditLog(context.Background(), 10)
	if len(log) == 0 || log[0].Action != "web.signin" || log[0].Subject != "ada@x.io" {
		t.Errorf("sign-in not audited: %+v", log)
	}

	for _, tc := range []struct {
		name, mode, user, want, logged string
	}{
		{"wrong audience", "audience", "ada", "another application", "audience"},
		{"expired token", "expired", "ada", "expired", "expired"},
		{"unverified email", "", "una", "does not confirm your email", "not verified"},
		{"not in the directory", "", "zed", "is not in tokenpay", "not in the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.op.mode.Store(tc.mode)
			defer f.op.mode.Store("")
			f.logBuff.Reset()
			resp, body := f.signIn(t, tc.user)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, tc.want) {
				t.Fatalf("%d at %s: %.400s", resp.StatusCode, resp.Request.URL, body)
			}
			if !strings.Contains(f.logBuff.String(), tc.logged) {
				t.Errorf("log lacks %q: %s", tc.logged, f.logBuff)
			}
			for _, c := range resp.Cookies() {
				if c.Name == SessionCookie && c.Value != "" {
					t.Errorf("a refused sign-in set a session cookie")
				}
			}
		})
	}

	// Entra ID: no email_verified, but the tenant vouches for the email's domain.
	f.op.mode.Store("entra")
	resp, body = f.signIn(t, "una")
	f.op.mode.Store("")
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dashboard/people/2" || !strings.Contains(body, "your AI tokens") {
		t.Fatalf("email verified by xms_edov: %d at %s: %.300s", resp.StatusCode, resp.Request.URL, body)
	}

	// A callback that did not start here (no state cookie) is refused before any exchange.
	resp, err := http.Get(f.appURL + "/auth/callback?code=abc&state=xyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("callback without state: %d", resp.StatusCode)
	}
}
