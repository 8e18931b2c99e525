package main

// End-to-end tests of Slack as Slack documents it (issue 14): signed requests shaped like
// Slack's, through serve, against the local Web API of slack_e2e_test.go (real slack-go
// client, 3-second trigger window, slow or failing methods on demand).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack/slacktest"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// What a person typed, as Slack sends it in message format (slash text, message events,
// a message shortcut's message): & < > as entities, a mention, a channel ping and a link
// as markup; what tokenpay stores; and what Slack must receive when it is shown again.
const (
	slackTyped    = "R&amp;D survey &lt;draft&gt; for Q4 <@U0PAT> <!channel> <https://x|label>"
	storedTyped   = "R&D survey <draft> for Q4 @U0PAT @channel label (https://x)"
	renderedTyped = "R&amp;D survey &lt;draft&gt; for Q4 @U0PAT @channel label (https://x)"
	// A text input's value: the entities decoded, and markup typed literally kept as typed
	// (a form's text is never markup), then escaped once when shown.
	formTyped    = "R&amp;D plan &lt;draft&gt; <@U0PAT> <!channel> <https://x|label>"
	formStored   = "R&D plan <draft> <@U0PAT> <!channel> <https://x|label>"
	formRendered = "R&amp;D plan &lt;draft&gt; &lt;@U0PAT&gt; &lt;!channel&gt; &lt;https://x|label&gt;"
)

// noPing fails when what Slack received could ping someone, link, or was escaped twice.
func noPing(t *testing.T, what, s string) {
	t.Helper()
	for _, bad := range []string{"<@U0PAT>", "<!channel>", "<https://x", "&amp;amp;", "&amp;lt;", "&amp;gt;"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s contains %q: %s", what, bad, s)
		}
	}
}

// readable re-encodes a JSON body without HTML escaping, so assertions read &lt; and < as
// Slack would.
func readable(t *testing.T, body string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("not JSON: %q", body)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return b.String()
}

// eventBody is an Events API event_callback for event, shaped like Slack's.
func eventBody(id, team string, event map[string]any, outer ...map[string]any) string {
	o := map[string]any{"token": "x", "team_id": team, "api_app_id": "A111", "type": "event_callback",
		"event_id": id, "event_time": 1700000000, "event": event,
		"authorizations": []any{map[string]any{"team_id": team, "user_id": "U0BOT", "is_bot": true}}}
	for _, m := range outer {
		maps.Copy(o, m)
	}
	b, _ := json.Marshal(o)
	return string(b)
}

