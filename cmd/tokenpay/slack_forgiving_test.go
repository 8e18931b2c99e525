package main

import (
	"strings"
	"testing"
)

// TestSlackForgivingInput sends issue 16's examples as Slack sends them (signed slash
// commands over HTTP to a running serve): each is understood, or answered with a sentence
// that says what to do.
func TestSlackForgivingInput(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, _ := startServe(t, env)
	respond := fake.apiURL() + "respond"
	tests := []struct{ text, want string }{
		{"request 50 k summarise the interviews", "Request #1 for 50,000 credits sent to Mia Boss"},
		{"request 50,000 credits summarise the interviews", "You already asked for this: request #1 for 50,000 credits"},
		{"request 1,5k draft the survey", "Did you mean 1.5k (1,500 credits)?"},
		{"request 99999999999999999999 everything", "One request can ask for at most 5,000,000 credits."},
		{"request 5k " + strings.Repeat("a", 1001), "A use case can be at most 1,000 characters; yours has 1,001."},
		{"impact drafted the memo \u2014hours 2", "Logged impact #1 (2 hours saved)"},
		{"impact drafted the plan \u2013hours 1.5", "Logged impact #2 (1.5 hours saved)"},
		{"balanse", "Did you mean balance?"},
		{"request 10K draft the release notes", "Request #2 for 10,000 credits"},
		{"request 0.25M label the support backlog", "Request #3 for 250,000 credits"},
		{"request 10k review the onboarding guide", "You already have 3 requests waiting for a decision"},
	}
	for _, tc := range tests {
		resp, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", tc.text, respond), nil)
		if resp.StatusCode != 200 || !strings.Contains(body, tc.want) {
			t.Errorf("%.50q: %d %s, want %q", tc.text, resp.StatusCode, body, tc.want)
		}
	}
}
