package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

const slackSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// slackCall is one Web API call (or response_url post) the fake Slack received.
type slackCall struct {
	Method string
	Form   url.Values
	JSON   map[string]any
	// Err is the error code the fake answered with ("" for ok); At is when the call arrived.
	Err  string
	At   time.Time
	Done bool // answered
}

// fakeSlack is slack-go's slacktest server with recording handlers for the methods
// tokenpay calls, plus response_url endpoints.
type fakeSlack struct {
	*slacktest.Server
	mu    sync.Mutex
	calls []slackCall
	ts    int
	// users maps a user id to the email users.info reports; accounts maps a user id to
	// the whole user object, for accounts without an email (guests, bots).
	users    map[string]string
	accounts map[string]map[string]any
	// delays makes a method slow; fails makes it answer {"ok":false,"error":…}.
	delays map[string]time.Duration
	fails  map[string]string
}

// triggerWindow is how long Slack accepts a trigger_id in views.open.
const triggerWindow = 3 * time.Second

var triggerSeq atomic.Int64

// newTrigger mints a trigger_id the way Slack hands one out with an interaction, issued
// now: the fake's views.open refuses it after triggerWindow, as Slack does.
func newTrigger() string { return triggerAt(time.Now()) }

// triggerAt mints a trigger_id issued at t (in the past, for a request Slack was slow to
// deliver).
func triggerAt(t time.Time) string {
	return fmt.Sprintf("%d.%d.fake", t.UnixMilli(), triggerSeq.Add(1))
}

// triggerValid says whether views.open may still use id: it must be one newTrigger made,
// no older than triggerWindow.
func triggerValid(id string) bool {
	first, _, _ := strings.Cut(id, ".")
	ms, err := strconv.ParseInt(first, 10, 64)
	return err == nil && strings.HasSuffix(id, ".fake") && time.Since(time.UnixMilli(ms)) <= triggerWindow
}

// slow makes method take d before it answers.
func (f *fakeSlack) slow(method string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.delays[method] = d
}

// failing makes method answer with Slack error code errCode ("" to stop).
func (f *fakeSlack) failing(method, errCode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[method] = errCode
}

