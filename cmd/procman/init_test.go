package main

// ProcMan as PID 1 (a container without tini): these tests run the binary as
// PID 1 of a new PID namespace, made with unshare(1), and check from outside
// that its init reaps the orphans reparented to it, passes signals on to
// ProcMan and ends with ProcMan's exit code. They need root (or whatever lets
// unshare make a PID namespace); elsewhere they are skipped.
//
// /proc is remounted inside the namespace only, so the test finds the
// namespace's processes in the host's /proc, as the descendants of the
// unshare process. Pids reported by the API are namespace pids, not used here.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needPIDNamespace skips the test unless unshare can make a PID namespace here.
func needPIDNamespace(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not found:", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "unshare", "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a PID namespace (needs root or CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
}

// startAsPID1 starts the binary as PID 1 of a new PID namespace, with its
// database and logs in dir, and returns its base URL, the unshare command
// (registered like startBinary's, for waitExit and stderrOf) and the host pid
// of the namespace's PID 1. --kill-child takes the namespace down if unshare
// is killed; cleanup SIGTERMs PID 1 if the test did not end it.
func startAsPID1(t *testing.T, dir string) (string, *exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		binPath, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
	cmd.Dir = dir
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
	t.Cleanup(func() {
		defer func() {
			runsMu.Lock()
			delete(runs, cmd)
			runsMu.Unlock()
		}()
		select {
		case <-run.exited:
		default:
			// unshare blocks SIGTERM while it waits; PID 1 is the one to stop.
			if kids := childrenOf(cmd.Process.Pid); len(kids) > 0 {
				syscall.Kill(kids[0].pid, syscall.SIGTERM)
			}
			select {
			case <-run.exited:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill() // --kill-child: PID 1 gets SIGKILL, the namespace dies with it
				<-run.exited
			}
		}
		waitDrained(run)
		if t.Failed() {
			t.Logf("stderr of procman as PID 1:\n%s", stderrOf(cmd))
		}
	})

	select {
	case addr := <-addrc:
		kids := childrenOf(cmd.Process.Pid)
		if len(kids) != 1 {
			t.Fatalf("unshare %d has children %v, want one: the namespace's PID 1", cmd.Process.Pid, kids)
		}
		return "http://" + addr, cmd, kids[0].pid
	case <-run.exited:
		waitDrained(run)
		t.Fatalf("unshare exited before procman listened (%v); stderr:\n%s", cmd.ProcessState, stderrOf(cmd))
	case <-time.After(15 * time.Second):
		t.Fatalf("procman as PID 1 did not log that it listens within 15s; stderr:\n%s", stderrOf(cmd))
	}
	return "", nil, 0
}

// regexpNSpid1 matches the status of a process that is PID 1 of its (nested) namespace.
var regexpNSpid1 = regexp.MustCompile(`(?m)^NSpid:\s.*\s1$`)

// allProcs lists every process, zombies included.
func allProcs() []procStat {
	names, _ := filepath.Glob("/proc/[0-9]*")
	out := make([]procStat, 0, len(names))
	for _, n := range names {
		pid, _ := strconv.Atoi(filepath.Base(n))
		if st, ok := readProcStat(pid); ok {
			out = append(out, st)
		}
	}
	return out
}

func childrenOf(pid int) []procStat {
	var out []procStat
	for _, p := range allProcs() {
		if p.ppid == pid {
			out = append(out, p)
		}
	}
	return out
}

// tree lists the descendants of root, zombies included: with root the unshare
// process, every process of the namespace, since its orphans reparent to its PID 1.
func tree(root int) []procStat {
	procs := allProcs()
	in := map[int]bool{root: true}
	var out []procStat
	for grew := true; grew; {
		grew = false
		for _, p := range procs {
			if in[p.ppid] && !in[p.pid] {
				in[p.pid] = true
				out = append(out, p)
				grew = true
			}
		}
	}
	return out
}

func zombies(ps []procStat) []procStat {
	var out []procStat
	for _, p := range ps {
		if p.state == 'Z' {
			out = append(out, p)
		}
	}
	return out
}

// checkInit checks that the namespace's PID 1 is the init: the binary, whose
// one child is ProcMan, marked by initChildVar and in its own process group.
// It returns ProcMan's host pid, or 0.
func checkInit(t *testing.T, pid1 int) int {
	t.Helper()
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid1) + "/status")
	if !regexpNSpid1.Match(status) {
		t.Errorf("process %d is not PID 1 of its namespace:\n%s", pid1, status)
	}
	kids := childrenOf(pid1)
	if len(kids) != 1 {
		t.Errorf("PID 1 (%d) has children %v, want one: ProcMan (is runAsInit wired into main?)", pid1, kids)
		return 0
	}
	pm := kids[0]
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(pm.pid) + "/environ")
	if !slices.Contains(strings.Split(string(env), "\x00"), initChildVar+"=1") {
		t.Errorf("the child %d (%s) of PID 1 lacks %s=1 in its environment", pm.pid, pm.comm, initChildVar)
	}
	if pm.pgid != pm.pid {
		t.Errorf("ProcMan %d is in process group %d, want its own", pm.pid, pm.pgid)
	}
	return pm.pid
}

