package teams

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/infracloudio/msbotbuilder-go/schema"
)

// TestOutgoingCallsHaveTimeouts: the Bot Connector client (15 s) and the OpenID metadata
// and key fetches (10 s) are bounded, so a hanging Microsoft endpoint cannot hold a
// goroutine forever.
func TestOutgoingCallsHaveTimeouts(t *testing.T) {
	if c := NewConnector(ConnectorConfig{}); c.cfg.HTTPClient.Timeout != 15*time.Second {
		t.Errorf("connector timeout %s, want 15 s", c.cfg.HTTPClient.Timeout)
	}
	if v := NewValidator(ValidatorConfig{}); v.client.Timeout != 10*time.Second {
		t.Errorf("validator timeout %s, want 10 s", v.client.Timeout)
	}

	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	c := NewConnector(ConnectorConfig{AppID: "a", AppPassword: "p", TokenURL: hang.URL + "/token", MaxRetries: -1})
	c.cfg.HTTPClient.Timeout = 100 * time.Millisecond
	start := time.Now()
	_, err := c.SendToConversation(context.Background(), hang.URL+"/", "a:1", schema.Activity{Type: schema.Message, Text: "hi"})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("send against a hanging token endpoint: %v after %s, want a timeout error", err, time.Since(start))
	}
}
