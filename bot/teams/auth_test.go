package teams

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/infracloudio/msbotbuilder-go/core"
	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

const (
	testAppID      = "8e0f6a4c-1f0e-4b5a-9d3c-2a1b0c9d8e7f"
	testServiceURL = "https://smba.trafficmanager.net/amer/"
	testIssuer     = "https://api.botframework.com"
)

// The adapter embeds the interface; this is the wiring the lead will do.
var _ = core.BotFrameworkAdapter{TokenValidator: NewValidator(ValidatorConfig{AppID: testAppID})}

var (
	keysOnce                       sync.Once
	keyA, keyB, keyPlain, keyOther *rsa.PrivateKey
)

// testKeys generates the RSA keys once per test binary; generation dominates run time
// under -race otherwise.
func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&keyA, &keyB, &keyPlain, &keyOther} {
			var err error
			if *k, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		}
	})
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// botFramework serves an OpenID metadata document shaped like the one in shared/spec and a
// JWKS whose contents a test can change, counting fetches of each.
type botFramework struct {
	srv         *httptest.Server
	metaFetches atomic.Int32
	jwksFetches atomic.Int32
	failing     atomic.Bool

	mu   sync.Mutex
	keys []jwk
}

func newBotFramework(t *testing.T) *botFramework {
	t.Helper()
	testKeys(t)
	raw, err := os.ReadFile(spectest.Path(t, "examples/botframework-openid-configuration.json"))
	if err != nil {
		t.Fatalf("read metadata example: %v", err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("parse metadata example: %v", err)
	}
	if meta["issuer"] != testIssuer {
		t.Fatalf("metadata example issuer = %v, want %s", meta["issuer"], testIssuer)
	}

	bf := &botFramework{keys: []jwk{
		jwkFor(keyA, "kid-a", "x5t-a", "msteams", "skype"),
		jwkFor(keyPlain, "kid-plain", ""),
		{Kty: "EC", Kid: "kid-ec", X5t: "x5t-ec"}, // must be ignored, not break parsing
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/.well-known/openidconfiguration", func(w http.ResponseWriter, r *http.Request) {
		bf.metaFetches.Add(1)
		if bf.failing.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(meta)
	})
	mux.HandleFunc("GET /v1/.well-known/keys", func(w http.ResponseWriter, r *http.Request) {
		bf.jwksFetches.Add(1)
		bf.mu.Lock()
		defer bf.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": bf.keys})
	})
	bf.srv = httptest.NewServer(mux)
	t.Cleanup(bf.srv.Close)
	meta["jwks_uri"] = bf.srv.URL + "/v1/.well-known/keys"
	return bf
}

func (bf *botFramework) addKey(k jwk) {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	bf.keys = append(bf.keys, k)
}

func (bf *botFramework) validator(c *fakeClock) *Validator {
	return NewValidator(ValidatorConfig{
		AppID:       testAppID,
		MetadataURL: bf.srv.URL + "/v1/.well-known/openidconfiguration",
		HTTPClient:  bf.srv.Client(),
		Now:         c.Now,
		Logger:      zerolog.Nop(),
	})
}

func (bf *botFramework) fetches() (meta, keys int32) {
	return bf.metaFetches.Load(), bf.jwksFetches.Load()
}

func jwkFor(k *rsa.PrivateKey, kid, x5t string, endorsements ...string) jwk {
	return jwk{
		Kty:          "RSA",
		Kid:          kid,
		X5t:          x5t,
		N:            base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		E:            base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		Endorsements: endorsements,
	}
}

func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        testIssuer,
		"aud":        testAppID,
		"serviceurl": testServiceURL,
		"nbf":        now.Add(-time.Minute).Unix(),
		"exp":        now.Add(time.Hour).Unix(),
	}
}

func rs256(t testing.TB, key *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign token: %v", err)
	}
	return s
}

func teamsActivity() schema.Activity {
	return schema.Activity{Type: schema.Message, ServiceURL: testServiceURL, ChannelID: "msteams"}
}

