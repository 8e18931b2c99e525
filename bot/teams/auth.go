package teams

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/infracloudio/msbotbuilder-go/connector/auth"
	"github.com/infracloudio/msbotbuilder-go/schema"
	"github.com/rs/zerolog"
)

const (
	defaultMetadataURL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
	// Bot Framework documents five minutes as the clock skew to allow on exp and nbf.
	tokenLeeway = 5 * time.Minute
	// The key list is "relatively stable"; a day keeps rotations visible without a
	// fetch per request.
	keyCacheTTL = 24 * time.Hour
	// An unknown kid is attacker-controlled input: cap how often it can make us fetch.
	minRefreshInterval = time.Minute
	// A refresh serves every request waiting on it, so it gets its own deadline.
	refreshTimeout    = 20 * time.Second
	maxDiscoveryBytes = 1 << 20
	claimServiceURL   = "serviceurl"
)

// ValidatorConfig configures a Validator; zero fields take the documented defaults.
type ValidatorConfig struct {
	AppID       string       // the bot's Microsoft App ID, the expected audience
	MetadataURL string       // OpenID metadata; default Bot Framework's public document
	HTTPClient  *http.Client // default: 10 s timeout
	Now         func() time.Time
	Logger      zerolog.Logger
}

// Validator checks the JWT on activities sent by the Bot Connector service. It implements
// auth.TokenValidator for core.BotFrameworkAdapter, but caches the signing keys (the
// library's validator fetches them on every request without a lock).
type Validator struct {
	appID       string
	metadataURL string
	client      *http.Client
	now         func() time.Time
	log         zerolog.Logger

	keys atomic.Pointer[keySet] // nil until the first successful fetch

	// refreshMu serialises fetches so concurrent requests wait for one refresh instead of
	// each starting their own; it also guards lastAttempt.
	refreshMu   sync.Mutex
	lastAttempt time.Time
}

// keySet is one fetched snapshot of the metadata and JWKS; it is never modified after
// being stored, so readers need no lock.
type keySet struct {
	issuer    string
	keys      map[string]signingKey // by kid
	fetchedAt time.Time
}

type signingKey struct {
	pub          *rsa.PublicKey
	x5t          string
	endorsements []string
}

var _ auth.TokenValidator = (*Validator)(nil)

// NewValidator returns a Validator with cfg's defaults filled in. Keys are fetched lazily
// on the first request.
func NewValidator(cfg ValidatorConfig) *Validator {
	v := &Validator{
		appID:       cfg.AppID,
		metadataURL: cfg.MetadataURL,
		client:      cfg.HTTPClient,
		now:         cfg.Now,
		log:         cfg.Logger,
	}
	if v.metadataURL == "" {
		v.metadataURL = defaultMetadataURL
	}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// AuthenticateRequest validates the Authorization header of an incoming activity.
//
// credentials and channelService are part of the library's interface but deliberately
// unused: the audience comes from ValidatorConfig.AppID, and the Bot Framework rules say
// validation must have no off switch, which CredentialProvider.IsAuthenticationDisabled
// would be.
func (v *Validator) AuthenticateRequest(ctx context.Context, activity schema.Activity, authHeader string, _ auth.CredentialProvider, _ string) (auth.ClaimsIdentity, error) {
	if v.appID == "" {
		return nil, errors.New("bot framework auth: no app id configured")
	}
	scheme, raw, ok := strings.Cut(strings.TrimSpace(authHeader), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return nil, errors.New("bot framework auth: authorization header is not a bearer token")
	}

	var (
		set *keySet
		key signingKey
	)
	keyFunc := func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		var err error
		set, key, err = v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if x5t, _ := tok.Header["x5t"].(string); x5t != "" && key.x5t != "" && x5t != key.x5t {
			return nil, fmt.Errorf("token x5t %q does not match key %q", x5t, kid)
		}
		return key.pub, nil
	}
	claims := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodRS256.Alg()}),
		jwt.WithAudience(v.appID),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(v.now),
		jwt.WithExpirationRequired(),
	)
	if _, err := parser.ParseWithClaims(strings.TrimSpace(raw), claims, keyFunc); err != nil {
		return nil, fmt.Errorf("bot framework auth: %w", err)
	}
	if err := checkTimes(claims, v.now()); err != nil {
		return nil, fmt.Errorf("bot framework auth: %w", err)
	}

	// The issuer is checked here rather than with jwt.WithIssuer because it comes from the
	// metadata snapshot that supplied the key, which is only known once keyFunc has run.
	if iss, _ := claims.GetIssuer(); iss != set.issuer {
		return nil, fmt.Errorf("bot framework auth: issuer %q, want %q", iss, set.issuer)
	}
	// A validly signed token must not let a caller redirect the bot's replies elsewhere.
	if su, _ := claims[claimServiceURL].(string); su == "" || su != activity.ServiceURL {
		return nil, fmt.Errorf("bot framework auth: serviceurl claim %q does not match activity serviceUrl %q", su, activity.ServiceURL)
	}
	if len(key.endorsements) > 0 && !slices.Contains(key.endorsements, activity.ChannelID) {
		return nil, fmt.Errorf("bot framework auth: signing key is not endorsed for channel %q", activity.ChannelID)
	}
	return claimsIdentity(claims), nil
}

