package main

// ProcMan as PID 1 (a container without tini): these tests run the binary as
// PID 1 of a new PID namespace, made with unshare(1), and check from outside
// that its init reaps the orphans reparented to it, passes signals on to
// ProcMan and ends with ProcMan's exit code. They need root (or whatever lets
// unshare make a PID namespace); elsewhere they are skipped. The terminal test
// also needs script(1), from util-linux as unshare is.
//
// /proc is remounted inside the namespace only, so the test finds the
// namespace's processes in the host's /proc, as the descendants of the
// unshare process. Pids reported by the API are namespace pids, not used here.

import (
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

	"github.com/Mk-Chan/procman/internal/osproc"
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

// pid1Run is a binary started as PID 1 of a new PID namespace.
type pid1Run struct {
	base string    // the API's URL
	cmd  *exec.Cmd // unshare, or script(1) running unshare; registered like startBinary's
	pid1 int       // the host pid of the namespace's PID 1
	tty  *os.File  // with a terminal: what is written here is typed on it
}

// startAsPID1 starts the binary as PID 1 of a new PID namespace, with its
// database and logs in dir. With tty, it runs on a terminal made by script(1),
// in the terminal's foreground process group, as under docker run -it; its
// output then arrives through the terminal. --kill-child takes the namespace
// down if unshare is killed; cleanup SIGTERMs PID 1 if the test did not end it.
func startAsPID1(t *testing.T, dir string, tty bool) pid1Run {
	t.Helper()
	args := []string{"unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		binPath, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0"}
	cmd := exec.Command(args[0], args[1:]...)
	var pr pid1Run
	if tty {
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script (util-linux) not found:", err)
		}
		// exec: the shell script runs (SHELL, else sh) must not stay in the
		// terminal's foreground group, where the ^C would kill it and script
		// would report its 130 rather than ProcMan's status.
		line := "exec"
		for _, a := range args {
			line += " '" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		cmd = exec.Command("script", "--quiet", "--return", "--command", line, "/dev/null")
		in, out, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, pr.tty = in, out
		t.Cleanup(func() { out.Close() })
		defer in.Close()
	}
	cmd.Dir = dir
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	pr.cmd = cmd
	run, addrc := watchOutput(cmd, r)
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
			if pr.pid1 != 0 {
				syscall.Kill(pr.pid1, syscall.SIGTERM)
			}
			select {
			case <-run.exited:
			case <-time.After(20 * time.Second):
				// --kill-child: PID 1 gets SIGKILL, the namespace dies with it.
				for _, p := range tree(cmd.Process.Pid) {
					if p.comm == "unshare" {
						syscall.Kill(p.pid, syscall.SIGKILL)
					}
				}
				cmd.Process.Kill()
				<-run.exited
			}
		}
		waitDrained(run)
		if t.Failed() {
			t.Logf("output of procman as PID 1:\n%s", stderrOf(cmd))
		}
	})

	select {
	case addr := <-addrc:
		pr.base = "http://" + addr
		for _, p := range tree(cmd.Process.Pid) {
			if parent, ok := readProcStat(p.ppid); ok && parent.comm == "unshare" {
				pr.pid1 = p.pid
			}
		}
		if pr.pid1 == 0 {
			t.Fatalf("no child of unshare under %d: %v", cmd.Process.Pid, tree(cmd.Process.Pid))
		}
		return pr
	case <-run.exited:
		waitDrained(run)
		t.Fatalf("unshare exited before procman listened (%v); output:\n%s", cmd.ProcessState, stderrOf(cmd))
	case <-time.After(15 * time.Second):
		t.Fatalf("procman as PID 1 did not log that it listens within 15s; output:\n%s", stderrOf(cmd))
	}
	return pr
}

// regexpNSpid1 matches the status of a process that is PID 1 of its (nested) namespace.
var regexpNSpid1 = regexp.MustCompile(`(?m)^NSpid:\s.*\s1$`)

