package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// hostRow is the row of a host on the hosts page.
const hostRow = `document.querySelector('#hosts tr[data-host="%s"]')`

// TestUIHostsAlone: a ProcMan alone shows no Host column, and its hosts page
// lists it, alive.
func TestUIHostsAlone(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("web"))
	hosts, err := s.m.Hosts(context.Background())
	if err != nil || len(hosts) != 1 {
		t.Fatalf("Hosts: %v, %v", hosts, err)
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	b.wait("the job, without a host column", fmt.Sprintf(rowState, "web", "stopped")+
		` && getComputedStyle(document.querySelector('#jobs th.host')).display === 'none'`+
		fmt.Sprintf(` && getComputedStyle(`+row+`.querySelector('.host')).display === 'none'`, "web"))
	b.do("open the hosts page", chromedp.Click(css("#hosts-link")))
	b.wait("this host, alive", `!document.querySelector('#hosts-view').hidden && document.querySelector('#dashboard').hidden && `+
		`document.querySelectorAll('#hosts tbody tr').length === 1 && `+
		fmt.Sprintf(hostRow+`.dataset.alive === 'true' && `+hostRow+`.textContent.includes('(this host)') && `+
			hostRow+`.querySelector('.heartbeat').textContent.endsWith(' ago') && `+hostRow+`.querySelector('.epoch').textContent === '0'`,
			hosts[0].Name, hosts[0].Name, hosts[0].Name, hosts[0].Name))
	if hash := eval[string](b, `location.hash`); hash != "#/hosts" {
		t.Errorf("the hosts page is at %q, want #/hosts", hash)
	}
	b.do("back to the jobs", chromedp.Click(css(`#hosts-view .crumbs a`)))
	b.wait("the dashboard", `!document.querySelector('#dashboard').hidden && document.querySelector('#hosts-view').hidden`)
}