// maxTokenLifetime bounds how far ahead a token's exp may be. Bot Framework tokens live
// about an hour; one valid for years is not one it issued for a request.
const maxTokenLifetime = 7 * 24 * time.Hour

// checkTimes checks exp, nbf and iat again as plain numbers of seconds, for values the JWT
// library turns into instants wrongly: beyond int64 its float conversion is undefined and
// near it time.Unix wraps, so nbf=1e300 read as the distant past and the token as valid
// already. Floats compare without overflow. exp must be within [now-leeway,
// now+maxTokenLifetime]; nbf and iat, when present, at most now+leeway.
func checkTimes(claims jwt.MapClaims, now time.Time) error {
	at := float64(now.Unix())
	leeway := tokenLeeway.Seconds()
	for _, c := range []struct {
		name     string
		min, max float64
		required bool
	}{
		{"exp", at - leeway, at + maxTokenLifetime.Seconds(), true},
		{"nbf", math.Inf(-1), at + leeway, false},
		{"iat", math.Inf(-1), at + leeway, false},
	} {
		raw, ok := claims[c.name]
		if !ok || raw == nil {
			if c.required {
				return fmt.Errorf("token has no %s", c.name)
			}
			continue
		}
		var v float64
		switch x := raw.(type) {
		case float64:
			v = x
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return fmt.Errorf("token %s %q is not a number", c.name, x)
			}
			v = f
		default:
			return fmt.Errorf("token %s is not a number", c.name)
		}
		if math.IsNaN(v) || v < c.min || v > c.max {
			return fmt.Errorf("token %s %v is outside [%v, %v] seconds", c.name, v, c.min, c.max)
		}
	}
	return nil
}

// key returns the signing key for kid and the snapshot it came from, refreshing the cache
// when it is old or does not know kid.
func (v *Validator) key(ctx context.Context, kid string) (*keySet, signingKey, error) {
	set := v.keys.Load()
	k, known := set.lookup(kid)
	if known && v.fresh(set) {
		return set, k, nil
	}
	if known {
		// The cache is old but still has the key: if someone is already refreshing, keep
		// serving from it rather than queueing behind the fetch.
		if !v.refreshMu.TryLock() {
			return set, k, nil
		}
	} else {
		v.refreshMu.Lock()
	}
	defer v.refreshMu.Unlock()

	set = v.refreshLocked(ctx)
	if k, ok := set.lookup(kid); ok {
		return set, k, nil
	}
	return nil, signingKey{}, fmt.Errorf("unknown signing key %q", kid)
}