// allProcs lists every process, zombies included.
func allProcs() []procStat {
	procs := osproc.Procs()
	out := make([]procStat, 0, len(procs))
	for _, st := range procs {
		out = append(out, fromStat(st))
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
	exe1, _ := os.Readlink("/proc/" + strconv.Itoa(pid1) + "/exe")
	if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pm.pid) + "/exe"); exe != exe1 {
		t.Errorf("the child %d of PID 1 runs %q, want the binary %q", pm.pid, exe, exe1)
	}
	if pm.comm != filepath.Base(binPath) {
		t.Errorf("the child %d of PID 1 is named %q in ps, want %q", pm.pid, pm.comm, filepath.Base(binPath))
	}
	env, _ := os.ReadFile("/proc/" + strconv.Itoa(pm.pid) + "/environ")
	if !slices.Contains(strings.Split(string(env), "\x00"), initChildVar+"=1") {
		t.Errorf("the child %d (%s) of PID 1 lacks %s=1 in its environment", pm.pid, pm.comm, initChildVar)
	}
	if pm.pgid != pm.pid {
		t.Errorf("ProcMan %d is in process group %d, want its own", pm.pid, pm.pgid)
	}
	return pm.pid
}

// slowStopper is a job that takes half a second to stop after SIGTERM: time
// for a second signal, which would make ProcMan kill it at once, to show.
var slowStopper = map[string]any{"name": "svc", "type": "continuous", "schedule": "reboot",
	"command": `trap 'sleep 0.5; exit 0' TERM; sleep 1000 & wait`}

// startSlowStopper creates slowStopper and waits until its sleep runs.
func startSlowStopper(t *testing.T, pr pid1Run) {
	t.Helper()
	createJob(t, pr.base, slowStopper)
	poll(t, 10*time.Second, "job svc running", func() bool { return jobState(t, pr.base, "svc").State == "running" })
	poll(t, 10*time.Second, "svc's sleep", func() bool {
		return slices.ContainsFunc(tree(pr.cmd.Process.Pid), func(p procStat) bool { return p.comm == "sleep" && p.state != 'Z' })
	})
}

// wantGracefulEnd checks that the namespace ended with exit code 0 after
// ProcMan stopped svc gracefully, on one signal, and that no process of
// procs (the tree before the signal) or of dir is left.
func wantGracefulEnd(t *testing.T, pr pid1Run, dir string, procs []procStat) {
	t.Helper()
	st := waitExit(t, pr.cmd, 15*time.Second)
	if st.ExitCode() != 0 {
		t.Errorf("exit code %d, want 0 (ProcMan's, after a graceful stop)", st.ExitCode())
	}
	out := stderrOf(pr.cmd)
	wantLogs(t, out, "job=svc from=stopping to=stopped", `msg="procman shut down" jobs_stopped=1`)
	if strings.Contains(out, "second signal") {
		t.Errorf("ProcMan got the signal twice and killed its jobs at once")
	}
	deadline := time.Now().Add(time.Second)
	var pids []int
	for _, p := range procs {
		waitGone(t, p.pid, deadline)
		pids = append(pids, p.pid)
	}
	assertNoProcsIn(t, dir, deadline, pids...)
}

