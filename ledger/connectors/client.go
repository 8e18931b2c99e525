package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Client calls a vendor's admin API with the retries its documentation asks for: a 429 is
// retried after its Retry-After (seconds or an HTTP date), a 5xx or a network error after
// a growing pause; a 401 or 403 and any other 4xx is reported at once, in words.
type Client struct {
	// Vendor names the vendor in errors ("OpenAI").
	Vendor string
	// KeyVar is the environment variable holding the admin key, and BaseVar the one that
	// overrides the base URL, both named in errors.
	KeyVar, BaseVar string
	HTTP            *http.Client
	// Attempts bounds tries per request (default 4); Backoff is the first pause after a
	// 5xx (default 2 s, doubling); MaxWait caps any pause, Retry-After included (default 60 s).
	Attempts int
	Backoff  time.Duration
	MaxWait  time.Duration
	// Sleep waits (tests shorten it); nil waits on a timer, cut short by ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// ErrVendor is wrapped by every error a vendor answered with.
var ErrVendor = errors.New("vendor error")

// GetJSON sends a GET of rawURL with header (plus Accept: application/json) until an
// attempt succeeds or the retries run out, and decodes a 200 body into v.
func (c *Client) GetJSON(ctx context.Context, rawURL string, header http.Header, v any) error {
	attempts, backoff, maxWait := c.Attempts, c.Backoff, c.MaxWait
	if attempts <= 0 {
		attempts = 4
	}
	if backoff <= 0 {
		backoff = 2 * time.Second
	}
	if maxWait <= 0 {
		maxWait = time.Minute
	}
	var last error
	for try := 1; try <= attempts; try++ {
		req, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			return fmt.Errorf("request to %s: %w (check %s)", c.Vendor, err, c.BaseVar)
		}
		for k, vs := range header {
			req.Header[k] = append([]string(nil), vs...)
		}
		req.Header.Set("Accept", "application/json")
		wait, err := c.once(req.WithContext(ctx), v)
		if err == nil {
			return nil
		}
		last = err
		if wait < 0 || try == attempts {
			break
		}
		if wait == 0 {
			wait = backoff
			backoff *= 2
		}
		if err := c.sleep(ctx, min(wait, maxWait)); err != nil {
			return fmt.Errorf("%w (stopped retrying: %v)", last, err)
		}
	}
	return last
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// once makes one attempt. wait < 0: do not retry; 0: retry after the backoff; > 0: retry
// after that long.
func (c *Client) once(req *http.Request, v any) (time.Duration, error) {
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		if req.Context().Err() != nil {
			return -1, fmt.Errorf("%s %s: %w", c.Vendor, req.URL.Path, err)
		}
		return 0, fmt.Errorf("%s could not be reached (%s): %w", c.Vendor, req.URL.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return 0, fmt.Errorf("%s %s: read answer: %w", c.Vendor, req.URL.Path, err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, v); err != nil {
			return -1, fmt.Errorf("%s %s answered with JSON tokenpay cannot read: %w", c.Vendor, req.URL.Path, err)
		}
		return 0, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return -1, fmt.Errorf("%w: %s refused the admin key (HTTP %d%s); check %s: it must be an admin key of the organisation",
			ErrVendor, c.Vendor, resp.StatusCode, vendorMessage(body), c.KeyVar)
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		return wait, fmt.Errorf("%w: %s is rate limiting tokenpay (HTTP 429%s); the job retries", ErrVendor, c.Vendor, vendorMessage(body))
	case resp.StatusCode >= 500:
		return 0, fmt.Errorf("%w: %s had a server error (HTTP %d%s); the job retries", ErrVendor, c.Vendor, resp.StatusCode, vendorMessage(body))
	default:
		return -1, fmt.Errorf("%w: %s rejected %s (HTTP %d%s)", ErrVendor, c.Vendor, req.URL.Path, resp.StatusCode, vendorMessage(body))
	}
}

// retryAfter reads Retry-After: delay-seconds or an HTTP date (RFC 9110 §10.2.3). Missing
// or unreadable, it is 0 (use the backoff).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		return max(time.Duration(n)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), time.Millisecond)
	}
	return 0
}

// vendorMessage pulls {"error":{"message":...}} (OpenAI and Anthropic both use it) out of
// an error body, for the operator.
func vendorMessage(body []byte) string {
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
		return ""
	}
	msg := e.Error.Message
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return ": " + msg
}