// newFakeSlack starts the fake; extra binds more handlers (slacktest keeps the first
// handler registered for a path, so ours go in before its defaults).
func newFakeSlack(t testing.TB, extra ...slacktest.Binder) *fakeSlack {
	f := &fakeSlack{users: map[string]string{}, accounts: map[string]map[string]any{}, delays: map[string]time.Duration{}, fails: map[string]string{}}
	var handlers []func(s slacktest.Customize)
	handle := func(path string, h http.HandlerFunc) {
		handlers = append(handlers, func(s slacktest.Customize) { s.Handle(path, h) })
	}
	record := func(method string, answer func(c slackCall) any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			c := slackCall{Method: method, At: time.Now()}
			if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				_ = json.Unmarshal(body, &c.JSON)
			} else {
				c.Form, _ = url.ParseQuery(string(body))
			}
			f.mu.Lock()
			index := len(f.calls)
			f.calls = append(f.calls, c)
			f.ts++
			ts := f.ts
			delay, failure := f.delays[method], f.fails[method]
			f.mu.Unlock()
			// Slack checks a trigger when the call arrives, however long it then takes.
			expired := method == "views.open" && !triggerValid(fmt.Sprint(c.JSON["trigger_id"]))
			time.Sleep(delay)
			w.Header().Set("Content-Type", "application/json")
			var out any
			switch {
			case failure != "":
				out = map[string]any{"ok": false, "error": failure}
			case expired:
				out = map[string]any{"ok": false, "error": "expired_trigger_id"}
			default:
				out = answer(c)
			}
			f.mu.Lock()
			if m, ok := out.(map[string]any); ok && m["ok"] == false {
				f.calls[index].Err = fmt.Sprint(m["error"])
			}
			f.calls[index].Done = true
			f.mu.Unlock()
			if out == nil {
				out = map[string]any{"ok": true, "ts": fmt.Sprintf("1700000000.%06d", ts), "channel": dmChannel(c.Form.Get("channel"))}
			}
			_ = json.NewEncoder(w).Encode(out)
		}
	}
	ok := func(slackCall) any { return nil }
	handle("/chat.postMessage", record("chat.postMessage", ok))
	handle("/chat.update", record("chat.update", ok))
	handle("/chat.postEphemeral", record("chat.postEphemeral", ok))
	handle("/views.open", record("views.open", func(slackCall) any { return map[string]any{"ok": true, "view": map[string]any{"id": "V1"}} }))
	handle("/views.publish", record("views.publish", func(slackCall) any { return map[string]any{"ok": true, "view": map[string]any{"id": "V2"}} }))
	handle("/conversations.open", record("conversations.open", func(c slackCall) any {
		return map[string]any{"ok": true, "channel": map[string]any{"id": "D" + strings.TrimPrefix(c.Form.Get("users"), "U")}}
	}))
	handle("/users.info", record("users.info", func(c slackCall) any {
		id := c.Form.Get("user")
		f.mu.Lock()
		email, known := f.users[id]
		account, full := f.accounts[id]
		f.mu.Unlock()
		if full {
			return map[string]any{"ok": true, "user": account}
		}
		if !known {
			return map[string]any{"ok": false, "error": "user_not_found"}
		}
		return map[string]any{"ok": true, "user": map[string]any{"id": id, "tz": "Europe/Paris", "profile": map[string]any{"email": email}}}
	}))
	handle("/respond", record("response_url", ok))
	binders := append(extra, func(s slacktest.Customize) {
		for _, h := range handlers {
			h(s)
		}
	})
	f.Server = slacktest.NewTestServer(binders...)
	f.Start()
	t.Cleanup(f.Stop)
	return f
}

// dmChannel is where Slack puts a message posted to channel: a user id (U…, W…) stands
// for the app's DM with that user, whose id is D… (chat.postMessage, argument channel).
func dmChannel(channel string) string {
	if strings.HasPrefix(channel, "U") || strings.HasPrefix(channel, "W") {
		return "D" + channel[1:]
	}
	return channel
}

func (f *fakeSlack) apiURL() string { return f.GetAPIURL() }

// snapshot returns the calls seen so far for a method.
func (f *fakeSlack) snapshot(method string) []slackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []slackCall
	for _, c := range f.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// waitFor polls until n calls of method were seen (the adapter answers in the background).
