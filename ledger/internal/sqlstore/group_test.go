package sqlstore

import (
	"slices"
	"testing"

	"github.com/tokenpay/tokenpay/ledger"
)

func call(ids ...string) *usageCall {
	c := &usageCall{}
	for _, id := range ids {
		c.batch = append(c.batch, ledger.UsagePosting{Event: ledger.UsageEvent{EventID: id}})
		c.keys, c.hashes = append(c.keys, usageKey(id)), append(c.hashes, "h-"+id)
		c.results = append(c.results, ledger.UsageResult{EventID: id})
	}
	return c
}

func TestMerged(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group []*usageCall
		ok    bool
		ids   []string
	}{
		{"one batch posts as it is", []*usageCall{call("a", "b")}, false, nil},
		{"distinct ids, in order", []*usageCall{call("a", "b"), call("c"), call("d", "e")}, true, []string{"a", "b", "c", "d", "e"}},
		{"an id twice in one batch is that batch's own affair", []*usageCall{call("a", "a"), call("b")}, true, []string{"a", "a", "b"}},
		{"an id in two batches: one by one", []*usageCall{call("a", "b"), call("c", "a")}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, ok := merged(tc.group)
			if ok != tc.ok {
				t.Fatalf("merged: %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			var ids, keys, hashes []string
			for i, u := range m.batch {
				ids = append(ids, u.Event.EventID)
				keys, hashes = append(keys, m.keys[i]), append(hashes, m.hashes[i])
				if m.results[i].EventID != u.Event.EventID || keys[i] != usageKey(ids[i]) || hashes[i] != "h-"+ids[i] {
					t.Fatalf("row %d out of step: %q %q %q %q", i, ids[i], keys[i], hashes[i], m.results[i].EventID)
				}
			}
			if !slices.Equal(ids, tc.ids) {
				t.Fatalf("merged ids %v, want %v", ids, tc.ids)
			}
		})
	}
}
