package main

// These tests run the real procman binary, built once by TestMain, and check
// what happens to job processes and their grandchildren when the binary is
// stopped by a signal. A process counts as gone when /proc/<pid> is missing or
// shows a zombie: PID 1 on the test machine may not reap orphans.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/internal/osproc"
	"go.uber.org/goleak"
)

// binPath is the procman binary built by TestMain.
var binPath string

// buildThenRun builds the binary before the tests and removes it after them,
// inside goleak.VerifyTestMain, which checks for leaked goroutines once they pass.
type buildThenRun struct{ m *testing.M }

func (b buildThenRun) Run() int {
	dir, err := os.MkdirTemp("", "procman-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "procman test:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// go test puts its own GOROOT/bin first in the PATH of the tests it runs.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "procman test: the go command is needed to build the binary:", err)
		return 1
	}
	bin := filepath.Join(dir, "procman")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "procman test: go build: %v\n%s", err, out)
		return 1
	}
	binPath = bin
	defer pg.Stop()
	defer pgRestarts.Stop()
	defer pgFleet.Stop()
	return b.m.Run()
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(buildThenRun{m}) }

// httpClient never keeps idle connections, so no transport goroutine outlives a test.
var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// running is what the test knows about one started binary.
type running struct {
	mu      sync.Mutex
	stderr  bytes.Buffer
	drained chan struct{} // closed when stderr reached EOF
	exited  chan struct{} // closed when Wait returned; cmd.ProcessState is set then
}

var (
	runsMu sync.Mutex
	runs   = map[*exec.Cmd]*running{}
)

