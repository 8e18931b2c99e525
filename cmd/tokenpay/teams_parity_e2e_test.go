package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// linkEve makes Eve's first contact (a balance in her personal chat), which links her
// Teams account to the directory, and waits for the link: it is written after the answer.
func linkEve(t *testing.T, bf *botFramework, env map[string]string, base, tok string) {
	t.Helper()
	if code := bf.post(t, base, tok, bf.activity("message", "link-eve", "29:eve", "aad-eve", "balance", nil)); code != 200 {
		t.Fatalf("first contact: %d", code)
	}
	if got := bf.sentTo("a:29:eve"); len(got) == 0 || !strings.Contains(got[len(got)-1].Body, "200,000 credits") {
		t.Fatalf("Eve not answered: %+v", got)
	}
	db, err := sqlite.Open(context.Background(), env["TOKENPAY_DB"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		eve, err := db.PersonByEmail(context.Background(), "eve@x.io")
		if err == nil && eve.TeamsUserID == "aad-eve" && eve.PreferredPlatform == "teams" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Eve not linked: %+v %v", eve, err)
		}
	}
}

// TestTeamsUninstallThenDigest: after Eve removes the app (installationUpdate remove) her
// stored chat is gone, the weekly digest sends her nothing and retries nothing (she is on
// no other platform, so the digest takes the "no chat platform" path); reinstalling
// restores delivery.
func TestTeamsUninstallThenDigest(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop, tok := serveInstalledByMiaAndEve(t, bf, env)
	linkEve(t, bf, env, base, tok)
	remove := with(bf.activity("installationUpdate", "uninstall-1", "29:eve", "aad-eve", "", nil), map[string]any{"action": "remove"})
	if code := bf.post(t, base, tok, remove); code != 200 {
		t.Fatalf("uninstall: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before := len(bf.sentTo("a:29:eve"))
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-23T10:00:00Z")
	if code != 0 {
		t.Fatalf("digest: %d\n%s\n%s", code, out, errOut)
	}
	if n := len(bf.sentTo("a:29:eve")) - before; n != 0 {
		t.Fatalf("%d sends to the chat of a user who uninstalled the app", n)
	}
	if !strings.Contains(out, "To Eve Analyst <eve@x.io>, who is on no configured chat platform") || !strings.Contains(out, "Nothing is waiting.") {
		t.Fatalf("Eve's digest should take the no-platform path at once, with nothing left to retry:\n%s", out)
	}
	if mia := bf.sentTo("a:29:mia"); len(mia) == 0 || !strings.Contains(mia[len(mia)-1].Body, "week with AI tokens") {
		t.Fatalf("Mia, still installed, gets her digest: %+v", mia)
	}

	// Reinstalling (installationUpdate add) stores the chat again: next week's digest arrives.
	base, stop = startServe(t, env)
	add := with(bf.activity("installationUpdate", "reinstall-1", "29:eve", "aad-eve", "", nil), map[string]any{"action": "add"})
	if code := bf.post(t, base, bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil), add); code != 200 {
		t.Fatalf("reinstall: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-30T10:00:00Z")
	if code != 0 {
		t.Fatalf("digest after reinstall: %d\n%s\n%s", code, out, errOut)
	}
	eve := bf.sentTo("a:29:eve")
	if len(eve) != before+1 || !strings.Contains(eve[len(eve)-1].Body, "Your week with AI tokens") || strings.Contains(out, "<eve@x.io>") {
		t.Fatalf("after reinstalling, Eve gets the digest in Teams: %d new, output:\n%s", len(eve)-before, out)
	}
}

// TestTeamsBlockedChatIsPermanent: the connector answers 403 (ConversationBlockedByUser)
// for Eve's chat. The digest is tried once, never retried, and marked unreachable; the
// next message to her does not call the connector at all.
func TestTeamsBlockedChatIsPermanent(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop, tok := serveInstalledByMiaAndEve(t, bf, env)
	linkEve(t, bf, env, base, tok)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	before := len(bf.sentTo("a:29:eve"))
	bf.mu.Lock()
	bf.refuse["a:29:eve"] = http.StatusForbidden
	bf.mu.Unlock()
	code, out, errOut := runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-23T10:00:00Z")
	if code != 0 {
		t.Fatalf("digest: %d\n%s\n%s", code, out, errOut)
	}
	attempts := bf.sentTo("a:29:eve")[before:]
	if len(attempts) != 1 || attempts[0].Status != http.StatusForbidden {
		t.Fatalf("want exactly one attempt answered 403, got %+v", attempts)
	}
	if !strings.Contains(out, "<eve@x.io>, who is on no configured chat platform") || !strings.Contains(out, "Nothing is waiting.") {
		t.Fatalf("a 403 is permanent: unreachable at once, nothing to retry:\n%s", out)
	}
	code, out, errOut = runCLI(t, "", env, "jobs", "run", "weekly-digest", "--at", "2026-11-30T10:00:00Z")
	if code != 0 {
		t.Fatalf("second digest: %d\n%s\n%s", code, out, errOut)
	}
	if n := len(bf.sentTo("a:29:eve")) - before; n != 1 {
		t.Fatalf("the blocked chat was tried again: %d attempts in all", n)
	}
	if !strings.Contains(out, "<eve@x.io>, who is on no configured chat platform") {
		t.Fatalf("Eve's next digest should take the no-platform path:\n%s", out)
	}
}

// TestTeamsChannelBalanceIsPrivate: balance asked in a channel (and history in a group
// chat) gets a short public pointer there; the answer goes to the asker's personal chat,
// opened through the connector when they never wrote to the bot directly.
func TestTeamsChannelBalanceIsPrivate(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	base, stop := startServe(t, env)
	defer stop()
	tok := bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil)
	const channel = "19:general@thread.tacv2;messageid=1700000000001"
	ask := in(bf.activity("message", "c1", "29:eve", "aad-eve", "<at>tokenpay</at> balance", nil), "channel", channel)
	if code := bf.post(t, base, tok, ask); code != 200 {
		t.Fatalf("channel balance: %d", code)
	}
	public := bf.sentTo(channel)
	if len(public) != 1 || !strings.Contains(public[0].Body, "personal chat") {
		t.Fatalf("the channel gets one pointer: %+v", public)
	}
	for _, private := range []string{"credits", "200,000", "Available", "Eve"} {
		if strings.Contains(public[0].Body, private) {
			t.Errorf("the channel pointer says %q: %s", private, public[0].Body)
		}
	}
	personalChat := bf.sentTo("a:29:eve")
	if len(personalChat) != 1 || !strings.Contains(personalChat[0].Body, "200,000 credits") {
		t.Fatalf("the balance goes to Eve's personal chat: %+v", personalChat)
	}

	const group = "19:meeting-chat@thread.v2"
	if code := bf.post(t, base, tok, in(bf.activity("message", "g1", "29:eve", "aad-eve", "history", nil), "groupChat", group)); code != 200 {
		t.Fatalf("group history: %d", code)
	}
	if g := bf.sentTo(group); len(g) != 1 || strings.Contains(g[0].Body, "granted") || !strings.Contains(g[0].Body, "personal chat") {
		t.Fatalf("group chat gets only a pointer: %+v", g)
	}
	if p := bf.sentTo("a:29:eve"); len(p) != 2 || !strings.Contains(p[1].Body, "Your recent activity") {
		t.Fatalf("history goes to the personal chat: %+v", p)
	}
}

// TestTeamsExecuteApprovalOnce: Mia presses Approve (Action.Execute) on her card several
// times at once. Each press gets the documented invoke response with the redrawn card
// (decided, no buttons); the grant happens once and Eve is told once.
func TestTeamsExecuteApprovalOnce(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	base, stop, tok := serveInstalledByMiaAndEve(t, bf, env)
	defer stop()
	if code := bf.post(t, base, tok, bf.activity("message", "m1", "29:eve", "aad-eve", "request 50k summarise the interviews", nil)); code != 200 {
		t.Fatalf("request: %d", code)
	}
	cards := bf.sentTo("a:29:mia")
	if len(cards) != 1 {
		t.Fatalf("approval card: %+v", cards)
	}
	// Press the Approve action the card carries, with its own data.
	var sent struct {
		Attachments []struct {
			Content map[string]any `json:"content"`
		} `json:"attachments"`
	}
	if err := json.Unmarshal([]byte(cards[0].Body), &sent); err != nil || len(sent.Attachments) != 1 {
		t.Fatalf("approval card: %v %s", err, cards[0].Body)
	}
	var data map[string]any
	walkJSON(sent.Attachments[0].Content, func(m map[string]any) {
		if m["type"] == "Action.Execute" && m["verb"] == "approve:1" {
			data, _ = m["data"].(map[string]any)
		}
	})
	if data == nil || data["origin"] != "request:1" {
		t.Fatalf("no Action.Execute approve:1 with its origin on the card: %s", cards[0].Body)
	}
	before := balanceOf(t, env, "eve@x.io")
	const presses = 6
	var wg sync.WaitGroup
	answers := make([]string, presses)
	codes := make([]int, presses)
	for i := range presses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], answers[i] = bf.postFull(t, base, tok, bf.execute("x"+string(rune('a'+i)), "29:mia", "aad-mia", data))
		}()
	}
	wg.Wait()
	for i, a := range answers {
		var resp struct {
			StatusCode int            `json:"statusCode"`
			Type       string         `json:"type"`
			Value      map[string]any `json:"value"`
		}
		if codes[i] != 200 || json.Unmarshal([]byte(a), &resp) != nil || resp.StatusCode != 200 || resp.Type != "application/vnd.microsoft.card.adaptive" {
			t.Fatalf("press %d: HTTP %d, answer %s", i, codes[i], a)
		}
		card, _ := json.Marshal(resp.Value)
		if !strings.Contains(string(card), "Approved by Mia Boss") || strings.Contains(string(card), "Action.") || resp.Value["type"] != "AdaptiveCard" {
			t.Errorf("press %d: the refreshed card should show the outcome and no buttons: %s", i, card)
		}
	}
	if got := balanceOf(t, env, "eve@x.io"); got != before+50_000 {
		t.Fatalf("balance %d, want %d: granted once whatever the presses", got, before+50_000)
	}
	told := 0
	for _, s := range bf.sentTo("a:29:eve") {
		if strings.Contains(s.Body, "approved your request #1") {
			told++
		}
	}
	if told != 1 {
		t.Fatalf("Eve told %d times", told)
	}
	var updated bool
	for _, s := range bf.sentTo("a:29:mia") {
		updated = updated || (s.Method == "PUT" && s.ActivityID == cards[0].AssignedID && strings.Contains(s.Body, "Approved by Mia Boss"))
	}
	if !updated {
		t.Fatalf("Mia's card was not updated in place for other clients")
	}
	if code, _, _ := runCLI(t, "", env, "ledger", "verify"); code != 0 {
		t.Fatal("ledger verify failed")
	}
}