func (f *fakeSlack) waitFor(t *testing.T, method string, n int) []slackCall {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := f.snapshot(method)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %d %s call(s), saw %d", n, method, len(got))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// text is everything a call sent as text or blocks, for assertions on content.
func (c slackCall) text() string {
	var v any = c.JSON
	if c.JSON == nil {
		var blocks any
		_ = json.Unmarshal([]byte(c.Form.Get("blocks")), &blocks)
		v = map[string]any{"text": c.Form.Get("text"), "blocks": blocks}
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // so assertions read <@U…> and &lt; as Slack would
	_ = enc.Encode(v)
	return b.String()
}

// signedPost sends body to path signed the way Slack signs requests.
func signedPost(t *testing.T, base, path, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req := signedRequest(base+path, body)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// slackSignature signs a body the way Slack does (v0, HMAC-SHA256).
func slackSignature(ts, body string) string {
	mac := hmac.New(sha256.New, []byte(slackSecret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// slashBody builds a slash command body shaped like shared/spec/examples/slack-slash-command.form.txt.
func slashBody(user, text, responseURL string) string {
	v := url.Values{}
	for k, val := range map[string]string{"token": "xyzz0WbapA4vBCDEFasx0q6G", "team_id": "T1DC2JH3J", "team_domain": "testteamnow",
		"channel_id": "C0GENERAL", "channel_name": "general", "user_id": user, "user_name": user, "command": "/tokens", "text": text,
		"response_url": responseURL, "trigger_id": newTrigger()} {
		v.Set(k, val)
	}
	return v.Encode()
}

// actionBody builds a block_actions payload shaped like shared/spec/examples/slack-block-actions.json.
func actionBody(user, actionID, channel, responseURL string) string {
	payload := map[string]any{
		"type": "block_actions", "user": map[string]any{"id": user, "team_id": "T1DC2JH3J"}, "api_app_id": "A111",
		"container":  map[string]any{"type": "message", "message_ts": "1700000000.000002", "channel_id": channel},
		"trigger_id": newTrigger(), "team": map[string]any{"id": "T1DC2JH3J"}, "channel": map[string]any{"id": channel},
		"response_url": responseURL,
		"actions": []any{map[string]any{"action_id": actionID, "block_id": "actions-4", "type": "button", "value": actionID,
			"text": map[string]any{"type": "plain_text", "text": "Approve"}, "action_ts": "1700000001.000000"}},
	}
	b, _ := json.Marshal(payload)
	return "payload=" + url.QueryEscape(string(b))
}

const slackPeople = `email,name,team,role,manager_email,slack_user_id,teams_user_id
mia@x.io,Mia Boss,Research,manager,,U0MIA,
eve@x.io,Eve Analyst,Research,analyst,mia@x.io,U0EVE,
pat@x.io,Pat Peer,Research,analyst,mia@x.io,U0PAT,
ann@x.io,Ann New,Research,analyst,mia@x.io,,
`

func slackEnv(t *testing.T, fake *fakeSlack) map[string]string {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("slack:\n  approvals_channel: C0APPROVALS\nadmins: [mia@x.io]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_POLICY": pol,
		"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": slackSecret, "SLACK_API_URL": fake.apiURL()}
	if code, _, errOut := runCLI(t, slackPeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	return env
}

func balanceOf(t *testing.T, env map[string]string, email string) int64 {
	t.Helper()
	code, out, errOut := runCLI(t, "", env, "balance", "--json", email)
	var b struct{ Available int64 }
	if code != 0 || json.Unmarshal([]byte(out), &b) != nil {
		t.Fatalf("balance %s: %s %s", email, out, errOut)
	}
	return b.Available
}

func TestSlackEndToEnd(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	respond := fake.apiURL() + "respond"

	// /tokens: the balance, answered in the acknowledgement, ephemeral.
	resp, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "", respond), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, `"response_type":"ephemeral"`) || !strings.Contains(body, "200,000 credits") {
		t.Fatalf("/tokens: %d %s", resp.StatusCode, body)
	}

	// A request whose use case tries to ping the channel: an escaped parent in the
	// approvals channel, and a thread with the buttons that mentions the manager.
	// Typed literally, "<!channel> & <@U0PAT>" reaches the app as Slack encodes it.
	resp, body = signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 50k summarise interviews for &lt;!channel&gt; &amp; &lt;@U0PAT&gt;", respond), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "Request #1 for 50,000 credits sent to Mia Boss") {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	posts := fake.waitFor(t, "chat.postMessage", 2)
	parent, thread := posts[0], posts[1]
	if parent.Form.Get("channel") != "C0APPROVALS" || thread.Form.Get("thread_ts") == "" || thread.Form.Get("channel") != "C0APPROVALS" {
		t.Fatalf("approval not posted as parent and thread: %+v %+v", parent.Form, thread.Form)
	}
	for _, c := range []slackCall{parent, thread} {
		if strings.Contains(c.text(), "<!channel>") || strings.Contains(c.text(), "<@U0PAT>") {
			t.Fatalf("user text pings someone: %s", c.text())
		}
	}
	if !strings.Contains(thread.text(), "&lt;!channel&gt;") || !strings.Contains(thread.text(), "<@U0MIA>, can you decide") ||
		!strings.Contains(thread.text(), `"action_id":"approve:1"`) || !strings.Contains(thread.text(), `"action_id":"deny:1"`) || !strings.Contains(thread.text(), `"action_id":"ask:1"`) {
		t.Fatalf("thread lacks escaped text, mention or buttons: %s", thread.text())
	}

	// A peer's click is refused with a sentence saying who can decide; nothing changes.
	before := balanceOf(t, env, "eve@x.io")
	resp, _ = signedPost(t, base, "/slack/interactions", actionBody("U0PAT", "approve:1", "C0APPROVALS", respond), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("peer click: %d", resp.StatusCode)
	}
	answers := fake.waitFor(t, "response_url", 1)
	if !strings.Contains(answers[0].text(), "Only Mia Boss (the manager)") || answers[0].JSON["replace_original"] != false {
		t.Fatalf("peer answer: %s", answers[0].text())
	}
	if got := balanceOf(t, env, "eve@x.io"); got != before || len(fake.snapshot("chat.update")) != 0 {
		t.Fatalf("peer click changed something: balance %d -> %d", before, got)
	}

	// The manager clicks twice at once: one grant, the messages updated, the requester told.
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "approve:1", "C0APPROVALS", respond), nil)
		}()
	}
	wg.Wait()
	updates := fake.waitFor(t, "chat.update", 2)
	answers = fake.waitFor(t, "response_url", 3)
	if got := balanceOf(t, env, "eve@x.io"); got != before+50_000 {
		t.Fatalf("after two approvals balance %d, want %d", got, before+50_000)
	}
	joined := answers[1].text() + answers[2].text()
	if !strings.Contains(joined, "Approved request #1") || !strings.Contains(joined, "already decided") {
		t.Fatalf("the two clicks should approve once and then say it was decided: %s", joined)
	}
	if !strings.Contains(updates[0].text()+updates[1].text(), "Approved by Mia Boss") || strings.Contains(updates[1].text(), `"action_id":"approve:1"`) {
		t.Fatalf("approval messages not updated to the outcome: %s", updates[1].text())
	}
	dms := fake.waitFor(t, "chat.postMessage", 3)
	if dm := dms[2]; dm.Form.Get("channel") != "U0EVE" || !strings.Contains(dm.text(), "Mia Boss approved your request #1") {
		t.Fatalf("requester DM: %+v", dm.Form)
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(fake.snapshot("chat.update")); n != 2 {
		t.Fatalf("a double click updated the messages %d times, want 2 (one decision)", n)
	}

	// App Home: published on app_home_opened, once even when Slack retries the event.
	event := `{"token":"x","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"Ev1","event_time":1700000000,
		"event":{"type":"app_home_opened","user":"U0EVE","channel":"D0EVE","tab":"home","event_ts":"1700000000.1"}}`
	if resp, _ := signedPost(t, base, "/slack/events", event, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("event: %d", resp.StatusCode)
	}
	if resp, _ := signedPost(t, base, "/slack/events", event, map[string]string{"Content-Type": "application/json", "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}); resp.StatusCode != 200 {
		t.Fatalf("retried event: %d", resp.StatusCode)
	}
	views := fake.waitFor(t, "views.publish", 1)
	if views[0].JSON["user_id"] != "U0EVE" || !strings.Contains(views[0].text(), "250,000 credits") || !strings.Contains(views[0].text(), "Browse prompts") {
		t.Fatalf("home view: %s", views[0].text())
	}
	time.Sleep(100 * time.Millisecond)
	if n := len(fake.snapshot("views.publish")); n != 1 {
		t.Fatalf("a retried event was processed again: %d publishes", n)
	}
	// URL verification answers the challenge.
	if _, body := signedPost(t, base, "/slack/events", `{"type":"url_verification","challenge":"3eZbrw1aB"}`, nil); body != "3eZbrw1aB" {
		t.Fatalf("challenge: %q", body)
	}

	// Modals: /tokens request without arguments opens the request form; submitting it
	// files the request. Deny opens a reason form; submitting it denies with the reason.
	if resp, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request", respond), nil); resp.StatusCode != 200 || body != "" {
		t.Fatalf("request without arguments: %d %q", resp.StatusCode, body)
	}
	opened := fake.waitFor(t, "views.open", 1)
	if !strings.Contains(opened[0].text(), `"callback_id":"submit_request"`) || opened[0].JSON["trigger_id"] == "" {
		t.Fatalf("request modal: %s", opened[0].text())
	}
	submit := func(user, callback string, values map[string]string, meta string) {
		state := map[string]any{}
		for id, v := range values {
			state[id] = map[string]any{id: map[string]any{"type": "plain_text_input", "value": v}}
		}
		payload, _ := json.Marshal(map[string]any{"type": "view_submission", "user": map[string]any{"id": user}, "trigger_id": "1.2.3",
			"view": map[string]any{"id": "V1", "type": "modal", "callback_id": callback, "private_metadata": meta,
				"state": map[string]any{"values": state}}})
		if resp, _ := signedPost(t, base, "/slack/interactions", "payload="+url.QueryEscape(string(payload)), nil); resp.StatusCode != 200 {
			t.Fatalf("view submission: %d", resp.StatusCode)
		}
	}
	meta, _ := opened[0].JSON["view"].(map[string]any)["private_metadata"].(string)
	submit("U0EVE", "submit_request", map[string]string{"amount": "20k", "use_case": "draft the Q4 survey summary"}, meta)
	answers = fake.waitFor(t, "response_url", 4)
	if !strings.Contains(answers[3].text(), "Request #2 for 20,000 credits sent to Mia Boss") {
		t.Fatalf("modal submission answer: %s", answers[3].text())
	}
	signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "deny:2", "C0APPROVALS", respond), nil)
	opened = fake.waitFor(t, "views.open", 2)
	if !strings.Contains(opened[1].text(), `"callback_id":"deny:2"`) {
		t.Fatalf("deny modal: %s", opened[1].text())
	}
	meta, _ = opened[1].JSON["view"].(map[string]any)["private_metadata"].(string)
	submit("U0MIA", "deny:2", map[string]string{"reason": "let's start smaller"}, meta)
	answers = fake.waitFor(t, "response_url", 5)
	if !strings.Contains(answers[4].text(), "Denied request #2") {
		t.Fatalf("denier's answer: %s", answers[4].text())
	}
	dms = fake.waitFor(t, "chat.postMessage", 6) // parent and thread of #2, then the DM telling Eve
	if last := dms[5]; last.Form.Get("channel") != "U0EVE" || !strings.Contains(last.text(), "did not approve your request #2") || !strings.Contains(last.text(), "let's start smaller") {
		t.Fatalf("denial DM: %s", last.text())
	}

	// The "Save as prompt" message shortcut opens the share form prefilled with the message.
	shortcut, _ := json.Marshal(map[string]any{"type": "message_action", "callback_id": "save_prompt", "trigger_id": newTrigger(),
		"user": map[string]any{"id": "U0EVE"}, "channel": map[string]any{"id": "C0GENERAL"}, "response_url": respond,
		"message": map[string]any{"type": "message", "text": "Summarise these notes as 5 themes with a quote each <!here>", "ts": "1.2"}})
	signedPost(t, base, "/slack/interactions", "payload="+url.QueryEscape(string(shortcut)), nil)
	opened = fake.waitFor(t, "views.open", 3)
	if v := opened[2].text(); !strings.Contains(v, `"callback_id":"share_submit"`) || !strings.Contains(v, `"initial_value":"Summarise these notes as 5 themes with a quote each @here"`) {
		t.Fatalf("Save as prompt modal: %s", v)
	}

	// First contact by someone without a Slack id in the directory: linked by email.
	fake.users["U0ANN"] = "ann@x.io"
	if _, body := signedPost(t, base, "/slack/commands", slashBody("U0ANN", "balance", respond), nil); !strings.Contains(body, "200,000 credits") {
		t.Fatalf("first contact: %s", body)
	}
	// The link is written after the answer (a command never waits for the writer).
	db, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ann, err := db.PersonByEmail(context.Background(), "ann@x.io")
		if err == nil && ann.SlackUserID == "U0ANN" && ann.TimeZone == "Europe/Paris" && ann.PreferredPlatform == "slack" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("first contact did not link Ann with her time zone: %+v %v", ann, err)
		}
	}
	db.Close()
	if _, body := signedPost(t, base, "/slack/commands", slashBody("U0GHOST", "balance", respond), nil); !strings.Contains(body, "Ask your tokenpay admin") && !strings.Contains(body, "not in the tokenpay directory") {
		t.Fatalf("stranger: %s", body)
	}

	// Unsigned, stale and oversized requests are refused and change nothing.
	req, _ := http.NewRequest(http.MethodPost, base+"/slack/commands", strings.NewReader(slashBody("U0EVE", "request 9k x", respond)))
	req.Header.Set("X-Slack-Request-Timestamp", strconv.FormatInt(time.Now().Unix(), 10))
	req.Header.Set("X-Slack-Signature", "v0=deadbeef")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 401 {
		t.Fatalf("forged signature: %v %v", r, err)
	}
	if r, _ := signedPost(t, base, "/slack/commands", "text="+strings.Repeat("x", 300<<10), nil); r.StatusCode != 413 {
		t.Fatalf("oversized: %d", r.StatusCode)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatal("ledger verify failed")
	}
}