func runOf(cmd *exec.Cmd) *running {
	runsMu.Lock()
	defer runsMu.Unlock()
	return runs[cmd]
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startBinary starts procman on a random port with its database and logs in
// dir, and returns its base URL once it logs that it listens. Cleanup stops it
// (SIGTERM, then SIGKILL) if the test did not.
func startBinary(t *testing.T, dir string) (string, *exec.Cmd) {
	t.Helper()
	return startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
}

// startBinaryWith starts procman with args and extra environment, and returns
// the address of its first listener ("http://host:port", or "unix:PATH").
func startBinaryWith(t *testing.T, dir string, env []string, args ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	return startCommand(t, cmd), cmd
}

// startCommand starts cmd, which runs procman (or execs it), and returns the
// address of its first listener.
func startCommand(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	run, addrc := watchOutput(cmd, r)
	t.Cleanup(func() { stopBinary(t, cmd, run) })

	timeout := time.NewTimer(15 * time.Second)
	defer timeout.Stop()
	select {
	case addr := <-addrc:
		if strings.HasPrefix(addr, "/") {
			return "unix:" + addr
		}
		return "http://" + addr
	case <-run.exited:
		waitDrained(run)
		t.Fatalf("procman exited before listening (%v); stderr:\n%s", cmd.ProcessState, stderrOf(cmd))
	case <-timeout.C:
		t.Fatalf("procman did not log that it listens within 15s; stderr:\n%s", stderrOf(cmd))
	}
	return ""
}

// watchOutput follows a started binary: it registers the run, keeps what the
// binary writes to r, sends the first listening address on the returned
// channel, and waits for the process.
func watchOutput(cmd *exec.Cmd, r *os.File) (*running, <-chan string) {
	run := &running{drained: make(chan struct{}), exited: make(chan struct{})}
	runsMu.Lock()
	runs[cmd] = run
	runsMu.Unlock()
	addrc := make(chan string, 1)
	go func() {
		defer close(run.drained)
		defer r.Close()
		br := bufio.NewReader(r)
		for found := false; ; {
			line, err := br.ReadString('\n')
			run.mu.Lock()
			run.stderr.WriteString(line)
			run.mu.Unlock()
			if m := listeningRE.FindStringSubmatch(line); m != nil && !found {
				found = true
				addrc <- m[1]
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(run.exited)
	}()
	return run, addrc
}

func stopBinary(t *testing.T, cmd *exec.Cmd, run *running) {
	defer func() {
		runsMu.Lock()
		delete(runs, cmd)
		runsMu.Unlock()
	}()
	select {
	case <-run.exited:
	default:
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-run.exited:
		case <-time.After(40 * time.Second):
			cmd.Process.Kill()
			<-run.exited
		}
	}
	waitDrained(run)
	if t.Failed() {
		t.Logf("procman stderr:\n%s", stderrOf(cmd))
	}
}

func waitDrained(run *running) {
	select {
	case <-run.drained:
	case <-time.After(5 * time.Second):
	}
}

// waitExit waits up to timeout for the binary to exit and returns how it ended.
func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) *os.ProcessState {
	t.Helper()
	run := runOf(cmd)
	select {
	case <-run.exited:
	case <-time.After(timeout):
		t.Fatalf("procman did not exit within %s; stderr:\n%s", timeout, stderrOf(cmd))
	}
	waitDrained(run)
	return cmd.ProcessState
}

func stderrOf(cmd *exec.Cmd) string {
	run := runOf(cmd)
	if run == nil {
		return ""
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.stderr.String()
}

// poll checks cond every 10ms until it holds, failing the test after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// --- processes ---

// procStat is a process as the tests look at it.
type procStat struct {
	pid, ppid, pgid int
	state           byte
	comm            string
}

func fromStat(st osproc.Stat) procStat {
	return procStat{pid: st.Pid, ppid: st.PPid, pgid: st.PGID, state: st.State, comm: st.Comm}
}

func readProcStat(pid int) (procStat, bool) {
	st, ok := osproc.ReadStat(pid)
	return fromStat(st), ok
}

// gone reports whether pid no longer exists or is a zombie.
func gone(pid int) bool {
	st, ok := readProcStat(pid)
	return !ok || st.state == 'Z' || st.state == 'X'
}

// waitGone polls until pid is gone and reports an error if it is not by deadline.
func waitGone(t *testing.T, pid int, deadline time.Time) bool {
	t.Helper()
	for !gone(pid) {
		if time.Now().After(deadline) {
			st, _ := readProcStat(pid)
			t.Errorf("process %d (%s, state %c, pgid %d) still alive", pid, st.comm, st.state, st.pgid)
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// liveProcs lists every live (not zombie) process.
func liveProcs() []procStat {
	var out []procStat
	for _, st := range osproc.Procs() {
		if st.Alive() {
			out = append(out, fromStat(st))
		}
	}
	return out
}

// groupMembers lists the live processes of group pgid.
func groupMembers(pgid int) []procStat {
	var out []procStat
	for _, st := range osproc.GroupMembers(pgid) {
		out = append(out, fromStat(st))
	}
	return out
}

// waitGroupSleeps waits until group pgid holds at least n live sleep processes
// and returns the pids of all its members.
func waitGroupSleeps(t *testing.T, pgid, n int) []int {
	t.Helper()
	var pids []int
	poll(t, 10*time.Second, fmt.Sprintf("%d sleep processes in group %d", n, pgid), func() bool {
		pids = pids[:0]
		sleeps := 0
		for _, p := range groupMembers(pgid) {
			pids = append(pids, p.pid)
			if p.comm == "sleep" {
				sleeps++
			}
		}
		return sleeps >= n
	})
	return pids
}

// procsIn lists the live processes whose working folder is dir or below it:
// the binary, its guardian and every job process of a test run there.
func procsIn(dir string) []int {
	var out []int
	for _, p := range liveProcs() {
		cwd, err := os.Readlink("/proc/" + strconv.Itoa(p.pid) + "/cwd")
		if err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) && !gone(p.pid) {
			out = append(out, p.pid)
		}
	}
	return out
}

// newDir returns a test folder. Its cleanup fails the test for, and kills,
// any process still working in it, so a broken binary leaves no strays.
func newDir(t *testing.T) string {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, pid := range procsIn(dir) {
			st, _ := readProcStat(pid)
			if t.Failed() { // already reported
				t.Logf("killing stray process %d (%s) left in %s", pid, st.comm, dir)
			} else {
				t.Errorf("stray process %d (%s) left in %s; killing it", pid, st.comm, dir)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return dir
}

// assertNoProcsIn fails the test if any process other than those already
// checked still works in dir: the binary must not leave one the test missed.
func assertNoProcsIn(t *testing.T, dir string, deadline time.Time, checked ...int) {
	t.Helper()
	for _, pid := range procsIn(dir) {
		if !slices.Contains(checked, pid) {
			waitGone(t, pid, deadline)
		}
	}
}

// wantLogs fails the test for each text missing from the binary's stderr.
func wantLogs(t *testing.T, stderr string, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(stderr, s) {
			t.Errorf("procman stderr lacks %q", s)
		}
	}
}

// readPid polls until path holds a pid written by the job's shell.
func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	poll(t, 10*time.Second, "pid file "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// findGuardian returns the one child of the binary that is not a job leader:
// the guardian /bin/sh, in its own process group.
func findGuardian(t *testing.T, binPid int, jobPids ...int) int {
	t.Helper()
	var found []int
	for _, p := range liveProcs() {
		if p.ppid == binPid && !slices.Contains(jobPids, p.pid) {
			found = append(found, p.pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one guardian child of procman %d besides jobs %v, found %v", binPid, jobPids, found)
	}
	g := found[0]
	cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(g) + "/cmdline")
	if argv0, _, _ := bytes.Cut(cmdline, []byte{0}); filepath.Base(string(argv0)) != "awk" {
		t.Fatalf("guardian candidate %d runs %q, want awk", g, cmdline)
	}
	if st, _ := readProcStat(g); st.pgid != g {
		t.Errorf("guardian %d is in process group %d, want its own", g, st.pgid)
	}
	return g
}

// --- API ---

// api is a client of the ProcMan at base ("http://host:port", as startBinary
// returns it). It keeps no connection between requests, so that no transport
// goroutine outlives a test.
func api(t *testing.T, base string) *client.Client {
	t.Helper()
	c, err := client.New(base, client.WithHTTPClient(httpClient))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createJob creates a job from its fields, sent as they are.
func createJob(t *testing.T, base string, job map[string]any) {
	t.Helper()
	def, err := json.Marshal(job)
	if err == nil {
		_, err = api(t, base).CreateJSON(context.Background(), def)
	}
	if err != nil {
		t.Fatalf("create %s: %v", def, err)
	}
}

func startJob(t *testing.T, base, name string) {
	t.Helper()
	if _, err := api(t, base).Start(context.Background(), name); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

func stopJob(t *testing.T, base, name string) {
	t.Helper()
	if _, err := api(t, base).Stop(context.Background(), name); err != nil {
		t.Fatalf("stop %s: %v", name, err)
	}
}

func jobState(t *testing.T, base, name string) procman.Status {
	t.Helper()
	st, err := api(t, base).State(context.Background(), name)
	if err != nil {
		t.Fatalf("state of %s: %v", name, err)
	}
	return st
}

// jobRuns is a job's runs, newest first, as many as the API gives.
func jobRuns(t *testing.T, base, name string) []procman.Run {
	t.Helper()
	runs, err := api(t, base).Runs(context.Background(), name, procman.RunsOptions{Limit: procman.MaxRunsLimit})
	if err != nil {
		t.Fatalf("runs of %s: %v", name, err)
	}
	return runs
}

func listJobs(t *testing.T, base string) []procman.Entry {
	t.Helper()
	jobs, err := api(t, base).List(context.Background())
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return jobs
}

// jobStatus is the part of a status that tests read from the CLI's -o json.
type jobStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	PID   int    `json:"pid"`
	Error string `json:"error"`
}

// waitRunning waits until the job runs and returns its shell's pid.
func waitRunning(t *testing.T, base, name string) int {
	t.Helper()
	var st procman.Status
	poll(t, 10*time.Second, "job "+name+" running", func() bool {
		st = jobState(t, base, name)
		return st.State == "running" && st.PID > 0
	})
	return st.PID
}

// --- tests ---

// SIGTERM stops every job gracefully, escalating to SIGKILL after the job's
// stop_timeout for a grandchild that ignores SIGTERM, and then exits 0.
func TestSIGTERMStopsEveryJobAndGrandchild(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "a", "type": "continuous",
		"command": `sleep 1000 & echo $! > gc.pid; wait`})
	createJob(t, base, map[string]any{"name": "b", "type": "continuous", "stop_timeout": "1s",
		"command": `sh -c 'trap "" TERM; sleep 1000' & echo $! > gc2.pid; wait`})
	startJob(t, base, "a")
	startJob(t, base, "b")
	pidA, pidB := waitRunning(t, base, "a"), waitRunning(t, base, "b")
	gcA, gcB := readPid(t, filepath.Join(dir, "gc.pid")), readPid(t, filepath.Join(dir, "gc2.pid"))
	// A sleep in each group means b's grandchild has set its trap already.
	procs := append(waitGroupSleeps(t, pidA, 1), waitGroupSleeps(t, pidB, 1)...)
	for _, p := range []int{pidA, gcA, pidB, gcB} {
		if !slices.Contains(procs, p) {
			t.Fatalf("process %d missing from the job groups %v", p, procs)
		}
	}
	guardian := findGuardian(t, cmd.Process.Pid, pidA, pidB)

	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 15*time.Second)
	t.Logf("procman exited %v after %s", st, time.Since(sent).Round(time.Millisecond))
	if st.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0 after SIGTERM", st.ExitCode())
	}
	// The Manager itself must have stopped both jobs: the guardian alone would
	// also leave no process, but kills without a grace period.
	wantLogs(t, stderrOf(cmd), "job=a from=stopping to=stopped", "job=b from=stopping to=stopped",
		`msg="procman shut down" jobs_stopped=2`)
	// A graceful stop returns only once every group is gone: allow no more than a moment.
	deadline := time.Now().Add(time.Second)
	checked := append(procs, guardian)
	for _, p := range checked {
		waitGone(t, p, deadline)
	}
	assertNoProcsIn(t, dir, deadline, checked...)
}

// SIGKILL leaves no chance to stop jobs: the guardian must kill every job's
// whole process group, grandchildren included, and then exit itself.
func TestSIGKILLGuardianKillsEveryJob(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "a", "type": "continuous",
		"command": `sleep 1000 & echo $! > gc.pid; wait`})
	createJob(t, base, map[string]any{"name": "b", "type": "continuous",
		"command": `sh -c 'sleep 1000 & sleep 1000 & wait'`})
	startJob(t, base, "a")
	startJob(t, base, "b")
	pidA, pidB := waitRunning(t, base, "a"), waitRunning(t, base, "b")
	gcA := readPid(t, filepath.Join(dir, "gc.pid"))
	procs := append(waitGroupSleeps(t, pidA, 1), waitGroupSleeps(t, pidB, 2)...)
	if !slices.Contains(procs, gcA) {
		t.Fatalf("grandchild %d missing from the job groups %v", gcA, procs)
	}
	guardian := findGuardian(t, cmd.Process.Pid, pidA, pidB)

	killed := time.Now()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 5*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("procman ended with %v, want killed by SIGKILL", st)
	}
	deadline := killed.Add(5 * time.Second)
	for _, p := range procs {
		waitGone(t, p, deadline)
	}
	if !waitGone(t, guardian, deadline) {
		t.Errorf("the guardian %d did not exit after procman was killed", guardian)
	}
	assertNoProcsIn(t, dir, deadline, append(procs, guardian)...)
}

// Job definitions survive a restart of the binary: a reboot job runs again
// (as a new process); a continuous job started by hand comes back too
// (trigger resume), unless it was stopped by hand or the binary is given
// -no-resume.
func TestRestartKeepsJobsAndStartsRebootJobs(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "r", "type": "continuous", "schedule": "reboot", "command": "sleep 1000"})
	createJob(t, base, map[string]any{"name": "m", "type": "continuous", "schedule": "manual", "command": "sleep 1000"})
	createJob(t, base, map[string]any{"name": "h", "type": "continuous", "command": "sleep 1000"})
	oldR := waitRunning(t, base, "r") // a reboot job starts when created
	startJob(t, base, "m")
	oldM := waitRunning(t, base, "m")
	startJob(t, base, "h")
	waitRunning(t, base, "h")
	stopJob(t, base, "h")
	sigterm := func(which string) {
		t.Helper()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if st := waitExit(t, cmd, 15*time.Second); st.ExitCode() != 0 {
			t.Fatalf("%s procman: exit code %d, want 0", which, st.ExitCode())
		}
	}
	sigterm("first")
	deadline := time.Now().Add(time.Second)
	waitGone(t, oldR, deadline)
	waitGone(t, oldM, deadline)

	base, cmd = startBinary(t, dir)
	newR := waitRunning(t, base, "r")
	if newR == oldR {
		t.Errorf("reboot job r has the pid of its previous run, %d", oldR)
	}
	if gone(newR) {
		t.Errorf("reboot job r reports pid %d, which is not alive", newR)
	}
	// Open starts reboot and resumed jobs before the API listens, so states are settled.
	newM := jobState(t, base, "m")
	if newM.State != "running" || newM.PID == oldM || gone(newM.PID) {
		t.Errorf("manual job m after restart: %+v, want running again as a new process", newM)
	}
	if rs := jobRuns(t, base, "m"); len(rs) != 2 || rs[0].Trigger != "resume" || rs[1].Outcome != "stopped" {
		t.Errorf("runs of m after restart: %+v, want a run with trigger resume after the stopped one", rs)
	}
	if st := jobState(t, base, "h"); st.State != "stopped" || st.PID != 0 {
		t.Errorf("job h, stopped by hand, after restart: state %q pid %d, want stopped with no pid", st.State, st.PID)
	}
	jobs := listJobs(t, base)
	if len(jobs) != 3 || jobs[1].Name != "m" || jobs[1].Command != "sleep 1000" || jobs[2].Name != "r" || jobs[2].Schedule != "reboot" {
		t.Errorf("jobs after restart: %+v", jobs)
	}
	sigterm("second")
	deadline = time.Now().Add(time.Second)
	waitGone(t, newR, deadline)
	waitGone(t, newM.PID, deadline)

	base, cmd = startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "-no-resume", "0")
	lastR := waitRunning(t, base, "r")
	if st := jobState(t, base, "m"); st.State != "stopped" {
		t.Errorf("manual job m after a restart with -no-resume: state %q, want stopped", st.State)
	}
	sigterm("third")
	deadline = time.Now().Add(time.Second)
	waitGone(t, lastR, deadline)
	assertNoProcsIn(t, dir, deadline, lastR)
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name           string
		args           []string
		code           int
		stderr, stdout string // each must hold this; "" means it must be empty
	}{
		{"no port", nil, 2, "usage: procman", ""},
		{"two ports", []string{"1", "2"}, 2, "usage: procman", ""},
		{"the port twice", []string{"-addr", "127.0.0.1:1", "2"}, 2, "two ports: -addr 127.0.0.1:1 and 2", ""},
		{"port out of range", []string{"65536"}, 2, `bad port "65536"`, ""},
		{"port out of range in -addr", []string{"-addr", "127.0.0.1:65536"}, 2, `bad port "65536"`, ""},
		{"unknown flag", []string{"-nosuch", "0"}, 2, "usage: procman", ""},
		{"unknown command", []string{"list"}, 2, `procman: unknown command "list"; did you mean "ls"?`, ""},
		{"misspelt command", []string{"lgos"}, 2, `unknown command "lgos"; did you mean "logs"?`, ""},
		{"unknown command after flags", []string{"-db", "x.db", "frobnicate"}, 2, `unknown command "frobnicate"` + "\n", ""},
		{"bad log level", []string{"-log-level", "loud", "0"}, 2, `invalid value "loud" for flag -log-level`, ""},
		{"version", []string{"-version"}, 0, "", "procman "},
		{"-h", []string{"-h"}, 0, "", "server flags"},
		{"--help", []string{"--help"}, 0, "", "server flags"},
		{"help", []string{"help"}, 0, "", "server flags"},
		{"serve -h", []string{"serve", "-h"}, 0, "", "server flags"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(binPath, tc.args...)
			cmd.Dir = t.TempDir() // nothing may be created here, but if it is, it is cleaned up
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("procman %v did not exit within 10s; stderr:\n%s", tc.args, stderr.String())
			}
			if got := cmd.ProcessState.ExitCode(); got != tc.code {
				t.Errorf("procman %v: exit code %d, want %d; stderr:\n%s", tc.args, got, tc.code, stderr.String())
			}
			for _, out := range []struct {
				name, got, want string
			}{{"stderr", stderr.String(), tc.stderr}, {"stdout", stdout.String(), tc.stdout}} {
				if out.want == "" && out.got != "" || !strings.Contains(out.got, out.want) {
					t.Errorf("procman %v: %s %q, want it to hold %q", tc.args, out.name, out.got, out.want)
				}
			}
			if entries, _ := os.ReadDir(cmd.Dir); len(entries) != 0 {
				t.Errorf("procman %v created files: %v", tc.args, entries)
			}
		})
	}
}

