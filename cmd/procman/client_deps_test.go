package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIDependenciesAndHealth: add takes the dependency, health check and
// restart flags; ls and show say what each job's check says, what a start
// waits for, and how the dependencies are doing; edit changes those fields
// member by member.
func TestCLIDependenciesAndHealth(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	work := t.TempDir()
	pm(t, base, "add", "db", "-type", "continuous", "-dir", work, "-health-exec", "test -e ready || { echo not ready; exit 1; }",
		"-health-interval", "50ms", "-health-retries", "1", "-on-unhealthy", "ignore", "--", "exec sleep 1000")
	pm(t, base, "add", "migrate", "-depends-on", "db=healthy", "--", "echo migrated")
	pm(t, base, "add", "web", "-type", "continuous", "-depends-on", "db=healthy", "--depends-on", "migrate=completed_successfully",
		"-start-timeout", "1m", "-restart", "on-failure", "-success-exit-codes", "3,4",
		"-health-http", "http://127.0.0.1:9/", "-health-timeout", "1s", "-health-start-period", "1h", "--", "exec sleep 1000")
	want := map[string]any{"name": "web", "command": "exec sleep 1000", "type": "continuous", "schedule": "",
		"depends_on": map[string]any{"db": "healthy", "migrate": "completed_successfully"}, "start_timeout": "1m0s",
		"restart": "on-failure", "success_exit_codes": []any{float64(3), float64(4)},
		"health": map[string]any{"http": "http://127.0.0.1:9/", "timeout": "1s", "start_period": "1h0m0s"}}
	if job := jobDef(t, base, "web"); !jsonEqual(job, want) {
		t.Errorf("web after add:\n%v\nwant\n%v", job, want)
	}

	// web's start waits for db, whose check fails until the file "ready" exists.
	pm(t, base, "start", "db")
	waitCLIHealth(t, base, "db", "unhealthy")
	start := exec.Command(binPath, "start", "-addr", base, "web")
	start.Env = cliEnv()
	var out bytes.Buffer
	start.Stdout, start.Stderr = &out, &out
	if err := start.Start(); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "web waiting for db and migrate", func() bool {
		return len(jobState(t, base, "web").WaitingFor) == 2
	})
	table := pm(t, base, "ls")
	wantContains(t, "ls while web waits", table, "HEALTH", "WAITING FOR")
	if got := strings.Join(row(t, table, "web"), " "); !strings.HasPrefix(got, "web continuous - starting - ") ||
		!strings.HasSuffix(got, " db=healthy, migrate=completed_successfully") {
		t.Errorf("ls row of web while it waits: %q", got)
	}
	if got := row(t, table, "db"); got[3] != "running" || got[4] != "unhealthy" || got[len(got)-1] != "-" {
		t.Errorf("ls row of db: %q", got)
	}
	wantContains(t, "show web while it waits", pm(t, base, "show", "web"),
		"depends_on:", "db=healthy (running, unhealthy)", "migrate=completed_successfully (", "state:", "starting",
		"waiting for:", "db=healthy, migrate=completed_successfully")
	wantContains(t, "show db", pm(t, base, "show", "db"), "health:", "unhealthy", "health failure:", "not ready", "health checked:")

	if err := os.WriteFile(filepath.Join(work, "ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := waitCmd(start, 20*time.Second); err != nil {
		t.Fatalf("procman start web: %v\n%s", err, out.String())
	}
	wantContains(t, "start web", out.String(), "web: running, pid ")
	table = pm(t, base, "ls")
	if strings.Contains(table, "WAITING FOR") {
		t.Errorf("ls shows a WAITING FOR column while no start waits:\n%s", table)
	}
	if got := row(t, table, "db"); got[4] != "healthy" {
		t.Errorf("ls row of db once ready: %q", got)
	}
	show := pm(t, base, "show", "web")
	wantContains(t, "show web", show, "db=healthy (running, healthy)", "migrate=completed_successfully (exited 0)", "health:", "starting")
	if strings.Contains(show, "waiting for:") {
		t.Errorf("show web after the wait still says what it waits for:\n%s", show)
	}

	// edit: another kind of check replaces the one there; a dependency goes,
	// another's condition changes; an empty value removes a field.
	pm(t, base, "edit", "web", "-health-tcp", "127.0.0.1:9", "-no-depends-on", "migrate", "-depends-on", "db", "-success-exit-codes", "")
	want["health"] = map[string]any{"tcp": "127.0.0.1:9", "timeout": "1s", "start_period": "1h0m0s"}
	want["depends_on"] = map[string]any{"db": "started"}
	delete(want, "success_exit_codes")
	if job := jobDef(t, base, "web"); !jsonEqual(job, want) {
		t.Errorf("web after edit:\n%v\nwant\n%v", job, want)
	}
	pm(t, base, "edit", "web", "-health-tcp", "", "-no-depends-on", "db", "-start-timeout", "")
	for _, f := range []string{"health", "depends_on", "start_timeout"} {
		delete(want, f)
	}
	if job := jobDef(t, base, "web"); !jsonEqual(job, want) {
		t.Errorf("web after removing its check and dependencies:\n%v\nwant\n%v", job, want)
	}
	pmFails(t, nil, 2, "want exit codes separated by commas", withAddr(base, []string{"edit", "web", "-success-exit-codes", "3;4"})...)
	pmFails(t, nil, 2, "want a name", withAddr(base, []string{"edit", "web", "-no-depends-on", "db=healthy"})...)
	pmFails(t, nil, 1, "depends_on", withAddr(base, []string{"edit", "web", "-depends-on", "db=ready"})...)
}

// waitCLIHealth polls until the job's health is h.
func waitCLIHealth(t *testing.T, base, name, h string) {
	t.Helper()
	poll(t, 10*time.Second, name+" "+h, func() bool { return string(jobState(t, base, name).Health) == h })
}

// waitCmd waits for a command to exit, killing it after timeout.
func waitCmd(cmd *exec.Cmd, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return <-done
	}
}