func postEvent(t *testing.T, base, body string) {
	t.Helper()
	if resp, got := signedPost(t, base, "/slack/events", body, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 200 {
		t.Fatalf("event: %d %s", resp.StatusCode, got)
	}
}

// dmEvent is a message.im event: a person writing in the app's Messages tab.
func dmEvent(user, channel, text string, extra map[string]any) map[string]any {
	e := map[string]any{"type": "message", "channel": channel, "user": user, "text": text, "ts": "1700000100.000100",
		"event_ts": "1700000100.000100", "channel_type": "im"}
	maps.Copy(e, extra)
	return e
}

// interaction posts an interactivity payload as Slack does (form body, one payload field).
func interaction(t *testing.T, base string, payload map[string]any) (*http.Response, string) {
	t.Helper()
	b, _ := json.Marshal(payload)
	return signedPost(t, base, "/slack/interactions", "payload="+url.QueryEscape(string(b)), nil)
}

// submitView submits the view views.open received, with values typed into its inputs,
// the way Slack sends a view_submission.
func submitView(t *testing.T, base, user string, opened slackCall, values map[string]string) (*http.Response, string) {
	t.Helper()
	view, _ := opened.JSON["view"].(map[string]any)
	if view == nil {
		t.Fatalf("views.open carried no view: %s", opened.text())
	}
	v := maps.Clone(view)
	state := map[string]any{}
	for id, val := range values {
		state[id] = map[string]any{id: map[string]any{"type": "plain_text_input", "value": val}}
	}
	v["id"], v["team_id"], v["state"] = "V0FORM", "T1DC2JH3J", map[string]any{"values": state}
	return interaction(t, base, map[string]any{"type": "view_submission", "team": map[string]any{"id": "T1DC2JH3J"},
		"user": map[string]any{"id": user, "team_id": "T1DC2JH3J"}, "api_app_id": "A111", "trigger_id": newTrigger(), "view": v})
}

// appHomeAction is a button pressed in App Home: no channel, no response_url.
func appHomeAction(user, actionID string) map[string]any {
	return map[string]any{"type": "block_actions", "user": map[string]any{"id": user, "team_id": "T1DC2JH3J"}, "api_app_id": "A111",
		"container": map[string]any{"type": "view", "view_id": "V0HOME"}, "trigger_id": newTrigger(),
		"team": map[string]any{"id": "T1DC2JH3J"}, "view": map[string]any{"id": "V0HOME", "type": "home"},
		"actions": []any{map[string]any{"action_id": actionID, "block_id": "actions-9", "type": "button", "value": actionID,
			"action_ts": "1700000001.000000"}}}
}

// export reads everything stored about a person, as `people export` prints it.
func export(t *testing.T, env map[string]string, email string) (d struct {
	Requests []struct {
		UseCase string `json:"use_case"`
	}
	Impacts []struct{ Text string }
	Prompts []struct{ Title, Body string }
}) {
	t.Helper()
	code, out, errOut := runCLI(t, "", env, "people", "export", email)
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil {
		t.Fatalf("export %s: %d %s %s", email, code, out, errOut)
	}
	return d
}

// waitDone waits until the nth call of method has been answered, and returns it.
func (f *fakeSlack) waitDone(t *testing.T, method string, n int) slackCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := f.snapshot(method); len(got) >= n && got[n-1].Done {
			return got[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited for %s call %d to be answered", method, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiet waits a little and checks that no call of the methods arrived beyond the counts.
func (f *fakeSlack) quiet(t *testing.T, counts map[string]int) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	for method, n := range counts {
		if got := f.snapshot(method); len(got) != n {
			t.Errorf("%d %s calls, want %d: last %s", len(got), method, n, got[len(got)-1].text())
		}
	}
}

// TestSlackTextDecodedOnceEscapedOnce feeds every text-bearing input (slash text, a
// message event in the app's DM, a message shortcut, form values) with entities, a
// mention, a channel ping and a link: the ledger stores the text as typed, the console
// and the export show it as typed, and Slack gets it back escaped once, pinging no one.
func TestSlackTextDecodedOnceEscapedOnce(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	defer stop()
	respond := fake.apiURL() + "respond"

	// Slash text. The approval's notification text says who asks for how much, and the
	// thread gives the approver the requester's context.
	_, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 50k "+slackTyped, respond), nil)
	ack := readable(t, body)
	if !strings.Contains(ack, "Use case: "+renderedTyped) {
		t.Errorf("acknowledgement does not show the use case escaped once: %s", ack)
	}
	noPing(t, "acknowledgement", ack)
	posts := fake.waitFor(t, "chat.postMessage", 2)
	if got, want := posts[0].Form.Get("text"), "Eve Analyst asks for 50,000 credits: "+renderedTyped; got != want {
		t.Errorf("approval notification text %q, want %q", got, want)
	}
	thread := posts[1].text()
	for _, want := range []string{renderedTyped, "About Eve Analyst", "Used this period", "Other open requests", "Earlier requests", "Outcomes logged this period"} {
		if !strings.Contains(thread, want) {
			t.Errorf("approval thread lacks %q: %s", want, thread)
		}
	}
	noPing(t, "approval parent", posts[0].text())
	noPing(t, "approval thread", thread)
	if d := export(t, env, "eve@x.io"); len(d.Requests) != 1 || d.Requests[0].UseCase != storedTyped {
		t.Errorf("stored use case %+v, want %q", d.Requests, storedTyped)
	}
	// The console (like Teams and exports) shows it as typed.
	if code, out, _ := runCLI(t, "team\n", env, "console", "--as", "mia@x.io"); code != 0 || !strings.Contains(out, storedTyped) {
		t.Errorf("console team view does not show the use case as typed:\n%s", out)
	}

	// A message event in the app's DM.
	postEvent(t, base, eventBody("EvText1", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "impact "+slackTyped+" --hours 1", nil)))
	posts = fake.waitFor(t, "chat.postMessage", 3)
	if dm := posts[2]; dm.Form.Get("channel") != "D0EVE" || !strings.Contains(dm.text(), "Logged impact #1") || !strings.Contains(dm.text(), renderedTyped) {
		t.Errorf("DM answer: %s", dm.text())
	}
	noPing(t, "DM answer", posts[2].text())

	// Form values: the impact form, opened from a button in App Home.
	interaction(t, base, appHomeAction("U0EVE", "open_impact"))
	opened := fake.waitDone(t, "views.open", 1)
	if opened.Err != "" {
		t.Fatalf("impact form not opened: %s", opened.Err)
	}
	if resp, body := submitView(t, base, "U0EVE", opened, map[string]string{"text": formTyped, "hours": "1"}); resp.StatusCode != 200 || body != "" {
		t.Fatalf("impact form: %d %q", resp.StatusCode, body)
	}
	posts = fake.waitFor(t, "chat.postMessage", 4) // no response_url in App Home: a DM
	if !strings.Contains(posts[3].text(), formRendered) {
		t.Errorf("impact form answer does not show the text escaped once: %s", posts[3].text())
	}
	noPing(t, "impact form answer", posts[3].text())

	// A message shortcut on a message with the same text prefills the share form as typed
	// (a text input is plain text: nothing to escape); the submitted prompt is stored as
	// typed and escaped once in search results.
	interaction(t, base, map[string]any{"type": "message_action", "callback_id": "save_prompt", "trigger_id": newTrigger(),
		"team": map[string]any{"id": "T1DC2JH3J"}, "user": map[string]any{"id": "U0EVE"}, "channel": map[string]any{"id": "C0GENERAL"},
		"response_url": respond, "message": map[string]any{"type": "message", "text": "Summarise the " + slackTyped, "ts": "1.2"}})
	opened = fake.waitDone(t, "views.open", 2)
	if v := opened.text(); opened.Err != "" || !strings.Contains(v, `"initial_value":"Summarise the `+storedTyped+`"`) {
		t.Fatalf("share form prefill (%s): %s", opened.Err, v)
	}
	if resp, body := submitView(t, base, "U0EVE", opened, map[string]string{"title": "R&amp;D &lt;notes&gt;", "body": "Summarise the " + escapeSlack(storedTyped)}); resp.StatusCode != 200 || body != "" {
		t.Fatalf("share form: %d %q", resp.StatusCode, body)
	}
	fake.waitFor(t, "response_url", 1)
	d := export(t, env, "eve@x.io")
	if len(d.Impacts) != 2 || d.Impacts[0].Text != storedTyped || d.Impacts[1].Text != formStored {
		t.Errorf("stored impacts %+v, want %q and %q", d.Impacts, storedTyped, formStored)
	}
	if len(d.Prompts) != 1 || d.Prompts[0].Title != "R&D <notes>" || d.Prompts[0].Body != "Summarise the "+storedTyped {
		t.Errorf("stored prompt %+v", d.Prompts)
	}
	_, body = signedPost(t, base, "/slack/commands", slashBody("U0EVE", "prompts survey draft", respond), nil)
	if s := readable(t, body); !strings.Contains(s, "R&amp;D &lt;notes&gt;") || !strings.Contains(s, "R&amp;D survey &lt;draft&gt;") {
		t.Errorf("search results do not show the prompt escaped once: %s", s)
	} else {
		noPing(t, "search results", s)
	}
}

// escapeSlack encodes text as Slack does before sending it.
func escapeSlack(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// TestSlackFormsStayOpenOnErrors: every form answers a wrong field in the view_submission
// itself (response_action errors keyed by block id), so the form stays open with what was
// typed; nothing is stored or posted. A right submission closes it and is answered.
func TestSlackFormsStayOpenOnErrors(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	defer stop()
	respond := fake.apiURL() + "respond"
	signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 5k try the survey prompt", respond), nil)
	fake.waitFor(t, "chat.postMessage", 2)

	opens := 0
	open := func(user string, how func()) slackCall {
		t.Helper()
		how()
		opens++
		c := fake.waitDone(t, "views.open", opens)
		if c.Err != "" {
			t.Fatalf("form not opened: %s", c.Err)
		}
		return c
	}
	request := open("U0EVE", func() { signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request", respond), nil) })
	deny := open("U0MIA", func() {
		signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "deny:1", "C0APPROVALS", respond), nil)
	})
	ask := open("U0MIA", func() {
		signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "ask:1", "C0APPROVALS", respond), nil)
	})
	impact := open("U0EVE", func() { interaction(t, base, appHomeAction("U0EVE", "open_impact")) })
	share := open("U0EVE", func() { signedPost(t, base, "/slack/commands", slashBody("U0EVE", "share", respond), nil) })

	long := strings.Repeat("x", 501)
	before := export(t, env, "eve@x.io")
	posted, answered := len(fake.snapshot("chat.postMessage")), len(fake.snapshot("response_url"))
	for _, tt := range []struct {
		name   string
		user   string
		view   slackCall
		values map[string]string
		field  string
		says   string
	}{
		{"amount lots", "U0EVE", request, map[string]string{"amount": "lots", "use_case": "label the backlog"}, "amount", "lots"},
		{"amount over the maximum", "U0EVE", request, map[string]string{"amount": "9m", "use_case": "label the backlog"}, "amount", "at most"},
		{"empty use case", "U0EVE", request, map[string]string{"amount": "5k", "use_case": " "}, "use_case", "Describe the use case"},
		{"deny reason too long", "U0MIA", deny, map[string]string{"reason": long}, "reason", "at most 500 characters"},
		{"empty question", "U0MIA", ask, map[string]string{"question": ""}, "question", "Type your question"},
		{"hours not a number", "U0EVE", impact, map[string]string{"text": "wrote the runbook", "hours": "lots"}, "hours", "number from 0 to 1000"},
		{"share without a title", "U0EVE", share, map[string]string{"title": "", "body": "Summarise {{notes}}"}, "title", "title"},
	} {
		resp, body := submitView(t, base, tt.user, tt.view, tt.values)
		var got struct {
			ResponseAction string `json:"response_action"`
			Errors         map[string]string
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &got) != nil || got.ResponseAction != "errors" ||
			len(got.Errors) != 1 || !strings.Contains(got.Errors[tt.field], tt.says) {
			t.Errorf("%s: %d %s; want response_action errors with %q under %s", tt.name, resp.StatusCode, body, tt.says, tt.field)
		}
	}
	fake.quiet(t, map[string]int{"chat.postMessage": posted, "response_url": answered})
	if after := export(t, env, "eve@x.io"); len(after.Requests) != len(before.Requests) || len(after.Impacts) != 0 || len(after.Prompts) != 0 {
		t.Errorf("a refused form stored something: %+v", after)
	}

	// Corrected, the same forms close (an empty 200) and are answered where they came from.
	if resp, body := submitView(t, base, "U0EVE", request, map[string]string{"amount": "20k", "use_case": "label the backlog"}); resp.StatusCode != 200 || body != "" {
		t.Errorf("right request form: %d %q", resp.StatusCode, body)
	}
	if resp, body := submitView(t, base, "U0MIA", deny, map[string]string{"reason": "smaller first"}); resp.StatusCode != 200 || body != "" {
		t.Errorf("right deny form: %d %q", resp.StatusCode, body)
	}
	answers := fake.waitFor(t, "response_url", answered+2)
	joined := answers[len(answers)-2].text() + answers[len(answers)-1].text()
	if !strings.Contains(joined, "Request #2 for 20,000 credits sent to Mia Boss") || !strings.Contains(joined, "Denied request #1") {
		t.Errorf("answers to the corrected forms: %s", joined)
	}
}

