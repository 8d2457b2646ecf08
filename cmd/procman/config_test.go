package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// oneShot makes requests on connections it does not keep.
var oneShot = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// metric reads one series of the binary's /metrics, "" if it is missing.
func metric(t *testing.T, base, name string) string {
	t.Helper()
	resp, err := oneShot.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// TestConfigAtStartAndOnSIGHUP: procman -config FILE applies the file
// before the reboot jobs start; SIGHUP applies it again (pruning what it no
// longer has) and logs the plan; a broken file then changes nothing, keeps
// ProcMan running, is logged, and the reload metric goes to 0.
func TestConfigAtStartAndOnSIGHUP(t *testing.T) {
	dir := newDir(t)
	file := filepath.Join(dir, "procman.yaml")
	writeFile(t, file, "jobs:\n  web:\n    command: exec sleep 1000\n    type: continuous\n    schedule: reboot\n  old:\n    command: exec sleep 1000\n    type: continuous\n    schedule: reboot\n")
	base, cmd := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "-config", file, "0")
	web := waitRunning(t, base, "web")
	waitRunning(t, base, "old")
	if v := metric(t, base, "procman_config_last_reload_successful"); v != "1" {
		t.Errorf("after start: reload successful %q, want 1", v)
	}

	writeFile(t, file, "jobs:\n  web:\n    command: exec sleep 2000\n    type: continuous\n    schedule: reboot\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the reload's plan logged", func() bool { return strings.Contains(stderrOf(cmd), "deleted=[old]") })
	logged := stderrOf(cmd)
	for _, want := range []string{`updated=[web]`, `job=web field=command old="\"exec sleep 1000\"" new="\"exec sleep 2000\""`} {
		if !strings.Contains(logged, want) {
			t.Errorf("the reload's log lacks %s:\n%s", want, logged)
		}
	}
	if st := jobState(t, base, "web"); st.PID != web {
		t.Errorf("the reload restarted web: %+v", st)
	}
	if resp, err := oneShot.Get(base + "/job/old"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("old not pruned: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	writeFile(t, file, "jobs:\n  web:\n    command: ''\n    colour: red\n")
	cmd.Process.Signal(syscall.SIGHUP)
	poll(t, 10*time.Second, "the failed reload logged", func() bool { return strings.Contains(stderrOf(cmd), "nothing changed") })
	for _, want := range []string{`invalid job \"web\" (line 3): command: must not be empty`, `invalid job \"web\" (line 4): colour: unknown field`} {
		if !strings.Contains(stderrOf(cmd), want) {
			t.Errorf("the failed reload's log lacks %s:\n%s", want, stderrOf(cmd))
		}
	}
	if v := metric(t, base, "procman_config_last_reload_successful"); v != "0" {
		t.Errorf("after a broken reload: %q, want 0", v)
	}
	if st := jobState(t, base, "web"); st.State != "running" || st.PID != web {
		t.Errorf("a broken reload changed web: %+v", st)
	}
}

// TestConfigBrokenAtStart: a broken -config file at start-up: exit 1 with
// every problem, and no job started.
func TestConfigBrokenAtStart(t *testing.T) {
	dir := newDir(t)
	file := filepath.Join(dir, "procman.yaml")
	writeFile(t, file, "jobs:\n  web:\n    command: exec sleep 1000\n    schedule: reboot\n    type: continuous\n  bad:\n    command: ''\n  worse:\n    command: x\n    stop_timeout: forever\n")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "-config", file, "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("procman -config with a broken file: %v, want exit 1; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{`invalid job \"bad\" (line 7): command: must not be empty`, `invalid job \"worse\" (line 10): stop_timeout`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %s:\n%s", want, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "logs", "web")); err == nil {
		t.Error("a job ran although the file was broken")
	}
}

// TestApplyDiffExport: procman apply prints the plan as terraform plan does;
// diff changes nothing; -exit-code exits 2 on changes; export writes a file
// that apply takes back unchanged; a broken file gets each problem on a line
// of its own.
func TestApplyDiffExport(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	file := filepath.Join(dir, "stack.yaml")
	writeFile(t, file, "jobs:\n  db:\n    command: exec sleep 1000\n    type: continuous\n    env: {A: '1'}\n  old:\n    command: 'true'\n")
	if out := pm(t, base, "apply", "-f", file); out != "+ db\n+ old\nApplied: 2 created, 0 updated, 0 deleted, 0 unchanged.\n" {
		t.Errorf("apply printed\n%s", out)
	}
	writeFile(t, file, "jobs:\n  db:\n    command: exec sleep 2000\n    type: continuous\n    env: {A: '2'}\n  web:\n    command: exec sleep 1000\n")
	want := "+ web\n~ db: command, env\n    command: \"exec sleep 1000\" -> \"exec sleep 2000\"\n    env: {\"A\":\"1\"} -> {\"A\":\"2\"}\n- old\n" +
		"Plan: 1 to create, 1 to update, 1 to delete, 0 unchanged. Nothing changed (dry run).\n"
	r := runCLI(t, nil, "diff", "-addr", base, "-f", file, "-prune", "-exit-code")
	if r.stdout != want || r.code != 2 {
		t.Errorf("diff -prune -exit-code: exit %d, printed\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	if out := pm(t, base, "apply", "-f", file, "-prune", "-dry-run"); out != want {
		t.Errorf("apply -dry-run printed\n%s", out)
	}
	pm(t, base, "apply", "-f", file, "--prune")

	for _, format := range []string{"yaml", "json"} {
		exported := filepath.Join(dir, "exported."+format)
		writeFile(t, exported, pm(t, base, "export", "-o", format))
		r := runCLI(t, nil, "apply", "-addr", base, "-f", exported, "-source", file, "-prune", "--exit-code")
		if r.code != 0 || r.stdout != "Applied: 0 created, 0 updated, 0 deleted, 2 unchanged.\n" {
			t.Errorf("applying the %s export: exit %d\n%s%s", format, r.code, r.stdout, r.stderr)
		}
	}

	pm(t, base, "edit", "web", "-label", "tier=web")
	if out := pm(t, base, "export", "-l", "tier=web"); out != "jobs:\n  web:\n    command: exec sleep 1000\n    type: one_time\n    labels:\n      tier: web\n" {
		t.Errorf("export -l tier=web printed\n%s", out)
	}

	writeFile(t, file, "jobs:\n  db:\n    command: ''\n  web:\n    colour: red\n    command: x\n")
	r = runCLI(t, nil, "apply", "-addr", base, "-f", file)
	wantErr := file + `:3: job "db": command: must not be empty` + "\n" + file + `:5: job "web": colour: unknown field` + "\n" +
		"procman apply: 2 problems in " + file + "; nothing changed\n"
	if r.code != 1 || r.stderr != wantErr || r.stdout != "" {
		t.Errorf("apply of a broken file: exit %d, stderr\n%s\nwant\n%s", r.code, r.stderr, wantErr)
	}
}
