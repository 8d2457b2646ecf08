package main

// These tests run the built binary as a client (procman ls, procman add, ...)
// against the built binary as a server: no mocks on either side.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// cliResult is what one run of the client printed and how it exited.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliEnv is the test's environment without PROCMAN_ variables, plus env.
func cliEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROCMAN_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// runCLI runs the binary with args and the extra environment, and waits up to
// 30s for it to exit.
func runCLI(t *testing.T, env []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = cliEnv(env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("procman %q did not exit within 30s; stderr:\n%s", args, stderr.String())
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("procman %q: %v", args, err)
	}
	return cliResult{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// withAddr puts -addr base right after the subcommand, before the rest (and so
// before any "--").
func withAddr(base string, args []string) []string {
	return append([]string{args[0], "-addr", base}, args[1:]...)
}

// pm runs a client command against the server at base; it must succeed.
func pm(t *testing.T, base string, args ...string) string {
	t.Helper()
	r := runCLI(t, nil, withAddr(base, args)...)
	if r.code != 0 {
		t.Fatalf("procman %q: exit code %d, want 0; stderr:\n%s", args, r.code, r.stderr)
	}
	return r.stdout
}

// pmFails runs a client command that must fail with code, saying want on stderr.
func pmFails(t *testing.T, env []string, code int, want string, args ...string) {
	t.Helper()
	r := runCLI(t, env, args...)
	if r.code != code {
		t.Errorf("procman %q: exit code %d, want %d; stderr:\n%s", args, r.code, code, r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("procman %q: stderr lacks %q:\n%s", args, want, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("procman %q failed but printed to stdout: %q", args, r.stdout)
	}
}

// row returns the fields of the table line that starts with name.
func row(t *testing.T, table, name string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	t.Fatalf("no row %q in:\n%s", name, table)
	return nil
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// jobDef fetches a job definition from the API, as its JSON fields.
func jobDef(t *testing.T, base, name string) map[string]any {
	t.Helper()
	j, err := api(t, base).Get(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	var job map[string]any
	b, err := json.Marshal(j)
	if err == nil {
		err = json.Unmarshal(b, &job)
	}
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// waitCLIState polls procman state until the job is in state.
func waitCLIState(t *testing.T, base, name, state string) {
	t.Helper()
	poll(t, 10*time.Second, name+" "+state, func() bool {
		return string(jobState(t, base, name).State) == state
	})
}

func TestCLIAddShowListAndControl(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)

	out := pm(t, base, "add", "web", "-type", "continuous", "-env", "GREETING=hi", "-stop-timeout", "3s", "-max-retries", "4",
		"-dir", dir, "--", "echo", "$GREETING;", "exec", "sleep", "1000")
	wantContains(t, "add", out, "created web")
	job := jobDef(t, base, "web")
	want := map[string]any{"name": "web", "type": "continuous", "schedule": "", "dir": dir,
		"command": "echo $GREETING; exec sleep 1000", "env": map[string]any{"GREETING": "hi"},
		"stop_timeout": "3s", "max_retries": float64(4)}
	if !jsonEqual(job, want) {
		t.Errorf("job after add:\n%v\nwant\n%v", job, want)
	}

	table := pm(t, base, "ls")
	wantContains(t, "ls", table, "NAME", "TYPE", "SCHEDULE", "STATE", "HEALTH", "PID", "UPTIME", "CPU", "MEM", "RESTARTS", "LAST EXIT")
	if got := row(t, table, "web"); !slices.Equal(got, []string{"web", "continuous", "-", "stopped", "-", "-", "-", "-", "-", "0", "-"}) {
		t.Errorf("ls row of web: %q", got)
	}
	wantContains(t, "show", pm(t, base, "show", "web"),
		"command:", "echo $GREETING; exec sleep 1000", "env:", "GREETING=hi", "stop_timeout:", "3s", "state:", "stopped")

	out = pm(t, base, "start", "web")
	pid := waitRunning(t, base, "web")
	wantContains(t, "start", out, "web: running, pid "+strconv.Itoa(pid))
	got := row(t, pm(t, base, "ls"), "web")
	if len(got) != 11 || got[3] != "running" || got[5] != strconv.Itoa(pid) || got[6] == "-" ||
		!strings.HasSuffix(got[7], "%") || !strings.HasSuffix(got[8], "K") && !strings.HasSuffix(got[8], "M") || got[10] != "-" {
		t.Errorf("ls row of running web: %q", got)
	}
	poll(t, 10*time.Second, "web's output in procman logs", func() bool {
		return pm(t, base, "logs", "web") == "hi\n"
	})
	wantContains(t, "state", pm(t, base, "state", "web"), "state:", "running", "pid:", strconv.Itoa(pid))

	wantContains(t, "stop", pm(t, base, "stop", "web"), "web: stopped, last exit sig terminated")
	if !gone(pid) {
		t.Errorf("web's shell %d still runs after procman stop", pid)
	}
	if got := row(t, pm(t, base, "ls"), "web"); got[3] != "stopped" || got[10] != "sig" || got[11] != "terminated" {
		t.Errorf("ls row of stopped web: %q", got)
	}
	wantContains(t, "restart", pm(t, base, "restart", "web"), "web: running, pid ")
	waitRunning(t, base, "web")

	runs := pm(t, base, "runs", "web")
	wantContains(t, "runs", runs, "ID", "TRIGGER", "STARTED", "DURATION", "CPU", "PEAK MEM", "OUTCOME", "EXIT")
	if r := row(t, runs, "2"); r[1] != "restart" || r[len(r)-2] != "running" {
		t.Errorf("runs row of the restart: %q", r)
	}
	if r := row(t, runs, "1"); r[1] != "manual" || !slices.Equal(r[len(r)-3:], []string{"stopped", "sig", "terminated"}) ||
		!strings.HasSuffix(r[len(r)-5], "s") || !strings.HasSuffix(r[len(r)-4], "M") && !strings.HasSuffix(r[len(r)-4], "K") {
		t.Errorf("runs row of the first run (with its CPU and peak memory): %q", r)
	}
	if n := len(strings.Split(strings.TrimSpace(pm(t, base, "runs", "web", "-n", "1")), "\n")); n != 2 {
		t.Errorf("runs -n 1 printed %d lines, want a header and one run", n)
	}
}

// jsonEqual compares two values as JSON.
func jsonEqual(a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestCLIAddFromFileEditAndRemove(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	file := filepath.Join(dir, "job.json")
	if err := os.WriteFile(file, []byte(`{"name":"count","type":"one_time","command":"echo line1; echo line2; echo line3"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	wantContains(t, "add -f", pm(t, base, "add", "-f", file, "-env", "X=1"), "created count")
	job := jobDef(t, base, "count")
	want := map[string]any{"name": "count", "type": "one_time", "schedule": "",
		"command": "echo line1; echo line2; echo line3", "env": map[string]any{"X": "1"}}
	if !jsonEqual(job, want) {
		t.Errorf("job after add -f:\n%v\nwant\n%v", job, want)
	}

	pm(t, base, "start", "count")
	waitCLIState(t, base, "count", "exited")
	if got := pm(t, base, "logs", "count", "-n", "2"); got != "line2\nline3\n" {
		t.Errorf("logs -n 2: %q, want the last two lines", got)
	}
	if got := row(t, pm(t, base, "ls"), "count"); !slices.Equal(got, []string{"count", "one_time", "-", "exited", "-", "-", "-", "-", "-", "0", "0"}) {
		t.Errorf("ls row of count: %q", got)
	}

	out := pm(t, base, "edit", "count", "-env", "Y=2", "-unset-env", "X", "-schedule", "@every 1h", "--", "echo", "edited")
	wantContains(t, "edit", out, "updated count")
	job = jobDef(t, base, "count")
	want = map[string]any{"name": "count", "type": "one_time", "schedule": "@every 1h",
		"command": "echo edited", "env": map[string]any{"Y": "2"}}
	if !jsonEqual(job, want) {
		t.Errorf("job after edit:\n%v\nwant\n%v", job, want)
	}
	pm(t, base, "start", "count")
	poll(t, 10*time.Second, "the edited command's output", func() bool {
		return pm(t, base, "logs", "count") == "edited\n"
	})

	wantContains(t, "rm", pm(t, base, "rm", "count"), "deleted count")
	pmFails(t, nil, 1, `job "count": not found (HTTP 404)`, withAddr(base, []string{"show", "count"})...)
}

// TestCLIAddDefaultsAndStart: add makes a one_time job unless told otherwise,
// as the API and the dashboard do, and -start runs it at once.
func TestCLIAddDefaultsAndStart(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	wantContains(t, "add", pm(t, base, "add", "hello", "--", "echo", "hi"), "created hello (one_time)")
	if job := jobDef(t, base, "hello"); job["type"] != "one_time" {
		t.Errorf("add without -type made %v, want one_time", job)
	}
	out := pm(t, base, "add", "greet", "-start", "--", "echo", "hello there")
	wantContains(t, "add -start", out, "created greet (one_time)\ngreet: ")
	waitCLIState(t, base, "greet", "exited")
	if got := pm(t, base, "logs", "greet"); got != "hello there\n" {
		t.Errorf("greet printed %q", got)
	}
	out = pm(t, base, "add", "svc", "--start", "-type", "continuous", "-o", "json", "--", "sleep", "100")
	var job map[string]any
	var st jobStatus
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&job); err != nil || job["type"] != "continuous" {
		t.Errorf("add -start -o json: the job first, got %v (%v) in %q", job, err, out)
	}
	if err := dec.Decode(&st); err != nil || st.Name != "svc" || st.State == "" {
		t.Errorf("add -start -o json: then the status, got %+v (%v) in %q", st, err, out)
	}
	waitCLIState(t, base, "svc", "running")
	pm(t, base, "stop", "svc")
}

// TestCLIEditSendsOnlyTheChange: edit patches the fields it is given, so a
// change made meanwhile by someone else stays, and so do fields it never saw.
func TestCLIEditSendsOnlyTheChange(t *testing.T) {
	dir := newDir(t)
	base, server := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "w", "command": "true", "type": "continuous",
		"env_file": "w.env", "env": map[string]string{"A": "1", "B": "2"}, "keep_runs": 5, "max_retries": 2})
	pm(t, base, "edit", "w", "-env", "C=3", "-unset-env", "A", "-keep-runs", "0", "--", "sleep", "1")
	want := map[string]any{"name": "w", "command": "sleep 1", "type": "continuous", "schedule": "",
		"env": map[string]any{"B": "2", "C": "3"}, "env_file": "w.env", "max_retries": float64(2)}
	if job := jobDef(t, base, "w"); !jsonEqual(job, want) {
		t.Errorf("after edit:\n%v\nwant\n%v", job, want)
	}
	// One PATCH, applied by ProcMan to what it holds: no read-modify-write
	// (GET, then PUT) that would undo a change made in between.
	poll(t, 10*time.Second, "the PATCH in the access log", func() bool {
		return strings.Contains(stderrOf(server), "method=PATCH path=/job/w ")
	})
	if log := stderrOf(server); strings.Contains(log, "method=PUT") {
		t.Errorf("edit sent a PUT; the server logged:\n%s", log)
	}
	pmFails(t, nil, 1, "stop_timeout", withAddr(base, []string{"edit", "w", "-stop-timeout", "3h"})...)
	pmFails(t, nil, 1, `"nope"`, withAddr(base, []string{"edit", "nope", "-keep-runs", "3"})...)
}

// A follow of a one_time job's run prints every line and ends by itself when
// the run ends.
func TestCLILogsFollowEndsWithTheRun(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	pm(t, base, "add", "slow", "-type", "one_time", "--", "for i in 1 2 3 4 5; do echo line$i; sleep 0.2; done")
	wantContains(t, "start", pm(t, base, "start", "slow"), "slow: running")
	out := pm(t, base, "logs", "slow", "-f")
	if out != "line1\nline2\nline3\nline4\nline5\n" {
		t.Errorf("logs -f printed %q, want all five lines", out)
	}
	// The follow ends once the run's end is recorded.
	if runs := jobRuns(t, base, "slow"); len(runs) != 1 || runs[0].EndedAt == nil {
		t.Errorf("logs -f ended before the run: %v", runs)
	}
}

// procman logs -f of a continuous job goes on into its next runs, with a
// marker line between them, until the job comes to rest (here: it gives up).
func TestCLILogsFollowGoesOnIntoNextRuns(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	work := t.TempDir()
	pm(t, base, "add", "svc", "-type", "continuous", "-dir", work, "-max-retries", "2", "-min-uptime", "1h", "-backoff-initial", "10ms", "--",
		`n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; echo "run $n"; `+
			`if [ $n -eq 1 ]; then while [ ! -e gate ]; do sleep 0.05; done; fi; exit 1`)
	pm(t, base, "start", "svc")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, "logs", "-addr", base, "svc", "-f")
	cmd.Env = cliEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("run 1\n"))
	if _, err := io.ReadFull(out, first); err != nil || string(first) != "run 1\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	if err := os.WriteFile(filepath.Join(work, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(out)
	if werr := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("logs -f: %v, %v", err, werr)
	}
	if want := "--- procman: run 1 exited, exit code 1; run 2 started (retry) ---\nrun 2\n"; string(rest) != want {
		t.Errorf("after the first run: %q, want %q", rest, want)
	}
}

func TestCLIJSONOutput(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	var job map[string]any
	decode := func(what, out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("%s -o json printed %q: %v", what, out, err)
		}
	}
	decode("add", pm(t, base, "add", "j", "-o", "json", "-type", "one_time", "--", "echo hi"), &job)
	if job["name"] != "j" || job["command"] != "echo hi" {
		t.Errorf("add -o json: %v", job)
	}
	var st jobStatus
	decode("start", pm(t, base, "start", "j", "-o", "json"), &st)
	if st.Name != "j" || st.State == "" {
		t.Errorf("start -o json: %+v", st)
	}
	waitCLIState(t, base, "j", "exited")
	var states []jobStatus
	decode("ls", pm(t, base, "ls", "-o", "json"), &states)
	if len(states) != 1 || states[0].Name != "j" || states[0].State != "exited" {
		t.Errorf("ls -o json: %+v", states)
	}
	decode("state", pm(t, base, "state", "j", "-o", "json"), &st)
	if st.State != "exited" {
		t.Errorf("state -o json: %+v", st)
	}
	var runs []map[string]any
	decode("runs", pm(t, base, "runs", "j", "-o", "json"), &runs)
	if len(runs) != 1 || runs[0]["outcome"] != "exited" {
		t.Errorf("runs -o json: %v", runs)
	}
	decode("show", pm(t, base, "show", "j", "-o", "json"), &job)
	if job["type"] != "one_time" {
		t.Errorf("show -o json: %v", job)
	}
}

// syncBuffer is a bytes.Buffer that a running command writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCLI starts the client in the background; the caller ends it.
func startCLI(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer, chan error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = cliEnv()
	out := &syncBuffer{}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	return cmd, out, done
}

// procman events prints a line per state change until it is interrupted, and
// then exits 0.
func TestCLIEvents(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	pm(t, base, "add", "tick", "-type", "one_time", "--", "true")
	cmd, out, done := startCLI(t, "events", "-addr", base)
	_, jsonOut, _ := startCLI(t, "events", "-addr", base, "-o", "json")
	// The clients subscribe at some moment the test cannot see: start the job
	// until both have seen it run.
	poll(t, 10*time.Second, "procman events to print a start of tick", func() bool {
		api(t, base).Start(context.Background(), "tick") // ErrRunning while it runs
		return strings.Contains(out.String(), " tick starting -> running pid=") &&
			strings.Contains(jsonOut.String(), `"to":"running"`)
	})
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("procman events after SIGINT: %v, want exit 0", err)
		}
		done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("procman events did not exit within 10s of SIGINT")
	}
	for _, line := range strings.Split(strings.TrimSpace(jsonOut.String()), "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["type"] != "state" || ev["job"] != "tick" {
			t.Errorf("events -o json line %q: %v, %v", line, ev, err)
		}
	}
}

func TestCLIExitCodes(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	pm(t, base, "add", "web", "--", "sleep 1000")
	pm(t, base, "add", "nodir", "-type", "one_time", "-dir", "/nonexistent/dir", "--", "true")
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{1, `job "nope": not found (HTTP 404)`, []string{"show", "nope"}},
		{1, `job "nope": not found (HTTP 404)`, []string{"start", "nope"}},
		{1, `dir "/nonexistent/dir": not a usable directory (HTTP 422)`, []string{"start", "nodir"}},
		{1, `dir "/nonexistent/dir": not a usable directory (HTTP 422)`, []string{"restart", "nodir"}},
		{1, "(HTTP 400)", []string{"add", "bad", "-schedule", "rebot", "--", "true"}},
		{1, "already exists (HTTP 409)", []string{"add", "web", "--", "true"}},
		{2, "missing NAME", []string{"show"}},
		{2, `unexpected argument "x"`, []string{"ls", "x"}},
		{2, "flag provided but not defined: -nosuch", []string{"logs", "web", "-nosuch"}},
		{2, "missing the command", []string{"add", "x"}},
		{2, "nothing to change", []string{"edit", "web"}},
		{2, "want KEY=VALUE", []string{"add", "x", "-env", "NOEQUALS", "--", "true"}},
		{2, "only output format is json", []string{"ls", "-o", "yaml"}},
		{2, "positive number", []string{"runs", "web", "-n", "-1"}},
		{2, "give -addr or -socket, not both", []string{"ls", "-socket", "/nonexistent"}},
	} {
		pmFails(t, nil, tc.code, tc.want, withAddr(base, tc.args)...)
	}
	pmFails(t, nil, 2, `unknown command "frobnicate"`, "frobnicate")

	if r := runCLI(t, nil, "help"); r.code != 0 || !strings.Contains(r.stdout, "usage: procman <command>") {
		t.Errorf("procman help: code %d, stdout:\n%s", r.code, r.stdout)
	}
	if r := runCLI(t, nil, "logs", "-h"); r.code != 0 || !strings.Contains(r.stdout, "usage: procman logs NAME") {
		t.Errorf("procman logs -h: code %d, stdout:\n%s", r.code, r.stdout)
	}
}

func TestCLIConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	want := "cannot reach ProcMan at " + addr + ": connection refused"
	pmFails(t, nil, 1, want, "ls", "-addr", addr)
	pmFails(t, []string{"PROCMAN_ADDR=http://" + addr}, 1, want, "ls")
	sock := filepath.Join(t.TempDir(), "none.sock")
	pmFails(t, []string{"PROCMAN_SOCKET=" + sock}, 1, "cannot reach ProcMan at unix socket "+sock, "ls")
}

func TestCLIToken(t *testing.T) {
	dir := newDir(t)
	token := "cli-test-token-0123456789abcdef"
	base, _ := startBinaryWith(t, dir, []string{"PROCMAN_TOKEN=" + token},
		"-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
	addr := strings.TrimPrefix(base, "http://") // the host:port form
	if r := runCLI(t, []string{"PROCMAN_TOKEN=" + token}, "add", "-addr", addr, "web", "--", "sleep 1000"); r.code != 0 {
		t.Fatalf("add with the token: exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, []string{"PROCMAN_ADDR=" + addr}, "ls", "-token-file", file); r.code != 0 || row(t, r.stdout, "web")[3] != "stopped" {
		t.Errorf("ls with -token-file: exit code %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	pmFails(t, []string{"PROCMAN_ADDR=" + addr}, 1, "(HTTP 401); set PROCMAN_TOKEN or -token-file", "ls")
	pmFails(t, []string{"PROCMAN_ADDR=" + addr, "PROCMAN_TOKEN=" + strings.ToUpper(token)}, 1, "missing or wrong token", "start", "web")
	if r := runCLI(t, []string{"PROCMAN_ADDR=" + addr, "PROCMAN_TOKEN=" + token}, "state", "web"); !strings.Contains(r.stdout, "state:     stopped") {
		t.Errorf("web after a start with a wrong token (exit code %d):\n%s", r.code, r.stdout)
	}
}

func TestCLISocket(t *testing.T) {
	dir := newDir(t)
	sock := filepath.Join(dir, "pm.sock")
	startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "-socket", sock)
	if r := runCLI(t, nil, "add", "-socket", sock, "web", "--", "sleep 1000"); r.code != 0 {
		t.Fatalf("add over the socket: exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, []string{"PROCMAN_SOCKET=" + sock}, "start", "web"); r.code != 0 || !strings.Contains(r.stdout, "web: running") {
		t.Fatalf("start over $PROCMAN_SOCKET: exit code %d; stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r := runCLI(t, nil, "ls", "-socket", sock)
	if r.code != 0 || row(t, r.stdout, "web")[3] != "running" {
		t.Errorf("ls over the socket: exit code %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, "stop", "-socket", sock, "web"); r.code != 0 || !strings.Contains(r.stdout, "web: stopped") {
		t.Errorf("stop over the socket: exit code %d; stdout %q; stderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// procman serve [flags] <port> is the server, as procman [flags] <port> is.
func TestServeSubcommand(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinaryWith(t, dir, nil, "serve", "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
	pm(t, base, "add", "web", "--", "sleep 1000")
	if got := row(t, pm(t, base, "ls"), "web"); got[3] != "stopped" {
		t.Errorf("ls row of web: %q", got)
	}
}

// openPTY opens a pseudo-terminal: the client's stdout on it is a terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("no pseudo-terminal to test colours with: %v", err)
	}
	var unlock int32
	var n uint32
	if err := ioctl(master, syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	if err := ioctl(master, syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatal(err)
	}
	return master, slave
}

func ioctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// runOnTTY runs the client with its stdout on a terminal and returns what it printed.
func runOnTTY(t *testing.T, env []string, args ...string) string {
	t.Helper()
	master, slave := openPTY(t)
	defer master.Close()
	cmd := exec.Command(binPath, args...)
	cmd.Env = cliEnv(env...)
	cmd.Stdout = slave
	err := cmd.Start()
	slave.Close() // the client holds the only other end: reads end when it exits
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(master) // ends with EIO once the client has exited
	if err := cmd.Wait(); err != nil {
		t.Fatalf("procman %q on a terminal: %v", args, err)
	}
	return string(out)
}

// States are coloured on a terminal, unless NO_COLOR is set, and never in a pipe.
func TestCLIColours(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	pm(t, base, "add", "web", "--", "sleep 1000")
	pm(t, base, "start", "web")
	waitRunning(t, base, "web")
	green := "\x1b[32mrunning\x1b[0m"
	if out := runOnTTY(t, nil, "ls", "-addr", base); !strings.Contains(out, green) {
		t.Errorf("ls on a terminal lacks a green running:\n%q", out)
	}
	if out := runOnTTY(t, []string{"NO_COLOR=1"}, "ls", "-addr", base); strings.Contains(out, "\x1b[") || !strings.Contains(out, "running") {
		t.Errorf("ls on a terminal with NO_COLOR:\n%q", out)
	}
	if out := pm(t, base, "ls"); strings.Contains(out, "\x1b[") {
		t.Errorf("ls into a pipe is coloured:\n%q", out)
	}
}