// The init reaps the orphans of the namespace: processes that escaped their
// run (setsid) and outlived its shell are reparented to PID 1 and, once they
// exit, must not stay zombies. Then SIGTERM to PID 1 reaches ProcMan, which
// stops its jobs gracefully; everything ends with exit code 0.
func TestPID1ReapsOrphansAndForwardsSIGTERM(t *testing.T) {
	needPIDNamespace(t)
	dir := newDir(t)
	base, cmd, pid1 := startAsPID1(t, dir)
	checkInit(t, pid1)

	// Three orphans, each living a second out of the run's process group, so
	// that ProcMan's sweep of the finished run leaves them alone. The shell
	// waits until each has left the group (ready.N) before it exits.
	createJob(t, base, map[string]any{"name": "orphans", "type": "one_time", "schedule": "reboot",
		"command": `for i in 1 2 3; do setsid sh -c ': > ready.$0; exec sleep 1' $i & done
			until [ -e ready.1 ] && [ -e ready.2 ] && [ -e ready.3 ]; do sleep 0.01; done`})
	poll(t, 10*time.Second, "job orphans exited", func() bool { return jobState(t, base, "orphans").State == "exited" })
	seen := map[int]procStat{}
	poll(t, 5*time.Second, "three orphans reparented to PID 1", func() bool {
		for _, p := range childrenOf(pid1) {
			if p.comm == "sleep" {
				seen[p.pid] = p
			}
		}
		return len(seen) >= 3
	})
	poll(t, 5*time.Second, "the orphans to end", func() bool {
		for pid := range seen {
			if !gone(pid) {
				return false
			}
		}
		return true
	})
	// Now only a reaper stands between them and zombiehood for good.
	deadline := time.Now().Add(2 * time.Second)
	for {
		z := zombies(tree(cmd.Process.Pid))
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("zombies in the namespace 2s after the orphans ended (PID 1 is %d): %+v", pid1, z)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "schedule": "reboot",
		"command": `sleep 1000 & wait`})
	poll(t, 10*time.Second, "job svc running", func() bool { return jobState(t, base, "svc").State == "running" })
	poll(t, 10*time.Second, "svc's sleep", func() bool {
		return slices.ContainsFunc(tree(cmd.Process.Pid), func(p procStat) bool { return p.comm == "sleep" && p.state != 'Z' })
	})
	procs := tree(cmd.Process.Pid)
	if err := syscall.Kill(pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 15*time.Second)
	if st.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM to PID 1, want 0 (ProcMan's)", st.ExitCode())
	}
	// ProcMan got SIGTERM and stopped svc itself, gracefully.
	wantLogs(t, stderrOf(cmd), "job=svc from=stopping to=stopped", `msg="procman shut down" jobs_stopped=1`)
	if strings.Contains(stderrOf(cmd), "second signal") {
		t.Errorf("ProcMan saw a second signal: the init passed SIGTERM on more than once")
	}
	deadline = time.Now().Add(time.Second)
	var pids []int
	for _, p := range procs {
		waitGone(t, p.pid, deadline)
		pids = append(pids, p.pid)
	}
	assertNoProcsIn(t, dir, deadline, pids...)
}

// The init ends with ProcMan's exit status, picked out of every status it
// reaps: 128+9 when ProcMan is killed with SIGKILL. The kernel then kills what
// is left of the namespace (ProcMan's guardian has killed the jobs already).
func TestPID1ExitsWithProcManStatus(t *testing.T) {
	needPIDNamespace(t)
	dir := newDir(t)
	base, cmd, pid1 := startAsPID1(t, dir)
	pm := checkInit(t, pid1)
	if pm == 0 {
		t.FailNow()
	}
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "schedule": "reboot",
		"command": `sleep 1000 & wait`})
	poll(t, 10*time.Second, "job svc running", func() bool { return jobState(t, base, "svc").State == "running" })
	procs := tree(cmd.Process.Pid)
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 10*time.Second)
	if st.ExitCode() != 128+int(syscall.SIGKILL) {
		t.Errorf("unshare ended with %v, want exit code %d: PID 1 passing on ProcMan's SIGKILL", st, 128+int(syscall.SIGKILL))
	}
	deadline := time.Now().Add(time.Second)
	var pids []int
	for _, p := range procs {
		waitGone(t, p.pid, deadline)
		pids = append(pids, p.pid)
	}
	assertNoProcsIn(t, dir, deadline, pids...)
}
