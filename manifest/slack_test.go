package manifest_test

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/manifest"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

const slackSchema = "slack-manifest.schema.json"

// slackDoc is the part of the generated manifest the tests look at, decoded independently
// of the package's own types.
type slackDoc struct {
	DisplayInformation struct {
		Name            string `json:"name"`
		Description     string `json:"description"`
		LongDescription string `json:"long_description"`
	} `json:"display_information"`
	Features struct {
		AppHome struct {
			HomeTab     bool `json:"home_tab_enabled"`
			MessagesTab bool `json:"messages_tab_enabled"`
			ReadOnlyTab bool `json:"messages_tab_read_only_enabled"`
		} `json:"app_home"`
		BotUser *struct {
			DisplayName string `json:"display_name"`
		} `json:"bot_user"`
		SlashCommands []struct {
			Command      string `json:"command"`
			UsageHint    string `json:"usage_hint"`
			ShouldEscape *bool  `json:"should_escape"`
		} `json:"slash_commands"`
		Shortcuts []struct {
			Name, Type string
			CallbackID string `json:"callback_id"`
		} `json:"shortcuts"`
	} `json:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot  []string `json:"bot"`
			User []string `json:"user"`
		} `json:"scopes"`
	} `json:"oauth_config"`
	Settings struct {
		EventSubscriptions struct {
			BotEvents []string `json:"bot_events"`
		} `json:"event_subscriptions"`
		Interactivity struct {
			IsEnabled bool `json:"is_enabled"`
		} `json:"interactivity"`
		OrgDeploy     *bool `json:"org_deploy_enabled"`
		SocketMode    *bool `json:"socket_mode_enabled"`
		TokenRotation *bool `json:"token_rotation_enabled"`
	} `json:"settings"`
}

// requestURLs collects every "url" or "*_url" value in a decoded manifest, keyed by its
// path, so that a URL added anywhere is noticed.
func requestURLs(v any, path string, into map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if s, ok := child.(string); ok && (k == "url" || strings.HasSuffix(k, "_url")) {
				into[path+"/"+k] = s
			}
			requestURLs(child, path+"/"+k, into)
		}
	case []any:
		for _, child := range v {
			requestURLs(child, path+"/[]", into)
		}
	}
}

func buildSlack(t *testing.T, opts manifest.SlackOptions) (slackDoc, map[string]string) {
	t.Helper()
	out, err := manifest.Slack(opts)
	if err != nil {
		t.Fatalf("Slack(%+v): %v", opts, err)
	}
	spectest.Validate(t, slackSchema, out)

	var doc slackDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	var raw any
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	urls := map[string]string{}
	requestURLs(raw, "", urls)
	return doc, urls
}

func TestSlackHTTPMode(t *testing.T) {
	tests := []struct{ baseURL, want string }{
		{"https://tokenpay.example.com", "https://tokenpay.example.com"},
		{"https://tokenpay.example.com/", "https://tokenpay.example.com"},
		{"https://example.com:8443/tokenpay", "https://example.com:8443/tokenpay"},
	}
	for _, tt := range tests {
		t.Run(tt.baseURL, func(t *testing.T) {
			doc, urls := buildSlack(t, manifest.SlackOptions{BaseURL: tt.baseURL})
			want := map[string]string{
				"/features/slash_commands/[]/url":           tt.want + "/slack/commands",
				"/settings/interactivity/request_url":       tt.want + "/slack/interactions",
				"/settings/event_subscriptions/request_url": tt.want + "/slack/events",
			}
			if !maps.Equal(urls, want) {
				t.Errorf("request URLs = %v, want %v", urls, want)
			}
			if doc.Settings.SocketMode == nil || *doc.Settings.SocketMode {
				t.Errorf("socket_mode_enabled = %s, want an explicit false", show(doc.Settings.SocketMode))
			}
			checkSlackCommon(t, doc)
		})
	}
}

func TestSlackSocketMode(t *testing.T) {
	for _, base := range []string{"", "https://tokenpay.example.com"} {
		doc, urls := buildSlack(t, manifest.SlackOptions{SocketMode: true, BaseURL: base})
		if len(urls) != 0 {
			t.Errorf("base %q: socket mode manifest has request URLs %v", base, urls)
		}
		if doc.Settings.SocketMode == nil || !*doc.Settings.SocketMode {
			t.Errorf("base %q: socket_mode_enabled = %s, want true", base, show(doc.Settings.SocketMode))
		}
		checkSlackCommon(t, doc)
	}
}

// checkSlackCommon checks what the manifest promises in either mode.
func checkSlackCommon(t *testing.T, doc slackDoc) {
	t.Helper()
	if got := doc.DisplayInformation.Name; got != "tokenpay" {
		t.Errorf("name = %q, want tokenpay", got)
	}
	checkFraming(t, doc.DisplayInformation.Description+" "+doc.DisplayInformation.LongDescription)
	if doc.Features.BotUser == nil || doc.Features.BotUser.DisplayName == "" {
		t.Error("manifest has no bot user")
	}
	if h := doc.Features.AppHome; !h.HomeTab || !h.MessagesTab || h.ReadOnlyTab {
		t.Errorf("app_home = %+v, want home tab on, messages tab on and writable", h)
	}

	if len(doc.Features.SlashCommands) != 1 {
		t.Fatalf("slash commands = %+v, want only /tokens", doc.Features.SlashCommands)
	}
	cmd := doc.Features.SlashCommands[0]
	if cmd.Command != "/tokens" {
		t.Errorf("command = %q, want /tokens", cmd.Command)
	}
	if cmd.ShouldEscape == nil || *cmd.ShouldEscape {
		t.Errorf("should_escape = %s, want an explicit false", show(cmd.ShouldEscape))
	}
	for _, sub := range []string{"balance", "history", "request <amount> <use case>", "impact <text>",
		"prompts [query]", "share", "learn", "nudges on|off", "team", "help"} {
		if !strings.Contains(cmd.UsageHint, sub) {
			t.Errorf("usage hint %q lacks %q", cmd.UsageHint, sub)
		}
	}

	if s := doc.Features.Shortcuts; len(s) != 1 || s[0].Name != "Save as prompt" || s[0].Type != "message" || s[0].CallbackID != "save_prompt" {
		t.Errorf("shortcuts = %+v, want the message shortcut save_prompt", s)
	}
	if ev, want := doc.Settings.EventSubscriptions.BotEvents, []string{"app_home_opened", "message.im", "app_uninstalled", "tokens_revoked"}; !slices.Equal(ev, want) {
		t.Errorf("bot events = %v, want %v", ev, want)
	}
	// Least privilege: reading DMs with the app is the only history the app may read.
	for _, s := range doc.OAuthConfig.Scopes.Bot {
		if strings.HasSuffix(s, ":history") && s != "im:history" {
			t.Errorf("bot scope %s reads conversations other than the app's DMs", s)
		}
	}
	if !doc.Settings.Interactivity.IsEnabled {
		t.Error("interactivity is off")
	}
	if o := doc.Settings.OrgDeploy; o == nil || *o {
		t.Errorf("org_deploy_enabled = %s, want an explicit false", show(o))
	}
	if r := doc.Settings.TokenRotation; r == nil || *r {
		t.Errorf("token_rotation_enabled = %s, want an explicit false", show(r))
	}

	var names []string
	for _, s := range manifest.SlackScopes() {
		names = append(names, s.Name)
	}
	if got := doc.OAuthConfig.Scopes.Bot; !slices.Equal(got, names) {
		t.Errorf("bot scopes = %v, want SlackScopes %v", got, names)
	}
	if got := doc.OAuthConfig.Scopes.User; len(got) != 0 {
		t.Errorf("user scopes = %v, want none", got)
	}
}

func TestSlackRejectsBadBaseURL(t *testing.T) {
	for _, base := range []string{
		"",
		"http://tokenpay.example.com",
		"/slack",
		"tokenpay.example.com",
		"https://",
		"https:tokenpay.example.com",
		"https://tokenpay.example.com?team=1",
		"https://tokenpay.example.com?",
		"https://tokenpay.example.com#top",
		"https://admin:secret@tokenpay.example.com",
		"https://tokenpay.example.com/%zz",
	} {
		out, err := manifest.Slack(manifest.SlackOptions{BaseURL: base})
		if err == nil {
			t.Errorf("Slack(BaseURL: %q) = %s, want an error", base, out)
			continue
		}
		// The message must say what to pass instead.
		if msg := err.Error(); !strings.Contains(msg, "https://tokenpay.example.com") || !strings.Contains(msg, "Socket Mode") {
			t.Errorf("Slack(BaseURL: %q) error %q does not say what to pass", base, msg)
		}
	}
}

// TestSlackScopes pins the scope list: widening what the bot may do must be a deliberate
// change to this test, with a reason in SlackScopes.
func TestSlackScopes(t *testing.T) {
	scopes := manifest.SlackScopes()
	var names []string
	for _, s := range scopes {
		names = append(names, s.Name)
		if strings.TrimSpace(s.Why) == "" {
			t.Errorf("scope %s has no reason", s.Name)
		}
	}
	want := []string{"commands", "chat:write", "im:write", "im:history", "users:read", "users:read.email"}
	if !slices.Equal(names, want) {
		t.Errorf("scopes = %v, want %v", names, want)
	}

	scopes[0].Name = "admin"
	if manifest.SlackScopes()[0].Name != "commands" {
		t.Error("SlackScopes returned its internal slice: a caller changed the manifest's scopes")
	}
}

// checkFraming holds the listing text to the product's framing: tokens are a capability to
// cultivate, never a contest.
func checkFraming(t *testing.T, text string) {
	t.Helper()
	lower := strings.ToLower(text)
	if !strings.Contains(lower, "fluency") && !strings.Contains(lower, "cultivate") {
		t.Errorf("description %q does not speak of fluency or cultivating a capability", text)
	}
	for _, word := range []string{"leaderboard", "rank", "top user", "compet", "winner", "reward"} {
		if strings.Contains(lower, word) {
			t.Errorf("description uses contest language %q: %q", word, text)
		}
	}
}

// show prints an optional JSON boolean, telling a missing key from false.
func show(b *bool) string {
	if b == nil {
		return "absent"
	}
	return strconv.FormatBool(*b)
}
