package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		out := make([]time.Duration, len(ms))
		for i, m := range ms {
			out[i] = time.Duration(m) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 99, 0},
		{"one", ds(7), 50, 7 * time.Millisecond},
		{"median of four", ds(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ds(hundred...), 99, 99 * time.Millisecond},
		{"p100 is the max", ds(hundred...), 100, 100 * time.Millisecond},
		{"p99 of two is the larger", ds(1, 50), 99, 50 * time.Millisecond},
	}
	for _, tc := range tests {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\ttokenpay\nVmPeak:\t 2000000 kB\nVmHWM:\t  190000 kB\nVmRSS:\t  150000 kB\nThreads:\t12\n"
	rss, hwm, err := parseStatus(strings.NewReader(status))
	if err != nil || rss != 150000<<10 || hwm != 190000<<10 {
		t.Errorf("parseStatus: %d %d %v", rss, hwm, err)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t12 MB\nVmHWM:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if _, _, err := parseStatus(strings.NewReader(bad)); err == nil {
			t.Errorf("parseStatus(%q) accepted", bad)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:9": true, "127.5.5.5:1": true,
		"0.0.0.0:8080": false, "10.0.0.1:8080": false, "example.com:80": false, "8080": false,
	} {
		if err := loopbackAddr(addr); (err == nil) != ok {
			t.Errorf("loopbackAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	for raw, ok := range map[string]bool{
		"http://127.0.0.1:18080": true, "https://127.0.0.1:18080": false, "http://127.0.0.1": false, "http://192.168.1.2:80": false,
	} {
		if err := loopbackURL(raw); (err == nil) != ok {
			t.Errorf("loopbackURL(%q) = %v, want ok=%v", raw, err, ok)
		}
	}
}

func TestCommandMixAndAnswers(t *testing.T) {
	counts := map[string]int{}
	for n := int64(1); n <= 1000; n++ {
		counts[strings.Fields(commandMix(n))[0]]++
	}
	if counts["balance"] != 900 || counts["history"] != 80 || counts["impact"] != 20 {
		t.Errorf("mix over 1000 commands: %v", counts)
	}
	for _, tc := range []struct {
		text, body string
		ok         bool
	}{
		{"balance", `{"text":"Available: 200,000 credits"}`, true},
		{"balance", `{"text":"Something went wrong on our side."}`, false},
		{"history", `{"text":"Your recent activity\n30 Nov  +200,000  granted"}`, true},
		{"history", `{"text":"Nothing yet: your grants and spending will show here."}`, true},
		{"history", `{"text":"Something went wrong on our side."}`, false},
		{"impact drafted x --hours 1", `{"text":"Logged impact #3 (1 h saved)."}`, true},
		{"impact drafted x --hours 1", `{"text":"You are not in the tokenpay directory"}`, false},
	} {
		if got := answers(tc.text, tc.body); got != tc.ok {
			t.Errorf("answers(%q, %q) = %v", tc.text, tc.body, got)
		}
	}
}

func TestFakeSlackCountsDirectMessages(t *testing.T) {
	f := newFakeSlack(10)
	srv := httptest.NewServer(f)
	defer srv.Close()
	post := func(path, form string) string {
		resp, err := http.Post(srv.URL+path, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := post("/api/conversations.open", "users=U00000003"); !strings.Contains(got, `"id":"D00000003"`) {
		t.Errorf("conversations.open: %s", got)
	}
	for _, ch := range []string{"D00000003", "D00000003", "D00000004", "C0APPROVALS"} {
		if got := post("/api/chat.postMessage", "channel="+ch+"&text=hi"); !strings.Contains(got, `"ok":true`) {
			t.Errorf("chat.postMessage: %s", got)
		}
	}
	if got := post("/api/users.info", "user=U00000007"); !strings.Contains(got, "p7@load.test") {
		t.Errorf("users.info: %s", got)
	}
	if got := post("/api/users.info", "user=U00000099"); !strings.Contains(got, "user_not_found") {
		t.Errorf("users.info of a stranger: %s", got)
	}
	post("/respond", `{"text":"late"}`)
	channels, least, most := f.dmSpread()
	if f.dmPosts.Load() != 3 || f.channelPosts.Load() != 1 || f.responses.Load() != 1 || channels != 2 || least != 1 || most != 2 {
		t.Errorf("dm %d, channel %d, responses %d, spread %d %d-%d", f.dmPosts.Load(), f.channelPosts.Load(), f.responses.Load(), channels, least, most)
	}
}
