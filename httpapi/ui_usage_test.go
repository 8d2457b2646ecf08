package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/chromedp/chromedp"
)

// usageServer serves the API and counts the reads of /jobs/usage (the
// list's) and of /job/{name}/usage (a job page's).
func usageServer(t *testing.T, m *procman.Manager) (url string, listReads, jobReads *atomic.Int64) {
	listReads, jobReads = new(atomic.Int64), new(atomic.Int64)
	h := httpapi.New(m)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/jobs/usage":
			listReads.Add(1)
		case strings.HasPrefix(r.URL.Path, "/job/") && strings.HasSuffix(r.URL.Path, "/usage"):
			jobReads.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	// Registered before the browser's cleanup, so run after it: Close waits
	// for the page's /events stream, which ends only with the browser.
	t.Cleanup(ts.Close)
	return ts.URL, listReads, jobReads
}

// waitReads waits until n has grown past since.
func waitReads(t *testing.T, what string, n *atomic.Int64, since int64) {
	t.Helper()
	deadline := time.Now().Add(liveLimit)
	for n.Load() <= since {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, liveLimit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ticks waits for the page's clock to move the job's uptime on n times: n-1
// seconds at least.
func ticks(b *browser, job string, n int) {
	b.t.Helper()
	uptime := fmt.Sprintf(row+`.querySelector('.uptime').textContent`, job)
	for range n {
		up := eval[string](b, uptime)
		b.wait("the uptime to tick", fmt.Sprintf(`%s !== %q`, uptime, up))
	}
}

// TestUIUsage: the list shows each running job's CPU and memory, read from
// /jobs/usage only while the list can be seen; a job's page samples its
// usage every second and draws it, and its runs table shows what each
// finished run cost.
func TestUIUsage(t *testing.T) {
	s := setup(t)
	url, listReads, jobReads := usageServer(t, s.m)
	s.create(t, procman.Job{Name: "web", Command: "sleep 1000 & wait", Type: procman.Continuous})
	s.create(t, sleeperJob("idle"))
	if err := s.m.Start(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(url+"/ui/"))
	cell := func(job, class string) string {
		return fmt.Sprintf(row+`?.querySelector('.%s')`, job, class)
	}
	b.wait("web's CPU and memory, none for idle", cell("web", "cpu")+`?.textContent.endsWith('%') && `+
		`/ (KiB|MiB)$/.test(`+cell("web", "mem")+`.textContent) && `+cell("web", "mem")+`.title === '2 processes' && `+
		cell("idle", "cpu")+`?.textContent === '' && `+cell("idle", "mem")+`.textContent === ''`)

	// A hidden page asks for nothing while its clock goes on; seen again, it asks at once.
	b.do("hide the page", chromedp.Evaluate[chromedp.Void](
		`Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})`))
	ticks(b, "web", 1) // a read under way as the page hid has arrived
	before := listReads.Load()
	ticks(b, "web", 4) // three seconds at least: the list reads every two
	if n := listReads.Load() - before; n != 0 {
		t.Errorf("a hidden page read /jobs/usage %d times", n)
	}
	b.do("show the page", chromedp.Evaluate[chromedp.Void](
		`delete document.visibilityState; document.dispatchEvent(new Event('visibilitychange'))`))
	waitReads(t, "read of /jobs/usage once the page is seen again", listReads, before)

	// The job's page samples it every second and draws both charts; the
	// list, out of sight, reads nothing meanwhile.
	b.do("open web's page", chromedp.Click(css(`tr[data-job="web"] td.name a`)))
	b.wait("web's page", `!document.querySelector('#job-view').hidden`)
	before, jobBefore := listReads.Load(), jobReads.Load()
	const points = `document.querySelector('#chart-%s svg polyline')?.getAttribute('points').split(' ').length`
	b.wait("charts of three readings", fmt.Sprintf(points+` >= 3 && `+points+` >= 3`, "cpu", "mem")+
		` && document.querySelector('#jv-cpu').textContent.endsWith('%')`+
		` && /^[0-9.]+ (KiB|MiB) \(PSS [0-9.]+ (KiB|MiB)\)$/.test(document.querySelector('#jv-mem').textContent)`+
		` && /^scale to [0-9.]+ MiB$/.test(document.querySelector('#jv-mem-top').textContent)`)
	if n := jobReads.Load() - jobBefore; n < 3 {
		t.Errorf("the charts hold three readings after %d reads of /job/web/usage", n)
	}
	if n := listReads.Load() - before; n != 0 {
		t.Errorf("the list read /jobs/usage %d times while the job page was open", n)
	}

	// Stopped, the job is a gap in the charts, and its run shows what it cost.
	if err := s.m.Stop(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	b.wait("the run's cost, no usage now", `document.querySelector('#jv-cpu').textContent === '—' && `+
		`(() => { const c = document.querySelectorAll('#runs tr[data-run="1"] td'); `+
		`return c.length === 8 && / s$/.test(c[4].textContent) && / (KiB|MiB)$/.test(c[5].textContent); })()`)
}
