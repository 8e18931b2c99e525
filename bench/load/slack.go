package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// fakeSlack answers the Web API methods tokenpay calls, at once, and counts what arrives:
// direct messages (digests and nudges from the outbox), other posts, and late command
// answers through response_url.
type fakeSlack struct {
	people int
	mux    *http.ServeMux
	ts     atomic.Int64

	dmPosts, channelPosts, responses, otherCalls atomic.Int64
	mu                                           sync.Mutex
	dmsPerChannel                                map[string]int
}

func newFakeSlack(people int) *fakeSlack {
	f := &fakeSlack{people: people, mux: http.NewServeMux(), dmsPerChannel: map[string]int{}}
	f.mux.HandleFunc("/api/conversations.open", func(w http.ResponseWriter, r *http.Request) {
		form := readForm(r)
		writeOK(w, map[string]any{"channel": map[string]any{"id": "D" + strings.TrimPrefix(form.Get("users"), "U")}})
	})
	f.mux.HandleFunc("/api/chat.postMessage", func(w http.ResponseWriter, r *http.Request) {
		ch := readForm(r).Get("channel")
		if strings.HasPrefix(ch, "D") {
			f.dmPosts.Add(1)
			f.mu.Lock()
			f.dmsPerChannel[ch]++
			f.mu.Unlock()
		} else {
			f.channelPosts.Add(1)
		}
		writeOK(w, map[string]any{"channel": ch, "ts": fmt.Sprintf("1700000000.%06d", f.ts.Add(1))})
	})
	f.mux.HandleFunc("/api/users.info", func(w http.ResponseWriter, r *http.Request) {
		id := readForm(r).Get("user")
		n, err := strconv.Atoi(strings.TrimPrefix(id, "U"))
		if err != nil || n < 0 || n >= f.people {
			writeJSON(w, map[string]any{"ok": false, "error": "user_not_found"})
			return
		}
		writeOK(w, map[string]any{"user": map[string]any{"id": id, "tz": "UTC", "profile": map[string]any{"email": personEmail(n)}}})
	})
	f.mux.HandleFunc("/respond", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.responses.Add(1)
		writeOK(w, nil)
	})
	// chat.update, chat.postEphemeral, views.open, views.publish and the rest: accepted.
	f.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.otherCalls.Add(1)
		writeOK(w, map[string]any{"ts": fmt.Sprintf("1700000000.%06d", f.ts.Add(1)), "view": map[string]any{"id": "V1"}})
	})
	return f
}

func (f *fakeSlack) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

// dmSpread returns how many DM channels got messages, and the fewest and most one got:
// after k digest runs to everyone, min = max = k.
func (f *fakeSlack) dmSpread() (channels, least, most int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, n := range f.dmsPerChannel {
		if channels == 0 || n < least {
			least = n
		}
		most = max(most, n)
		channels++
	}
	return channels, least, most
}

func readForm(r *http.Request) url.Values {
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		v := url.Values{}
		for k, x := range m {
			if s, ok := x.(string); ok {
				v.Set(k, s)
			}
		}
		return v
	}
	v, _ := url.ParseQuery(string(b))
	return v
}

func writeOK(w http.ResponseWriter, fields map[string]any) {
	out := map[string]any{"ok": true}
	for k, v := range fields {
		out[k] = v
	}
	writeJSON(w, out)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
