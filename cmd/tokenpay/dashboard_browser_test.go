package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/tokenpay/tokenpay/bot/web"
	"github.com/tokenpay/tokenpay/ledger/sqlite"
)

// The dashboard driven in a real headless Chromium (the Debian package `chromium`, which
// .ci/run installs), with axe-core (npm, installed by .ci/run; AXE_CORE_JS points at it)
// injected into every page. Without Chromium or axe-core these tests skip with a message
// on a developer's machine, and fail under CI=true.

func needTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; .ci/run installs it", what)
	}
	t.Skipf("%s is missing: run .ci/run once (it installs it), or install it yourself", what)
}

func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	needTool(t, "Chromium (Debian package chromium)")
	return ""
}

func axeSource(t *testing.T) string {
	path := os.Getenv("AXE_CORE_JS")
	if path == "" {
		path = filepath.Join("..", "..", ".cache", "npm", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		needTool(t, "axe-core (npm install --prefix .cache/npm axe-core)")
	}
	return string(b)
}

// browser is one headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	axe string
}

func newBrowser(t *testing.T, width, height int) *browser {
	exe := chromiumPath(t)
	axe := axeSource(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(width, height), chromedp.Flag("disable-dev-shm-usage", true))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	// The first run starts the browser, for the life of ctx: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return &browser{t: t, ctx: tctx, axe: axe}
}

// open navigates to url and returns the final response's status and the page's text.
func (b *browser) open(url string) (int, string) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Navigate(url))
	if err != nil {
		b.t.Fatalf("open %s: %v", url, err)
	}
	return int(resp.Status), evalAs[string](b, `document.body.innerText`)
}

func evalAs[T any](b *browser, js string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](js, func(p *runtime.EvaluateParams) { p.AwaitPromise = new(true) }))
	if err != nil {
		b.t.Fatalf("evaluate %.80s: %v", js, err)
	}
	return v
}

func (b *browser) location() string { return evalAs[string](b, `location.pathname`) }

// get fetches url outside the browser with the browser's session cookie.
func (b *browser) get(url string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for _, c := range b.cookies(url) {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) cookies(url string) []*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Run(b.ctx, func(ctx context.Context, t *chromedp.Target) (network.GetCookiesResult, error) {
		return cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: []string{url}})
	})
	if err != nil {
		b.t.Fatal(err)
	}
	return res.Cookies
}

func (b *browser) sessionCookie(base string) string {
	for _, c := range b.cookies(base) {
		if c.Name == web.SessionCookie {
			return c.Value
		}
	}
	b.t.Fatal("no session cookie")
	return ""
}

// post submits a form outside the browser with its session cookie; origin, when set, is
// sent as the Origin header (as a browser does).
func (b *browser) post(url string, form url.Values, origin string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
		req.Header.Set("Sec-Fetch-Site", "cross-site")
	}
	for _, c := range b.cookies(url) {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (b *browser) signOutCookies() {
	b.t.Helper()
	clear := func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, network.ClearBrowserCookies, cdp.Empty{})
		return chromedp.Void{}, err
	}
	if err := chromedp.Do(b.ctx, clear); err != nil {
		b.t.Fatal(err)
	}
}

