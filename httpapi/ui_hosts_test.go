package httpapi_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/Mk-Chan/procman"
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

// TestUIFleet: in a fleet, the list names each job's host, and a job of
// another host is started from it (the request forwarded to its host); the
// hosts page lists both hosts, and the other as dead once it has stopped.
func TestUIFleet(t *testing.T) {
	a, b := twoHosts(t, hostOptions{}, sleeperJob("theirs"))
	if err := a.m.Create(context.Background(), sleeperJob("mine")); err != nil {
		t.Fatal(err)
	}
	br := newBrowser(t)
	br.do("open a's dashboard", chromedp.Navigate(a.url+"/ui/"))
	br.wait("both jobs with their hosts", fmt.Sprintf(row, "theirs")+` && `+fmt.Sprintf(rowState, "mine", "stopped")+
		` && getComputedStyle(document.querySelector('#jobs th.host')).display !== 'none'`+
		fmt.Sprintf(` && `+row+`.querySelector('.host').textContent === 'b'`, "theirs")+
		fmt.Sprintf(` && `+row+`.querySelector('.host').textContent === 'a'`, "mine"))

	br.do("start b's job from a", chromedp.Click(css(`tr[data-job="theirs"] button[data-action="start"]`)))
	br.wait("it running", fmt.Sprintf(rowState, "theirs", "running"))
	if st, err := b.m.State("theirs"); err != nil || st.State != procman.StateRunning {
		t.Fatalf("b's job after a start from a's dashboard: %+v, %v", st, err)
	}

	br.do("open its page", chromedp.Click(css(`tr[data-job="theirs"] td.name a`)))
	br.wait("its page, with its host", `!document.querySelector('#job-view').hidden && document.querySelector('#jv-host').textContent === 'b'`)

	br.do("open the hosts page", chromedp.Click(css("#hosts-link")))
	br.wait("both hosts, alive", `document.querySelectorAll('#hosts tbody tr').length === 2 && `+
		fmt.Sprintf(hostRow+`.dataset.alive === 'true' && `+hostRow+`.textContent.includes('(this host)') && `, "a", "a")+
		fmt.Sprintf(hostRow+`.dataset.alive === 'true' && !`+hostRow+`.textContent.includes('(this host)') && `, "b", "b")+
		fmt.Sprintf(hostRow+`.querySelector('.active').textContent === '1' && `+hostRow+`.querySelector('.advertise').textContent === %q`, "b", "b", b.url))
	b.ts.Close()
	shutdown(t, b.m)
	br.wait("b dead", fmt.Sprintf(hostRow+`.dataset.alive === 'false' && `+hostRow+`.querySelector('.badge').textContent === 'dead'`, "b", "b"))
}
