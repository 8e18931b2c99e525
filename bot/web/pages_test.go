package web

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/tokenpay/tokenpay/bot"
	"github.com/tokenpay/tokenpay/bot/bottest"
	"github.com/tokenpay/tokenpay/ledger"
)

// The pages over real HTTP and a real ledger, without a browser: who sees what, and
// decisions taken through the conversation core.

type pageClient struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signedInClient(t *testing.T, f *bottest.Fixture, base, email string) *pageClient {
	t.Helper()
	token, _, err := f.DB.CreateLoginLink(context.Background(), email, "test")
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	pc := &pageClient{t: t, base: base, c: &http.Client{Jar: jar}}
	link := LinkURL(base, token)
	// The link's page, then its button: a POST to the link itself.
	code, body := pc.get(link)
	if code != 200 || !strings.Contains(body, "Sign in to tokenpay as") || !strings.Contains(body, `action="/auth/link/`+token+`"`) {
		t.Fatalf("sign-in link page for %s: %d %.600s", email, code, body)
	}
	code, body = pc.post(strings.TrimPrefix(link, base), nil)
	if code != 200 || !strings.Contains(body, "Sign out") {
		t.Fatalf("sign in %s: %d %.300s", email, code, body)
	}
	pc.csrf = ""
	if m := csrfField.FindStringSubmatch(body); m != nil {
		pc.csrf = m[1]
	}
	return pc
}

