package slack

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	headerTimestamp = "X-Slack-Request-Timestamp"
	headerSignature = "X-Slack-Signature"
	signaturePrefix = "v0="
	defaultMaxSkew  = 5 * time.Minute
)

// Sentinel errors returned (wrapped) by Verify, so handlers and tests can tell failures
// apart with errors.Is; all of them mean the request must be answered with 401.
var (
	ErrMissingSignature = errors.New("slack request is missing its signature or timestamp header")
	ErrBadTimestamp     = errors.New("slack request timestamp is not a number")
	ErrStaleTimestamp   = errors.New("slack request timestamp is outside the allowed window")
	ErrBadSignature     = errors.New("slack request signature does not match")
)

// errNoSecret is a configuration fault, not a bad request: an empty key would let anyone
// compute a valid signature, so the verifier refuses to run without one.
var errNoSecret = errors.New("slack signing secret is not configured")

// Verifier checks Slack's v0 request signatures. Unlike slack-go's SecretsVerifier it takes
// an injected clock, so the freshness rule can be tested exactly.
type Verifier struct {
	Secret  []byte
	Now     func() time.Time // nil means time.Now
	MaxSkew time.Duration    // 0 means 5 minutes; applies to stale and future timestamps alike
}

// Verify checks the X-Slack-Signature and X-Slack-Request-Timestamp headers against the raw
// request body.
func (v Verifier) Verify(header http.Header, body []byte) error {
	if len(v.Secret) == 0 {
		return errNoSecret
	}
	ts := header.Get(headerTimestamp)
	sig := header.Get(headerSignature)
	if ts == "" || sig == "" {
		return ErrMissingSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrBadTimestamp, ts)
	}
	// Both directions count: a timestamp far in the future would otherwise stay replayable
	// for as long as it is ahead of the clock. Compared in whole seconds, not as a
	// time.Duration: a difference of more than 292 years saturates Sub, and negating the
	// saturated minimum leaves it negative, which once let a timestamp centuries ahead in.
	if !withinSeconds(v.now().Unix(), sec, v.maxSkew()) {
		return fmt.Errorf("%w: %d is more than %s from the clock", ErrStaleTimestamp, sec, v.maxSkew())
	}

	hexSig, ok := strings.CutPrefix(sig, signaturePrefix)
	if !ok {
		return fmt.Errorf("%w: unsupported signature version", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: signature is not hex", ErrBadSignature)
	}
	mac := hmac.New(sha256.New, v.Secret)
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// ReadVerified reads at most maxBody bytes of the request body and verifies its signature.
// On success it returns the raw body and 200, and puts the body back on r so that form
// parsing still works downstream. Otherwise it returns the status to answer with (413 over
// the limit, 401 for a verification failure) and the error.
func (v Verifier) ReadVerified(w http.ResponseWriter, r *http.Request, maxBody int64) ([]byte, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("read slack request body: %w", err)
		}
		return nil, http.StatusBadRequest, fmt.Errorf("read slack request body: %w", err)
	}
	if err := v.Verify(r.Header, body); err != nil {
		if errors.Is(err, errNoSecret) {
			return nil, http.StatusInternalServerError, err
		}
		return nil, http.StatusUnauthorized, fmt.Errorf("verify slack request: %w", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, http.StatusOK, nil
}

func (v Verifier) now() time.Time {
	if v.Now == nil {
		return time.Now()
	}
	return v.Now()
}

// withinSeconds reports whether |now - ts| <= limit, for any int64 values: no subtraction
// that could overflow.
func withinSeconds(now, ts int64, limit time.Duration) bool {
	l := int64(limit / time.Second)
	if ts > now {
		return ts-now >= 0 && ts-now <= l // ts-now overflows only when it is huge
	}
	return now-ts >= 0 && now-ts <= l
}

func (v Verifier) maxSkew() time.Duration {
	if v.MaxSkew <= 0 {
		return defaultMaxSkew
	}
	return v.MaxSkew
}