// TestSlackApprovalsByDM: without an approvals channel, the request goes to the
// manager's DM, parent and thread alike.
func TestSlackApprovalsByDM(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	if err := os.WriteFile(env["TOKENPAY_POLICY"], []byte("admins: [mia@x.io]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, stop := startServe(t, env)
	defer stop()
	signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 5k try the survey prompt", fake.apiURL()+"respond"), nil)
	posts := fake.waitFor(t, "chat.postMessage", 2)
	if posts[0].Form.Get("channel") != "D0MIA" || posts[1].Form.Get("channel") != "D0MIA" || posts[1].Form.Get("thread_ts") == "" {
		t.Fatalf("approval not in the manager's DM: %v / %v", posts[0].Form, posts[1].Form)
	}
}

// TestSlackSocketMode answers a slash command that arrives through a local websocket,
// the way Slack's Socket Mode delivers it, in the acknowledgement.
func TestSlackSocketMode(t *testing.T) {
	acks := make(chan map[string]any, 1)
	// slack-go sends an Origin of https://api.slack.com, as Slack expects; this fake is not a browser.
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	var fake *fakeSlack
	socket := func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			t.Logf("websocket upgrade: %v (%s %s)", err, r.Method, r.URL)
			return
		}
		defer conn.Close()
		_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A1"}})
		_ = conn.WriteJSON(map[string]any{"envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": true,
			"payload": map[string]any{"team_id": "T1", "channel_id": "C0GENERAL", "user_id": "U0EVE", "command": "/tokens", "text": "balance",
				"response_url": fake.apiURL() + "respond", "trigger_id": "1.2.3"}})
		var ack map[string]any
		if err := conn.ReadJSON(&ack); err == nil {
			acks <- ack
		}
		// Keep the connection open until the server goes away.
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}
	open := func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(fake.apiURL(), "http") + "socket"})
	}
	fake = newFakeSlack(t, func(s slacktest.Customize) {
		s.Handle("/socket", socket)
		s.Handle("/apps.connections.open", open)
	})
	env := slackEnv(t, fake)
	delete(env, "SLACK_SIGNING_SECRET")
	env["SLACK_APP_TOKEN"] = "xapp-test"
	_, stop := startServe(t, env)
	select {
	case ack := <-acks:
		raw, _ := json.Marshal(ack)
		if ack["envelope_id"] != "env-1" || !strings.Contains(string(raw), "200,000 credits") {
			t.Fatalf("ack: %s", raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no acknowledgement over Socket Mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not stop with Socket Mode running")
	}
}

// TestSlackApprovalExpires: nobody decides; the hourly expiry job, run by hand a week later,
// updates the parent and the thread in place (no buttons left) and tells the requester.
func TestSlackApprovalExpires(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 5k try the survey prompt", fake.apiURL()+"respond"), nil)
	posts := fake.waitFor(t, "chat.postMessage", 2)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	parentTS, threadTS := "1700000000.000001", "1700000000.000002" // the fake numbers messages in order
	if posts[1].Form.Get("thread_ts") != parentTS {
		t.Fatalf("details not posted in the parent's thread: %v", posts[1].Form)
	}

	env["TOKENPAY_NOW"] = "2026-11-27T10:30:00Z" // the request expired at 10:00, a week after it was filed
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "expire-requests")
	if code != 0 || !strings.Contains(out, "expired 1 request;") || !strings.Contains(out, "approval messages updated for 1") {
		t.Fatalf("expire-requests: %d\n%s\n%s", code, out, errOut)
	}
	byTS := map[string]slackCall{}
	for _, u := range fake.snapshot("chat.update") {
		byTS[u.Form.Get("ts")] = u
		if u.Form.Get("channel") != "C0APPROVALS" || strings.Contains(u.text(), `"action_id"`) {
			t.Errorf("update of %s left buttons or went elsewhere: %s", u.Form.Get("ts"), u.text())
		}
	}
	if len(byTS) != 2 {
		t.Fatalf("updated messages %v, want the parent and the thread once each", byTS)
	}
	if !strings.Contains(byTS[threadTS].text(), "Expired on 27 Nov 2026 at 10:00 UTC without a decision") {
		t.Errorf("thread not updated to the outcome: %s", byTS[threadTS].text())
	}
	if !strings.Contains(byTS[parentTS].text(), "expired") {
		t.Errorf("parent not updated to the outcome: %s", byTS[parentTS].text())
	}
	if dms := fake.snapshot("chat.postMessage"); len(dms) != 3 || dms[2].Form.Get("channel") != "U0EVE" ||
		!strings.Contains(dms[2].text(), "expired on 27 Nov 10:00 UTC without a decision") {
		t.Errorf("requester not told once: %d posts, last %s", len(dms), dms[len(dms)-1].text())
	}
}