// TestSlackFormsOpenWithinTheTriggerWindow: a form opens before anything slow happens
// (a first contact's users.info takes longer than the trigger lives), even when
// views.open itself is slow; when Slack refuses to open it (an expired trigger, an
// error), the person sees why and a button that opens it again.
func TestSlackFormsOpenWithinTheTriggerWindow(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	defer stop()
	respond := fake.apiURL() + "respond"
	fake.users["U0ANN"] = "ann@x.io"
	fake.slow("users.info", triggerWindow+500*time.Millisecond)

	// First contact, slow users.info: the form opens, then Ann is linked.
	start := time.Now()
	resp, body := signedPost(t, base, "/slack/commands", slashBody("U0ANN", "request", respond), nil)
	if resp.StatusCode != 200 || body != "" || time.Since(start) > triggerWindow {
		t.Fatalf("/tokens request on first contact: %d %q after %s", resp.StatusCode, body, time.Since(start))
	}
	if c := fake.waitDone(t, "views.open", 1); c.Err != "" {
		t.Fatalf("views.open on first contact: %s", c.Err)
	}
	info := fake.waitFor(t, "users.info", 1)
	if open := fake.snapshot("views.open")[0]; !open.At.Before(info[0].At) {
		t.Error("users.info was called before the form was opened")
	}
	db, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if p, err := db.PersonBySlackID(context.Background(), "U0ANN"); err == nil && p.Email == "ann@x.io" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Ann was not linked after the form opened")
		}
	}
	// A button pressed by someone unknown opens its form first too; then they are told.
	fake.users["U0NEW"] = "nobody@x.io"
	interaction(t, base, appHomeAction("U0NEW", "open_impact"))
	if c := fake.waitDone(t, "views.open", 2); c.Err != "" {
		t.Fatalf("views.open for a button: %s", c.Err)
	}
	dms := fake.waitFor(t, "chat.postMessage", 1)
	if !strings.Contains(dms[0].text(), "not in the tokenpay directory") {
		t.Errorf("a stranger who opened a form is not told: %s", dms[0].text())
	}
	fake.slow("users.info", 0)

	// Slack delivered the command late: the trigger expired. A sentence and a button.
	late := url.Values{}
	parsed, _ := url.ParseQuery(slashBody("U0EVE", "request", respond))
	maps.Copy(late, parsed)
	late.Set("trigger_id", triggerAt(time.Now().Add(-triggerWindow-time.Second)))
	_, body = signedPost(t, base, "/slack/commands", late.Encode(), nil)
	if s := readable(t, body); !strings.Contains(s, "Slack gives an app 3 seconds") || !strings.Contains(s, `"action_id":"open_request"`) {
		t.Fatalf("expired trigger: %s", s)
	}
	if c := fake.waitDone(t, "views.open", 3); c.Err != "expired_trigger_id" {
		t.Fatalf("the fake should have refused the stale trigger, answered %q", c.Err)
	}
	// The button brings a fresh trigger: the form opens.
	signedPost(t, base, "/slack/interactions", actionBody("U0EVE", "open_request", "C0GENERAL", respond), nil)
	if c := fake.waitDone(t, "views.open", 4); c.Err != "" || !strings.Contains(c.text(), `"callback_id":"submit_request"`) {
		t.Fatalf("try again: %s %s", c.Err, c.text())
	}

	// Any other error: said in the conversation the button was in, with the same button.
	fake.failing("views.open", "internal_error")
	signedPost(t, base, "/slack/interactions", actionBody("U0EVE", "open_impact", "C0GENERAL", respond), nil)
	answers := fake.waitFor(t, "response_url", 1)
	if s := answers[0].text(); !strings.Contains(s, `Slack answered \"internal_error\"`) || !strings.Contains(s, `"action_id":"open_impact"`) {
		t.Errorf("views.open error: %s", s)
	}
	fake.failing("views.open", "")

	// views.open slower than the acknowledgement may wait: the command is acknowledged,
	// the form still opens (Slack checks the trigger when the call arrives).
	fake.slow("views.open", 2500*time.Millisecond)
	start = time.Now()
	resp, body = signedPost(t, base, "/slack/commands", slashBody("U0EVE", "share", respond), nil)
	if resp.StatusCode != 200 || body != "" || time.Since(start) > triggerWindow {
		t.Errorf("slow views.open: %d %q after %s", resp.StatusCode, body, time.Since(start))
	}
	if c := fake.waitDone(t, "views.open", 6); c.Err != "" {
		t.Errorf("slow views.open: %s", c.Err)
	}
	fake.quiet(t, map[string]int{"response_url": 1})
}

