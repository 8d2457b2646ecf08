package main

import (
	"context"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// TestCLIBulk: ls -l lists the jobs a selector chooses; start, stop and
// restart take -l SELECTOR or -all instead of NAME, print a line per job and
// exit 1 if one failed; a bad selector, or NAME with -l, is bad usage.
func TestCLIBulk(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	c := api(t, base)
	for _, j := range []procman.Job{
		{Name: "db", Command: "sleep 100", Type: procman.Continuous, Labels: map[string]string{"tier": "db"}},
		{Name: "web", Command: "sleep 100", Type: procman.Continuous, Labels: map[string]string{"tier": "web"},
			DependsOn: procman.Dependencies{"db": procman.ConditionStarted}},
		{Name: "www", Command: "sleep 100", Type: procman.Continuous, Labels: map[string]string{"tier": "web"}},
		{Name: "bad", Command: "true", Type: procman.OneTime, Dir: "/nonexistent/dir", Labels: map[string]string{"tier": "broken"}},
	} {
		if _, err := c.Create(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	ls := pm(t, base, "ls", "-l", "tier=web")
	row(t, ls, "web")
	row(t, ls, "www")
	if strings.Contains(ls, "db ") || strings.Contains(ls, "bad ") {
		t.Errorf("ls -l tier=web lists more than web and www:\n%s", ls)
	}
	out := pm(t, base, "start", "-l", "tier=web")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "www: running, pid ") ||
		!strings.HasPrefix(lines[1], "web: running, pid ") {
		t.Errorf("start -l tier=web printed:\n%s\nwant www, then web, running", out)
	}
	waitCLIState(t, base, "db", "running")
	out = pm(t, base, "restart", "-l", "tier=db")
	wantContains(t, "restart -l tier=db", out, "db: running, pid ")

	r := runCLI(t, nil, withAddr(base, []string{"start", "-l", "tier=broken"})...)
	if r.code != 1 || !strings.Contains(r.stdout, "bad: failed: ") || !strings.Contains(r.stderr, "1 of 1 jobs failed") {
		t.Errorf("start of a job that fails: %+v; want exit 1, its failure, and a count", r)
	}
	out = pm(t, base, "stop", "--all")
	for _, want := range []string{"bad: error", "web: stopped", "www: stopped", "db: stopped"} {
		wantContains(t, "stop --all", out, want)
	}
	if i, j := strings.Index(out, "web: stopped"), strings.Index(out, "db: stopped"); i > j {
		t.Errorf("stop --all stopped db before web, which depends on it:\n%s", out)
	}
	for _, st := range []string{"db", "web", "www"} {
		waitCLIState(t, base, st, "stopped")
	}
	pmFails(t, nil, 2, "letters, digits", withAddr(base, []string{"stop", "-l", "ti er"})...)
	pmFails(t, nil, 2, "not both", withAddr(base, []string{"stop", "web", "-l", "tier=web"})...)
	pmFails(t, nil, 2, "not both", withAddr(base, []string{"stop", "-all", "-l", "tier=web"})...)
	pmFails(t, nil, 2, "missing NAME (or -l SELECTOR, or -all)", withAddr(base, []string{"stop"})...)
	pmFails(t, nil, 2, "letters, digits", withAddr(base, []string{"ls", "-l", "ti er"})...)
}