// TestTeamsFirstContactChecksAADObjectID: a member lookup that returns another account's
// AAD object id links nobody; the right one links.
func TestTeamsFirstContactChecksAADObjectID(t *testing.T) {
	bf := newBotFramework(t)
	env := teamsEnv(t, bf)
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-someone-else", "email": "eve@x.io"}
	base, stop := startServe(t, env)
	defer stop()
	tok := bf.token(t, bf.key, "k1", jwt.SigningMethodRS256, nil)
	bf.post(t, base, tok, bf.activity("message", "f1", "29:eve", "aad-eve", "balance", nil))
	got := bf.sentTo("a:29:eve")
	if len(got) != 1 || strings.Contains(got[0].Body, "credits") || !strings.Contains(got[0].Body, "could not confirm your Teams account") {
		t.Fatalf("a mismatched member lookup must not link: %+v", got)
	}
	bf.mu.Lock()
	bf.members["29:eve"] = map[string]string{"id": "29:eve", "aadObjectId": "aad-eve", "email": "eve@x.io"}
	bf.mu.Unlock()
	bf.post(t, base, tok, bf.activity("message", "f2", "29:eve", "aad-eve", "balance", nil))
	if got := bf.sentTo("a:29:eve"); len(got) != 2 || !strings.Contains(got[1].Body, "200,000 credits") {
		t.Fatalf("the matching lookup links: %+v", got)
	}
}

