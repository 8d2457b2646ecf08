package httpapi_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's chromium, which CI installs (apt-get install chromium).
const chromiumPath = "/usr/bin/chromium"

// uiFiles are the dashboard's files in ui/, with the Content-Type each is
// served with: a module script served as anything but JavaScript does not run.
var uiFiles = map[string]string{
	"index.html": "text/html",
	"style.css":  "text/css",
	"app.js":     "text/javascript",
	"api.js":     "text/javascript",
	"format.js":  "text/javascript",
	"page.js":    "text/javascript",
	"fields.js":  "text/javascript",
	"list.js":    "text/javascript",
	"job.js":     "text/javascript",
	"chart.js":   "text/javascript",
	"editor.js":  "text/javascript",
	"filter.js":  "text/javascript",
	"bulk.js":    "text/javascript",
	"hosts.js":   "text/javascript",
}

// svgNamespace looks like a URL but names SVG elements (createElementNS):
// nothing fetches it.
const svgNamespace = "http://www.w3.org/2000/svg"

// external matches anything that would make the dashboard reach another host:
// absolute or protocol-relative URLs, CSS imports, web fonts.
var external = regexp.MustCompile(`(?i)https?:|wss?:|ftp:|(src|href|action)\s*=\s*["']?//|url\(\s*["']?//|@import|@font-face`)

func get(t *testing.T, c *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// TestUIServed: GET / redirects to the dashboard, which is served from the
// embedded ui/ folder as it is on disk, and reaches no other host.
func TestUIServed(t *testing.T) {
	s := setup(t)
	resp, _ := get(t, s.client, s.url+"/", nil)
	switch resp.StatusCode {
	case http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		t.Fatalf("GET /: %d, want a redirect to /ui/", resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "/ui/" {
		t.Fatalf("GET /: Location %q, want /ui/", loc)
	}

	resp, index := get(t, s.client, s.url+"/ui/", nil)
	if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); resp.StatusCode != 200 || ct != "text/html" {
		t.Fatalf("GET /ui/: %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, ref := range []string{`src="app.js"`, `href="style.css"`, `href="/openapi.yaml"`} { // the API document, linked
		if !bytes.Contains(index, []byte(ref)) {
			t.Errorf("GET /ui/ does not reference %s", ref)
		}
	}
	// The dashboard's buttons run commands: no other page may frame it.
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET /ui/: Content-Security-Policy %q", csp)
	}

	onDisk, err := os.ReadDir("ui")
	if err != nil {
		t.Fatal(err)
	}
	if len(onDisk) != len(uiFiles) {
		t.Errorf("ui/ holds %d files, want %d: %v", len(onDisk), len(uiFiles), onDisk)
	}
	for name, wantType := range uiFiles {
		disk, err := os.ReadFile(filepath.Join("ui", name))
		if err != nil {
			t.Fatal(err)
		}
		for _, loc := range external.FindAllIndex(disk, -1) {
			if bytes.HasPrefix(disk[loc[0]:], []byte(svgNamespace)) {
				continue
			}
			line := bytes.Count(disk[:loc[0]], []byte("\n")) + 1
			t.Errorf("ui/%s:%d: %q reaches another host: the dashboard must work without a network", name, line, disk[loc[0]:loc[1]])
		}
		resp, served := get(t, s.client, s.url+"/ui/"+name, nil)
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != 200 || ct != wantType || !bytes.Equal(served, disk) {
			t.Errorf("GET /ui/%s: %d %q, %d bytes; want 200 %s, the %d bytes of ui/%s",
				name, resp.StatusCode, resp.Header.Get("Content-Type"), len(served), wantType, len(disk), name)
		}
		if etag := resp.Header.Get("ETag"); etag != "" {
			resp, _ := get(t, s.client, s.url+"/ui/"+name, map[string]string{"If-None-Match": etag})
			if resp.StatusCode != http.StatusNotModified {
				t.Errorf("GET /ui/%s with its ETag: %d, want 304", name, resp.StatusCode)
			}
		}
	}

	for _, path := range []string{"/ui/nope.js", "/ui/index.html/", "/ui/../jobs", "/ui/%2e%2e/jobs", "/ui/.%2e/httpapi.go", "/ui/ui/app.js"} {
		r := s.doJSON(t, http.MethodGet, path, nil)
		errorMessage(t, r, http.StatusNotFound)
	}
	r := s.doJSON(t, http.MethodPost, "/ui/app.js", nil)
	errorMessage(t, r, http.StatusMethodNotAllowed)
}

// TestUIWithToken: the page and its files load without the token (they are
// static); everything else still needs it, and no path under /ui/ reaches the API.
func TestUIWithToken(t *testing.T) {
	_, ts := tokenServer(t)
	c := ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := get(t, c, ts.URL+"/", nil)
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / without a token: %d, Location %q; want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, path := range []string{"/ui/", "/ui/index.html", "/ui/app.js", "/ui/style.css"} {
		if resp, _ := get(t, c, ts.URL+path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/jobs", "/ui/../jobs", "/ui/%2e%2e/jobs", "/ui/..%2fjobs", "/uix/../jobs", "/events", "/metrics"} {
		resp, err := c.Get(ts.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode == http.StatusOK { // not read: /events would stream on
			t.Errorf("GET %s without a token: 200", path)
		} else if body, _ := io.ReadAll(resp.Body); bytes.Contains(body, []byte(`"command"`)) {
			t.Errorf("GET %s without a token: %d %s", path, resp.StatusCode, body)
		}
		resp.Body.Close()
	}
}

// browser is a headless chromium with one tab, closed when the test ends.
type browser struct {
	t       *testing.T
	ctx     context.Context
	mu      sync.Mutex
	console []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the dashboard tests drive Debian's chromium at %s, which is missing (%v): install it with "+
			"`apt-get update && apt-get install -y chromium`", chromiumPath, err)
	}
	profile := t.TempDir() // removed after the browser has exited (cleanups run last first)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: ctx}
	consoleDone := make(chan struct{})
	t.Cleanup(func() {
		if t.Failed() {
			b.mu.Lock()
			t.Logf("browser console:\n%s", strings.Join(b.console, "\n"))
			b.mu.Unlock()
		}
		if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("closing the browser: %v", err)
		}
		cancelCtx()
		cancelAlloc()
		<-consoleDone
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no timeout
		close(consoleDone)
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		defer close(consoleDone)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m.String())
			b.mu.Unlock()
			if m.IsException() {
				t.Errorf("uncaught exception in the page: %s", m)
			}
		}
	}()
	return b
}

