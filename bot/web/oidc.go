package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/tokenpay/tokenpay/ledger"
	"golang.org/x/oauth2"
)

// OIDC signs people in with the organisation's OpenID Provider (Sign in with Slack,
// Microsoft Entra ID, any other): authorization code flow with PKCE, state and nonce,
// the ID token verified by go-oidc (signature against the provider's keys, issuer,
// audience = the client id, expiry against the real clock), then the person matched by
// the token's email claim, which must be verified (email_verified true).
type OIDC struct {
	Issuer       string // OIDC_ISSUER_URL
	ClientID     string // OIDC_CLIENT_ID
	ClientSecret string // OIDC_CLIENT_SECRET
	RedirectURL  string // TOKENPAY_PUBLIC_URL + "/auth/callback"
	// HTTPClient reaches the provider; nil uses a client with a 10 s timeout.
	HTTPClient *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// oidcCookie carries state, nonce and the PKCE verifier between the redirect to the
// provider and its answer; it is HttpOnly and lives 10 minutes.
const oidcCookie = "tokenpay_oidc"

// setup discovers the provider on first use (so serve starts while the provider is down)
// and keeps it once found.
func (o *OIDC) setup(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.provider == nil {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.HTTPClient), o.Issuer)
		if err != nil {
			return nil, nil, fmt.Errorf("discover OpenID provider %s: %w", o.Issuer, err)
		}
		o.provider = p
	}
	cfg := &oauth2.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
		Endpoint: o.provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	return o.provider, cfg, nil
}

func (s *Server) oidcStart(w http.ResponseWriter, r *http.Request) {
	if s.OIDC == nil {
		s.problem(w, r, http.StatusNotFound, "Single sign-on is not set up",
			"Ask an admin for a sign-in link (tokenpay login-link), or to set OIDC_ISSUER_URL, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET and TOKENPAY_PUBLIC_URL.")
		return
	}
	_, cfg, err := s.OIDC.setup(r.Context())
	if err != nil {
		s.Log.Error().Err(err).Msg("OpenID Connect sign-in")
		s.problem(w, r, http.StatusBadGateway, "Sign-in is unavailable", "The organisation's identity provider did not answer. Try again in a minute; if it keeps happening, tell your admin.")
		return
	}
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state + "." + nonce + "." + verifier, Path: "/auth/", MaxAge: 600,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

// errSignin is what a refused sign-in shows: the detail goes to the log only.
var errSignin = errors.New("sign-in refused")

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	refuse := func(why string, err error) {
		s.Log.Warn().Err(err).Str("reason", why).Msg("OpenID Connect sign-in refused")
		s.problem(w, r, http.StatusForbidden, "Sign-in refused", why)
	}
	if s.OIDC == nil {
		s.problem(w, r, http.StatusNotFound, "Single sign-on is not set up", "Ask an admin for a sign-in link.")
		return
	}
	c, err := r.Cookie(oidcCookie)
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: "", Path: "/auth/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	parts := []string{}
	if err == nil {
		parts = strings.Split(c.Value, ".")
	}
	q := r.URL.Query()
	if len(parts) != 3 || subtle.ConstantTimeCompare([]byte(parts[0]), []byte(q.Get("state"))) != 1 {
		refuse("This sign-in did not start here or took too long. Start again from the sign-in page.", errSignin)
		return
	}
	if e := q.Get("error"); e != "" {
		refuse("The identity provider did not sign you in. Start again from the sign-in page.", fmt.Errorf("%w: provider said %q", errSignin, e))
		return
	}
	provider, cfg, err := s.OIDC.setup(r.Context())
	if err != nil {
		refuse("The organisation's identity provider did not answer. Try again in a minute.", err)
		return
	}
	ctx := oidc.ClientContext(r.Context(), s.OIDC.HTTPClient)
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(parts[2]))
	if err != nil {
		refuse("The identity provider did not confirm this sign-in. Start again from the sign-in page.", err)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		refuse("The identity provider sent no identity. Start again from the sign-in page.", fmt.Errorf("%w: no id_token", errSignin))
		return
	}
	// Expiry is checked against the real clock (go-oidc's default), never TOKENPAY_NOW.
	idt, err := provider.Verifier(&oidc.Config{ClientID: s.OIDC.ClientID}).Verify(ctx, raw)
	if err != nil {
		refuse("The identity provider's answer could not be verified (it was for another application, or it expired). Start again from the sign-in page.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(parts[1])) != 1 {
		refuse("This sign-in did not start here. Start again from the sign-in page.", fmt.Errorf("%w: nonce mismatch", errSignin))
		return
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified *bool  `json:"email_verified"`
		// Microsoft Entra ID sends no email_verified; its optional claim xms_edov (the
		// email's domain is verified by the tenant) says the same, when the app asks for it.
		EntraVerified *bool `json:"xms_edov"`
	}
	if err := idt.Claims(&claims); err != nil {
		refuse("The identity provider's answer could not be read.", err)
		return
	}
	verified := (claims.EmailVerified != nil && *claims.EmailVerified) || (claims.EmailVerified == nil && claims.EntraVerified != nil && *claims.EntraVerified)
	if claims.Email == "" || !verified {
		refuse("Your identity provider does not confirm your email address, so tokenpay cannot tell who you are. Verify your email there, or ask an admin for a sign-in link.",
			fmt.Errorf("%w: email %q not verified", errSignin, claims.Email))
		return
	}
	p, err := s.Store.PersonByEmail(r.Context(), claims.Email)
	if ledger.ErrorCode(err) == ledger.NotFound {
		refuse("Your email is not in tokenpay's directory. Ask an admin to add you.", fmt.Errorf("%w: %s not in the directory", errSignin, claims.Email))
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Store.Audit(r.Context(), p.Email, "web.signin", p.Email, "oidc "+s.OIDC.Issuer); err != nil {
		s.fail(w, r, err)
		return
	}
	s.startSession(w, r, p, "oidc")
}