// checkPage runs axe-core on the page (no serious or critical violation allowed) and
// checks that nothing in it points outside tokenpay.
func (b *browser) checkPage(name string) {
	b.t.Helper()
	evalAs[bool](b, b.axe+"\n;true")
	type result struct {
		Violations []struct {
			ID     string `json:"id"`
			Impact string `json:"impact"`
			Help   string `json:"help"`
			Nodes  []struct {
				Target []any `json:"target"`
			} `json:"nodes"`
		} `json:"violations"`
	}
	res := evalAs[result](b, `axe.run(document, {resultTypes: ['violations']}).then(r => ({violations: r.violations}))`)
	if evalAs[string](b, `axe.version`) == "" {
		b.t.Fatalf("%s: axe-core did not load", name)
	}
	for _, v := range res.Violations {
		b.t.Logf("%s: axe %s: %s (%s)", name, v.Impact, v.ID, v.Help)
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("%s: axe %s violation %s (%s) at %v", name, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
	external := evalAs[[]string](b, `[...document.querySelectorAll('[src],[href],[action],[srcset],[poster],[data]')].flatMap(e =>
		['src','href','action','srcset','poster','data'].map(a => e.getAttribute(a)).filter(v => v !== null))
		.filter(v => !(v.startsWith('/') && !v.startsWith('//')) && !v.startsWith('#'))`)
	if len(external) > 0 {
		b.t.Errorf("%s: references outside tokenpay: %v", name, external)
	}
}

func (b *browser) screenshot(name string) {
	dir := os.Getenv("TOKENPAY_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// signIn opens a sign-in link and presses its button, as a person does: the link's page
// only says whom it signs in, and the POST from its button signs in. It returns the status
// and text of where that lands; a link that is refused answers on the GET already.
func (b *browser) signIn(link string) (int, string) {
	b.t.Helper()
	code, text := b.open(link)
	if code != 200 {
		return code, text
	}
	if !strings.Contains(text, "Sign in to tokenpay as") || !strings.HasPrefix(b.location(), "/auth/link/") {
		b.t.Fatalf("sign-in link page: %d at %s: %.300s", code, b.location(), text)
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("signin")))
	if err != nil {
		b.t.Fatalf("press the sign-in button: %v", err)
	}
	return int(resp.Status), evalAs[string](b, `document.body.innerText`)
}

// loginLink runs `tokenpay login-link` and returns the link it printed.
func loginLink(t *testing.T, env map[string]string, email, base string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", env, "login-link", email, "--url", base)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	link := lines[len(lines)-1]
	if code != 0 || !strings.HasPrefix(link, base+"/auth/link/") {
		t.Fatalf("login-link %s: %d %s %s", email, code, out, errOut)
	}
	return link
}

func TestDashboardInBrowser(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "demo.db")
	env := map[string]string{"TOKENPAY_NOW": e2eNow}
	if code, out, errOut := runCLI(t, "", env, "demo", "--db", dbPath); code != 0 {
		t.Fatalf("demo: %s %s", out, errOut)
	}
	env["TOKENPAY_DB"], env["TOKENPAY_POLICY"] = dbPath, filepath.Join(dir, "demo.policy.yaml")
	base, _ := startServe(t, env)
	const admin = "hana.okafor@northwind.example"
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	people, err := db.People(context.Background())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var manager, employee, other string
	for _, p := range people {
		switch {
		case manager == "" && p.Role == "manager" && p.Team == "Research":
			manager = p.Email
		case employee == "" && p.Role != "manager" && p.Team == "Research" && p.Email != admin:
			employee = p.Email
		case other == "" && p.Role != "manager" && p.Team == "Sales":
			other = p.Email
		}
	}

	if code, _, errOut := runCLI(t, "", env, "login-link", "nobody@northwind.example"); code != 1 || !strings.Contains(errOut, "nobody@northwind.example") {
		t.Fatalf("login-link for someone not in the directory: %d %s", code, errOut)
	}
	b := newBrowser(t, 1280, 900)
	adminLink := loginLink(t, env, admin, base)
	// Opening the link, as a chat app's preview or a mail scanner does, uses nothing up:
	// the page says whom it signs in, and only its button signs in.
	for range 3 {
		code, text := b.open(adminLink)
		if code != 200 || !strings.Contains(text, "Sign in to tokenpay as") || !strings.Contains(text, admin) {
			t.Fatalf("admin link page: %d %.300s", code, text)
		}
		if len(b.cookies(base)) != 0 {
			t.Fatalf("opening a sign-in link set cookies: %v", b.cookies(base))
		}
	}
	b.checkPage("sign-in link")
	b.screenshot("signin-link")
	code, text := b.signIn(adminLink)
	if code != 200 || b.location() != "/dashboard/org" || !strings.Contains(text, "Northwind Advisory: the organisation") {
		t.Fatalf("admin link: %d at %s: %.300s", code, b.location(), text)
	}
	// Charts drawn: every figure with marks in it, and each with its table and CSV link.
	type counts struct{ Charts, Marks, Tables, CSV int }
	charts := evalAs[counts](b, `({Charts: document.querySelectorAll('svg.chart').length,
		Marks: document.querySelectorAll('svg.chart rect, svg.chart circle, svg.chart polyline').length,
		Tables: document.querySelectorAll('.numbers table').length,
		CSV: document.querySelectorAll('a[href^="/dashboard/org/csv/"]').length})`)
	if charts.Charts < 6 || charts.Marks < 60 || charts.Tables < charts.Charts || charts.CSV < charts.Charts {
		t.Fatalf("organisation page charts: %+v\n%.2000s", charts, text)
	}
	for _, want := range []string{"Credits per team", "Segments over time", "Fairness of access", "Gini", "Hoarding risks",
		"What nudges change", "Unlock requests", "Median time from request to decision", "Reclaimable credits", "Outcomes beside consumption", "Connectors' health", "litellm", "not configured"} {
		if !strings.Contains(text, want) {
			t.Errorf("organisation page lacks %q", want)
		}
	}
	b.checkPage("organisation")
	b.screenshot("org")
	if code, _ := b.open(base + "/dashboard/team"); code != 200 {
		t.Fatalf("admin's team page: %d", code)
	}
	b.checkPage("team (admin)")
	// A used link is refused: its page, and a post of its button from a page opened
	// before it was used.
	b.signOutCookies()
	if code, text := b.open(adminLink); code != 403 || !strings.Contains(text, "not valid") {
		t.Fatalf("second use of a link: %d %.200s", code, text)
	}
	b.checkPage("refused link")
	if code, body := b.post(adminLink, nil, ""); code != 403 || !strings.Contains(body, "not valid") {
		t.Fatalf("second post of a link: %d %.200s", code, body)
	}
	if code, _ := b.open(base + "/dashboard/org"); code != 200 || b.location() != "/auth/signin" {
		t.Fatalf("signed out, the organisation page should send to sign-in, got %d at %s", code, b.location())
	}
	b.checkPage("sign-in")
	// An expired link is refused: made 11 minutes before the server's now.
	env11 := map[string]string{"TOKENPAY_DB": env["TOKENPAY_DB"], "TOKENPAY_NOW": "2026-11-20T09:49:00Z"}
	expired := loginLink(t, env11, admin, base)
	if code, text := b.open(expired); code != 403 || !strings.Contains(text, "not valid") {
		t.Fatalf("expired link: %d %.200s", code, text)
	}
	if code, _ := b.post(expired, nil, ""); code != 403 {
		t.Fatalf("post of an expired link: %d", code)
	}
	// A page on another site posting someone's link (signing the visitor in as them) is
	// refused, and the link still works for its person.
	mallory := loginLink(t, env, employee, base)
	if code, _ := b.post(mallory, nil, "https://evil.example"); code != 403 {
		t.Fatalf("cross-origin post of a sign-in link: %d", code)
	}

	// A manager: their team, in a narrow window too.
	if code, text := b.signIn(loginLink(t, env, manager, base)); code != 200 || b.location() != "/dashboard/team" || !strings.Contains(text, "Decisions waiting for you") {
		t.Fatalf("manager link: %d at %s: %.300s", code, b.location(), text)
	}
	b.checkPage("team (manager)")
	b.screenshot("team")
	if code, _ := b.open(base + "/dashboard/org"); code != 403 {
		t.Fatalf("manager on the organisation page: %d, want 403", code)
	}
	b.signOutCookies()

	// An employee: their own page, and 403 on anyone else's and on the organisation.
	code, text = b.signIn(mallory)
	own := b.location()
	if code != 200 || !strings.HasPrefix(own, "/dashboard/people/") || !strings.Contains(text, "your AI tokens") ||
		!strings.Contains(text, "Available") || !strings.Contains(text, "Lessons") {
		t.Fatalf("employee link: %d at %s: %.300s", code, own, text)
	}
	b.checkPage("employee")
	b.screenshot("me")
	for _, path := range []string{"/dashboard/org", "/dashboard/org/csv/teams", "/dashboard/team", "/dashboard/team/csv/team-credits",
		"/dashboard/people/1", "/dashboard/people/2/csv/my-credits"} {
		if path == own {
			continue
		}
		code, text := b.open(base + path)
		if code != 403 {
			t.Errorf("employee on %s: %d, want 403: %.200s", path, code, text)
		}
	}
	b.checkPage("forbidden")
	if strings.Contains(text, other) {
		t.Errorf("the employee page shows someone else")
	}
	// The CSV of their own numbers.
	// Downloads are not pages: fetch it with the browser's session cookie (the page's
	// own fetch is refused by the CSP, as it should be).
	code, csvText := b.get(base + own + "/csv/my-credits")
	if code != 200 {
		t.Errorf("own CSV: %d", code)
	}
	if !strings.HasPrefix(csvText, "Period,Granted,Used,Expired") {
		t.Errorf("own CSV: %.200s", csvText)
	}

	// Every sign-in link made, used and refused is in the audit log.
	_, out, _ := runCLI(t, "", env, "audit", "--json", "--limit", "100")
	for _, want := range []string{`"login-link.create"`, `"login-link.use"`, `"login-link.refused"`, "already used", "expired"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %s:\n%s", want, out)
		}
	}

	// Narrow window: the organisation page still reads without sideways scrolling.
	nb := newBrowser(t, 390, 844)
	if code, _ := nb.signIn(loginLink(t, env, admin, base)); code != 200 || nb.location() != "/dashboard/org" {
		t.Fatalf("admin in a narrow window: %d at %s", code, nb.location())
	}
	if evalAs[bool](nb, `document.documentElement.scrollWidth > window.innerWidth + 1`) {
		t.Errorf("the organisation page scrolls sideways in a 390 px window")
	}
	nb.screenshot("org-narrow")
}

func TestDashboardHeaders(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"TOKENPAY_NOW": e2eNow, "TOKENPAY_DB": filepath.Join(dir, "t.db")}
	if code, _, errOut := runCLI(t, consolePeople, env, "people", "import", "-"); code != 0 {
		t.Fatal(errOut)
	}
	base, _ := startServe(t, env)
	for _, path := range []string{"/auth/signin", "/dashboard/static/app.css", "/auth/link/nope"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != web.CSP {
			t.Errorf("%s: CSP %q", path, got)
		}
	}
	if !strings.Contains(web.CSP, "default-src 'none'") || strings.Contains(web.CSP, "http") || strings.Contains(web.CSP, "*") {
		t.Errorf("CSP allows more than the page itself: %s", web.CSP)
	}
}

