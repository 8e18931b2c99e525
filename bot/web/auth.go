package web

import (
	"net/http"
	"strings"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

type signinData struct {
	OIDC bool
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signin.html", page{Title: "Sign in", Data: signinData{OIDC: s.OIDC != nil}})
}

// useLink signs in with a one-time link from `tokenpay login-link`. The link is consumed
// by this GET: it is printed for one person to open, never posted where a preview could
// fetch it, and a consumed link only ever answers that it is no longer valid.
func (s *Server) useLink(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if len(token) > 100 {
		s.problem(w, r, http.StatusForbidden, "This link does not work", sqlite.ErrLinkRefused.Message)
		return
	}
	p, err := s.Store.UseLoginLink(r.Context(), token)
	if ledger.ErrorCode(err) == ledger.Forbidden {
		s.problem(w, r, http.StatusForbidden, "This link does not work", sqlite.ErrLinkRefused.Message)
		return
	}
	if err != nil {
		s.fail(w, r, err)
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
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: int(SessionTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/dashboard", http.StatusSeeOther)
}

func (s *Server) signout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := s.Store.DeleteSession(r.Context(), c.Value); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/auth/signin?signed-out=1", http.StatusSeeOther)
}

// LinkURL is the sign-in link for a token, under base (a public URL without trailing slash).
func LinkURL(base, token string) string {
	return strings.TrimRight(base, "/") + "/auth/link/" + token
}
