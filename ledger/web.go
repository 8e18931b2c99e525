package ledger

import (
	"crypto/subtle"
	"time"
)

// LoginLinkTTL is how long a sign-in link works after it is made.
const LoginLinkTTL = 10 * time.Minute

// Session is a signed-in browser.
type Session struct {
	PersonID  int64
	CSRF      string // the token each form of this session must carry
	Via       string // "link" or "oidc"
	CreatedAt time.Time
	ExpiresAt time.Time
}

// ErrLinkRefused is the one answer for a sign-in link that is unknown, used or expired:
// the browser is not told which, so a guess learns nothing.
var ErrLinkRefused = Errorf(Forbidden, "This sign-in link is not valid: it was already used, it expired (links work for 10 minutes), or it was mistyped. Ask for a new one.")

// CheckCSRF reports whether token is this session's, in constant time.
func (s Session) CheckCSRF(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.CSRF)) == 1
}
