package connectors

import (
	"net/url"
	"reflect"
	"testing"
)

func ptr(s string) *string { return &s }

func TestReadPages(t *testing.T) {
	type answer struct {
		more bool
		next *string
	}
	tests := []struct {
		name    string
		answers []answer
		sent    []string // cursors read was called with
		err     string
	}{
		{"one page", []answer{{false, nil}}, []string{""}, ""},
		{"has_more without next_page ends", []answer{{true, nil}}, []string{""}, ""},
		{"empty next_page ends", []answer{{true, ptr("")}}, []string{""}, ""},
		{"next_page ignored without has_more", []answer{{false, ptr("p2")}}, []string{""}, ""},
		{"three pages", []answer{{true, ptr("p2")}, {true, ptr("p3")}, {false, nil}}, []string{"", "p2", "p3"}, ""},
		{"repeated next_page stops", []answer{{true, ptr("p2")}, {true, ptr("p2")}}, []string{"", "p2"},
			`the Acme API returned the same next_page twice ("p2"); stopping`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var sent []string
			err := ReadPages("Acme", func(page string) (bool, *string, error) {
				if len(sent) == len(tc.answers) {
					t.Fatalf("read called again after %v", sent)
				}
				a := tc.answers[len(sent)]
				sent = append(sent, page)
				return a.more, a.next, nil
			})
			if !reflect.DeepEqual(sent, tc.sent) {
				t.Errorf("cursors sent = %q, want %q", sent, tc.sent)
			}
			if (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Errorf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

func TestListAll(t *testing.T) {
	tests := []struct {
		name  string
		pages []ListPage[int]
		want  []int
		after []string // the after parameter of each request
	}{
		{"one page", []ListPage[int]{{Data: []int{1, 2}}}, []int{1, 2}, []string{""}},
		{"two pages", []ListPage[int]{{Data: []int{1}, HasMore: true, LastID: ptr("a")}, {Data: []int{2}, LastID: ptr("b")}},
			[]int{1, 2}, []string{"", "a"}},
		{"has_more without last_id ends", []ListPage[int]{{Data: []int{1}, HasMore: true}}, []int{1}, []string{""}},
		{"repeated last_id ends", []ListPage[int]{{Data: []int{1}, HasMore: true, LastID: ptr("a")}, {Data: []int{2}, HasMore: true, LastID: ptr("a")}},
			[]int{1, 2}, []string{"", "a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var after []string
			got, err := ListAll("after_id", 7, func(q url.Values, p *ListPage[int]) error {
				if len(after) == len(tc.pages) {
					t.Fatalf("get called again after %v", after)
				}
				if q.Get("limit") != "7" {
					t.Errorf("limit = %q, want 7", q.Get("limit"))
				}
				*p = tc.pages[len(after)]
				after = append(after, q.Get("after_id"))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(after, tc.after) {
				t.Errorf("got %v after %q, want %v after %q", got, after, tc.want, tc.after)
			}
		})
	}
}

func TestDeref(t *testing.T) {
	if Deref(nil) != "" || Deref(ptr("x")) != "x" {
		t.Error("Deref: want \"\" for nil and the string otherwise")
	}
}
