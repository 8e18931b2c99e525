package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const teamsAppID = "8d88f59b-ae61-4300-bec0-caace7d28446"

// botFramework is a local stand-in for Microsoft's side: OpenID metadata and keys, the
// OAuth token endpoint, and a connector service (the activities' serviceUrl) that records
// what the bot sends and checks its bearer token.
type botFramework struct {
	srv     *httptest.Server
	key     *rsa.PrivateKey
	other   *rsa.PrivateKey
	mu      sync.Mutex
	sent    []sentActivity
	members map[string]map[string]string // user id -> member JSON fields
	nextID  int
	// refuse makes the connector answer a conversation with this status (403, 404), as
	// Teams does once a user blocked or removed the bot.
	refuse map[string]int
}

type sentActivity struct {
	Method, Conversation, ActivityID string
	Body                             string
	AssignedID                       string // the id the connector answered with
	Status                           int    // what the connector answered
}

func newBotFramework(t *testing.T) *botFramework {
	t.Helper()
	bf := &botFramework{members: map[string]map[string]string{}, refuse: map[string]int{}}
	var err error
	if bf.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if bf.other, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /openid", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": "https://api.botframework.com", "jwks_uri": bf.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		n := base64.RawURLEncoding.EncodeToString(bf.key.N.Bytes())
		e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(bf.key.E)).Bytes())
		json.NewEncoder(w).Encode(map[string]any{"keys": []any{map[string]any{"kty": "RSA", "use": "sig", "kid": "k1", "n": n, "e": e,
			"endorsements": []string{"msteams"}}}})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("client_id") != teamsAppID || r.Form.Get("client_secret") != "app-password" {
			http.Error(w, "bad client", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "outgoing-token", "expires_in": 3600, "token_type": "Bearer"})
	})
	// Creating a conversation (a proactive personal chat) answers the personal chat id
	// the activities of that user carry: "a:" + user id.
	mux.HandleFunc("POST /v3/conversations", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer outgoing-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		var body struct {
			Members []struct{ ID string } `json:"members"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Members) != 1 {
			http.Error(w, "bad conversation parameters", http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": "a:" + body.Members[0].ID})
	})
	mux.HandleFunc("/v3/conversations/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer outgoing-token" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v3/conversations/"), "/")
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodGet && len(parts) == 3 && parts[1] == "members" {
			bf.mu.Lock()
			m, ok := bf.members[parts[2]]
			bf.mu.Unlock()
			if !ok {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(m)
			return
		}
		bf.mu.Lock()
		defer bf.mu.Unlock()
		s := sentActivity{Method: r.Method, Conversation: parts[0], Body: string(body)}
		if len(parts) == 3 {
			s.ActivityID = parts[2]
		}
		if code := bf.refuse[parts[0]]; code != 0 {
			s.Status = code
			bf.sent = append(bf.sent, s)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": "ConversationBlockedByUser", "message": "User blocked the conversation with the bot."}})
			return
		}
		bf.nextID++
		s.AssignedID = fmt.Sprintf("act-%d", bf.nextID)
		s.Status = http.StatusOK
		bf.sent = append(bf.sent, s)
		json.NewEncoder(w).Encode(map[string]any{"id": s.AssignedID})
	})
	bf.srv = httptest.NewServer(mux)
	t.Cleanup(bf.srv.Close)
	return bf
}

func (bf *botFramework) sentTo(conversation string) []sentActivity {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	var out []sentActivity
	for _, s := range bf.sent {
		if s.Conversation == conversation {
			out = append(out, s)
		}
	}
	return out
}

func (bf *botFramework) total() int {
	bf.mu.Lock()
	defer bf.mu.Unlock()
	return len(bf.sent)
}

// token signs Bot Connector claims; mutate changes them for the rejection cases.
func (bf *botFramework) token(t *testing.T, key *rsa.PrivateKey, kid string, method jwt.SigningMethod, mutate func(jwt.MapClaims)) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": "https://api.botframework.com", "aud": teamsAppID, "serviceurl": bf.srv.URL + "/",
		"nbf": time.Now().Add(-time.Minute).Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	if mutate != nil {
		mutate(claims)
	}
	tok := jwt.NewWithClaims(method, claims)
	tok.Header["kid"] = kid
	var signKey any = key
	if method == jwt.SigningMethodHS256 {
		signKey = []byte("guessable")
	}
	if method == jwt.SigningMethodNone {
		signKey = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := tok.SignedString(signKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// activity builds a personal-chat activity like shared/spec/examples/teams-message-activity.json.
func (bf *botFramework) activity(kind, id, user, aad, text string, value map[string]any) []byte {
	act := map[string]any{"type": kind, "id": id, "timestamp": time.Now().UTC().Format(time.RFC3339), "serviceUrl": bf.srv.URL + "/",
		"channelId": "msteams", "from": map[string]any{"id": user, "name": user, "aadObjectId": aad},
		"conversation": map[string]any{"conversationType": "personal", "id": "a:" + user},
		"recipient":    map[string]any{"id": "28:" + teamsAppID, "name": "tokenpay"},
		"channelData":  map[string]any{"tenant": map[string]any{"id": "72f988bf-86f1-41af-91ab-2d7cd011db47"}}, "locale": "en-US"}
	if text != "" {
		act["text"] = text
	}
	if value != nil {
		act["value"] = value
	}
	if kind == "conversationUpdate" {
		act["membersAdded"] = []any{map[string]any{"id": "28:" + teamsAppID}, map[string]any{"id": user, "aadObjectId": aad}}
	}
	b, _ := json.Marshal(act)
	return b
}

// in moves an activity to another conversation (a channel or a group chat).
func in(act []byte, conversationType, conversationID string) []byte {
	var m map[string]any
	json.Unmarshal(act, &m)
	m["conversation"] = map[string]any{"conversationType": conversationType, "id": conversationID}
	b, _ := json.Marshal(m)
	return b
}

// with sets top-level fields of an activity (action, name, membersRemoved, …).
func with(act []byte, fields map[string]any) []byte {
	var m map[string]any
	json.Unmarshal(act, &m)
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

// execute is the invoke Teams sends when someone presses an Action.Execute: name
// adaptiveCard/action, value.action with the verb and data of the card's action.
func (bf *botFramework) execute(id, user, aad string, data map[string]any) []byte {
	verb, _ := data["tokenpay"].(string)
	return with(bf.activity("invoke", id, user, aad, "", map[string]any{"action": map[string]any{"type": "Action.Execute", "verb": verb, "data": data}, "trigger": "manual"}),
		map[string]any{"name": "adaptiveCard/action"})
}

// postFull posts an activity and returns the status and the body of the answer.
func (bf *botFramework) postFull(t *testing.T, base, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func (bf *botFramework) post(t *testing.T, base, token string, body []byte) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/api/messages", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const teamsPeople = `email,name,team,role,manager_email,slack_user_id,teams_user_id
mia@x.io,Mia Boss,Research,manager,,,aad-mia
eve@x.io,Eve Analyst,Research,analyst,mia@x.io,,
`

func teamsEnv(t *testing.T, bf *botFramework) map[string]string {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pol, []byte("admins: [mia@x.io]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db"), "TOKENPAY_POLICY": pol,
		"TEAMS_APP_ID": teamsAppID, "TEAMS_APP_PASSWORD": "app-password", "TEAMS_OPENID_METADATA_URL": bf.srv.URL + "/openid",
		"TEAMS_OAUTH_TOKEN_URL": bf.srv.URL + "/token"}
	if code, _, errOut := runCLI(t, teamsPeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	return env
}

// TestTeamsRejectsBadTokens: every forged or misdirected token is refused with 401 and
// nothing is processed.
func TestTeamsRejectsBadTokens(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop := startServe(t, env)
	defer stop()
	msg := bf.activity("message", "m1", "29:eve", "aad-eve", "request 50k x", nil)
	cases := map[string]string{
		"no token":         "",
		"bad signature":    bf.token(t, bf.other, "k1", jwt.SigningMethodRS256, nil),
		"unknown kid":      bf.token(t, bf.key, "k9", jwt.SigningMethodRS256, nil),
		"wrong issuer":     bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }),
		"wrong audience":   bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, func(c jwt.MapClaims) { c["aud"] = "another-bot" }),
		"expired":          bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() }),
		"wrong serviceurl": bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, func(c jwt.MapClaims) { c["serviceurl"] = "https://evil.example/" }),
		"HS256":            bf.token(t, bf.key, "k1", jwt.SigningMethodHS256, nil),
		"alg none":         bf.token(t, bf.key, "k1", jwt.SigningMethodNone, nil),
	}
	for name, tok := range cases {
		if code := bf.post(t, base, tok, msg); code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	if n := bf.total(); n != 0 {
		t.Fatalf("rejected activities made the bot send %d messages", n)
	}
	code, out, _ := runCLI(t, "", env, "ledger", "export")
	if code != 0 || strings.Contains(out, "request") {
		t.Fatalf("a rejected activity changed the ledger")
	}
	// The valid token works, so the cases above failed for their own reason.
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	if code := bf.post(t, base, bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil), bf.activity("message", "m2", "29:eve", "aad-eve", "balance", nil)); code != 200 {
		t.Fatalf("valid token: %d", code)
	}
	if got := bf.sentTo("a:29:eve"); len(got) != 1 || !strings.Contains(got[0].Body, "200,000 credits") {
		t.Fatalf("balance card: %+v", got)
	}
}

// serveInstalledByMiaAndEve starts serve with Eve's member record known to the connector
// and the bot installed by Mia and Eve; it returns a valid token for further activities.
func serveInstalledByMiaAndEve(t *testing.T, bf *botFramework, env map[string]string) (string, func() error, string) {
	t.Helper()
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	base, stop := startServe(t, env)
	tok := bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil)
	for _, who := range [][2]string{{"29:mia", "aad-mia"}, {"29:eve", "aad-eve"}} {
		if code := bf.post(t, base, tok, bf.activity("conversationUpdate", "install-"+who[0], who[0], who[1], "", nil)); code != 200 {
			t.Fatalf("install: %d", code)
		}
	}
	return base, stop, tok
}

// TestTeamsApprovalLoop: a request in Teams, a card to the manager, the manager's submit
// (twice), the card replaced in place, the requester told, the balance up once; and after
// a restart a proactive message still reaches a user who installed the bot before it.
func TestTeamsApprovalLoop(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop, tok := serveInstalledByMiaAndEve(t, bf, env)
	// In a channel the bot's @mention is part of the text; it is stripped.
	if code := bf.post(t, base, tok, bf.activity("message", "m1", "29:eve", "aad-eve", "<at>tokenpay</at> request 50k summarise the interviews", nil)); code != 200 {
		t.Fatalf("request: %d", code)
	}
	if got := bf.sentTo("a:29:eve"); len(got) != 1 || !strings.Contains(got[0].Body, "Request #1 for 50,000 credits sent to Mia Boss") {
		t.Fatalf("requester's answer: %+v", got)
	}
	cards := bf.sentTo("a:29:mia")
	if len(cards) != 1 || cards[0].Method != "POST" || !strings.Contains(cards[0].Body, `"tokenpay":"approve:1"`) || !strings.Contains(cards[0].Body, "application/vnd.microsoft.card.adaptive") {
		t.Fatalf("approval card to the manager: %+v", cards)
	}
	before := balanceOf(t, env, "eve@x.io")
	submit := bf.activity("message", "m2", "29:mia", "aad-mia", "", map[string]any{"tokenpay": "approve:1"})
	for range 2 { // the same delivery retried: processed once
		if code := bf.post(t, base, tok, submit); code != 200 {
			t.Fatalf("submit: %d", code)
		}
	}
	// A second, separate click: answered "already decided", nothing granted.
	if code := bf.post(t, base, tok, bf.activity("message", "m3", "29:mia", "aad-mia", "", map[string]any{"tokenpay": "approve:1"})); code != 200 {
		t.Fatalf("second click: %d", code)
	}
	if got := balanceOf(t, env, "eve@x.io"); got != before+50_000 {
		t.Fatalf("balance %d, want %d (up once)", got, before+50_000)
	}
	mia := bf.sentTo("a:29:mia")
	var updated, confirmed, already bool
	for _, s := range mia {
		updated = updated || (s.Method == "PUT" && s.ActivityID == cards[0].AssignedID && strings.Contains(s.Body, "Approved by Mia Boss") && !strings.Contains(s.Body, "Action.Submit"))
		confirmed = confirmed || strings.Contains(s.Body, "Approved request #1")
		already = already || strings.Contains(s.Body, "already decided")
	}
	if !updated || !confirmed || !already {
		t.Fatalf("manager side: updated %v confirmed %v already %v: %+v", updated, confirmed, already, mia)
	}
	if eve := bf.sentTo("a:29:eve"); len(eve) != 2 || !strings.Contains(eve[1].Body, "Mia Boss approved your request #1") {
		t.Fatalf("requester told: %+v", eve)
	}

	// Eve files another request, then the process restarts.
	bf.post(t, base, tok, bf.activity("message", "m4", "29:eve", "aad-eve", "request 10k draft the survey", nil))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	base, stop = startServe(t, env)
	defer stop()
	// Mia approves from the card she got before the restart; Eve, who installed the bot
	// before it, is told proactively from the stored conversation reference.
	if code := bf.post(t, base, bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil), bf.activity("message", "m5", "29:mia", "aad-mia", "", map[string]any{"tokenpay": "approve:2"})); code != 200 {
		t.Fatalf("approve after restart: %d", code)
	}
	eve := bf.sentTo("a:29:eve")
	if last := eve[len(eve)-1]; !strings.Contains(last.Body, "approved your request #2") {
		t.Fatalf("no proactive message after the restart: %+v", last)
	}
	if code, _, _ := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatal("ledger verify failed")
	}
	_ = context.Background
}

// TestOnePersonOnSlackAndTeams: the same email on both platforms is one person with one
// balance, and the bot writes to them where they last talked to it.
func TestOnePersonOnSlackAndTeams(t *testing.T) {
	bf := newBotFramework(t)
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	for k, v := range teamsEnv(t, bf) {
		if strings.HasPrefix(k, "TEAMS_") {
			env[k] = v
		}
	}
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	base, stop := startServe(t, env)
	defer stop()
	tok := bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil)
	respond := fake.apiURL() + "respond"

	bf.post(t, base, tok, bf.activity("conversationUpdate", "i1", "29:eve", "aad-eve", "", nil))
	bf.post(t, base, tok, bf.activity("message", "t1", "29:eve", "aad-eve", "balance", nil))
	teamsBalance := bf.sentTo("a:29:eve")
	_, slackBalance := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "balance", respond), nil)
	if len(teamsBalance) != 1 || !strings.Contains(teamsBalance[0].Body, "200,000 credits") || !strings.Contains(slackBalance, "200,000 credits") {
		t.Fatalf("one balance on both platforms: teams %v, slack %s", teamsBalance, slackBalance)
	}

	// Eve last used Slack: Mia's approval reaches her there.
	signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 5k try the survey prompt", respond), nil)
	signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "approve:1", "C0APPROVALS", respond), nil)
	var toldOnSlack bool
	for _, c := range fake.waitFor(t, "chat.postMessage", 3) {
		toldOnSlack = toldOnSlack || (c.Form.Get("channel") == "U0EVE" && strings.Contains(c.text(), "approved your request #1"))
	}
	if !toldOnSlack || len(bf.sentTo("a:29:eve")) != 1 {
		t.Fatalf("Eve last used Slack and should be told there (teams messages: %d)", len(bf.sentTo("a:29:eve")))
	}

	// Now she writes on Teams: the next approval reaches her in Teams.
	bf.post(t, base, tok, bf.activity("message", "t2", "29:eve", "aad-eve", "request 5k another idea", nil))
	signedPost(t, base, "/slack/interactions", actionBody("U0MIA", "approve:2", "C0APPROVALS", respond), nil)
	deadline := time.Now().Add(5 * time.Second)
	for {
		msgs := bf.sentTo("a:29:eve")
		if last := msgs[len(msgs)-1]; strings.Contains(last.Body, "approved your request #2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Eve last used Teams and should be told there: %+v", msgs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := balanceOf(t, env, "eve@x.io"); got != 210_000 {
		t.Fatalf("one balance: %d, want 210,000", got)
	}
}

// TestTeamsApprovalExpires: nobody decides; 'jobs run expire-requests' a week later
// replaces the manager's card in place with the outcome and no buttons, and tells Eve.
func TestTeamsApprovalExpires(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop, tok := serveInstalledByMiaAndEve(t, bf, env)
	if code := bf.post(t, base, tok, bf.activity("message", "m1", "29:eve", "aad-eve", "request 50k summarise the interviews", nil)); code != 200 {
		t.Fatalf("request: %d", code)
	}
	cards := bf.sentTo("a:29:mia")
	if len(cards) != 1 || !strings.Contains(cards[0].Body, `"tokenpay":"approve:1"`) {
		t.Fatalf("approval card to the manager: %+v", cards)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	env["TOKENPAY_NOW"] = "2026-11-27T10:30:00Z" // a week and half an hour after it was filed
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "expire-requests")
	if code != 0 || !strings.Contains(out, "expired 1 request;") || !strings.Contains(out, "approval messages updated for 1") {
		t.Fatalf("expire-requests: %d\n%s\n%s", code, out, errOut)
	}
	mia := bf.sentTo("a:29:mia")
	if len(mia) != 2 || mia[1].Method != "PUT" || mia[1].ActivityID != cards[0].AssignedID ||
		!strings.Contains(mia[1].Body, "Expired on 27 Nov 2026 at 10:00 UTC without a decision") || strings.Contains(mia[1].Body, "Action.Submit") {
		t.Fatalf("the manager's card was not replaced by the outcome: %+v", mia)
	}
	if eve := bf.sentTo("a:29:eve"); len(eve) != 2 || !strings.Contains(eve[1].Body, "expired on 27 Nov 10:00 UTC without a decision") {
		t.Fatalf("requester not told once: %+v", eve)
	}
}