// A manager approves from the page: the same handler as the chat button decides, the
// requester is told in Slack, and a second click changes nothing.
func TestDashboardManagerApprovesInBrowser(t *testing.T) {
	fake := newFakeSlack(t)
	env := slackEnv(t, fake)
	base, _ := startServe(t, env)
	respond := fake.apiURL() + "respond"
	if resp, body := signedPost(t, base, "/slack/commands", slashBody("U0EVE", "request 50k summarise the interviews &lt;b&gt;now&lt;/b&gt;", respond), nil); resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, body)
	}
	before := balanceOf(t, env, "eve@x.io")
	posts := len(fake.waitFor(t, "chat.postMessage", 1))

	b := newBrowser(t, 1024, 900)
	if code, _ := b.signIn(loginLink(t, env, "mia@x.io", base)); code != 200 || !strings.HasPrefix(b.location(), "/dashboard/") {
		t.Fatalf("Mia's link: %d at %s", code, b.location())
	}
	code, text := b.open(base + "/dashboard/team")
	if code != 200 || !strings.Contains(text, "Request #1: 50,000 credits for Eve Analyst") || !strings.Contains(text, "summarise the interviews <b>now</b>") ||
		!strings.Contains(text, "Outcomes logged this period") {
		t.Fatalf("team page: %d %.600s", code, text)
	}
	b.checkPage("team with a pending request")
	for _, c := range b.cookies(base) {
		if c.Name == web.SessionCookie && (!c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax) {
			t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Lax", c)
		}
	}
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("approve-1")))
	if err != nil {
		t.Fatal(err)
	}
	text = evalAs[string](b, `document.body.innerText`)
	if resp.Status != 200 || !strings.Contains(text, "Approved request #1: Eve Analyst now has 50,000 more credits") {
		t.Fatalf("approve from the page: %d %.300s", resp.Status, text)
	}
	b.checkPage("decision result")
	dms := fake.waitFor(t, "chat.postMessage", posts+1)
	told := false
	for _, m := range dms {
		if m.Form.Get("channel") == "U0EVE" && strings.Contains(m.text(), "Mia Boss approved your request #1") {
			told = true
		}
	}
	if !told {
		t.Fatalf("Eve was not told in Slack: %v", dms)
	}
	if got := balanceOf(t, env, "eve@x.io"); got != before+50000 {
		t.Fatalf("Eve's balance %d, want %d", got, before+50000)
	}
	// The stale form, submitted again: the handler's answer, nothing granted twice.
	if err := chromedp.Do(b.ctx, chromedp.Navigate(base+"/dashboard/team")); err != nil {
		t.Fatal(err)
	}
	if text := evalAs[string](b, `document.body.innerText`); !strings.Contains(text, "Nothing is waiting for you") {
		t.Fatalf("after the decision the request still waits: %.300s", text)
	}
	csrf := evalAs[string](b, `document.querySelector('input[name=csrf]').value`)
	code, body := b.post(base+"/dashboard/requests/1/approve", url.Values{"csrf": {csrf}}, "")
	if code != 200 || !strings.Contains(body, "already decided") {
		t.Fatalf("second approval: %d %.300s", code, body)
	}
	if got := balanceOf(t, env, "eve@x.io"); got != before+50000 {
		t.Fatalf("a second approval changed the balance: %d", got)
	}
	// Forms without the session's token, or from another site, change nothing.
	if code, body := b.post(base+"/dashboard/requests/1/approve", url.Values{"csrf": {"forged"}}, ""); code != 403 || !strings.Contains(body, "expired") {
		t.Fatalf("forged CSRF token: %d %.200s", code, body)
	}
	if code, _ := b.post(base+"/dashboard/requests/1/approve", url.Values{"csrf": {csrf}}, "https://evil.example"); code != 403 {
		t.Fatalf("cross-origin post: %d", code)
	}
	// Eve may not decide, nor see the team page.
	b.signOutCookies()
	if code, _ := b.signIn(loginLink(t, env, "eve@x.io", base)); code != 200 || !strings.HasPrefix(b.location(), "/dashboard/people/") {
		t.Fatalf("Eve's link: %d at %s", code, b.location())
	}
	if code, _ := b.open(base + "/dashboard/team"); code != 403 {
		t.Fatalf("Eve on the team page: %d", code)
	}
	// Sign-out ends the session: the cookie no longer opens anything.
	cookie := b.sessionCookie(base)
	if err := chromedp.Do(b.ctx, chromedp.Click(chromedp.CSS(".signout button"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if b.location() != "/auth/signin" {
		t.Fatalf("after sign-out: %s", b.location())
	}
	req, _ := http.NewRequest("GET", base+"/dashboard/me", nil)
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: cookie})
	resp2, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusSeeOther || resp2.Header.Get("Location") != "/auth/signin" {
		t.Fatalf("a signed-out session still works: %d %s", resp2.StatusCode, resp2.Header.Get("Location"))
	}
}
