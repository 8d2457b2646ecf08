package main

// Crash recovery with the real binary: a ProcMan killed with SIGKILL leaves a
// run open in its database; the next ProcMan on that database must kill what
// is left of the run, record it with outcome "unknown" and put its job in
// state "unknown".

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// reapedMsg is what the next ProcMan logs when it kills what a run left behind.
const reapedMsg = "reaped processes of a run left by an earlier ProcMan"

// fileLines returns the lines of a file, none if it does not exist.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) || len(b) == 0 {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// crashScene is what the test knows of a binary running the continuous job
// "cont" (a shell with a grandchild, started by hand) and, if asked, the
// reboot job "boot", which has run once.
type crashScene struct {
	base      string
	cmd       *exec.Cmd
	shell, gc int   // cont's shell and its grandchild
	group     []int // every process of cont's group
	run       procman.Run
	guardian  int
}

func newCrashScene(t *testing.T, dir string, withBoot bool) crashScene {
	t.Helper()
	var sc crashScene
	sc.base, sc.cmd = startBinary(t, dir)
	createJob(t, sc.base, map[string]any{"name": "cont", "type": "continuous", "schedule": "manual",
		"command": `sleep 1000 & echo $! > gc.pid; wait`})
	if withBoot {
		createJob(t, sc.base, map[string]any{"name": "boot", "type": "one_time", "schedule": "reboot",
			"command": `echo boot >> boots.txt`})
	}
	startJob(t, sc.base, "cont")
	sc.shell = waitRunning(t, sc.base, "cont")
	sc.gc = readPid(t, filepath.Join(dir, "gc.pid"))
	sc.group = waitGroupSleeps(t, sc.shell, 1)
	if !slices.Contains(sc.group, sc.gc) {
		t.Fatalf("grandchild %d missing from the job's group %v", sc.gc, sc.group)
	}
	if withBoot {
		poll(t, 10*time.Second, "boot job exited", func() bool { return jobState(t, sc.base, "boot").State == "exited" })
		if got := fileLines(t, filepath.Join(dir, "boots.txt")); !slices.Equal(got, []string{"boot"}) {
			t.Fatalf("boots.txt after the first start: %q, want one line", got)
		}
	}
	rs := jobRuns(t, sc.base, "cont")
	if len(rs) != 1 || rs[0].EndedAt != nil || rs[0].Outcome != "" || rs[0].PID != sc.shell {
		t.Fatalf("runs of cont before the crash: %+v, want one open run of pid %d", rs, sc.shell)
	}
	sc.run = rs[0]
	// boot's shell has exited and been waited for: the one other child is the guardian.
	sc.guardian = findGuardian(t, sc.cmd.Process.Pid, sc.shell)
	return sc
}

// startBinaryNoResume starts the binary on dir's database with -no-resume:
// a job whose run was lost stays unknown instead of being started again.
func startBinaryNoResume(t *testing.T, dir string) (string, *exec.Cmd) {
	t.Helper()
	return startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "-no-resume", "0")
}

// killBinary SIGKILLs the binary and waits for it to end.
func killBinary(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	st := waitExit(t, cmd, 5*time.Second)
	if ws, ok := st.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("procman ended with %v, want killed by SIGKILL", st)
	}
}

// checkLostRun checks that the restarted binary recorded the run that was
// going on at the crash as ended with outcome unknown, and cont as unknown.
func checkLostRun(t *testing.T, base string, lost procman.Run) {
	t.Helper()
	rs := jobRuns(t, base, "cont")
	if len(rs) != 1 {
		t.Fatalf("runs of cont after the restart: %+v, want only the run %d", rs, lost.ID)
	}
	if r := rs[0]; r.ID != lost.ID || r.Outcome != "unknown" || r.EndedAt == nil || r.Error == "" || r.Trigger != "manual" {
		t.Errorf("run of cont after the restart: %+v, want run %d ended with outcome unknown and an error", r, lost.ID)
	}
	st := jobState(t, base, "cont")
	if st.State != "unknown" || st.PID != 0 || st.Error == "" {
		t.Errorf("cont after the restart: %+v, want state unknown with no pid and an error", st)
	}
	if st.LastRun == nil || st.LastRun.ID != lost.ID || st.LastRun.Outcome != "unknown" {
		t.Errorf("cont's last_run after the restart: %+v, want run %d, unknown", st.LastRun, lost.ID)
	}
}

// reapedLines returns the lines of stderr that log a reaping.
func reapedLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, reapedMsg) {
			out = append(out, l)
		}
	}
	return out
}

// stopAndCheck ends the binary with SIGTERM and checks that nothing is left
// working in dir.
func stopAndCheck(t *testing.T, cmd *exec.Cmd, dir string) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, cmd, 15*time.Second); st.ExitCode() != 0 {
		t.Errorf("procman: exit code %d after SIGTERM, want 0", st.ExitCode())
	}
	assertNoProcsIn(t, dir, time.Now().Add(time.Second))
}

