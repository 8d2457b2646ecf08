package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// postLog serves the API and keeps every POST it was sent.
type postLog struct {
	mu    sync.Mutex
	posts []string
}

func (p *postLog) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.posts
	p.posts = nil
	return out
}

func postServer(t *testing.T, m *procman.Manager) (string, *postLog) {
	p := &postLog{}
	h := httpapi.New(m)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			p.mu.Lock()
			p.posts = append(p.posts, r.URL.RequestURI())
			p.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close) // before the browser's cleanup, so after it: see usageServer
	return ts.URL, p
}

// confirmAll accepts every confirm() until the returned func is called,
// which returns what they asked.
func (b *browser) confirmAll() (stop func() []string) {
	ctx, cancel := context.WithCancel(b.ctx)
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	var asked []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked = append(asked, ev.Message)
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true}); err != nil {
				return
			}
		}
	}()
	return func() []string { cancel(); <-done; return asked }
}

const shownRows = `Array.from(document.querySelectorAll('#jobs tbody tr')).filter((r) => !r.hidden).map((r) => r.dataset.job).join(' ')`

// typeFilter sets the filter box as typing would.
func typeFilter(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
		`(() => { const f = document.querySelector('#filter'); f.value = %q; f.dispatchEvent(new Event('input')); })()`, text))
}

