// Package web is tokenpay's dashboard: pages for admins (the organisation), managers
// (their reports and the decisions waiting for them) and everyone (their own allowance,
// history, requests, outcomes, lessons and prompts), served by `tokenpay serve`.
//
// It is one more rendering of the conversation core: a decision taken on a page goes
// through the same bot.Handler as a chat button, with the same rules, audit and
// idempotency. Pages are rendered on the server with their charts as inline SVG; every
// asset is embedded, and the Content-Security-Policy allows nothing from elsewhere.
//
// People sign in with OpenID Connect (matched by their verified email) or with a one-time
// link from `tokenpay login-link`. Sessions live in Secure, HttpOnly, SameSite=Lax cookies
// whose SHA-256 is stored; every form carries the session's CSRF token, and cross-origin
// posts are refused before that. A sign-in link's GET only shows whom it signs in; the
// POST from that page uses it (useLink says why that form needs no CSRF token).
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/policy"
)

//go:embed templates/*.html static/*
var assets embed.FS

// CSP allows the page's own stylesheet and nothing else: no script at all, no frame, no
// form posting elsewhere, no external image, font or connection.
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// SessionCookie names the session cookie.
const SessionCookie = "tokenpay_session"

// SessionTTL is how long a sign-in lasts.
const SessionTTL = 12 * time.Hour

// Server serves the dashboard. Register adds its routes to a mux.
type Server struct {
	Store  ledger.Store
	Policy *policy.Policy
	// Handler is the conversation core behind the chat platforms; decisions taken on a
	// page go through it.
	Handler *bot.Handler
	Now     func() time.Time
	Log     zerolog.Logger
	// PublicURL is where people reach tokenpay (TOKENPAY_PUBLIC_URL), without a trailing
	// slash; the OIDC redirect URL is built from it.
	PublicURL string
	// OIDC signs people in with the organisation's identity provider; nil offers sign-in
	// links only.
	OIDC *OIDC
	// Connectors reports the usage connectors' health for the organisation page; nil
	// leaves the panel out.
	Connectors func(ctx context.Context) ([]ConnectorHealth, error)

	tmpl *template.Template
}

// Register adds the dashboard's routes to mux.
func (s *Server) Register(mux *http.ServeMux) error {
	t, err := template.New("").Funcs(funcs).ParseFS(assets, "templates/*.html")
	if err != nil {
		return err
	}
	s.tmpl = t
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return err
	}
	cop := http.NewCrossOriginProtection()
	h := func(pattern string, fn http.HandlerFunc) {
		mux.Handle(pattern, secure(cop.Handler(fn)))
	}
	h("GET /dashboard/static/", http.StripPrefix("/dashboard/static/", http.FileServerFS(static)).ServeHTTP)
	h("GET /dashboard", s.signedIn(s.home))
	h("/dashboard/", s.notFound)
	h("/auth/", s.notFound)
	h("GET /dashboard/org", s.signedIn(s.orgPage))
	h("GET /dashboard/org/csv/{chart}", s.signedIn(s.orgCSV))
	h("GET /dashboard/team", s.signedIn(s.teamPage))
	h("GET /dashboard/team/csv/{chart}", s.signedIn(s.teamCSV))
	h("GET /dashboard/me", s.signedIn(s.mePage))
	h("GET /dashboard/people/{id}", s.signedIn(s.personPage))
	h("GET /dashboard/people/{id}/csv/{chart}", s.signedIn(s.personCSV))
	h("POST /dashboard/requests/{id}/{decision}", s.signedIn(s.withCSRF(s.decide)))
	h("POST /dashboard/impacts/{id}/validate", s.signedIn(s.withCSRF(s.validate)))
	h("GET /auth/signin", s.signinPage)
	h("GET /auth/link/{token}", s.showLink)
	h("POST /auth/link/{token}", s.useLink)
	h("GET /auth/oidc", s.oidcStart)
	h("GET /auth/callback", s.oidcCallback)
	h("POST /auth/signout", s.signedIn(s.withCSRF(s.signout)))
	return nil
}

// secure sets the headers every dashboard answer carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		// A sign-in link is in the URL: never send it on as a referrer.
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if !strings.HasPrefix(r.URL.Path, "/dashboard/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// viewer is who is looking, and what they may see.
type viewer struct {
	Person  ledger.Person
	Session ledger.Session
	Admin   bool
	Manager bool // has reports
}

type ctxKey struct{}

func viewerOf(r *http.Request) viewer { return r.Context().Value(ctxKey{}).(viewer) }

// signedIn runs next for a signed-in person, and sends anyone else to sign in.
func (s *Server) signedIn(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		if err != nil || c.Value == "" {
			s.toSignin(w, r)
			return
		}
		sess, err := s.Store.SessionFor(r.Context(), c.Value)
		if ledger.ErrorCode(err) == ledger.NotFound {
			s.toSignin(w, r)
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		p, err := s.Store.PersonByID(r.Context(), sess.PersonID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		reports, err := s.Store.Reports(r.Context(), p.ID)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		v := viewer{Person: p, Session: sess, Admin: s.Policy.IsAdmin(p.Email), Manager: len(reports) > 0}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, v)))
	}
}