// refreshLocked fetches a new key set unless the last attempt is under a minute old, and
// returns the current one. Requests that queued behind a refresh therefore use its result
// instead of fetching again. A failed fetch keeps the old set. Callers hold refreshMu.
func (v *Validator) refreshLocked(ctx context.Context) *keySet {
	set := v.keys.Load()
	now := v.now()
	if !v.lastAttempt.IsZero() && now.Sub(v.lastAttempt) < minRefreshInterval {
		return set
	}
	v.lastAttempt = now

	// One caller's cancellation must not fail the refresh the others are waiting for.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	fetched, err := v.fetch(ctx)
	if err != nil {
		v.log.Warn().Err(err).Str("metadata_url", v.metadataURL).Msg("bot framework signing keys not refreshed; using cached keys")
		return set
	}
	fetched.fetchedAt = now
	v.keys.Store(fetched)
	return fetched
}

func (v *Validator) fresh(set *keySet) bool {
	return set != nil && v.now().Sub(set.fetchedAt) < keyCacheTTL
}

func (s *keySet) lookup(kid string) (signingKey, bool) {
	if s == nil {
		return signingKey{}, false
	}
	k, ok := s.keys[kid]
	return k, ok
}

type openIDMetadata struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

type jwks struct {
	Keys []jwk `json:"keys"`
}

type jwk struct {
	Kty          string   `json:"kty"`
	Kid          string   `json:"kid"`
	X5t          string   `json:"x5t"`
	N            string   `json:"n"`
	E            string   `json:"e"`
	Endorsements []string `json:"endorsements"`
}

func (v *Validator) fetch(ctx context.Context) (*keySet, error) {
	var meta openIDMetadata
	if err := v.getJSON(ctx, v.metadataURL, &meta); err != nil {
		return nil, fmt.Errorf("fetch openid metadata: %w", err)
	}
	if meta.Issuer == "" || meta.JWKSURI == "" {
		return nil, fmt.Errorf("openid metadata %s lacks issuer or jwks_uri", v.metadataURL)
	}
	var doc jwks
	if err := v.getJSON(ctx, meta.JWKSURI, &doc); err != nil {
		return nil, fmt.Errorf("fetch signing keys: %w", err)
	}
	set := &keySet{issuer: meta.Issuer, keys: make(map[string]signingKey, len(doc.Keys))}
	for _, k := range doc.Keys {
		if k.Kty != "RSA" || k.Kid == "" {
			continue
		}
		pub, err := rsaPublicKey(k.N, k.E)
		if err != nil {
			v.log.Warn().Err(err).Str("kid", k.Kid).Msg("skipping unusable bot framework signing key")
			continue
		}
		set.keys[k.Kid] = signingKey{pub: pub, x5t: k.X5t, endorsements: k.Endorsements}
	}
	if len(set.keys) == 0 {
		return nil, fmt.Errorf("signing keys at %s hold no usable RSA key", meta.JWKSURI)
	}
	return set, nil
}

func (v *Validator) getJSON(ctx context.Context, url string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", url, err)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(dst); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// rsaPublicKey builds a key from a JWK's base64url modulus and exponent.
func rsaPublicKey(n, e string) (*rsa.PublicKey, error) {
	nb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n, "="))
	if err != nil {
		return nil, fmt.Errorf("decode modulus: %w", err)
	}
	eb, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e, "="))
	if err != nil {
		return nil, fmt.Errorf("decode exponent: %w", err)
	}
	exp := new(big.Int).SetBytes(eb)
	if len(nb) == 0 || !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 {
		return nil, errors.New("modulus empty or exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(nb), E: int(exp.Int64())}, nil
}

// claimsIdentity exposes validated claims to the adapter. The library's own
// DefaultClaimIdentity panics on a missing or non-string claim; this one reads those as "".
type claimsIdentity jwt.MapClaims

func (c claimsIdentity) GetClaimValue(name string) string {
	s, _ := c[name].(string)
	return s
}

func (c claimsIdentity) IsAuthenticated() bool { return true }