// walkJSON calls fn on every object under v.
func walkJSON(v any, fn func(map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(x)
		for _, e := range x {
			walkJSON(e, fn)
		}
	case []any:
		for _, e := range x {
			walkJSON(e, fn)
		}
	}
}

// TestManifestTeamsPagesAndOverwrite: the privacy and terms pages land in the package's
// manifest, and an existing package is replaced only with --force.
func TestManifestTeamsPagesAndOverwrite(t *testing.T) {
	out := filepath.Join(t.TempDir(), "pkg.zip")
	args := []string{"manifest", "teams", "--app-id", teamsAppID, "--privacy-url", "https://intranet.example.com/privacy",
		"--terms-url", "https://intranet.example.com/terms", "-o", out}
	if code, stdout, errOut := runCLI(t, "", nil, args...); code != 0 || !strings.Contains(stdout, "Wrote "+out) {
		t.Fatalf("manifest teams: %d %s %s", code, stdout, errOut)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	var manifestJSON []byte
	for _, f := range zr.File {
		if f.Name == "manifest.json" {
			rc, _ := f.Open()
			manifestJSON, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	zr.Close()
	if !strings.Contains(string(manifestJSON), `"privacyUrl": "https://intranet.example.com/privacy"`) ||
		!strings.Contains(string(manifestJSON), `"termsOfUseUrl": "https://intranet.example.com/terms"`) {
		t.Fatalf("pages not in the manifest:\n%s", manifestJSON)
	}
	before, _ := os.ReadFile(out)
	privacyOnly := slices.Clip(args[:len(args)-4]) // the default terms page from here on
	code, _, errOut := runCLI(t, "", nil, append(privacyOnly, "-o", out)...)
	if code == 0 || !strings.Contains(errOut, "already exists: pass --force") {
		t.Fatalf("overwrite without --force: exit %d, %s", code, errOut)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("the refused run changed the file")
	}
	if code, _, errOut := runCLI(t, "", nil, append(privacyOnly, "-o", out, "--force")...); code != 0 {
		t.Fatalf("--force: %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(out); bytes.Equal(before, after) {
		t.Fatal("--force did not replace the file (the default pages differ from the ones above)")
	}
	if code, _, errOut := runCLI(t, "", nil, "manifest", "teams", "--app-id", teamsAppID, "--privacy-url", "http://x.example/p", "-o", out+"2"); code == 0 || !strings.Contains(errOut, "privacy url") {
		t.Fatalf("plain http privacy url: %d %s", code, errOut)
	}
}
