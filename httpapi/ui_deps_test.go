package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/chromedp/chromedp"
)

// TestUIHealthAndDependencies: the list shows each job's health and what a
// start waits for; a job's page shows its health, the last failed check and
// when it was checked, what it waits for, and its dependencies, each with
// its condition and state, live, linking to its page.
func TestUIHealthAndDependencies(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	ready := filepath.Join(t.TempDir(), "ready")
	for _, j := range []procman.Job{
		{Name: "db", Command: "exec sleep 1000", Type: procman.Continuous, OnUnhealthy: procman.OnUnhealthyIgnore,
			Health: &procman.HealthCheck{Exec: "test -e " + ready + " || { echo not ready; exit 1; }",
				Interval: procman.Duration(50 * time.Millisecond), Retries: 1}},
		{Name: "migrate", Command: "echo migrated", DependsOn: procman.Dependencies{"db": procman.ConditionHealthy}},
		{Name: "web", Command: "exec sleep 1000", Type: procman.Continuous,
			DependsOn: procman.Dependencies{"db": procman.ConditionHealthy, "migrate": procman.ConditionCompletedSuccessfully},
			Health:    &procman.HealthCheck{Exec: "true", Interval: procman.Duration(time.Hour)}},
	} {
		if err := s.m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowser(t)
	b.do("open the dashboard", chromedp.Navigate(s.url+"/ui/"))
	b.wait("the rows, live", fmt.Sprintf(rowState, "web", "stopped")+` && document.querySelector('#conn').dataset.live === 'true'`)
	if err := s.m.Start(ctx, "db"); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- s.m.Start(ctx, "web") }() // answers once db is healthy and migrate has run
	cell := func(name, sel string) string { return fmt.Sprintf(row+`.querySelector(%q)`, name, sel) }
	b.waitWithin(liveLimit, "db unhealthy and web waiting, in the list", cell("db", ".health")+`.textContent === 'unhealthy' && `+
		`!`+cell("db", ".health")+`.hidden && `+cell("db", ".health")+`.title.includes('not ready') && `+
		cell("web", ".waiting")+`.textContent === 'waiting for db (healthy), migrate (completed_successfully)' && `+
		fmt.Sprintf(rowState, "web", "starting")+` && `+cell("web", ".health")+`.hidden`)

	dep := func(name string) string {
		return fmt.Sprintf(`document.querySelector('#jv-deps .dep[data-dep=%q]')`, name)
	}
	b.do("open web's page", chromedp.Click(css(`tr[data-job="web"] td.name a`)))
	b.wait("web's page, waiting", `document.querySelector('#jv-state').textContent === 'starting' && `+
		`document.querySelector('#jv-waiting').textContent === 'waiting for db (healthy), migrate (completed_successfully)' && `+
		dep("db")+`?.querySelector('a').getAttribute('href') === '#/job/db' && `+
		dep("db")+`.querySelector('.cond').textContent === 'healthy' && `+
		dep("db")+`.querySelector('.state').textContent === 'running' && `+
		dep("db")+`.querySelector('.health').textContent === 'unhealthy' && `+
		dep("migrate")+`?.querySelector('.cond').textContent === 'completed_successfully' && `+
		`!document.querySelector('#jv-no-health').hidden`)

	b.do("follow the link to db", chromedp.Click(css(`#jv-deps .dep[data-dep="db"] a`)))
	b.wait("db's page", `location.hash === '#/job/db' && document.querySelector('#jv-name').textContent === 'db' && `+
		`document.querySelector('#jv-health').textContent === 'unhealthy' && !document.querySelector('#jv-health').hidden && `+
		`document.querySelector('#jv-health-failure').textContent.includes('not ready') && `+
		`document.querySelector('#jv-health-checked').textContent !== '—' && document.querySelector('#jv-deps').textContent === '—'`)
	b.do("back to web's page", chromedp.NavigateBack())
	b.wait("web's page again", `document.querySelector('#jv-name').textContent === 'web'`)

	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start web: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("start web did not answer once db was ready")
	}
	b.waitWithin(liveLimit, "web running and healthy, its dependencies met, live", `document.querySelector('#jv-state').textContent === 'running' && `+
		`document.querySelector('#jv-waiting').textContent === '—' && document.querySelector('#jv-health').textContent === 'healthy' && `+
		`document.querySelector('#jv-health-failure').textContent === '—' && `+
		dep("db")+`.querySelector('.health').textContent === 'healthy' && `+
		dep("migrate")+`.querySelector('.state').textContent === 'exited' && `+dep("migrate")+`.querySelector('.health').hidden`)
	b.do("back to the list", chromedp.Click(css(`.crumbs a`)))
	b.wait("the list, nothing waiting", cell("web", ".waiting")+`.textContent === '' && `+cell("db", ".health")+`.textContent === 'healthy' && `+
		cell("web", ".health")+`.textContent === 'healthy' && `+cell("migrate", ".health")+`.hidden`)
}