// A second SIGINT during a slow graceful stop kills the jobs at once. main.go
// then reports the cut-short shutdown as a failure: exit code 1.
func TestSecondSignalKillsAtOnce(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "slow", "type": "continuous", "stop_timeout": "30s",
		"command": `trap "" TERM; sleep 1000 & echo $! > gc.pid; wait`})
	startJob(t, base, "slow")
	pid := waitRunning(t, base, "slow")
	gc := readPid(t, filepath.Join(dir, "gc.pid"))
	procs := waitGroupSleeps(t, pid, 1)
	if !slices.Contains(procs, gc) {
		t.Fatalf("grandchild %d missing from the job group %v", gc, procs)
	}
	guardian := findGuardian(t, cmd.Process.Pid, pid)

	first := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the graceful stop to begin", func() bool {
		return strings.Contains(stderrOf(cmd), "job=slow from=running to=stopping")
	})
	// The job ignores SIGTERM, so the graceful stop is now waiting out 30s.
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 10*time.Second)
	took := time.Since(first)
	t.Logf("procman exited %v %s after the first SIGINT", st, took.Round(time.Millisecond))
	if took > 15*time.Second {
		t.Errorf("shutdown took %s, want well under the 30s stop_timeout", took)
	}
	if st.ExitCode() != 1 {
		t.Errorf("exit code %d, want 1 (serve reports the cut-short shutdown)", st.ExitCode())
	}
	// Killed by the Manager (SIGKILL, then the group is gone: stopped), not
	// left to the guardian.
	wantLogs(t, stderrOf(cmd), "second signal: killing jobs now", "job=slow from=stopping to=stopped",
		`msg="procman shut down" jobs_stopped=1`, "graceful stop cut short")
	deadline := time.Now().Add(time.Second)
	checked := append(procs, guardian)
	for _, p := range checked {
		waitGone(t, p, deadline)
	}
	assertNoProcsIn(t, dir, deadline, checked...)
}

// A client's connection that never carries a request (HTTP clients and
// browsers open them ahead of time) must not hold up the exit: the server's
// own Shutdown would wait 5 s for it.
func TestIdleConnectionDoesNotDelayExit(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 10*time.Second)
	if took := time.Since(sent); took >= 4*time.Second || st.ExitCode() != 0 {
		t.Errorf("exit %v after %s, want 0 well before the server's 5 s wait for idle connections", st, took.Round(time.Millisecond))
	}
}
