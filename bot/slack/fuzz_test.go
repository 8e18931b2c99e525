package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary signature headers and bodies to the request verifier: it must
// never panic, and it may accept a request only when the body carries a correct v0
// signature with a timestamp inside the window.
func FuzzVerify(f *testing.F) {
	secret := []byte("8f742231b10e8888abcd99yyyzzz85a5")
	now := time.Unix(1_700_000_000, 0)
	sign := func(ts string, body []byte) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte("v0:" + ts + ":"))
		mac.Write(body)
		return "v0=" + hex.EncodeToString(mac.Sum(nil))
	}
	body := []byte("token=x&team_id=T1&user_id=U1&command=%2Ftokens&text=balance")
	f.Add("1700000000", sign("1700000000", body), body)
	f.Add("1700000000", strings.ToUpper(sign("1700000000", body)), body)
	f.Add("1699999000", sign("1699999000", body), body)
	f.Add("+1700000000", sign("+1700000000", body), body)
	f.Add("", "v0=", []byte{})
	f.Add("9223372036854775807", "v1=00", body)
	// Extreme timestamps, correctly signed: centuries ahead (where time.Duration saturates),
	// the int64 limits, zero and negative. Only the window may refuse them.
	for _, ts := range []string{"11167200000", "9223372036854775807", "-9223372036854775808", "0", "-1", "1700000300", "1700000301", "1699999700", "1699999699"} {
		f.Add(ts, sign(ts, body), body)
	}
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		v := Verifier{Secret: secret, Now: func() time.Time { return now }}
		h := http.Header{}
		h.Set(headerTimestamp, ts)
		h.Set(headerSignature, sig)
		if err := v.Verify(h, body); err != nil {
			return
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || sec < now.Unix()-int64(defaultMaxSkew/time.Second) || sec > now.Unix()+int64(defaultMaxSkew/time.Second) {
			t.Fatalf("accepted timestamp %q outside the window", ts)
		}
		got, err := hex.DecodeString(strings.TrimPrefix(sig, signaturePrefix))
		want, _ := hex.DecodeString(strings.TrimPrefix(sign(ts, body), signaturePrefix))
		if !strings.HasPrefix(sig, signaturePrefix) || err != nil || !hmac.Equal(got, want) {
			t.Fatalf("accepted signature %q for timestamp %q", sig, ts)
		}
	})
}
