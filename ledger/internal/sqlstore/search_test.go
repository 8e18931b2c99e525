package sqlstore

import (
	"encoding/binary"
	"slices"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/ledger"
)

func TestSearchTerms(t *testing.T) {
	long := strings.Repeat("a", 100)
	tests := []struct {
		query string
		want  []string
	}{
		{"", nil},
		{"   ", nil},
		{"Interview Themes", []string{"interview", "themes"}},
		{`"quoted" (group) OR NEAR/3 -not col:val *`, []string{"quoted", "group", "or", "near", "3", "not", "col", "val"}},
		{"code-review, Q3!", []string{"code", "review", "q3"}},
		{"café Ünïcode 日本語", []string{"café", "ünïcode", "日本語"}},
		{"🙂 emoji\x00nul\x1b", []string{"emoji", "nul"}},
		{long, []string{long[:ledger.MaxSearchTermLen]}},
		{strings.Repeat("w ", 30), slices.Repeat([]string{"w"}, ledger.MaxSearchTerms)},
	}
	for _, tt := range tests {
		if got := ledger.SearchTerms(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("SearchTerms(%q) = %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestMatchExpr(t *testing.T) {
	tests := []struct {
		terms []string
		op    string
		want  string
	}{
		{[]string{"themes"}, "", `"themes*"`},
		{[]string{"interview", "the"}, "", `"interview" "the*"`},
		{[]string{"a", "b", "c"}, "OR", `"a" OR "b" OR "c*"`},
	}
	for _, tt := range tests {
		if got := matchExpr(tt.terms, tt.op); got != tt.want {
			t.Errorf("matchExpr(%q, %q) = %s, want %s", tt.terms, tt.op, got, tt.want)
		}
	}
}

// matchinfo builds a 'pcnalx' blob for one phrase over columns.
func matchinfo(n uint32, avg, lens, hits, docs []uint32) []byte {
	vals := []uint32{1, uint32(len(avg)), n}
	vals = append(vals, avg...)
	vals = append(vals, lens...)
	for j := range avg {
		vals = append(vals, hits[j], hits[j], docs[j])
	}
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func TestBM25(t *testing.T) {
	w := []float64{3, 1}
	score := func(t *testing.T, info []byte) float64 {
		t.Helper()
		s, err := bm25(info, w)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	inTitle := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{1, 0}, []uint32{10, 10}))
	inBody := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{0, 1}, []uint32{10, 10}))
	rare := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{0, 1}, []uint32{0, 2}))
	shortBody := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 20}, []uint32{0, 1}, []uint32{10, 10}))
	twice := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{0, 2}, []uint32{10, 10}))
	none := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{0, 0}, []uint32{10, 10}))
	common := score(t, matchinfo(100, []uint32{5, 100}, []uint32{5, 100}, []uint32{0, 1}, []uint32{100, 100}))
	for _, c := range []struct {
		name        string
		high, lower float64
	}{
		{"title beats body", inTitle, inBody},
		{"rare word beats common", rare, inBody},
		{"short field beats long", shortBody, inBody},
		{"two hits beat one", twice, inBody},
		{"a word in every prompt still counts", common, none},
	} {
		if c.high <= c.lower {
			t.Errorf("%s: %v <= %v", c.name, c.high, c.lower)
		}
	}

	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, 8), matchinfo(1, []uint32{1}, []uint32{1}, []uint32{1}, []uint32{1})[:16]} {
		if _, err := bm25(bad, w); err == nil {
			t.Errorf("bm25(%v) accepted a malformed blob", bad)
		}
	}
	huge := make([]byte, 12)
	binary.NativeEndian.PutUint32(huge, 1<<31)
	binary.NativeEndian.PutUint32(huge[4:], 1<<31)
	if _, err := bm25(huge, w); err == nil {
		t.Error("bm25 accepted an absurd phrase and column count")
	}
}

func TestTSQuery(t *testing.T) {
	tests := []struct {
		terms []string
		any   bool
		want  string
	}{
		{[]string{"themes"}, false, `'themes':*`},
		{[]string{"interview", "the"}, false, `'interview' & 'the':*`},
		{[]string{"a", "b", "c"}, true, `'a' | 'b' | 'c':*`},
		// Terms are letters and digits (SearchTerms); a quote or backslash would still be
		// part of the word, never an operator.
		{[]string{`o'k`, `a\b`}, false, `'o''k' & 'a\\b':*`},
	}
	for _, tt := range tests {
		if got := tsQuery(tt.terms, tt.any); got != tt.want {
			t.Errorf("tsQuery(%q, %v) = %s, want %s", tt.terms, tt.any, got, tt.want)
		}
	}
}
