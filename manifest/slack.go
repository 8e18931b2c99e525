package manifest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed slack/manifest.yaml
var slackTemplate []byte

// SlackOptions says how Slack reaches this deployment.
type SlackOptions struct {
	// BaseURL is the public https URL tokenpay is served at, without the /slack/... path,
	// e.g. https://tokenpay.example.com. Required unless SocketMode is set.
	BaseURL string
	// SocketMode has tokenpay open the connection to Slack (SLACK_APP_TOKEN), so the
	// manifest carries no request URLs.
	SocketMode bool
}

// Scope is a Slack OAuth scope the bot asks for, with the reason it needs it.
type Scope struct {
	Name string
	Why  string
}

// slackScopes is the least-privilege list: App Home (views.publish), modals (views.open)
// and response_url replies need no scope at all.
var slackScopes = []Scope{
	{"commands", "receive /tokens and the \"Save as prompt\" message shortcut"},
	{"chat:write", "post replies, approval requests, digests and nudges, and update them after a decision"},
	{"im:write", "open the DM in which a person gets their digest or nudge, or a manager an approval request"},
	{"im:history", "receive the messages people send the app in its DM (message.im), to answer commands typed there; only DMs with the app, no channel or other conversation"},
	{"users:read", "read a person's name and time zone, for greetings and quiet hours"},
	{"users:read.email", "link a Slack account to the people directory by email"},
}

// SlackScopes returns the bot scopes the Slack manifest requests, each with its reason.
func SlackScopes() []Scope {
	return slices.Clone(slackScopes)
}

// Slack returns the Slack app manifest as indented JSON, ready to paste into "Create an app
// from a manifest" at api.slack.com/apps.
func Slack(opts SlackOptions) ([]byte, error) {
	var m slackManifest
	dec := yaml.NewDecoder(bytes.NewReader(slackTemplate))
	// A misspelt key in the template would otherwise be dropped without a word.
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("parse slack manifest template: %w", err)
	}
	for _, s := range slackScopes {
		m.OAuthConfig.Scopes.Bot = append(m.OAuthConfig.Scopes.Bot, s.Name)
	}

	if opts.SocketMode {
		m.Settings.SocketModeEnabled = true
	} else {
		base, err := slackBaseURL(opts.BaseURL)
		if err != nil {
			return nil, err
		}
		for i := range m.Features.SlashCommands {
			m.Features.SlashCommands[i].URL = base + "/slack/commands"
		}
		m.Settings.Interactivity.RequestURL = base + "/slack/interactions"
		m.Settings.EventSubscriptions.RequestURL = base + "/slack/events"
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// The usage hint has <amount> in it; \u003c would be valid but unreadable when pasted.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode slack manifest: %w", err)
	}
	return buf.Bytes(), nil
}

func slackBaseURL(raw string) (string, error) {
	const want = "pass the public https URL tokenpay is served at (such as https://tokenpay.example.com), or use Socket Mode"
	if raw == "" {
		return "", fmt.Errorf("slack manifest: HTTP mode needs a base URL: %s", want)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("slack manifest: base URL: %w: %s", err, want)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", fmt.Errorf("slack manifest: base URL %q is not an absolute https URL without query or fragment: %s", raw, want)
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// slackManifest mirrors the part of Slack's manifest format tokenpay uses. Booleans have no
// omitempty: an explicit false (org deploy, token rotation) is part of the contract.
type slackManifest struct {
	DisplayInformation struct {
		Name            string `yaml:"name" json:"name"`
		Description     string `yaml:"description" json:"description,omitempty"`
		LongDescription string `yaml:"long_description" json:"long_description,omitempty"`
		BackgroundColor string `yaml:"background_color" json:"background_color,omitempty"`
	} `yaml:"display_information" json:"display_information"`
	Features struct {
		AppHome struct {
			HomeTabEnabled             bool `yaml:"home_tab_enabled" json:"home_tab_enabled"`
			MessagesTabEnabled         bool `yaml:"messages_tab_enabled" json:"messages_tab_enabled"`
			MessagesTabReadOnlyEnabled bool `yaml:"messages_tab_read_only_enabled" json:"messages_tab_read_only_enabled"`
		} `yaml:"app_home" json:"app_home"`
		BotUser struct {
			DisplayName  string `yaml:"display_name" json:"display_name"`
			AlwaysOnline bool   `yaml:"always_online" json:"always_online"`
		} `yaml:"bot_user" json:"bot_user"`
		SlashCommands []struct {
			Command      string `yaml:"command" json:"command"`
			URL          string `yaml:"url" json:"url,omitempty"`
			Description  string `yaml:"description" json:"description"`
			UsageHint    string `yaml:"usage_hint" json:"usage_hint,omitempty"`
			ShouldEscape bool   `yaml:"should_escape" json:"should_escape"`
		} `yaml:"slash_commands" json:"slash_commands"`
		Shortcuts []struct {
			Name        string `yaml:"name" json:"name"`
			Type        string `yaml:"type" json:"type"`
			CallbackID  string `yaml:"callback_id" json:"callback_id"`
			Description string `yaml:"description" json:"description"`
		} `yaml:"shortcuts" json:"shortcuts"`
	} `yaml:"features" json:"features"`
	OAuthConfig struct {
		Scopes struct {
			Bot []string `yaml:"bot" json:"bot"`
		} `yaml:"scopes" json:"scopes"`
	} `yaml:"oauth_config" json:"oauth_config"`
	Settings struct {
		EventSubscriptions struct {
			RequestURL string   `yaml:"request_url" json:"request_url,omitempty"`
			BotEvents  []string `yaml:"bot_events" json:"bot_events"`
		} `yaml:"event_subscriptions" json:"event_subscriptions"`
		Interactivity struct {
			IsEnabled  bool   `yaml:"is_enabled" json:"is_enabled"`
			RequestURL string `yaml:"request_url" json:"request_url,omitempty"`
		} `yaml:"interactivity" json:"interactivity"`
		OrgDeployEnabled     bool `yaml:"org_deploy_enabled" json:"org_deploy_enabled"`
		SocketModeEnabled    bool `yaml:"socket_mode_enabled" json:"socket_mode_enabled"`
		TokenRotationEnabled bool `yaml:"token_rotation_enabled" json:"token_rotation_enabled"`
	} `yaml:"settings" json:"settings"`
}