func authenticate(v *Validator, header string, act schema.Activity) error {
	_, err := v.AuthenticateRequest(context.Background(), act, header, nil, "")
	return err
}

func TestAuthenticateRequest(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	now := c.Now()

	with := func(k string, v any) jwt.MapClaims {
		cl := validClaims(now)
		if v == nil {
			delete(cl, k)
		} else {
			cl[k] = v
		}
		return cl
	}
	hs256, err := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims(now)).SignedString(keyA.N.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims(now)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	x5tToken := func(x5t string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, validClaims(now))
		tok.Header["kid"], tok.Header["x5t"] = "kid-a", x5t
		s, err := tok.SignedString(keyA)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	otherChannel := teamsActivity()
	otherChannel.ChannelID = "webchat"
	otherServiceURL := teamsActivity()
	otherServiceURL.ServiceURL = "https://attacker.example/"

	tests := []struct {
		name     string
		header   string
		activity schema.Activity
		ok       bool
	}{
		{name: "valid", header: "Bearer " + rs256(t, keyA, "kid-a", validClaims(now)), ok: true},
		{name: "scheme case-insensitive", header: "bearer " + rs256(t, keyA, "kid-a", validClaims(now)), ok: true},
		{name: "audience in a list", header: "Bearer " + rs256(t, keyA, "kid-a", with("aud", []string{"other", testAppID})), ok: true},
		{name: "no header", header: ""},
		{name: "non-Bearer scheme", header: "Basic " + rs256(t, keyA, "kid-a", validClaims(now))},
		{name: "token without scheme", header: rs256(t, keyA, "kid-a", validClaims(now))},
		{name: "garbage", header: "Bearer not-a-jwt"},
		{name: "garbage with three parts", header: "Bearer e30.e30.e30"},
		{name: "bad signature", header: "Bearer " + rs256(t, keyOther, "kid-a", validClaims(now))},
		{name: "no kid", header: "Bearer " + rs256(t, keyA, "", validClaims(now))},
		{name: "wrong issuer", header: "Bearer " + rs256(t, keyA, "kid-a", with("iss", "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/"))},
		{name: "no issuer", header: "Bearer " + rs256(t, keyA, "kid-a", with("iss", nil))},
		{name: "wrong audience", header: "Bearer " + rs256(t, keyA, "kid-a", with("aud", "another-bot"))},
		{name: "no audience", header: "Bearer " + rs256(t, keyA, "kid-a", with("aud", nil))},
		{name: "expired beyond leeway", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", now.Add(-6*time.Minute).Unix()))},
		{name: "expired within leeway", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", now.Add(-4*time.Minute).Unix())), ok: true},
		{name: "no exp", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", nil))},
		{name: "nbf in future", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", now.Add(6*time.Minute).Unix()))},
		{name: "nbf within leeway", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", now.Add(4*time.Minute).Unix())), ok: true},
		// Extreme values: centuries away, beyond int64, at its limits, zero, negative.
		{name: "exp centuries ahead", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", now.Unix()+1e10))},
		{name: "exp beyond int64", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", 1e300))},
		{name: "exp int64 max", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", int64(math.MaxInt64)))},
		{name: "exp zero", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", 0))},
		{name: "exp negative", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", -1e300))},
		{name: "exp a week ahead", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", now.Add(7*24*time.Hour).Unix())), ok: true},
		{name: "exp eight days ahead", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", now.Add(8*24*time.Hour).Unix()))},
		{name: "nbf beyond int64", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", 1e300))},
		{name: "nbf near int64 max", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", int64(9.2e18)))},
		{name: "nbf centuries ahead", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", now.Unix()+1e10))},
		{name: "nbf far past", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", -1e300)), ok: true},
		{name: "nbf zero", header: "Bearer " + rs256(t, keyA, "kid-a", with("nbf", 0)), ok: true},
		{name: "iat centuries ahead", header: "Bearer " + rs256(t, keyA, "kid-a", with("iat", now.Unix()+1e10))},
		{name: "exp not a number", header: "Bearer " + rs256(t, keyA, "kid-a", with("exp", "tomorrow"))},
		{name: "wrong serviceurl claim", header: "Bearer " + rs256(t, keyA, "kid-a", with("serviceurl", "https://attacker.example/"))},
		{name: "no serviceurl claim", header: "Bearer " + rs256(t, keyA, "kid-a", with("serviceurl", nil))},
		{name: "activity serviceUrl differs", header: "Bearer " + rs256(t, keyA, "kid-a", validClaims(now)), activity: otherServiceURL},
		{name: "alg HS256", header: "Bearer " + hs256},
		{name: "alg none", header: "Bearer " + none},
		{name: "channel not endorsed", header: "Bearer " + rs256(t, keyA, "kid-a", validClaims(now)), activity: otherChannel},
		{name: "key without endorsements", header: "Bearer " + rs256(t, keyPlain, "kid-plain", validClaims(now)), activity: otherChannel, ok: true},
		{name: "x5t matches", header: "Bearer " + x5tToken("x5t-a"), ok: true},
		{name: "x5t mismatch", header: "Bearer " + x5tToken("x5t-b")},
		{name: "unknown kid", header: "Bearer " + rs256(t, keyA, "kid-unknown", validClaims(now))},
		{name: "non-RSA key ignored", header: "Bearer " + rs256(t, keyA, "kid-ec", validClaims(now))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act := tt.activity
			if act.ServiceURL == "" {
				act = teamsActivity()
			}
			id, err := bf.validator(c).AuthenticateRequest(context.Background(), act, tt.header, nil, "")
			if tt.ok {
				if err != nil {
					t.Fatalf("rejected a valid token: %v", err)
				}
				if !id.IsAuthenticated() || id.GetClaimValue("serviceurl") != testServiceURL {
					t.Fatalf("identity: authenticated %v, serviceurl %q", id.IsAuthenticated(), id.GetClaimValue("serviceurl"))
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an invalid token")
			}
			t.Logf("rejected: %v", err)
			if id != nil {
				t.Fatalf("returned an identity with error %v", err)
			}
		})
	}
}

func TestAuthenticateRequestWithoutAppID(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := NewValidator(ValidatorConfig{MetadataURL: bf.srv.URL + "/v1/.well-known/openidconfiguration", Now: c.Now})
	claims := validClaims(c.Now())
	claims["aud"] = ""
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", claims), teamsActivity()); err == nil {
		t.Fatal("a validator without an app id accepted a token with an empty audience")
	}
}

func TestClaimsIdentityMissingClaim(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	id, err := bf.validator(c).AuthenticateRequest(context.Background(), teamsActivity(), "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// The library's own identity panics here; ours must not.
	if got := id.GetClaimValue("appid"); got != "" {
		t.Fatalf("missing claim = %q, want empty", got)
	}
	if got := id.GetClaimValue("exp"); got != "" {
		t.Fatalf("numeric claim = %q, want empty", got)
	}
	if got := id.GetClaimValue("aud"); got != testAppID {
		t.Fatalf("aud = %q, want %q", got, testAppID)
	}
}

func TestValidatorCachesKeys(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := bf.validator(c)
	for i := range 20 {
		if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		c.Advance(time.Hour)
	}
	// Twenty hours in: still the first fetch.
	if meta, keys := bf.fetches(); meta != 1 || keys != 1 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 1 each", meta, keys)
	}
	c.Advance(5 * time.Hour) // past the 24 h cache lifetime
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatal(err)
	}
	if meta, keys := bf.fetches(); meta != 2 || keys != 2 {
		t.Fatalf("fetches after 25 h: metadata %d, jwks %d; want 2 each", meta, keys)
	}
}

func TestValidatorUnknownKidRefreshesOnce(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := bf.validator(c)
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Minute)
	for i := range 5 {
		err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-unknown", validClaims(c.Now())), teamsActivity())
		if err == nil {
			t.Fatalf("attempt %d: unknown kid accepted", i)
		}
	}
	if meta, keys := bf.fetches(); meta != 2 || keys != 2 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 2 each (initial + one refresh)", meta, keys)
	}
}

func TestValidatorKeyRotation(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := bf.validator(c)
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatal(err)
	}
	bf.addKey(jwkFor(keyB, "kid-b", "x5t-b", "msteams"))

	// Within a minute of the last fetch the new kid cannot force another one.
	c.Advance(30 * time.Second)
	if err := authenticate(v, "Bearer "+rs256(t, keyB, "kid-b", validClaims(c.Now())), teamsActivity()); err == nil {
		t.Fatal("new kid accepted without a refresh")
	}
	if _, keys := bf.fetches(); keys != 1 {
		t.Fatalf("jwks fetches = %d within the refresh interval, want 1", keys)
	}

	c.Advance(time.Minute)
	if err := authenticate(v, "Bearer "+rs256(t, keyB, "kid-b", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatalf("rotated key rejected: %v", err)
	}
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatalf("old key rejected after rotation: %v", err)
	}
	if meta, keys := bf.fetches(); meta != 2 || keys != 2 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 2 each", meta, keys)
	}
}

func TestValidatorServesCacheWhenRefreshFails(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := bf.validator(c)
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatal(err)
	}
	bf.failing.Store(true)
	c.Advance(25 * time.Hour)
	for i := range 3 {
		if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
			t.Fatalf("request %d with metadata down: %v", i, err)
		}
	}
	// One failed attempt, then throttled rather than hammering a failing endpoint.
	if meta, _ := bf.fetches(); meta != 2 {
		t.Fatalf("metadata fetches = %d, want 2", meta)
	}
}

func TestValidatorFirstFetchFails(t *testing.T) {
	bf := newBotFramework(t)
	bf.failing.Store(true)
	c := newClock()
	v := bf.validator(c)
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err == nil {
		t.Fatal("accepted a token with no keys available")
	}
	bf.failing.Store(false)
	c.Advance(2 * time.Minute)
	if err := authenticate(v, "Bearer "+rs256(t, keyA, "kid-a", validClaims(c.Now())), teamsActivity()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestValidatorConcurrent(t *testing.T) {
	bf := newBotFramework(t)
	c := newClock()
	v := bf.validator(c)
	good := "Bearer " + rs256(t, keyA, "kid-a", validClaims(c.Now()))
	unknown := "Bearer " + rs256(t, keyA, "kid-unknown", validClaims(c.Now()))

	const n = 50
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			header := good
			if i%5 == 0 {
				header = unknown
			}
			errs[i] = authenticate(v, header, teamsActivity())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 && err == nil {
			t.Errorf("goroutine %d: unknown kid accepted", i)
		}
		if i%5 != 0 && err != nil {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
	if meta, keys := bf.fetches(); meta != 1 || keys != 1 {
		t.Fatalf("fetches: metadata %d, jwks %d; want 1 each", meta, keys)
	}
}

func TestRSAPublicKey(t *testing.T) {
	testKeys(t)
	good := jwkFor(keyA, "k", "")
	tests := []struct {
		name string
		n, e string
		ok   bool
	}{
		{name: "valid", n: good.N, e: good.E, ok: true},
		{name: "padded base64", n: good.N, e: base64.URLEncoding.EncodeToString(big.NewInt(65537).Bytes()), ok: true},
		{name: "bad modulus", n: "!!", e: good.E},
		{name: "empty modulus", n: "", e: good.E},
		{name: "exponent 1", n: good.N, e: base64.RawURLEncoding.EncodeToString([]byte{1})},
		{name: "zero exponent", n: good.N, e: base64.RawURLEncoding.EncodeToString([]byte{0})},
		{name: "exponent too wide", n: good.N, e: base64.RawURLEncoding.EncodeToString([]byte{1, 0, 0, 0, 0, 0, 0, 0, 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, err := rsaPublicKey(tt.n, tt.e)
			if tt.ok != (err == nil) {
				t.Fatalf("rsaPublicKey error = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (pub.N.Cmp(keyA.N) != 0 || pub.E != keyA.E) {
				t.Fatal("key does not match the source")
			}
		})
	}
}