// TestSlackDirectMessages: commands typed in the app's DM are answered there; the bot's
// own messages, edits, other subtypes and other conversations are not commands.
func TestSlackDirectMessages(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env)
	defer stop()

	postEvent(t, base, eventBody("EvDM1", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "balance", nil)))
	posts := fake.waitFor(t, "chat.postMessage", 1)
	if posts[0].Form.Get("channel") != "D0EVE" || !strings.Contains(posts[0].text(), "200,000 credits") {
		t.Fatalf("balance in the DM: %+v %s", posts[0].Form, posts[0].text())
	}
	// Slack retries an event it thinks was lost: answered once.
	signedPost(t, base, "/slack/events", eventBody("EvDM1", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "balance", nil)),
		map[string]string{"Content-Type": "application/json", "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
	// Not commands: the bot's own message, an edit, a deletion, a file share, a thread
	// broadcast, a message in a channel, a message without a user.
	for i, e := range []map[string]any{
		dmEvent("U0BOT", "D0EVE", "Your balance", map[string]any{"bot_id": "B0BOT", "subtype": "bot_message"}),
		dmEvent("U0BOT", "D0EVE", "Your weekly digest", map[string]any{"bot_id": "B0BOT", "app_id": "A111"}),
		dmEvent("U0EVE", "D0EVE", "", map[string]any{"subtype": "message_changed", "message": map[string]any{"type": "message", "user": "U0EVE", "text": "history"}}),
		dmEvent("U0EVE", "D0EVE", "", map[string]any{"subtype": "message_deleted", "deleted_ts": "1.1"}),
		dmEvent("U0EVE", "D0EVE", "history", map[string]any{"subtype": "file_share"}),
		dmEvent("U0EVE", "C0GENERAL", "history", map[string]any{"channel_type": "channel"}),
		dmEvent("", "D0EVE", "history", nil),
	} {
		postEvent(t, base, eventBody("EvNot"+string(rune('a'+i)), "T1DC2JH3J", e))
	}
	fake.quiet(t, map[string]int{"chat.postMessage": 1})

	// A command that opens a form: a message brings no trigger, so a button opens it.
	postEvent(t, base, eventBody("EvDM2", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "/tokens request", map[string]any{"thread_ts": "1700000000.000009"})))
	posts = fake.waitFor(t, "chat.postMessage", 2)
	if p := posts[1]; !strings.Contains(p.text(), `"action_id":"open_request"`) || p.Form.Get("thread_ts") != "1700000000.000009" {
		t.Errorf("request in the DM: %+v %s", p.Form, p.text())
	}
	// Someone tokenpay does not know is told why, in the DM.
	postEvent(t, base, eventBody("EvDM3", "T1DC2JH3J", dmEvent("U0GHOST", "D0GHOST", "balance", nil)))
	posts = fake.waitFor(t, "chat.postMessage", 3)
	if p := posts[2]; p.Form.Get("channel") != "D0GHOST" || !strings.Contains(p.text(), "Ask your tokenpay admin") {
		t.Errorf("stranger in the DM: %s", p.text())
	}
	fake.quiet(t, map[string]int{"chat.postMessage": 3})
}