// The guardian is stopped first (so that ProcMan, which replaces a guardian
// that dies, sees nothing), then the binary is killed, then the guardian,
// before it could act on its pipe's end: only the parent-death signal
// reaches the job's shell, so its grandchild outlives ProcMan, and the next
// ProcMan on the same database must kill it (the reaper), record the run as
// unknown, and run the reboot job once more.
func TestCrashRecoveryReapsLeftovers(t *testing.T) {
	dir := newDir(t)
	sc := newCrashScene(t, dir, true)

	if err := syscall.Kill(sc.guardian, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	killBinary(t, sc.cmd)
	if err := syscall.Kill(sc.guardian, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitGone(t, sc.guardian, killed.Add(5*time.Second))
	if !waitGone(t, sc.shell, killed.Add(5*time.Second)) {
		t.Fatalf("the job's shell %d outlived procman: no parent-death signal", sc.shell)
	}
	// Nothing has killed the grandchild: it is left for the reaper.
	if gone(sc.gc) {
		t.Fatalf("grandchild %d is gone before the restart: the reaper would have nothing to do", sc.gc)
	}

	base, cmd := startBinaryNoResume(t, dir)
	restarted := time.Now()
	// Open, which reaps, ends before the binary listens: allow only a moment.
	if !waitGone(t, sc.gc, restarted.Add(3*time.Second)) {
		t.Errorf("the grandchild %d of the lost run survived the restart", sc.gc)
	}
	for _, p := range sc.group {
		waitGone(t, p, restarted.Add(3*time.Second))
	}
	checkLostRun(t, base, sc.run)

	t.Run("reaping is logged", func(t *testing.T) {
		got := reapedLines(stderrOf(cmd))
		if len(got) != 1 {
			t.Fatalf("%d log lines %q, want one; stderr:\n%s", len(got), reapedMsg, stderrOf(cmd))
		}
		for _, w := range []string{"level=WARN", "job=cont", "run=" + strconv.FormatInt(sc.run.ID, 10),
			"pgid=" + strconv.Itoa(sc.shell), "pids=[" + strconv.Itoa(sc.gc) + "]"} {
			if !strings.Contains(got[0], w) {
				t.Errorf("reaping log line %q lacks %q", got[0], w)
			}
		}
	})

	t.Run("reboot job runs exactly once more", func(t *testing.T) {
		boots := filepath.Join(dir, "boots.txt")
		poll(t, 10*time.Second, "a second line in boots.txt", func() bool { return len(fileLines(t, boots)) >= 2 })
		poll(t, 10*time.Second, "boot job exited", func() bool { return jobState(t, base, "boot").State == "exited" })
		if got := fileLines(t, boots); !slices.Equal(got, []string{"boot", "boot"}) {
			t.Errorf("boots.txt: %q, want exactly two lines, one per start of procman", got)
		}
		rs := jobRuns(t, base, "boot")
		if len(rs) != 2 {
			t.Fatalf("runs of boot: %+v, want 2", rs)
		}
		for _, r := range rs {
			// Its first run had ended before the crash: nothing of it was lost.
			if r.Trigger != "reboot" || r.Outcome != "exited" {
				t.Errorf("run of boot %+v, want trigger reboot, outcome exited", r)
			}
		}
	})

	stopAndCheck(t, cmd, dir)
}

// Only the binary is killed: its guardian kills the whole group, grandchild
// included, within moments. The next ProcMan finds nothing to reap but still
// records the run as unknown, and the job can be started again.
func TestCrashRecoveryAfterGuardian(t *testing.T) {
	dir := newDir(t)
	sc := newCrashScene(t, dir, false)

	killBinary(t, sc.cmd)
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range append(sc.group, sc.guardian) {
		waitGone(t, p, deadline)
	}
	if t.Failed() {
		t.FailNow()
	}

	base, cmd := startBinaryNoResume(t, dir)
	checkLostRun(t, base, sc.run)
	if got := reapedLines(stderrOf(cmd)); len(got) != 0 {
		t.Errorf("reaped though the guardian left nothing: %q", got)
	}

	// unknown is a resting state: the job starts again, as a new run.
	startJob(t, base, "cont")
	pid := waitRunning(t, base, "cont")
	if pid == sc.shell {
		t.Errorf("cont runs as the pid %d of its lost run", pid)
	}
	rs := jobRuns(t, base, "cont")
	if len(rs) != 2 || rs[0].ID <= sc.run.ID || rs[0].Outcome != "" || rs[0].Trigger != "manual" || rs[1].Outcome != "unknown" {
		t.Errorf("runs of cont after a new start: %+v, want a new open run, then the unknown one", rs)
	}
	stopAndCheck(t, cmd, dir)
}

// A continuous job started by hand is wanted running: after a crash the next
// ProcMan records its lost run as unknown and starts it again, as a new run
// with trigger resume, before it listens.
func TestCrashResumesWantedJob(t *testing.T) {
	dir := newDir(t)
	sc := newCrashScene(t, dir, false)
	killBinary(t, sc.cmd)
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range append(sc.group, sc.guardian) {
		waitGone(t, p, deadline)
	}

	base, cmd := startBinary(t, dir)
	st := jobState(t, base, "cont")
	if st.State != "running" || st.PID == sc.shell || gone(st.PID) {
		t.Fatalf("cont after the crash: %+v, want running again as a new process", st)
	}
	rs := jobRuns(t, base, "cont")
	if len(rs) != 2 || rs[0].Trigger != "resume" || rs[0].EndedAt != nil || rs[1].ID != sc.run.ID || rs[1].Outcome != "unknown" {
		t.Errorf("runs of cont after the crash: %+v, want a resumed open run, then the lost one (unknown)", rs)
	}
	stopAndCheck(t, cmd, dir)
}