// TestUIFilterAndBulk: the list's filter box chooses jobs by name and by
// labels, with a selector's meaning, and lives in the URL; a label chip adds
// itself to it; Start all, Stop all and Restart all act on the jobs shown:
// by one bulk request with the filter as its selector when it has label
// terms only, by a request per job when it has names, and show what failed.
func TestUIFilterAndBulk(t *testing.T) {
	s := setup(t)
	url, posts := postServer(t, s.m)
	ctx := context.Background()
	shop := func(tier string) map[string]string { return map[string]string{"app": "shop", "tier": tier} }
	broken := labelled("shop-broken", shop("batch"))
	broken.Type, broken.Command, broken.Dir = procman.OneTime, "true", "/nonexistent/dir"
	for _, j := range []procman.Job{
		labelled("shop-web", shop("web")), labelled("shop-www", shop("web")), labelled("shop-api", shop("api")),
		labelled("blog-web", map[string]string{"app": "blog", "tier": "web"}), sleeperJob("cron"), broken,
	} {
		s.create(t, j)
		if j.Name != "shop-broken" {
			if err := s.m.Start(ctx, j.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	running := []string{"blog-web", "cron", "shop-api", "shop-web", "shop-www"}
	allRunning := func() string {
		var c []string
		for _, name := range running {
			c = append(c, fmt.Sprintf(rowState, name, "running"))
		}
		return strings.Join(c, " && ")
	}
	b := newBrowser(t)

	// A link with a filter shows it, and only the rows it chooses.
	b.do("open a filtered link", chromedp.Navigate(url+"/ui/#/?q=tier%3Dweb"))
	b.wait("the rows labelled tier=web", allRunning()+` && `+shownRows+` === 'blog-web shop-web shop-www' && `+
		`document.querySelector('#filter').value === 'tier=web' && document.querySelector('#filter-count').textContent === '3 of 6 jobs' && `+
		`document.querySelector('tr[data-job="shop-web"] .chip[data-term="tier=web"]') !== null && `+
		`document.querySelector('tr[data-job="cron"] .labels').children.length === 0`)

	// Its terms mean what a selector's do.
	for _, sel := range []string{"tier=web", "tier!=web", "tier", "!tier", "app=shop,tier!=web", "app==shop,!nope", "app=blog,tier=web"} {
		parsed, err := procman.ParseSelector(sel)
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Join(s.m.Select(parsed), " ")
		b.do("filter by "+sel, typeFilter(sel))
		if got := eval[string](b, shownRows); got != want {
			t.Errorf("filter %q shows %q; the selector chooses %q", sel, got, want)
		}
	}

	// Typed, it goes into the URL, which a reload keeps.
	b.do("type app=shop", typeFilter(""), chromedp.SendKeys(css("#filter"), "app=shop"))
	b.wait("the jobs of app=shop", shownRows+` === 'shop-api shop-broken shop-web shop-www' && location.hash === '#/?q=app%3Dshop'`)
	b.do("reload", chromedp.Reload())
	b.wait("the same after a reload", allRunning()+` && `+shownRows+` === 'shop-api shop-broken shop-web shop-www' && `+
		`document.querySelector('#filter').value === 'app=shop'`)

	// A chip narrows the filter; Stop all, confirmed, stops only those jobs, by one bulk request.
	b.do("click the chip tier=web", chromedp.Click(css(`tr[data-job="shop-web"] .chip[data-term="tier=web"]`)))
	b.wait("app=shop and tier=web", shownRows+` === 'shop-web shop-www' && document.querySelector('#filter').value === 'app=shop tier=web' && `+
		`location.hash === '#/?q=app%3Dshop+tier%3Dweb'`)
	posts.take()
	stop := b.confirmAll()
	b.do("stop all", chromedp.Click(css(`#bulk button[data-bulk="stop"]`)))
	b.wait("the two stopped", fmt.Sprintf(rowState, "shop-web", "stopped")+` && `+fmt.Sprintf(rowState, "shop-www", "stopped")+` && `+
		`document.querySelector('#bulk-summary').textContent === 'Stopped 2 of 2 jobs.'`)
	if asked := stop(); len(asked) != 1 || !strings.HasPrefix(asked[0], "Stop the 2 jobs shown?") {
		t.Errorf("Stop all asked %q, want one question", asked)
	}
	if got := posts.take(); !slices.Equal(got, []string{"/jobs/stop?selector=app%3Dshop%2Ctier%3Dweb"}) {
		t.Errorf("Stop all sent %q, want one bulk request with the filter as its selector", got)
	}
	wantStates(t, s.m, map[string]procman.State{"shop-web": procman.StateStopped, "shop-www": procman.StateStopped,
		"shop-api": procman.StateRunning, "blog-web": procman.StateRunning, "cron": procman.StateRunning})

	// Start all shows the job it failed for, and why.
	b.do("filter app=shop, start all", typeFilter("app=shop"), chromedp.Click(css(`#bulk button[data-bulk="start"]`)))
	b.wait("the failure", `document.querySelector('#bulk-summary').textContent === 'Started 3 of 4 jobs; failed for 1:' && `+
		`document.querySelector('#bulk-failures li[data-job="shop-broken"]')?.textContent.includes('/nonexistent/dir') && `+
		`document.querySelector('#bulk-result').dataset.failed === 'true' && `+allRunning())

	// A name filter: a request per job shown.
	b.do("filter by the name web", typeFilter("web"))
	b.wait("the jobs named *web*", shownRows+` === 'blog-web shop-web'`)
	posts.take()
	stop = b.confirmAll()
	b.do("stop all", chromedp.Click(css(`#bulk button[data-bulk="stop"]`)))
	b.wait("the two stopped", fmt.Sprintf(rowState, "shop-web", "stopped")+` && `+fmt.Sprintf(rowState, "blog-web", "stopped")+` && `+
		`document.querySelector('#bulk-summary').textContent === 'Stopped 2 of 2 jobs.'`)
	stop()
	got := posts.take()
	slices.Sort(got)
	if !slices.Equal(got, []string{"/job/blog-web/stop", "/job/shop-web/stop"}) {
		t.Errorf("Stop all of a name filter sent %q, want a stop of each job shown", got)
	}
	wantStates(t, s.m, map[string]procman.State{"shop-web": procman.StateStopped, "blog-web": procman.StateStopped,
		"shop-www": procman.StateRunning, "shop-api": procman.StateRunning, "cron": procman.StateRunning})

	// A term that is no term chooses nothing, and says so.
	b.do("a bad term", typeFilter("tier=we!b"))
	b.wait("the complaint", shownRows+` === '' && document.querySelector('#filter-error').textContent.includes('tier=we!b') && `+
		`!document.querySelector('#no-match').hidden && document.querySelector('#bulk button[data-bulk="stop"]').disabled`)
}

func wantStates(t *testing.T, m *procman.Manager, want map[string]procman.State) {
	t.Helper()
	for name, w := range want {
		if st, err := m.State(name); err != nil || st.State != w {
			t.Errorf("%s: %s (%v), want %s", name, st.State, err, w)
		}
	}
}