func (s *Server) toSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.problem(w, r, http.StatusUnauthorized, "You are signed out", "Sign in again, then repeat what you were doing.")
		return
	}
	http.Redirect(w, r, "/auth/signin", http.StatusSeeOther)
}

// withCSRF checks the form's token against the session's before next runs.
func (s *Server) withCSRF(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			s.problem(w, r, http.StatusBadRequest, "That form could not be read", "Reload the page and try again.")
			return
		}
		if !viewerOf(r).Session.CheckCSRF(r.PostFormValue("csrf")) {
			s.problem(w, r, http.StatusForbidden, "That form has expired", "Reload the page and try again: forms work only from the page tokenpay served you.")
			return
		}
		next(w, r)
	}
}

// page is what every template gets.
type page struct {
	Title  string
	Org    string
	Viewer *viewer
	CSRF   string
	Nav    string // which tab is current
	Data   any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, p page) {
	p.Org = s.Policy.Org.Name
	if v, ok := r.Context().Value(ctxKey{}).(viewer); ok {
		p.Viewer = &v
		p.CSRF = v.Session.CSRF
	}
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, p); err != nil {
		s.Log.Error().Err(err).Str("template", name).Msg("render dashboard page")
		http.Error(w, "The page could not be drawn. Try again in a minute; if it keeps happening, tell your admin.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

type problemData struct{ Heading, Text string }

func (s *Server) problem(w http.ResponseWriter, r *http.Request, code int, heading, text string) {
	s.render(w, r, code, "problem.html", page{Title: heading, Data: problemData{heading, text}})
}

func (s *Server) forbidden(w http.ResponseWriter, r *http.Request, text string) {
	s.problem(w, r, http.StatusForbidden, "Not yours to see", text)
}

// fail answers an error: user-safe messages as they are, internal ones logged.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch ledger.ErrorCode(err) {
	case ledger.NotFound:
		code = http.StatusNotFound
	case ledger.Forbidden:
		code = http.StatusForbidden
	case ledger.Invalid, ledger.Conflict:
		code = http.StatusBadRequest
	default:
		if !errors.Is(err, context.Canceled) {
			s.Log.Error().Err(err).Str("path", r.URL.Path).Msg("dashboard")
		}
	}
	s.problem(w, r, code, "That did not work", ledger.ErrorMessage(err))
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.problem(w, r, http.StatusNotFound, "No such page", "Start again from your dashboard.")
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	v := viewerOf(r)
	switch {
	case v.Admin:
		http.Redirect(w, r, "/dashboard/org", http.StatusSeeOther)
	case v.Manager:
		http.Redirect(w, r, "/dashboard/team", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/dashboard/me", http.StatusSeeOther)
	}
}

var funcs = template.FuncMap{
	"credits":    credits,
	"hoursSaved": hoursSaved,
	"days":       days,
	"date": func(t time.Time, loc *time.Location) string {
		if t.IsZero() {
			return ""
		}
		return t.In(loc).Format("2 Jan 2006 15:04")
	},
	"pct":   func(v float64) string { return compact(v*100, "") + "%" },
	"reply": replyHTML,
	// activity names a history entry's kind as the chat history does.
	"activity": func(kind string) string {
		if label, ok := map[string]string{ledger.TxGrant: "granted", ledger.TxUsage: "used", ledger.TxReset: "period closed",
			ledger.TxReversal: "correction", ledger.TxReallocate: "reallocated"}[kind]; ok {
			return label
		}
		return kind
	},
}

// hoursSaved says how much time an outcome saved, from its minutes: "1 hour saved",
// "1.5 hours saved", "6 hours saved".
func hoursSaved(minutes int64) string {
	h := compact(float64(minutes)/60, "")
	if h == "1" {
		return "1 hour saved"
	}
	return h + " hours saved"
}

// days counts whole days: "1 day", "3 days".
func days(n int) string {
	if n == 1 {
		return "1 day"
	}
	return strconv.Itoa(n) + " days"
}

// ConnectorHealth is one usage connector's state, as `tokenpay connectors` reports it.
// Times are UTC; zero means never.
type ConnectorHealth struct {
	Name        string
	Configured  bool
	How         string // how it is set up, or what to set
	LastRunAt   time.Time
	LastOKAt    time.Time
	LastEventAt time.Time
	Events      int64 // usage events booked from it
	Credits     int64
	Quarantined int64 // events waiting for their person in the directory
	Unmapped    int64 // events waiting for a vendor identity to be mapped to a person
	LastError   string
}

// Status says in a few words whether the connector works.
func (c ConnectorHealth) Status() string {
	switch {
	case !c.LastRunAt.IsZero() && c.LastOKAt.Before(c.LastRunAt):
		return "failing"
	case !c.Configured:
		return "not configured"
	case c.Events == 0:
		return "no usage yet"
	}
	return "working"
}