// TestSlackFirstContactDoesNotWaitForTheWriter: while another process holds the ledger's
// write lock (as a long usage batch or an import does), a first-time user's /tokens is
// answered in the acknowledgement, and the link lands once the lock is released.
func TestSlackFirstContactDoesNotWaitForTheWriter(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	defer stop()
	fake.mu.Lock()
	fake.users["U0ANN"] = "ann@x.io"
	fake.mu.Unlock()

	holder, err := sql.Open("sqlite3", "file:"+env["TOKENPAY_DB"]+"?_txlock=immediate&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	lock, err := holder.Begin() // BEGIN IMMEDIATE: the write lock, until Rollback
	if err != nil {
		t.Fatal(err)
	}
	_, body := signedPost(t, base, "/slack/commands", slashBody("U0ANN", "balance", fake.apiURL()+"respond"), nil)
	if !strings.Contains(body, "200,000 credits") {
		t.Fatalf("a first contact waited for the writer instead of answering in the acknowledgement: %s", body)
	}
	// Read as any reader does while a writer holds the lock (WAL): Open would migrate.
	reader, err := sql.Open("sqlite3", "file:"+env["TOKENPAY_DB"]+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	link := func() (string, string) {
		var id, platform string
		if err := reader.QueryRow(`SELECT COALESCE(slack_user_id, ''), preferred_platform FROM people WHERE email = 'ann@x.io'`).Scan(&id, &platform); err != nil {
			t.Fatal(err)
		}
		return id, platform
	}
	if id, _ := link(); id != "" {
		t.Fatalf("linked while another process held the write lock? %q", id)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if id, platform := link(); id == "U0ANN" && platform == "slack" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the link did not land after the lock was released")
		}
	}
}
