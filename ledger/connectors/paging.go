package connectors

import (
	"fmt"
	"net/url"
)

// Deref is *s, or "" when the vendor sent null (OpenAI and Anthropic both do for a
// grouping they cannot attribute).
func Deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ReadPages reads a usage report page by page, the way OpenAI's and Anthropic's usage
// reports chain them (has_more, and next_page sent back as the page parameter). read
// fetches the page for a cursor ("" for the first) and returns the answer's has_more and
// next_page. A next_page equal to the cursor just sent is an error: following it would
// loop for ever.
func ReadPages(vendor string, read func(page string) (hasMore bool, next *string, err error)) error {
	page := ""
	for {
		more, next, err := read(page)
		if err != nil {
			return err
		}
		if !more || next == nil || *next == "" {
			return nil
		}
		if *next == page {
			return fmt.Errorf("the %s API returned the same next_page twice (%q); stopping", vendor, page)
		}
		page = *next
	}
}

// ListPage is one page of an OpenAI or Anthropic admin list (users, API keys).
type ListPage[T any] struct {
	Data    []T     `json:"data"`
	HasMore bool    `json:"has_more"`
	LastID  *string `json:"last_id"`
}

// ListAll reads every page of an admin list of pages of limit items, each page after the
// first asked for with the previous page's last_id in the query parameter after (OpenAI:
// "after", Anthropic: "after_id"). get reads one page with the query given. A last_id that
// repeats ends the list.
func ListAll[T any](after string, limit int, get func(q url.Values, p *ListPage[T]) error) ([]T, error) {
	var out []T
	last := ""
	for {
		q := url.Values{}
		q.Set("limit", fmt.Sprint(limit))
		if last != "" {
			q.Set(after, last)
		}
		var p ListPage[T]
		if err := get(q, &p); err != nil {
			return nil, err
		}
		out = append(out, p.Data...)
		if !p.HasMore || p.LastID == nil || *p.LastID == "" || *p.LastID == last {
			return out, nil
		}
		last = *p.LastID
	}
}
