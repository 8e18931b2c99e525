package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
)

type signinData struct {
	OIDC bool
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin.html", page{Title: "Sign in", Data: signinData{OIDC: s.OIDC != nil}})
}

type linkData struct {
	Person ledger.Person
	Action string // where the form posts: the link itself
}

// refuseLink is the one answer for a sign-in link that does not work, whatever the reason.
func (s *Server) refuseLink(w http.ResponseWriter, r *http.Request) {
	s.problem(w, r, http.StatusForbidden, "This link does not work", ledger.ErrLinkRefused.Message)
}

// linkPerson looks up the person of a sign-in link with lookup (read it, or use it up). A
// link that does not work gets refuseLink's one answer; any other failure is the server's.
// ok is false when an answer was written.
func (s *Server) linkPerson(w http.ResponseWriter, r *http.Request, token string,
	lookup func(ctx context.Context, token string) (ledger.Person, error)) (p ledger.Person, ok bool) {
	if len(token) > 100 {
		s.refuseLink(w, r)
		return p, false
	}
	p, err := lookup(r.Context(), token)
	if ledger.ErrorCode(err) == ledger.Forbidden {
		s.refuseLink(w, r)
		return p, false
	}
	if err != nil {
		s.fail(w, r, err)
		return p, false
	}
	return p, true
}

// showLink answers the GET of a one-time link from `tokenpay login-link` with a page that
// says whom it signs in, and a button that does. The GET only reads: chat apps unfurling
// a pasted link (Slack, Teams), mail scanners and browser prefetch all fetch it, and
// none of them may use up the link before its person clicks. A link that no longer works
// gets its refusal here already, still without writing anything.
func (s *Server) showLink(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	p, ok := s.linkPerson(w, r, token, s.Store.LoginLinkPerson)
	if !ok {
		return
	}
	// The title stays generic: it is what a chat app's preview of the link shows.
	s.render(w, r, http.StatusOK, "link.html", page{Title: "Sign in", Data: linkData{Person: p, Action: "/auth/link/" + url.PathEscape(token)}})
}

// useLink consumes a sign-in link and signs its person in; only the POST from the link's
// own page does this.
//
// Why this form needs no CSRF token of its own: a CSRF token proves that a post comes from
// a page tokenpay served, which a signed-in session's token does for the other forms. Here
// the link's token, in the path being posted to, is already a 256-bit secret that only the
// link's holder knows: a forged form cannot name a link it does not know. What is left is
// login CSRF, where another site makes the visitor's browser post the attacker's own link
// and so signs the visitor in as the attacker; http.CrossOriginProtection, in front of
// every route (Register), refuses that post, since a browser marks it with
// Sec-Fetch-Site cross-site or same-site, or with an Origin that is not this host. A
// pre-session CSRF cookie was the alternative; it would add nothing against strangers (the
// path is secret already), the GET would have to set state, and a sibling subdomain could
// plant the cookie (cookie tossing) where the Sec-Fetch-Site check refuses it.
func (s *Server) useLink(w http.ResponseWriter, r *http.Request) {
	p, ok := s.linkPerson(w, r, r.PathValue("token"), s.Store.UseLoginLink)
	if !ok {
		return
	}
	s.startSession(w, r, p, "link")
}

// startSession signs p in and sends them to their home page.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, p ledger.Person, via string) {
	token, _, err := s.Store.CreateSession(r.Context(), p.ID, via, SessionTTL)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Log.Info().Int64("person", p.ID).Str("via", via).Msg("signed in to the dashboard")
	http.SetCookie(w, sessionCookie(token, int(SessionTTL.Seconds())))
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

// sessionCookie is the session cookie holding value for maxAge seconds (-1 deletes it). A
// browser deletes a cookie only when the deleting one has the same name, path and domain,
// so setting and clearing share this one constructor.
func sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.Store.DeleteSession(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, sessionCookie("", -1))
	http.Redirect(w, r, "/auth/signin?signed-out=1", http.StatusSeeOther)
}

// LinkURL is the sign-in link for a token, under base (a public URL without trailing slash).
func LinkURL(base, token string) string {
	return strings.TrimRight(base, "/") + "/auth/link/" + token
}
