// Package anthropic reads Anthropic's organisation usage report for the Messages API,
// grouped by API key, account and model in hourly buckets, and maps accounts and keys to
// emails with the organisation's users and API keys.
//
// Source: Anthropic Admin API, "Get Usage Report for the Messages API"
// (GET /v1/organizations/usage_report/messages; schemas MessagesUsageReportItem,
// CacheCreation), GET /v1/organizations/users and GET /v1/organizations/api_keys
// (https://platform.claude.com/docs/en/api/admin); see ../shared/spec/SOURCES.md.
package anthropic

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenpay/tokenpay/ledger"
	"github.com/tokenpay/tokenpay/ledger/connectors"
)

// DefaultBaseURL is Anthropic's API (ANTHROPIC_BASE_URL overrides it).
const DefaultBaseURL = "https://api.anthropic.com"

// APIVersion is the anthropic-version header every request carries.
const APIVersion = "2023-06-01"

// Fetcher reads the report with an admin key (ANTHROPIC_ADMIN_KEY, never stored).
type Fetcher struct {
	BaseURL  string
	AdminKey string
	Client   *connectors.Client
	// DirectoryTTL is how long the user and key lists are cached (default 1 h).
	DirectoryTTL time.Duration
	Now          func() time.Time

	// users and owners are nil until the first read, at readAt.
	users  map[string]string // user id -> email
	owners map[string]string // API key id -> user id of its principal or creator
	readAt time.Time
}

// NewFetcher returns a Fetcher for baseURL ("" for the default) and key.
func NewFetcher(baseURL, key string) *Fetcher {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	return &Fetcher{BaseURL: strings.TrimRight(baseURL, "/"), AdminKey: key,
		Client: &connectors.Client{Vendor: "Anthropic", KeyVar: "ANTHROPIC_ADMIN_KEY", BaseVar: "ANTHROPIC_BASE_URL", HTTP: &http.Client{Timeout: 30 * time.Second}}}
}

type reportPage struct {
	Data []struct {
		StartingAt time.Time `json:"starting_at"`
		EndingAt   time.Time `json:"ending_at"`
		Results    []item    `json:"results"`
	} `json:"data"`
	HasMore  bool    `json:"has_more"`
	NextPage *string `json:"next_page"`
}

// item is a MessagesUsageReportItem. Total input is uncached + cache reads + both cache
// write kinds; there is no flat cache_creation_input_tokens field in this report.
type item struct {
	UncachedInputTokens int64 `json:"uncached_input_tokens"`
	CacheCreation       struct {
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
	} `json:"cache_creation"`
	CacheReadInputTokens int64   `json:"cache_read_input_tokens"`
	OutputTokens         int64   `json:"output_tokens"`
	APIKeyID             *string `json:"api_key_id"`
	AccountID            *string `json:"account_id"`
	Model                *string `json:"model"`
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

type apiKey struct {
	ID        string `json:"id"`
	CreatedBy *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"created_by"`
	Principal *struct {
		Type   string `json:"type"`
		UserID string `json:"user_id"`
	} `json:"principal"`
}

func (f *Fetcher) get(ctx context.Context, path string, q url.Values, v any) error {
	h := http.Header{}
	h.Set("x-api-key", f.AdminKey)
	h.Set("anthropic-version", APIVersion)
	return f.Client.GetJSON(ctx, f.BaseURL+path+"?"+q.Encode(), h, v)
}

// Fetch reads the hourly buckets starting in [start, end), every page.
func (f *Fetcher) Fetch(ctx context.Context, start, end time.Time) ([]ledger.UsageBucket, error) {
	var out []ledger.UsageBucket
	err := connectors.ReadPages("Anthropic", func(page string) (bool, *string, error) {
		q := url.Values{}
		q.Set("starting_at", start.UTC().Format(time.RFC3339))
		q.Set("ending_at", end.UTC().Format(time.RFC3339))
		q.Set("bucket_width", "1h")
		q["group_by[]"] = []string{"api_key_id", "account_id", "model"}
		q.Set("limit", "168")
		if page != "" {
			q.Set("page", page)
		}
		var p reportPage
		if err := f.get(ctx, "/v1/organizations/usage_report/messages", q, &p); err != nil {
			return false, nil, err
		}
		for _, b := range p.Data {
			for _, it := range b.Results {
				bk, err := f.bucket(ctx, b.StartingAt.UTC(), it)
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

func (f *Fetcher) bucket(ctx context.Context, start time.Time, it item) (ledger.UsageBucket, error) {
	key, account, model := connectors.Deref(it.APIKeyID), connectors.Deref(it.AccountID), connectors.Deref(it.Model)
	if model == "" {
		model = "unknown"
	}
	written := it.CacheCreation.Ephemeral1h + it.CacheCreation.Ephemeral5m
	cached := it.CacheReadInputTokens + written
	b := ledger.UsageBucket{
		Key: start.Format(time.RFC3339) + "|" + key + "|" + account + "|" + model,
		Event: ledger.UsageEvent{Model: model, InputTokens: it.UncachedInputTokens + cached, CachedInputTokens: cached,
			OutputTokens: it.OutputTokens, OccurredAt: start, Source: ledger.ConnectorAnthropic},
	}
	if err := f.directory(ctx); err != nil {
		return b, err
	}
	switch {
	case account != "":
		b.Identity = connectors.Identity(connectors.KindUser, account)
		b.Event.Email = f.users[account]
	case key != "":
		b.Identity = connectors.Identity(connectors.KindAPIKey, key)
		if owner := f.owners[key]; owner != "" {
			b.Event.Email = f.users[owner]
		}
	default:
		// Console (Workbench) usage carries no key; only an account can name its person.
		b.Identity = connectors.Identity(connectors.KindAPIKey, "console")
	}
	return b, nil
}

// directory reads the organisation's users and API keys, at most once per DirectoryTTL.
func (f *Fetcher) directory(ctx context.Context) error {
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	ttl := f.DirectoryTTL
	if ttl == 0 {
		ttl = time.Hour
	}
	if f.users != nil && now().Sub(f.readAt) < ttl {
		return nil
	}
	users, err := list[user](ctx, f, "/v1/organizations/users", 100)
	if err != nil {
		return err
	}
	keys, err := list[apiKey](ctx, f, "/v1/organizations/api_keys", 1000)
	if err != nil {
		return err
	}
	f.users, f.owners = map[string]string{}, map[string]string{}
	for _, u := range users {
		f.users[u.ID] = u.Email
	}
	for _, k := range keys {
		switch {
		case k.Principal != nil && k.Principal.UserID != "":
			f.owners[k.ID] = k.Principal.UserID
		case k.CreatedBy != nil && k.CreatedBy.Type == "user" && k.CreatedBy.ID != "":
			f.owners[k.ID] = k.CreatedBy.ID
		}
	}
	f.readAt = now()
	return nil
}

// list reads every page of an Admin API list (after_id = the previous page's last_id).
func list[T any](ctx context.Context, f *Fetcher, path string, limit int) ([]T, error) {
	return connectors.ListAll("after_id", limit, func(q url.Values, p *connectors.ListPage[T]) error {
		return f.get(ctx, path, q, p)
	})
}