// do runs the steps, failing the test with what the page shows.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\n%s", what, err, b.screen())
	}
}

// wait polls a JavaScript condition until it holds.
func (b *browser) wait(what, cond string) {
	b.t.Helper()
	b.waitWithin(waitLimit, what, cond)
}

// waitWithin is wait with a deadline of its own.
func (b *browser) waitWithin(limit time.Duration, what, cond string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, limit+5*time.Second)
	defer cancel()
	poll := chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(limit), chromedp.WithPollingInterval(50*time.Millisecond))
	if _, err := chromedp.Run(ctx, poll); err != nil {
		b.t.Fatalf("waiting for %s (%s): %v\n%s", what, cond, err, b.screen())
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v\n%s", expr, err, b.screen())
	}
	return v
}

// screen is the page's visible text, for failure messages.
func (b *browser) screen() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
	if err != nil {
		return fmt.Sprintf("(page text unavailable: %v)", err)
	}
	return "page shows:\n" + text
}

// acceptDialogs accepts every confirm() until the returned func is called.
func (b *browser) acceptDialogs() (stop func()) {
	ctx, cancel := context.WithCancel(b.ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, err := range dialogs {
			if err != nil {
				return
			}
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// liveLimit bounds how long a change made elsewhere takes to show: the
// event stream brings it at once, the page's periodic reload (20 s) too late.
const liveLimit = 8 * time.Second

const (
	row      = `document.querySelector('tr[data-job="%s"]')`
	rowState = row + `?.dataset.state === %q`
	logText  = `document.querySelector('#log').textContent`
)

func css(sel string) chromedp.CSS { return chromedp.CSS(sel) }

// clearInput empties an input (chromedp.Clear resets only the attribute, and
// SetValue refuses an empty value).
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).value = ''`, sel))
}

// TestUIBrowser drives the dashboard in a real browser against a real Manager:
// create a job through the form, watch it run live, read its log, restart,
// stop, edit and delete it.
func TestUIBrowser(t *testing.T) {
	s := setup(t)
	b := newBrowser(t)
	ctx := context.Background()

	b.do("open the dashboard", chromedp.Navigate(s.url+"/"))
	b.wait("the empty dashboard, live", `!document.querySelector('#dashboard').hidden && `+
		`!document.querySelector('#no-jobs').hidden && document.querySelector('#conn').dataset.live === 'true'`)
	if href := eval[string](b, `location.pathname`); href != "/ui/" {
		t.Errorf("GET / led to %q, want /ui/", href)
	}

	// Create through the form; a bad schedule first, shown next to its input.
	const command = "echo hello-from-ui; sleep 30"
	b.do("fill in the form",
		chromedp.Click(css("#new-job")),
		chromedp.WaitVisible(css("#f-name")),
		chromedp.SendKeys(css("#f-name"), "hello"),
		chromedp.SendKeys(css("#f-command"), command),
		chromedp.SetValue(css("#f-type"), "continuous"), // fires change, as a choice does
		chromedp.SendKeys(css("#f-schedule"), "rebot"),
		chromedp.Click(css("#editor-save")),
	)
	b.wait("the schedule's error next to it", `document.querySelector('[data-err="schedule"]').textContent.includes('"rebot" is not a schedule') && `+
		`document.querySelector('.field[data-field="schedule"]').classList.contains('invalid') && `+
		`document.querySelector('#form-error').textContent === '' && document.querySelector('#editor').open`)
	if _, err := s.m.Get("hello"); !errors.Is(err, procman.ErrNotFound) {
		t.Fatalf("after a refused create: Get hello = %v, want ErrNotFound", err)
	}
	b.do("fix the schedule and save", clearInput("#f-schedule"), chromedp.Click(css("#editor-save")))
	b.wait("the new row", `!document.querySelector('#editor').open && `+fmt.Sprintf(rowState, "hello", "stopped"))
	j, err := s.m.Get("hello")
	if err != nil || j.Command != command || j.Type != procman.Continuous || j.Schedule != "" {
		t.Fatalf("the form created %+v, %v", j, err)
	}

	// Started elsewhere: the row follows through the event stream alone (the
	// page reloads everything only every 20 s). The pause lets the page's own
	// refresh after saving go by first.
	b.do("settle", chromedp.Sleep(time.Second))
	if err := s.m.Start(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	st, err := s.m.WaitFor(ctx, "hello", procman.StateRunning)
	if err != nil {
		t.Fatal(err)
	}
	b.waitWithin(liveLimit, "hello running, live", fmt.Sprintf(rowState, "hello", "running")+
		fmt.Sprintf(` && `+row+`.querySelector('.pid').textContent === '%d'`, "hello", st.PID))
	uptime := eval[string](b, fmt.Sprintf(row+`.querySelector('.uptime').textContent`, "hello"))
	b.wait("the uptime to tick", fmt.Sprintf(row+`.querySelector('.uptime').textContent !== %q`, "hello", uptime))

	// Its page: the run, and its log followed.
	b.do("open hello's page", chromedp.Click(css(`tr[data-job="hello"] td.name a`)))
	b.wait("hello's page with its log", `!document.querySelector('#job-view').hidden && `+
		`document.querySelector('#jv-state').textContent === 'running' && `+
		`document.querySelectorAll('#runs tbody tr').length === 1 && `+
		logText+`.includes('hello-from-ui') && document.querySelector('#log').dataset.following === 'true'`)
	if hash := eval[string](b, `location.hash`); hash != "#/job/hello" {
		t.Errorf("hello's page is at %q, want #/job/hello", hash)
	}

	// Restart: a second run, whose output the log view follows.
	b.do("restart", chromedp.Click(css(`#jv-actions button[data-action="restart"]`)))
	b.wait("the second run's log", `document.querySelectorAll('#runs tbody tr').length === 2 && `+
		`document.querySelector('#log').dataset.run === document.querySelector('#runs tbody tr').dataset.run && `+
		logText+`.includes('hello-from-ui') && document.querySelector('#log').dataset.following === 'true' && `+
		`document.querySelector('#jv-state').textContent === 'running'`)

	b.do("stop", chromedp.Click(css(`#jv-actions button[data-action="stop"]`)))
	b.wait("hello stopped", `document.querySelector('#jv-state').textContent === 'stopped' && `+
		`document.querySelector('#log-title').textContent.includes('stopped') && `+
		`document.querySelector('#jv-last-exit').textContent.startsWith('stopped')`)
	if st, err := s.m.State("hello"); err != nil || st.State != procman.StateStopped {
		t.Fatalf("after the stop button: %+v, %v", st, err)
	}

	// Edit from the dashboard: the form holds the definition.
	b.do("back to the dashboard", chromedp.Click(css(`.crumbs a`)))
	b.wait("the dashboard", `!document.querySelector('#dashboard').hidden && `+fmt.Sprintf(rowState, "hello", "stopped")+
		fmt.Sprintf(` && `+row+`.querySelector('.last-exit').textContent.startsWith('stopped')`, "hello"))
	b.do("edit hello",
		chromedp.Click(css(`tr[data-job="hello"] button[data-action="edit"]`)),
		chromedp.WaitVisible(css("#f-stop_timeout")),
	)
	b.wait("the definition in the form", fmt.Sprintf(`document.querySelector('#f-command').value === %q && `+
		`document.querySelector('#f-name').readOnly && document.querySelector('#f-type').value === 'continuous'`, command))
	b.do("set a stop timeout", chromedp.SendKeys(css("#f-stop_timeout"), "5s"), chromedp.Click(css("#editor-save")))
	b.wait("the editor closed", `!document.querySelector('#editor').open`)
	if j, err := s.m.Get("hello"); err != nil || j.StopTimeout != procman.Duration(5*time.Second) || j.Command != command {
		t.Fatalf("after the edit: %+v, %v", j, err)
	}

	if os.Getenv("PROCMAN_SCREENSHOT") == "1" {
		screenshot(t, s, b)
	}

	// Delete, confirmed.
	stop := b.acceptDialogs()
	b.do("delete hello", chromedp.Click(css(`tr[data-job="hello"] button[data-action="delete"]`)))
	b.wait("hello gone", fmt.Sprintf(`!`+row, "hello"))
	stop()
	if _, err := s.m.Get("hello"); !errors.Is(err, procman.ErrNotFound) {
		t.Fatalf("after the delete button: Get hello = %v, want ErrNotFound", err)
	}
}

// screenshot saves the dashboard with a few jobs in docs/dashboard.png.
func screenshot(t *testing.T, s *server, b *browser) {
	ctx := context.Background()
	for _, j := range []procman.Job{
		{Name: "api", Command: "while true; do echo serving; sleep 5; done", Type: procman.Continuous, Schedule: "reboot",
			Labels: map[string]string{"app": "shop", "tier": "web"}},
		{Name: "backup", Command: "tar czf /tmp/backup.tgz /srv", Type: procman.OneTime, Schedule: "0 3 * * *",
			Labels: map[string]string{"tier": "batch"}},
		{Name: "report", Command: "echo report sent", Type: procman.OneTime, Labels: map[string]string{"app": "shop", "tier": "batch"}},
		{Name: "worker", Command: "while true; do date +%T; sleep 1; done", Type: procman.Continuous,
			Labels: map[string]string{"app": "shop", "tier": "worker"}},
		{Name: "flaky", Command: "echo cannot connect; exit 3", Type: procman.Continuous, MaxRetries: 2,
			BackoffInitial: procman.Duration(50 * time.Millisecond), BackoffMax: procman.Duration(100 * time.Millisecond)},
	} {
		if err := s.m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"report", "worker", "flaky"} {
		if err := s.m.Start(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.m.WaitFor(ctx, "report", procman.StateExited); err != nil {
		t.Fatal(err)
	}
	b.wait("the jobs", fmt.Sprintf(rowState, "api", "running")+` && `+fmt.Sprintf(rowState, "flaky", "error")+` && `+fmt.Sprintf(rowState, "worker", "running")+
		` && `+fmt.Sprintf(rowState, "report", "exited")+` && `+fmt.Sprintf(row+`.querySelector('.next-run').textContent !== ''`, "backup"))
	b.do("let the uptimes tick", chromedp.Sleep(2500*time.Millisecond))
	ctx2, cancel := context.WithTimeout(b.ctx, waitLimit)
	defer cancel()
	png, err := chromedp.Run(ctx2, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("PROCMAN_SCREENSHOT_JOB"); dir != "" { // the job page too, for a look
		b.do("open worker's page", chromedp.Navigate(s.url+"/ui/#/job/worker"))
		b.wait("worker's log", logText+`.includes(':')`)
		b.do("let it write", chromedp.Sleep(2*time.Second))
		png, err := chromedp.Run(ctx2, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "job.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		b.do("back", chromedp.Navigate(s.url+"/ui/#/"))
		b.wait("the dashboard", fmt.Sprintf(rowState, "hello", "stopped"))
	}
	for _, name := range []string{"api", "worker"} {
		if err := s.m.Stop(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUIToken: against a server with a token, the page asks for it once,
// refuses a wrong one, then shows the table, live, and keeps the token for
// the tab.
func TestUIToken(t *testing.T) {
	m, ts := tokenServer(t)
	if resp, _ := get(t, ts.Client(), ts.URL+"/ui/", nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /ui/ without a token: %d, want 200: the token middleware must let the dashboard's "+
			"static files (GET / and GET /ui/...) through", resp.StatusCode)
	}
	b := newBrowser(t)

	b.do("open the dashboard", chromedp.Navigate(ts.URL+"/ui/"))
	b.wait("the token form", `!document.querySelector('#login').hidden && document.querySelector('#dashboard').hidden && `+
		`document.activeElement === document.querySelector('#token')`)
	b.do("a wrong token", chromedp.SendKeys(css("#token"), "wrong-token-of-enough-length"), chromedp.Click(css(`#login-form button[type="submit"]`)))
	b.wait("the refusal", `document.querySelector('#login-error').textContent.includes('refused') && !document.querySelector('#login').hidden`)
	b.do("the right token", clearInput("#token"), chromedp.SendKeys(css("#token"), testToken), chromedp.Click(css(`#login-form button[type="submit"]`)))
	b.wait("the table", `document.querySelector('#login').hidden && !document.querySelector('#dashboard').hidden && `+
		fmt.Sprintf(rowState, "a", "stopped")+` && document.querySelector('#conn').dataset.live === 'true'`)
	if got := eval[string](b, `sessionStorage.getItem('procman.token')`); got != testToken {
		t.Errorf("sessionStorage holds %q, want the token", got)
	}

	// The event stream carries the token too.
	b.do("settle", chromedp.Sleep(time.Second))
	if err := m.Start(context.Background(), "a"); err != nil {
		t.Fatal(err)
	}
	b.waitWithin(liveLimit, "a running, live", fmt.Sprintf(rowState, "a", "running"))

	// A reload keeps the token: no second question.
	b.do("reload", chromedp.Reload())
	b.wait("the table again", `document.querySelector('#login').hidden && `+fmt.Sprintf(rowState, "a", "running"))
	b.do("stop a", chromedp.Click(css(`tr[data-job="a"] button[data-action="stop"]`)))
	b.wait("a stopped", fmt.Sprintf(rowState, "a", "stopped"))
}