// Nothing in the namespace stays a zombie: processes that escaped their run
// (setsid) and outlived its shell are adopted by ProcMan, a subreaper (else
// they would go to PID 1), and reaped once they exit. Then SIGTERM to PID 1 (docker stop) reaches
// ProcMan once, which stops its jobs gracefully; all ends with exit code 0.
func TestPID1ReapsOrphansAndForwardsSIGTERM(t *testing.T) {
	needPIDNamespace(t)
	dir := newDir(t)
	pr := startAsPID1(t, dir, false)
	pm := checkInit(t, pr.pid1)
	if pm == 0 {
		t.FailNow()
	}

	// Three orphans, each living a second out of the run's process group, so
	// that ProcMan's sweep of the finished run leaves them alone. The shell
	// waits until each has left the group (ready.N) before it exits.
	createJob(t, pr.base, map[string]any{"name": "orphans", "type": "one_time", "schedule": "reboot",
		"command": `for i in 1 2 3; do setsid sh -c ': > ready.$0; exec sleep 1' $i & done
			until [ -e ready.1 ] && [ -e ready.2 ] && [ -e ready.3 ]; do sleep 0.01; done
			echo "${PROCMAN_INIT_CHILD-unset}" > marker`})
	poll(t, 10*time.Second, "job orphans exited", func() bool { return jobState(t, pr.base, "orphans").State == "exited" })
	if b, _ := os.ReadFile(filepath.Join(dir, "marker")); string(b) != "unset\n" {
		t.Errorf("a job sees %s=%q, want it unset", initChildVar, b)
	}
	seen := map[int]bool{}
	poll(t, 5*time.Second, "three orphans adopted by ProcMan", func() bool {
		for _, p := range childrenOf(pm) {
			if p.comm == "sleep" {
				seen[p.pid] = true
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
		z := zombies(tree(pr.cmd.Process.Pid))
		if len(z) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("zombies in the namespace 2s after the orphans ended (PID 1 is %d): %+v", pr.pid1, z)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	startSlowStopper(t, pr)
	procs := tree(pr.cmd.Process.Pid)
	if err := syscall.Kill(pr.pid1, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wantGracefulEnd(t, pr, dir, procs)
}

// Ctrl-C on a terminal (docker run -it) sends SIGINT to the terminal's
// foreground process group, the init's. ProcMan, in a group of its own, must
// get it once, from the init: were it in the init's group, it would get it
// twice and take the second for "kill every job now".
func TestPID1CtrlCOnTerminal(t *testing.T) {
	needPIDNamespace(t)
	dir := newDir(t)
	pr := startAsPID1(t, dir, true)
	checkInit(t, pr.pid1)
	startSlowStopper(t, pr)
	procs := tree(pr.cmd.Process.Pid)
	if _, err := pr.tty.Write([]byte{0x03}); err != nil { // ^C
		t.Fatal(err)
	}
	wantGracefulEnd(t, pr, dir, procs)
}

// The init ends with ProcMan's exit status, picked out of every status it
// reaps: 128+9 when ProcMan is killed with SIGKILL. The kernel then kills what
// is left of the namespace (ProcMan's guardian has killed the jobs already).
func TestPID1ExitsWithProcManStatus(t *testing.T) {
	needPIDNamespace(t)
	dir := newDir(t)
	pr := startAsPID1(t, dir, false)
	pm := checkInit(t, pr.pid1)
	if pm == 0 {
		t.FailNow()
	}
	createJob(t, pr.base, map[string]any{"name": "svc", "type": "continuous", "schedule": "reboot",
		"command": `sleep 1000 & wait`})
	poll(t, 10*time.Second, "job svc running", func() bool { return jobState(t, pr.base, "svc").State == "running" })
	procs := tree(pr.cmd.Process.Pid)
	if err := syscall.Kill(pm, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, pr.cmd, 10*time.Second)
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

// The init drops $PROCMAN_TOKEN and $PROCMAN_DB (which may hold a password)
// from its own environment block once ProcMan has them, and ProcMan from its
// own once read: jobs can read both.
func TestPID1DropsTheToken(t *testing.T) {
	needPIDNamespace(t)
	t.Setenv("PROCMAN_TOKEN", goodToken)
	const dbSecret = "postgres://procman:" + secretPW + "@db.invalid/procman" // unused: -db wins
	t.Setenv("PROCMAN_DB", dbSecret)
	dir := newDir(t)
	pr := startAsPID1(t, dir, false)
	pm := checkInit(t, pr.pid1)
	if pm == 0 {
		t.FailNow()
	}
	for _, pid := range []int{pr.pid1, pm} {
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(env), goodToken) {
			t.Errorf("the token is in /proc/%d/environ", pid)
		}
		if strings.Contains(string(env), secretPW) {
			t.Errorf("$PROCMAN_DB's password is in /proc/%d/environ", pid)
		}
	}
}
