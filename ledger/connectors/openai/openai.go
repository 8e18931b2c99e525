// Package openai reads OpenAI's organisation usage report for completions, grouped by user,
// API key and model in hourly buckets, and maps users to emails with the organisation's
// user list.
//
// Source: openai/openai-openapi openapi.yaml (paths /organization/usage/completions and
// /organization/users; schemas UsageResponse, UsageTimeBucket, UsageCompletionsResult,
// UserListResponse); see ../shared/spec/SOURCES.md.
package openai

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
)

// DefaultBaseURL is OpenAI's API (OPENAI_BASE_URL overrides it).
const DefaultBaseURL = "https://api.openai.com/v1"

// Fetcher reads the report with an admin key (OPENAI_ADMIN_KEY, never stored).
type Fetcher struct {
	BaseURL  string
	AdminKey string
	Client   *connectors.Client
	// UsersTTL is how long the user list is cached (default 1 h).
	UsersTTL time.Duration
	Now      func() time.Time

	users   map[string]string // user id -> email
	usersAt time.Time
}

// NewFetcher returns a Fetcher for baseURL ("" for the default) and key.
func NewFetcher(baseURL, key string) *Fetcher {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	return &Fetcher{BaseURL: strings.TrimRight(baseURL, "/"), AdminKey: key,
		Client: &connectors.Client{Vendor: "OpenAI", KeyVar: "OPENAI_ADMIN_KEY", BaseVar: "OPENAI_BASE_URL", HTTP: &http.Client{Timeout: 30 * time.Second}}}
}

type usagePage struct {
	Data []struct {
		StartTime int64    `json:"start_time"`
		EndTime   int64    `json:"end_time"`
		Results   []result `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// result is a UsageCompletionsResult: input_tokens counts cached and cache-write tokens
// too; the per-modality counts are ignored (see SOURCES.md).
type result struct {
	InputTokens           int64   `json:"input_tokens"`
	InputCachedTokens     int64   `json:"input_cached_tokens"`
	InputCacheWriteTokens int64   `json:"input_cache_write_tokens"`
	OutputTokens          int64   `json:"output_tokens"`
	UserID                *string `json:"user_id"`
	APIKeyID              *string `json:"api_key_id"`
	Model                 *string `json:"model"`
	ProjectID             *string `json:"project_id"`
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

func (f *Fetcher) get(ctx context.Context, path string, q url.Values, v any) error {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+f.AdminKey)
	return f.Client.GetJSON(ctx, f.BaseURL+path+"?"+q.Encode(), h, v)
}

// Fetch reads the hourly buckets starting in [start, end), every page.
func (f *Fetcher) Fetch(ctx context.Context, start, end time.Time) ([]ledger.UsageBucket, error) {
	var out []ledger.UsageBucket
	err := connectors.ReadPages("OpenAI", func(page string) (bool, *string, error) {
		q := url.Values{}
		q.Set("start_time", strconv.FormatInt(start.Unix(), 10))
		q.Set("end_time", strconv.FormatInt(end.Unix(), 10))
		q.Set("bucket_width", "1h")
		q["group_by"] = []string{"user_id", "api_key_id", "model"}
		q.Set("limit", "168")
		if page != "" {
			q.Set("page", page)
		}
		var p usagePage
		if err := f.get(ctx, "/organization/usage/completions", q, &p); err != nil {
			return false, nil, err
		}
		for _, b := range p.Data {
			for _, r := range b.Results {
				bk, err := f.bucket(ctx, b.StartTime, r)
				if err != nil {
					return false, nil, err
				}
				if bk.Event.InputTokens == 0 && bk.Event.OutputTokens == 0 {
					continue
				}
				out = append(out, bk)
			}
		}
		return p.HasMore, p.NextPage, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (f *Fetcher) bucket(ctx context.Context, start int64, r result) (ledger.UsageBucket, error) {
	user, key, model := connectors.Deref(r.UserID), connectors.Deref(r.APIKeyID), connectors.Deref(r.Model)
	if model == "" {
		model = "unknown"
	}
	cached := r.InputCachedTokens + r.InputCacheWriteTokens
	if cached > r.InputTokens || cached < 0 {
		cached = 0
	}
	b := ledger.UsageBucket{
		Key: strconv.FormatInt(start, 10) + "|" + user + "|" + key + "|" + model,
		Event: ledger.UsageEvent{Model: model, InputTokens: r.InputTokens, CachedInputTokens: cached, OutputTokens: r.OutputTokens,
			OccurredAt: time.Unix(start, 0).UTC(), Source: ledger.ConnectorOpenAI},
	}
	switch {
	case user != "":
		email, err := f.userEmail(ctx, user)
		if err != nil {
			return b, err
		}
		b.Event.Email = email
		b.Identity = connectors.Identity(connectors.KindUser, user)
	case key != "":
		b.Identity = connectors.Identity(connectors.KindAPIKey, key)
	default:
		b.Identity = connectors.Identity(connectors.KindAPIKey, "none-project-"+connectors.Deref(r.ProjectID))
	}
	return b, nil
}

// userEmail maps a user id to an email through GET /organization/users, cached for
// UsersTTL and read again when an id is missing from it.
func (f *Fetcher) userEmail(ctx context.Context, id string) (string, error) {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	ttl := f.UsersTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	if e, ok := f.users[id]; ok && now().Sub(f.usersAt) < ttl {
		return e, nil
	}
	if f.users != nil && now().Sub(f.usersAt) < time.Minute {
		return f.users[id], nil // just read: an id missing now stays missing
	}
	list, err := connectors.ListAll("after", 100, func(q url.Values, p *connectors.ListPage[user]) error {
		return f.get(ctx, "/organization/users", q, p)
	})
	if err != nil {
		return "", err
	}
	users := make(map[string]string, len(list))
	for _, u := range list {
		users[u.ID] = u.Email
	}
	f.users, f.usersAt = users, now()
	return users[id], nil
}