func (pc *pageClient) get(u string) (int, string) {
	pc.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = pc.base + u
	}
	resp, err := pc.c.Get(u)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(b); m != nil {
		pc.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

func (pc *pageClient) post(path string, form url.Values) (int, string) {
	pc.t.Helper()
	resp, err := pc.c.PostForm(pc.base+path, form)
	if err != nil {
		pc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPagesAndDecisions(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	if _, err := f.DB.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "mia@x.io", Name: "Mia Boss", Team: "Research", Role: "manager"},
		{Line: 3, Email: "eve@x.io", Name: "Eve Analyst", Team: "Research", Role: "analyst", ManagerEmail: "mia@x.io"},
		{Line: 4, Email: "ada@x.io", Name: "Ada Admin", Team: "People", Role: "hr"},
		{Line: 5, Email: "dan@x.io", Name: "Dan Delegate", Team: "Research", Role: "lead"},
	}); err != nil {
		t.Fatal(err)
	}
	pol := f.Handler.Policy
	pol.Unlock.Delegates = map[string][]string{"mia@x.io": {"dan@x.io"}}
	s := &Server{Store: f.DB, Policy: pol, Handler: f.Handler, Now: f.Handler.Now, Log: zerolog.Nop()}
	mux := http.NewServeMux()
	if err := s.Register(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	eve := f.People["eve@x.io"]
	f.Handler.Command(ctx, eve, "request 50k summarise the interviews <script>alert(1)</script>")
	f.Handler.Command(ctx, eve, "request 20k draft the survey")
	f.Handler.Command(ctx, eve, "impact drafted the readout in an hour --hours 3")

	// The delegate sees both requests with their context, escaped, and decides one.
	dan := signedInClient(t, f, srv.URL, "dan@x.io")
	code, body := dan.get("/dashboard/team")
	if code != 200 || !strings.Contains(body, "Request #1: 50,000 credits for Eve Analyst") || !strings.Contains(body, "Request #2") ||
		!strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(body, "<script>") {
		t.Fatalf("delegate's team page: %d %.1500s", code, body)
	}
	if code, body := dan.post("/dashboard/requests/1/approve", url.Values{}); code != 403 || !strings.Contains(body, "form has expired") {
		t.Fatalf("post without the CSRF token: %d %.200s", code, body)
	}
	before := len(f.Sent.Directs)
	code, body = dan.post("/dashboard/requests/1/approve", url.Values{"csrf": {dan.csrf}})
	if code != 200 || !strings.Contains(body, "Approved request #1: Eve Analyst now has 50,000 more credits") {
		t.Fatalf("approve: %d %.500s", code, body)
	}
	if len(f.Sent.Directs) != before+1 || !strings.Contains(replyText(f.Sent.Directs[before]), "Dan Delegate approved your request #1") {
		t.Fatalf("Eve was not told: %v", f.Sent.Directs)
	}
	if code, body := dan.post("/dashboard/requests/1/approve", url.Values{"csrf": {dan.csrf}}); code != 200 || !strings.Contains(body, "already decided") {
		t.Fatalf("second approval: %d %.300s", code, body)
	}
	if len(f.Sent.Directs) != before+1 {
		t.Fatalf("a second approval told Eve again")
	}

	// The manager denies the other with a reason, and validates the outcome.
	mia := signedInClient(t, f, srv.URL, "mia@x.io")
	code, body = mia.get("/dashboard/team")
	if code != 200 || strings.Contains(body, "Request #1:") || !strings.Contains(body, "Request #2") || !strings.Contains(body, "drafted the readout in an hour") {
		t.Fatalf("manager's team page: %d %.1500s", code, body)
	}
	if code, body := mia.post("/dashboard/requests/2/deny", url.Values{"csrf": {mia.csrf}, "reason": {"Say which survey"}}); code != 200 || !strings.Contains(body, "Denied request #2") {
		t.Fatalf("deny: %d %.300s", code, body)
	}
	if r, _ := f.DB.Request(ctx, 2); r.Status != ledger.RequestDenied || r.Note != "Say which survey" {
		t.Fatalf("request 2 after deny: %+v", r)
	}
	ims, _ := f.DB.Impacts(ctx, eve.ID, f.Handler.Now().AddDate(0, -1, 0), 10)
	if len(ims) != 1 {
		t.Fatalf("impacts: %v", ims)
	}
	if code, body := mia.post("/dashboard/impacts/"+strconv.FormatInt(ims[0].ID, 10)+"/validate", url.Values{"csrf": {mia.csrf}}); code != 200 || !strings.Contains(body, "Validated Eve Analyst") {
		t.Fatalf("validate: %d %.300s", code, body)
	}
	if code, _ := mia.post("/dashboard/requests/2/explode", url.Values{"csrf": {mia.csrf}}); code != 404 {
		t.Fatalf("unknown decision: %d", code)
	}

	// Eve: her page only.
	ec := signedInClient(t, f, srv.URL, "eve@x.io")
	own := "/dashboard/people/" + strconv.FormatInt(eve.ID, 10)
	if code, body := ec.get(own); code != 200 || !strings.Contains(body, "Eve Analyst: your AI tokens") || !strings.Contains(body, "summarise the interviews") {
		t.Fatalf("own page: %d %.300s", code, body)
	}
	for _, path := range []string{"/dashboard/org", "/dashboard/org/csv/teams", "/dashboard/team", "/dashboard/team/csv/team-credits",
		"/dashboard/people/" + strconv.FormatInt(f.People["mia@x.io"].ID, 10), "/dashboard/people/999/csv/my-credits", "/dashboard/people/x"} {
		if code, _ := ec.get(path); code != 403 {
			t.Errorf("eve on %s: %d, want 403", path, code)
		}
	}
	f.Handler.Command(ctx, eve, "request 10k try the new model")
	if code, body := ec.post("/dashboard/requests/3/approve", url.Values{"csrf": {ec.csrf}}); code != 200 || !strings.Contains(body, "can&#39;t decide your own request") {
		t.Errorf("eve deciding her own request: %d %.400s", code, body)
	}
	if r, _ := f.DB.Request(ctx, 3); r.Status != ledger.RequestPending {
		t.Errorf("request 3 after its requester clicked approve: %s", r.Status)
	}

	// Ada: the organisation, and its numbers as CSV.
	ac := signedInClient(t, f, srv.URL, "ada@x.io")
	if code, body := ac.get("/dashboard/org"); code != 200 || strings.Count(body, `<svg class="chart"`) < 5 {
		t.Fatalf("organisation page: %d %.300s", code, body)
	}
	resp, err := ac.c.Get(srv.URL + "/dashboard/org/csv/requests")
	if err != nil {
		t.Fatal(err)
	}
	csvBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.HasPrefix(string(csvBody), "Period,Open,Approved,Denied,Expired,Cancelled,Median hours to decision\n") ||
		!strings.Contains(string(csvBody), "Nov 2026,1,1,1,0,0,0.0\n") {
		t.Fatalf("requests CSV: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), csvBody)
	}
	if code, _ := ac.get("/dashboard/org/csv/nope"); code != 404 {
		t.Errorf("unknown CSV: %d", code)
	}
	for _, path := range []string{"/dashboard/nope", "/auth/nope"} {
		resp, err := ac.c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 || resp.Header.Get("Content-Security-Policy") != CSP {
			t.Errorf("%s: %d, CSP %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
		}
	}
	// Not signed in: sent to sign in; a form post is refused.
	anon := &pageClient{t: t, base: srv.URL, c: &http.Client{}}
	if code, body := anon.get("/dashboard/org"); code != 200 || !strings.Contains(body, "Sign in to tokenpay") {
		t.Errorf("anonymous: %d %.200s", code, body)
	}
	if code, _ := anon.post("/dashboard/requests/2/approve", url.Values{"csrf": {ac.csrf}}); code != 401 {
		t.Errorf("anonymous post: %d", code)
	}
}

func replyText(r bot.Reply) string {
	var b strings.Builder
	for _, blk := range r.Blocks {
		if t, ok := blk.(*bot.Text); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// A pasted sign-in link is fetched by link previews (Slack, Teams), mail scanners and
// browser prefetch before its person clicks: those GETs (and HEADs) must leave it usable
// and write nothing. The POST from the link's page then signs in once; a second POST, a
// post from another site and a used or expired link are refused.
func TestLoginLinkSurvivesPreviews(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	if _, err := f.DB.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "eve@x.io", Name: "Eve <b>Analyst</b>", Team: "Research", Role: "analyst"},
	}); err != nil {
		t.Fatal(err)
	}
	s := &Server{Store: f.DB, Policy: f.Handler.Policy, Handler: f.Handler, Now: f.Handler.Now, Log: zerolog.Nop()}
	mux := http.NewServeMux()
	if err := s.Register(mux); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	token, _, err := f.DB.CreateLoginLink(ctx, "eve@x.io", "test")
	if err != nil {
		t.Fatal(err)
	}
	link := LinkURL(srv.URL, token)
	audited := func() int {
		t.Helper()
		log, err := f.DB.AuditLog(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(log)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, u string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	sessionSet := func(resp *http.Response) bool {
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie && c.Value != "" {
				return true
			}
		}
		return false
	}

	before := audited()
	previewers := []map[string]string{
		{"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
		{"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) SkypeUriPreview Preview/0.5 skype-url-preview@microsoft.com"},
		{"User-Agent": "Mozilla/5.0", "Sec-Purpose": "prefetch", "Sec-Fetch-Site": "none"},
		{"User-Agent": "Microsoft Office/16.0 (Safe Links)"},
		{},
	}
	for i := range 3 {
		for _, h := range previewers {
			resp, body := do("GET", link, h)
			if resp.StatusCode != 200 || sessionSet(resp) || !strings.Contains(body, "Sign in to tokenpay as Eve &lt;b&gt;Analyst&lt;/b&gt;") ||
				!strings.Contains(body, "eve@x.io") || !strings.Contains(body, `<form method="post" action="/auth/link/`+token+`">`) ||
				strings.Contains(body, "<b>Analyst") {
				t.Fatalf("GET %d by %v: %d, session %v: %.800s", i, h, resp.StatusCode, sessionSet(resp), body)
			}
			if resp.Header.Get("Content-Security-Policy") != CSP || resp.Header.Get("Referrer-Policy") != "no-referrer" ||
				resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("link page headers: %v", resp.Header)
			}
			if title := regexp.MustCompile(`<title>([^<]*)</title>`).FindStringSubmatch(body); title == nil || strings.Contains(title[1], "eve") || strings.Contains(title[1], "Eve") {
				t.Fatalf("the page title, which previews show, names the person: %v", title)
			}
		}
		if resp, _ := do("HEAD", link, nil); resp.StatusCode != 200 || sessionSet(resp) {
			t.Fatalf("HEAD: %d", resp.StatusCode)
		}
	}
	if got := audited(); got != before {
		t.Fatalf("GETs of a sign-in link wrote %d audit entries", got-before)
	}

	// Another site posting the link (login CSRF: signing the visitor in as the link's
	// person) is refused, and does not use the link up.
	for _, h := range []map[string]string{
		{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
		{"Origin": "https://sub.x.io", "Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
	} {
		if resp, _ := do("POST", link, h); resp.StatusCode != 403 || sessionSet(resp) {
			t.Fatalf("cross-origin post %v: %d, session %v", h, resp.StatusCode, sessionSet(resp))
		}
	}

	// The button: the first POST signs in, as a browser sends it.
	sameOrigin := map[string]string{"Origin": srv.URL, "Sec-Fetch-Site": "same-origin"}
	resp, body := do("POST", link, sameOrigin)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" || !sessionSet(resp) {
		t.Fatalf("first POST: %d %s, session %v: %.300s", resp.StatusCode, resp.Header.Get("Location"), sessionSet(resp), body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			cookie = c
		}
	}
	req, _ := http.NewRequest("GET", srv.URL+"/dashboard/me", nil)
	req.AddCookie(&http.Cookie{Name: SessionCookie, Value: cookie.Value})
	if me, err := noRedirect.Do(req); err != nil || me.StatusCode != http.StatusSeeOther || !strings.HasPrefix(me.Header.Get("Location"), "/dashboard/people/") {
		t.Fatalf("the session from the link does not open the page: %v %v", me, err)
	} else {
		me.Body.Close()
	}
	// A second POST (another tab, a double click, a replay) is refused; so is the GET now.
	resp, body = do("POST", link, sameOrigin)
	if resp.StatusCode != 403 || sessionSet(resp) || !strings.Contains(body, "not valid") || !strings.Contains(body, "already used") {
		t.Fatalf("second POST: %d, session %v: %.300s", resp.StatusCode, sessionSet(resp), body)
	}
	resp, body = do("GET", link, nil)
	if resp.StatusCode != 403 || strings.Contains(body, "<form") || !strings.Contains(body, "not valid") {
		t.Fatalf("GET of a used link: %d %.300s", resp.StatusCode, body)
	}
	log, err := f.DB.AuditLog(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var uses, refusals int
	for _, e := range log {
		switch {
		case e.Action == "login-link.use":
			uses++
		case e.Action == "login-link.refused" && e.Detail == "already used":
			refusals++
		}
	}
	if uses != 1 || refusals != 1 {
		t.Fatalf("audit: %d uses, %d refusals of the used link; want 1 and 1 (the GETs write nothing)", uses, refusals)
	}

	// An expired link: refused on GET (no button, nothing written) and on POST.
	f.DB.SetNow(func() time.Time { return bottest.Now.Add(-11 * time.Minute) })
	old, _, err := f.DB.CreateLoginLink(ctx, "eve@x.io", "test")
	f.DB.SetNow(func() time.Time { return bottest.Now })
	if err != nil {
		t.Fatal(err)
	}
	before = audited()
	if resp, body := do("GET", LinkURL(srv.URL, old), nil); resp.StatusCode != 403 || strings.Contains(body, "<form") {
		t.Fatalf("GET of an expired link: %d %.300s", resp.StatusCode, body)
	}
	if got := audited(); got != before {
		t.Fatalf("the GET of an expired link wrote %d audit entries", got-before)
	}
	if resp, _ := do("POST", LinkURL(srv.URL, old), sameOrigin); resp.StatusCode != 403 || sessionSet(resp) {
		t.Fatalf("POST of an expired link: %d", resp.StatusCode)
	}
	for _, bad := range []string{"nope", strings.Repeat("a", 101)} {
		if resp, _ := do("GET", LinkURL(srv.URL, bad), nil); resp.StatusCode != 403 {
			t.Errorf("GET of link %.10s: %d", bad, resp.StatusCode)
		}
		if resp, _ := do("POST", LinkURL(srv.URL, bad), sameOrigin); resp.StatusCode != 403 || sessionSet(resp) {
			t.Errorf("POST of link %.10s: %d", bad, resp.StatusCode)
		}
	}
}

// TestPagesSayOneHourAndOneDay: counts of one read as a person writes them, on the pages
// where a number comes from data ("1 hour saved", "Resets in 1 day").
func TestPagesSayOneHourAndOneDay(t *testing.T) {
	ctx := context.Background()
	f := bottest.New(t)
	if _, err := f.DB.ImportPeople(ctx, []ledger.PersonRecord{
		{Line: 2, Email: "mia@x.io", Name: "Mia Boss", Team: "Research", Role: "manager"},
		{Line: 3, Email: "eve@x.io", Name: "Eve Analyst", Team: "Research", Role: "analyst", ManagerEmail: "mia@x.io"},
	}); err != nil {
		t.Fatal(err)
	}
	f.Handler.Command(ctx, f.People["eve@x.io"], "impact drafted the readout --hours 1")
	f.Handler.Command(ctx, f.People["eve@x.io"], "impact summarised the survey --hours 2.5")
	for _, tc := range []struct {
		now      time.Time
		resetsIn string
	}{
		{time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), "<dd>1 day</dd>"},
		{time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), "<dd>3 days</dd>"},
	} {
		now := tc.now
		s := &Server{Store: f.DB, Policy: f.Handler.Policy, Handler: f.Handler, Now: func() time.Time { return now }, Log: zerolog.Nop()}
		mux := http.NewServeMux()
		if err := s.Register(mux); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(mux)
		eve := signedInClient(t, f, srv.URL, "eve@x.io")
		code, body := eve.get("/dashboard/me")
		if code != 200 || !strings.Contains(body, tc.resetsIn) || !strings.Contains(body, "· 1 hour saved") ||
			!strings.Contains(body, "· 2.5 hours saved") || strings.Contains(body, "1 hours") || strings.Contains(body, "1 days") {
			t.Errorf("at %s, Eve's page should say %q, \"1 hour saved\" and \"2.5 hours saved\": %d %s", now, tc.resetsIn, code, body)
		}
		mia := signedInClient(t, f, srv.URL, "mia@x.io")
		code, body = mia.get("/dashboard/team")
		if code != 200 || !strings.Contains(body, "· 1 hour saved") || strings.Contains(body, "1 hours") {
			t.Errorf("Mia's team page should say \"1 hour saved\": %d %s", code, body)
		}
		srv.Close()
	}
}
