package sqlstore

import (
	"strings"
	"testing"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
)

// TestUsageHashMatchesInputHash: the fast event hash must stay byte-for-byte the general
// one, or retries of events stored before would read as different content.
func TestUsageHashMatchesInputHash(t *testing.T) {
	for _, ev := range []ledger.UsageEvent{
		{EventID: "e1", Email: "Ana@Example.com", Model: "gpt-4o", InputTokens: 1200, OutputTokens: 300, OccurredAt: time.UnixMilli(1764237600123), Source: "gw"},
		{EventID: "e2", SlackUserID: "U1", Model: "m", OccurredAt: time.Unix(0, 0)},
		{EventID: "e3", TeamsUserID: "aad", Model: strings.Repeat("é", 50), InputTokens: 1 << 40, Source: "x\x1fy"},
	} {
		want := inputHash("usage", ledger.NormalizeEmail(ev.Email), ev.SlackUserID, ev.TeamsUserID, ev.Model,
			ev.InputTokens, ev.OutputTokens, ev.OccurredAt.UnixMilli(), ev.Source)
		if got := usageHash(ev); got != want {
			t.Errorf("%s: usageHash %s, inputHash %s", ev.EventID, got, want)
		}
	}
}
