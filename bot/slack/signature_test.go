package slack

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/manifest/spectest"
)

// loadVector parses Slack's published KEY=VALUE test vector; values may contain '=' so
// only the first one splits.
func loadVector(t *testing.T) map[string]string {
	t.Helper()
	path := spectest.Path(t, "slack-signature-vector.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open vector: %v", err)
	}
	defer f.Close()
	vec := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: malformed line %q", path, line)
		}
		vec[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	for _, k := range []string{"SIGNING_SECRET", "TIMESTAMP", "BODY", "HEADER_X_SLACK_SIGNATURE"} {
		if vec[k] == "" {
			t.Fatalf("%s: missing %s", path, k)
		}
	}
	return vec
}

func sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	vec := loadVector(t)
	sec, err := strconv.ParseInt(vec["TIMESTAMP"], 10, 64)
	if err != nil {
		t.Fatalf("vector timestamp: %v", err)
	}
	at := time.Unix(sec, 0)
	secret := vec["SIGNING_SECRET"]
	body := vec["BODY"]
	ts := vec["HEADER_X_SLACK_REQUEST_TIMESTAMP"]
	sig := vec["HEADER_X_SLACK_SIGNATURE"]

	tests := []struct {
		name    string
		secret  string
		now     time.Time
		ts, sig string
		body    string
		want    error
	}{
		{name: "published vector", secret: secret, now: at, ts: ts, sig: sig, body: body},
		{name: "within skew", secret: secret, now: at.Add(5 * time.Minute), ts: ts, sig: sig, body: body},
		{name: "tampered body", secret: secret, now: at, ts: ts, sig: sig, body: body + "&admin=1", want: ErrBadSignature},
		{name: "wrong secret", secret: secret + "x", now: at, ts: ts, sig: sig, body: body, want: ErrBadSignature},
		{name: "stale timestamp", secret: secret, now: at.Add(6 * time.Minute), ts: ts, sig: sig, body: body, want: ErrStaleTimestamp},
		{name: "future timestamp", secret: secret, now: at.Add(-6 * time.Minute), ts: ts, sig: sig, body: body, want: ErrStaleTimestamp},
		{name: "missing timestamp", secret: secret, now: at, sig: sig, body: body, want: ErrMissingSignature},
		{name: "missing signature", secret: secret, now: at, ts: ts, body: body, want: ErrMissingSignature},
		{name: "non-numeric timestamp", secret: secret, now: at, ts: "15314206l8", sig: sig, body: body, want: ErrBadTimestamp},
		{name: "signature without v0=", secret: secret, now: at, ts: ts, sig: strings.TrimPrefix(sig, "v0="), body: body, want: ErrBadSignature},
		{name: "other signature version", secret: secret, now: at, ts: ts, sig: "v1=" + strings.TrimPrefix(sig, "v0="), body: body, want: ErrBadSignature},
		{name: "signature not hex", secret: secret, now: at, ts: ts, sig: "v0=zz", body: body, want: ErrBadSignature},
		{name: "timestamp swapped after signing", secret: secret, now: at, ts: strconv.FormatInt(sec+1, 10), sig: sig, body: body, want: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.ts != "" {
				h.Set("X-Slack-Request-Timestamp", tt.ts)
			}
			if tt.sig != "" {
				h.Set("X-Slack-Signature", tt.sig)
			}
			v := Verifier{Secret: []byte(tt.secret), Now: func() time.Time { return tt.now }}
			err := v.Verify(h, []byte(tt.body))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestVerifyComputedSignatureMatchesVector(t *testing.T) {
	vec := loadVector(t)
	if got := sign(vec["SIGNING_SECRET"], vec["TIMESTAMP"], []byte(vec["BODY"])); got != vec["EXPECTED_SIGNATURE"] {
		t.Fatalf("signature = %s, want %s", got, vec["EXPECTED_SIGNATURE"])
	}
}

func TestVerifyMaxSkew(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Add(-90*time.Second).Unix(), 10)
	body := []byte("a=b")
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", sign("s3cret", ts, body))

	tests := []struct {
		skew time.Duration
		want error
	}{
		{skew: time.Minute, want: ErrStaleTimestamp},
		{skew: 2 * time.Minute},
		{skew: 0}, // default of five minutes
	}
	for _, tt := range tests {
		v := Verifier{Secret: []byte("s3cret"), Now: func() time.Time { return now }, MaxSkew: tt.skew}
		if err := v.Verify(h, body); !errors.Is(err, tt.want) {
			t.Errorf("MaxSkew %s: error = %v, want %v", tt.skew, err, tt.want)
		}
	}
}

func TestVerifyRefusesEmptySecret(t *testing.T) {
	body := []byte("a=b")
	ts := "1700000000"
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", sign("", ts, body))
	v := Verifier{Now: func() time.Time { return time.Unix(1_700_000_000, 0) }}
	if err := v.Verify(h, body); err == nil {
		t.Fatal("Verify accepted a signature made with an empty secret")
	}
}

func TestReadVerified(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	v := Verifier{Secret: []byte("s3cret"), Now: func() time.Time { return now }}
	small := "command=%2Ftokens&text=balance"
	big := strings.Repeat("x", 2048)

	tests := []struct {
		name       string
		body       string
		sig        string
		wantStatus int
		wantErr    error
	}{
		{name: "valid", body: small, sig: sign("s3cret", ts, []byte(small)), wantStatus: http.StatusOK},
		{name: "bad signature", body: small, sig: sign("other", ts, []byte(small)), wantStatus: http.StatusUnauthorized, wantErr: ErrBadSignature},
		{name: "missing signature", body: small, wantStatus: http.StatusUnauthorized, wantErr: ErrMissingSignature},
		{name: "oversized body", body: big, sig: sign("s3cret", ts, []byte(big)), wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("X-Slack-Request-Timestamp", ts)
			if tt.sig != "" {
				r.Header.Set("X-Slack-Signature", tt.sig)
			}
			body, status, err := v.ReadVerified(httptest.NewRecorder(), r, 1024)
			if status != tt.wantStatus {
				t.Fatalf("status = %d, want %d (err %v)", status, tt.wantStatus, err)
			}
			if tt.wantStatus != http.StatusOK {
				if err == nil || body != nil {
					t.Fatalf("got body %q, err %v; want no body and an error", body, err)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(body) != tt.body {
				t.Fatalf("got body %q, err %v; want %q", body, err, tt.body)
			}
			// The body must still be readable by form parsing after verification.
			again, err := io.ReadAll(r.Body)
			if err != nil || string(again) != tt.body {
				t.Fatalf("body after ReadVerified = %q, %v", again, err)
			}
		})
	}
}