// TestSlackEveryRequestType: each request Slack documents for the three URLs the manifest
// declares is acknowledged as Slack expects, and none but commands, buttons, forms, the
// shortcut and DMs does anything. app_uninstalled and tokens_revoked stop delivery to the
// workspace, with one log line.
func TestSlackEveryRequestType(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, stop := startServe(t, env) // stopped below, to restart
	respond := fake.apiURL() + "respond"

	// Slack's certificate check, signed or not (Bolt answers it before verifying): a 200
	// and nothing else, even with a command in it.
	if resp, body := signedPost(t, base, "/slack/commands", "ssl_check=1&token=xyzz0WbapA4vBCDEFasx0q6G", nil); resp.StatusCode != 200 || body != "" {
		t.Errorf("ssl_check: %d %q", resp.StatusCode, body)
	}
	unsigned, err := http.Post(base+"/slack/commands", "application/x-www-form-urlencoded",
		strings.NewReader("ssl_check=1&"+slashBody("U0EVE", "request 5k smuggled", respond)))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(unsigned.Body); unsigned.StatusCode != 200 || len(got) != 0 {
		t.Errorf("unsigned ssl_check: %d %q", unsigned.StatusCode, got)
	}
	unsigned.Body.Close()
	for _, forged := range []string{"ssl_check=true&" + slashBody("U0EVE", "request 5k smuggled", respond), "ssl_check=0"} {
		if resp, err := http.Post(base+"/slack/commands", "application/x-www-form-urlencoded", strings.NewReader(forged)); err != nil || resp.StatusCode != 401 {
			t.Errorf("unsigned %q: %v %v, want 401", forged[:12], resp, err)
		} else {
			resp.Body.Close()
		}
	}
	if d := export(t, env, "eve@x.io"); len(d.Requests) != 0 {
		t.Errorf("an ssl_check filed a request: %+v", d.Requests)
	}
	if _, body := signedPost(t, base, "/slack/events", `{"token":"x","challenge":"3eZbrw1aB","type":"url_verification"}`, nil); body != "3eZbrw1aB" {
		t.Errorf("url_verification: %q", body)
	}
	if resp, _ := signedPost(t, base, "/slack/events", `{"token":"x","type":"app_rate_limited","team_id":"T1DC2JH3J","minute_rate_limited":1518467820,"api_app_id":"A111"}`, nil); resp.StatusCode != 200 {
		t.Errorf("app_rate_limited: %d", resp.StatusCode)
	}
	team := map[string]any{"id": "T1DC2JH3J"}
	user := map[string]any{"id": "U0EVE", "team_id": "T1DC2JH3J"}
	for _, p := range []map[string]any{
		{"type": "view_closed", "team": team, "user": user, "view": map[string]any{"id": "V1", "callback_id": "submit_request"}, "is_cleared": false},
		{"type": "shortcut", "team": team, "user": user, "callback_id": "global_thing", "trigger_id": newTrigger()},
		{"type": "message_action", "team": team, "user": user, "callback_id": "not_ours", "trigger_id": newTrigger(), "message": map[string]any{"text": "balance"}},
		{"type": "interactive_message", "team": team, "user": user, "callback_id": "legacy", "actions": []any{map[string]any{"name": "balance", "value": "balance"}}, "response_url": respond},
		{"type": "dialog_submission", "team": team, "user": user, "callback_id": "balance", "submission": map[string]any{"x": "y"}, "response_url": respond},
		{"type": "dialog_cancellation", "team": team, "user": user, "callback_id": "balance", "response_url": respond},
		{"type": "block_actions", "team": team, "user": user, "trigger_id": newTrigger(), "response_url": respond, "actions": []any{map[string]any{"action_id": "Not An Action!", "type": "button"}}},
		{"type": "view_submission", "team": team, "user": user, "view": map[string]any{"id": "V1", "callback_id": "??", "state": map[string]any{"values": map[string]any{}}}},
	} {
		if resp, body := interaction(t, base, p); resp.StatusCode != 200 || body != "" {
			t.Errorf("%s: %d %q, want an empty 200", p["type"], resp.StatusCode, body)
		}
	}
	resp, body := interaction(t, base, map[string]any{"type": "block_suggestion", "team": team, "user": user, "action_id": "a", "block_id": "b", "value": "ba"})
	if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"options":[]}` {
		t.Errorf("block_suggestion: %d %q", resp.StatusCode, body)
	}
	for i, e := range []map[string]any{
		{"type": "app_mention", "user": "U0EVE", "text": "<@U0BOT> balance", "channel": "C0GENERAL", "ts": "1.1"},
		{"type": "reaction_added", "user": "U0EVE", "reaction": "thumbsup", "item": map[string]any{"type": "message", "channel": "C0GENERAL", "ts": "1.1"}},
		{"type": "member_joined_channel", "user": "U0EVE", "channel": "C0GENERAL"},
		{"type": "app_home_opened", "user": "U0EVE", "channel": "D0EVE", "tab": "messages"},
		{"type": "something_new", "user": "U0EVE"},
	} {
		postEvent(t, base, eventBody("EvOther"+string(rune('a'+i)), "T1DC2JH3J", e))
	}
	fake.quiet(t, map[string]int{"chat.postMessage": 0, "chat.postEphemeral": 0, "response_url": 0, "views.open": 0, "views.publish": 0})

	// Uninstalled, then the tokens revoked, then Slack repeats itself: one log line, and
	// nothing more reaches the workspace.
	postEvent(t, base, eventBody("EvGone1", "T1DC2JH3J", map[string]any{"type": "app_uninstalled"}))
	postEvent(t, base, eventBody("EvGone2", "T1DC2JH3J", map[string]any{"type": "tokens_revoked", "tokens": map[string]any{"oauth": []string{}, "bot": []string{"U0BOT"}}}))
	postEvent(t, base, eventBody("EvGone3", "T1DC2JH3J", map[string]any{"type": "app_uninstalled"}))
	_, body = signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 5k try the survey prompt", respond), nil)
	if !strings.Contains(body, "Request #1") {
		t.Errorf("the ledger still serves the command: %s", body)
	}
	postEvent(t, base, eventBody("EvAfter1", "T1DC2JH3J", map[string]any{"type": "app_home_opened", "user": "U0EVE", "channel": "D0EVE", "tab": "home"}))
	postEvent(t, base, eventBody("EvAfter2", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "balance", nil)))
	fake.quiet(t, map[string]int{"chat.postMessage": 0, "views.publish": 0, "conversations.open": 0})
	if n := strings.Count(serveLogs[t.Name()].String(), "Slack delivery stopped"); n != 1 {
		t.Errorf("%d log lines say delivery stopped, want 1", n)
	}

	// It stays stopped for that token: in jobs run by hand, and after a restart.
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest")
	if code != 0 || strings.Count(errOut, "Slack delivery stays stopped") != 1 {
		t.Errorf("jobs run after the uninstall: %d\n%s\n%s", code, out, errOut)
	}
	base, stop = startServe(t, env)
	postEvent(t, base, eventBody("EvAfter3", "T1DC2JH3J", map[string]any{"type": "app_home_opened", "user": "U0EVE", "channel": "D0EVE", "tab": "home"}))
	fake.quiet(t, map[string]int{"chat.postMessage": 0, "views.publish": 0, "conversations.open": 0})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Reinstalled: a new token, and delivery resumes.
	env["SLACK_BOT_TOKEN"] = "xoxb-reinstalled"
	base, stop = startServe(t, env)
	defer stop()
	postEvent(t, base, eventBody("EvAfter4", "T1DC2JH3J", map[string]any{"type": "app_home_opened", "user": "U0EVE", "channel": "D0EVE", "tab": "home"}))
	fake.waitFor(t, "views.publish", 1)
}

// TestSlackEnterpriseGrid: Enterprise Grid payloads (enterprise_id, W… user ids) work,
// byte for byte as in shared/spec/examples; accounts without an email are told why they
// cannot use tokenpay; SLACK_TEAM_ID may name the organisation.
func TestSlackEnterpriseGrid(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "spec", "examples", "slack-slash-command-enterprise.form.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	env["SLACK_TEAM_ID"] = "E111"
	if code, _, errOut := runCLI(t, slackPeople+"owner@x.io,Olu Owner,Research,manager,mia@x.io,W111,\n", env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	base, stop := startServe(t, env)
	defer stop()

	// The example as Slack sends it: "/hello-world Hi" from W111 in T111, organisation E111.
	resp, body := signedPost(t, base, "/slack/commands", string(example), nil)
	if s := readable(t, body); resp.StatusCode != 200 || !strings.Contains(s, `"response_type":"ephemeral"`) || !strings.Contains(s, "/tokens balance") {
		t.Fatalf("enterprise example: %d %s", resp.StatusCode, s)
	}
	form, _ := url.ParseQuery(string(example))
	form.Set("text", "balance")
	form.Set("response_url", fake.apiURL()+"respond")
	if _, body := signedPost(t, base, "/slack/commands", form.Encode(), nil); !strings.Contains(body, "200,000 credits") {
		t.Fatalf("enterprise balance: %s", body)
	}
	// The block_actions example (W111 in T111 of E111), pressing Balance.
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "spec", "examples", "slack-block-actions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	if err := json.Unmarshal(raw, &payload); err != nil {
		t.Fatal(err)
	}
	payload["response_url"] = fake.apiURL() + "respond"
	payload["actions"].([]any)[0].(map[string]any)["action_id"] = "balance"
	if resp, _ := interaction(t, base, payload); resp.StatusCode != 200 {
		t.Fatalf("enterprise block_actions: %d", resp.StatusCode)
	}
	if a := fake.waitFor(t, "response_url", 1); !strings.Contains(a[0].text(), "200,000 credits") {
		t.Errorf("enterprise button: %s", a[0].text())
	}
	// An org-wide install's event carries the organisation.
	postEvent(t, base, eventBody("EvGrid1", "T111", map[string]any{"type": "app_home_opened", "user": "W111", "channel": "D111", "tab": "home"},
		map[string]any{"enterprise_id": "E111", "is_enterprise_install": true}))
	if v := fake.waitFor(t, "views.publish", 1); v[0].JSON["user_id"] != "W111" {
		t.Errorf("home for W111: %s", v[0].text())
	}

	// Accounts without an email: a guest and a bot are told why, in a sentence.
	fake.accounts["W0GUEST"] = map[string]any{"id": "W0GUEST", "is_restricted": true, "profile": map[string]any{"real_name": "Gus Guest"}}
	fake.accounts["W0BOT"] = map[string]any{"id": "W0BOT", "is_bot": true, "profile": map[string]any{"bot_id": "B1"}}
	fake.accounts["W0HIDDEN"] = map[string]any{"id": "W0HIDDEN", "profile": map[string]any{"real_name": "Hid Den"}}
	for user, want := range map[string]string{
		"W0GUEST":  "Slack does not show it for guest accounts like yours",
		"W0BOT":    "tokenpay is for people",
		"W0HIDDEN": "Slack does not show me yours",
	} {
		form.Set("user_id", user)
		if _, body := signedPost(t, base, "/slack/commands", form.Encode(), nil); !strings.Contains(body, want) || !strings.Contains(body, "tokenpay") {
			t.Errorf("%s: %s, want %q", user, body, want)
		}
	}
}

// TestSlackOtherWorkspaceRefused: with SLACK_TEAM_ID set, a command, a button and an
// event from another workspace change nothing; the person is told why.
func TestSlackOtherWorkspaceRefused(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	env["SLACK_TEAM_ID"] = "T1DC2JH3J"
	base, stop := startServe(t, env)
	defer stop()
	respond := fake.apiURL() + "respond"

	other, _ := url.ParseQuery(slashBody("U0EVE", "request 5k try the survey prompt", respond))
	other.Set("team_id", "T0OTHER")
	resp, body := signedPost(t, base, "/slack/commands", other.Encode(), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "serves another Slack workspace") {
		t.Errorf("command from another workspace: %d %s", resp.StatusCode, body)
	}
	action := appHomeAction("U0EVE", "balance")
	action["team"] = map[string]any{"id": "T0OTHER"}
	action["user"] = map[string]any{"id": "U0EVE", "team_id": "T0OTHER"}
	if resp, _ := interaction(t, base, action); resp.StatusCode != http.StatusForbidden {
		t.Errorf("button from another workspace: %d", resp.StatusCode)
	}
	postEvent(t, base, eventBody("EvOtherWs", "T0OTHER", map[string]any{"type": "app_home_opened", "user": "U0EVE", "channel": "D0EVE", "tab": "home"}))
	fake.quiet(t, map[string]int{"chat.postMessage": 0, "views.publish": 0, "response_url": 0, "conversations.open": 0})
	if d := export(t, env, "eve@x.io"); len(d.Requests) != 0 {
		t.Errorf("a request from another workspace was filed: %+v", d.Requests)
	}
	if n := strings.Count(serveLogs[t.Name()].String(), "workspace other than SLACK_TEAM_ID"); n != 3 {
		t.Errorf("%d refusals logged, want 3", n)
	}
	// The configured workspace is served.
	if _, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "balance", respond), nil); !strings.Contains(body, "200,000 credits") {
		t.Errorf("own workspace: %s", body)
	}
}

// TestSlackSocketModeFormsAndDMs: over Socket Mode, a form's errors travel in the
// envelope's acknowledgement, and a DM's event is answered, as over HTTP.
func TestSlackSocketModeFormsAndDMs(t *testing.T) {
	acks := make(chan map[string]any, 4)
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	input := func(id string) map[string]any {
		return map[string]any{"type": "input", "block_id": id, "label": map[string]any{"type": "plain_text", "text": id},
			"element": map[string]any{"type": "plain_text_input", "action_id": id}}
	}
	state := func(values map[string]string) map[string]any {
		s := map[string]any{}
		for id, v := range values {
			s[id] = map[string]any{id: map[string]any{"type": "plain_text_input", "value": v}}
		}
		return map[string]any{"values": s}
	}
	submission := func(values map[string]string) map[string]any {
		return map[string]any{"type": "view_submission", "team": map[string]any{"id": "T1DC2JH3J"}, "user": map[string]any{"id": "U0EVE", "team_id": "T1DC2JH3J"},
			"view": map[string]any{"id": "V1", "type": "modal", "callback_id": "submit_request", "blocks": []any{input("amount"), input("use_case")}, "state": state(values)}}
	}
	envelopes := []map[string]any{
		{"envelope_id": "env-bad", "type": "interactive", "accepts_response_payload": true,
			"payload": submission(map[string]string{"amount": "lots", "use_case": "R&amp;D survey"})},
		{"envelope_id": "env-good", "type": "interactive", "accepts_response_payload": true,
			"payload": submission(map[string]string{"amount": "20k", "use_case": "R&amp;D survey &lt;draft&gt;"})},
		{"envelope_id": "env-dm", "type": "events_api", "accepts_response_payload": false, "retry_attempt": 0,
			"payload": json.RawMessage(eventBody("EvSock1", "T1DC2JH3J", dmEvent("U0EVE", "D0EVE", "history", nil)))},
	}
	var fake *fakeSlack
	socket := func(w http.ResponseWriter, r *http.Request) {
		conn, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1, "connection_info": map[string]any{"app_id": "A1"}})
		for _, e := range envelopes {
			_ = conn.WriteJSON(e)
			var ack map[string]any
			if err := conn.ReadJSON(&ack); err != nil {
				return
			}
			acks <- ack
		}
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				return
			}
		}
	}
	fake = newFakeSlack(t, func(s slacktest.Customize) {
		s.Handle("/socket", socket)
		s.Handle("/apps.connections.open", func(w http.ResponseWriter, _ *http.Request) {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(fake.apiURL(), "http") + "socket"})
		})
	})
	env := slackEnv(t, fake)
	delete(env, "SLACK_SIGNING_SECRET")
	env["SLACK_APP_TOKEN"] = "xapp-test"
	_, stop := startServe(t, env)
	defer stop()
	got := map[string]map[string]any{}
	for range envelopes {
		select {
		case ack := <-acks:
			got[fmt.Sprint(ack["envelope_id"])] = ack
		case <-time.After(10 * time.Second):
			t.Fatalf("acknowledgements so far: %v", got)
		}
	}
	bad, _ := json.Marshal(got["env-bad"]["payload"])
	if !strings.Contains(string(bad), `"response_action":"errors"`) || !strings.Contains(string(bad), `"amount":`) {
		t.Errorf("form errors not in the acknowledgement: %v", got["env-bad"])
	}
	if p, ok := got["env-good"]["payload"]; ok && p != nil {
		t.Errorf("a right form is acknowledged empty, got %v", p)
	}
	// The approval's parent and thread, the answer to the form (no response_url: a DM),
	// and the answer to the DM, in any order.
	posts := fake.waitFor(t, "chat.postMessage", 4)
	answered := false
	for _, p := range posts {
		answered = answered || (p.Form.Get("channel") == "D0EVE" && strings.Contains(p.text(), "Your recent activity"))
	}
	if !answered {
		t.Errorf("DM over Socket Mode not answered: %v", posts)
	}
	if d := export(t, env, "eve@x.io"); len(d.Requests) != 1 || d.Requests[0].UseCase != "R&D survey <draft>" {
		t.Errorf("stored over Socket Mode: %+v", d.Requests)
	}
}
