package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// exists reports whether pid is still in the process table, zombie or not.
func exists(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// A process that escapes its run (setsid) and outlives its shell is adopted
// by ProcMan, not by init, and is reaped the moment it exits: no zombie is
// left for an init that may never reap.
func TestOrphanAdoptedAndReaped(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "daemon", "type": "one_time",
		"command": `setsid sh -c 'echo $$ > d.pid; exec sleep 0.5' &
			until [ -s d.pid ]; do sleep 0.01; done`})
	startJob(t, base, "daemon")
	d := readPid(t, filepath.Join(dir, "d.pid"))
	poll(t, 5*time.Second, "the daemon to be adopted by ProcMan", func() bool {
		st, ok := readProcStat(d)
		return ok && st.ppid == cmd.Process.Pid
	})
	poll(t, 5*time.Second, "the daemon to exit and be reaped", func() bool { return !exists(d) })
}

// Stop returns once every process of the run is gone from the process table:
// the shell's child, orphaned when the shell dies, is reaped by ProcMan first.
func TestStopReapsTheWholeGroup(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous",
		"command": `sleep 1000 & echo $! > c.pid; wait`})
	startJob(t, base, "svc")
	shell := waitRunning(t, base, "svc")
	child := readPid(t, filepath.Join(dir, "c.pid"))
	stopJob(t, base, "svc")
	for _, pid := range []int{shell, child} {
		if exists(pid) {
			st, _ := readProcStat(pid)
			t.Errorf("process %d (%s, state %c, parent %d) still in the process table after stop", pid, st.comm, st.state, st.ppid)
		}
	}
}

// Reaping orphans must never take the exit status of a run's shell, which
// os/exec waits for: runs report their own exit code while orphans come and
// go around them all the time.
func TestReapingKeepsExitCodes(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "noise", "type": "continuous",
		"command": `while :; do (setsid sh -c 'exit 3' &); (sleep 0.001 &); done`})
	startJob(t, base, "noise")
	waitRunning(t, base, "noise")
	for i := range 5 {
		name := fmt.Sprintf("code%d", i)
		createJob(t, base, map[string]any{"name": name, "type": "one_time", "command": "exit " + strconv.Itoa(40+i)})
	}
	const rounds = 20
	for range rounds {
		for i := range 5 {
			startJob(t, base, fmt.Sprintf("code%d", i))
		}
		for i := range 5 {
			name := fmt.Sprintf("code%d", i)
			poll(t, 10*time.Second, name+" to exit", func() bool { return jobState(t, base, name).State != "running" })
		}
	}
	for i := range 5 {
		name := fmt.Sprintf("code%d", i)
		runs := jobRuns(t, base, name)
		if len(runs) != rounds {
			t.Errorf("%s: %d runs, want %d", name, len(runs), rounds)
		}
		for _, r := range runs {
			if r.ExitCode == nil || *r.ExitCode != 40+i {
				t.Errorf("%s: a run ended %s with exit code %v (error %q), want %d", name, r.Outcome, r.ExitCode, r.Error, 40+i)
				break
			}
		}
	}
	// What noise started under setsid has left its group, so no stop reaches
	// it; each such process ends by itself in a moment. Wait for the last of
	// them: newDir's check would take one caught between its fork and its
	// exit for a stray of ProcMan's.
	stopJob(t, base, "noise")
	poll(t, 10*time.Second, "noise's processes outside its group to end", func() bool {
		for _, pid := range procsIn(dir) {
			if st, ok := readProcStat(pid); ok && pid != cmd.Process.Pid && st.comm != "awk" { // the guardian stays
				return false
			}
		}
		return true
	})
}
