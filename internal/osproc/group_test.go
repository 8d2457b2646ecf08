//go:build linux

package osproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestSignalGroupOfGoneGroup(t *testing.T) {
	// A pgid no process uses: signalling it is not an error, and it is not alive.
	if err := SignalGroup(1<<22-3, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if (&Reaper{}).GroupAlive(1<<22-3, true) {
		t.Fatal("unused group reported alive")
	}
}

// zombieGroup leaves an exited, unreaped process in a group of its own, and
// reaps it at cleanup.
func zombieGroup(t *testing.T) int {
	t.Helper()
	z := exec.Command("/bin/sh", "-c", "exit 0")
	z.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Wait() })
	eventually(t, "a zombie", func() bool {
		st, ok := ReadStat(z.Process.Pid)
		return ok && st.State == 'Z'
	})
	return z.Process.Pid
}

// A zombie still counts as a member for kill(-pgid, 0); only the census,
// which reads each process's state, tells it is gone.
func TestCensusTellsZombiesFromTheLiving(t *testing.T) {
	pgid := zombieGroup(t)
	var rp Reaper
	if !rp.GroupAlive(pgid, false) {
		t.Error("without a scan, a group with a zombie counts as alive (kill(-pgid, 0) succeeds)")
	}
	if rp.GroupAlive(pgid, true) {
		t.Error("the census counted a zombie as alive")
	}
	if m := GroupMembers(pgid); len(m) != 0 {
		t.Errorf("members of a group of one zombie: %+v", m)
	}
}

// waitid with WNOWAIT names an exited child and leaves it to be reaped:
// the pid is read from the siginfo the kernel filled in.
func TestPeekExitedNamesTheChildAndLeavesIt(t *testing.T) {
	pid := zombieGroup(t)
	if got := peekExited(); got != pid {
		t.Fatalf("peekExited() = %d, want the zombie %d", got, pid)
	}
	if st, ok := ReadStat(pid); !ok || st.State != 'Z' {
		t.Fatalf("after the peek, %d is %+v (ok %v), want still a zombie", pid, st, ok)
	}
}

// The command name may hold spaces and parentheses; the fields after it are
// read from its last ')'.
func TestReadStatOfAnOddName(t *testing.T) {
	odd := filepath.Join(t.TempDir(), "x) (y z")
	b, err := os.ReadFile("/bin/sleep")
	if err == nil {
		err = os.WriteFile(odd, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(odd, "1000")
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	defer c.Process.Kill()
	st, ok := ReadStat(c.Process.Pid)
	if !ok || st.Comm != "x) (y z" || st.Pid != c.Process.Pid || st.PPid != os.Getpid() || st.PGID != c.Process.Pid ||
		!st.Alive() || st.Start == 0 {
		t.Fatalf("ReadStat: %+v, %v", st, ok)
	}
	if !slices.ContainsFunc(Procs(), func(p Stat) bool { return p.Pid == st.Pid && p.Comm == st.Comm }) {
		t.Errorf("Procs lacks %+v", st)
	}
}

// Asking whether a group is alive never waits for the fork gate: a start
// under way (here the gate is held for reading, as a fork holds it) holds up
// no stop's poll, and polls never make starts queue behind them.
func TestGroupAliveDoesNotTakeTheForkGate(t *testing.T) {
	rp := newTestReaper(t, true)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Exit()
	defer SignalGroup(p.Pid, syscall.SIGKILL)
	rp.forks.RLock()
	answered := make(chan bool, 1)
	go func() { answered <- rp.GroupAlive(p.Pid, false) }()
	select {
	case alive := <-answered:
		if !alive {
			t.Error("a live group reported gone")
		}
		rp.forks.RUnlock()
	case <-time.After(5 * time.Second):
		t.Error("GroupAlive waited for the fork gate")
		rp.forks.RUnlock()
		<-answered
	}
}

// When only children that a wait of theirs reaps have exited (most SIGCHLDs:
// the runs' leaders, the guardian), the reaper needs no fork gate to learn
// it: starts under way hold up no reaping round, nor it them.
func TestReapOfTrackedChildrenTakesNoForkGate(t *testing.T) {
	rp := newTestReaper(t, true)
	// A tracked child whose wait has yet to reap it.
	c := exec.Command("sleep", "1000")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	rp.mu.Lock()
	rp.tracked[pid]++
	rp.mu.Unlock()
	defer c.Wait()
	defer rp.untrack(pid)
	c.Process.Kill()
	eventually(t, "a zombie", func() bool {
		st, ok := ReadStat(pid)
		return ok && st.State == 'Z'
	})
	rp.forks.RLock()
	answered := make(chan bool, 1)
	go func() { answered <- rp.reap() }()
	select {
	case blocked := <-answered:
		if !blocked {
			t.Error("reap did not stop at the tracked child")
		}
		rp.forks.RUnlock()
	case <-time.After(5 * time.Second):
		t.Error("reap waited for the fork gate")
		rp.forks.RUnlock()
		<-answered
	}
}

// Many stops polling at once, in a Reaper that adopts, share their /proc
// scans: a few a second in all, not one after another for as long as the
// groups take to go. (Its bound holds however slow the machine: a slow one
// scans less.)
func TestPollsShareTheirScans(t *testing.T) {
	rp := newTestReaper(t, true)
	var groups []*Proc
	for range 20 {
		p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "exec sleep 1000"}})
		if err != nil {
			t.Fatal(err)
		}
		groups = append(groups, p)
	}
	defer func() {
		for _, p := range groups {
			SignalGroup(p.Pid, syscall.SIGKILL)
			p.Exit()
		}
	}()
	window := time.After(time.Second)
	stop := make(chan time.Time)
	var polls sync.WaitGroup
	for _, p := range groups {
		polls.Go(func() { rp.WaitGroupGone(p.Pid, stop, nil) })
	}
	<-window
	rp.census.mu.Lock()
	scans := rp.census.scans
	rp.census.mu.Unlock()
	close(stop)
	polls.Wait()
	if scans > 10 {
		t.Errorf("%d scans of /proc in a second by 20 polling stops, want a few", scans)
	}
}

// A poll never trusts a census scan begun before it: the group may be
// younger than the scan, which then could not have seen its processes.
func TestWaitGroupGoneTrustsNoScanOlderThanItself(t *testing.T) {
	rp := newTestReaper(t, true)
	rp.census.mu.Lock() // a scan that has just begun, before the group exists
	rp.census.at, rp.census.live = time.Now(), map[int]int{}
	rp.census.mu.Unlock()
	dir := t.TempDir()
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & : > forked; wait"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		SignalGroup(p.Pid, syscall.SIGKILL)
		p.Exit()
	}()
	eventually(t, "the shell's child", func() bool { return exists(filepath.Join(dir, "forked")) })
	syscall.Kill(p.Pid, syscall.SIGKILL) // the leader only: its sleep lives on, adopted
	p.Exit()
	if rp.WaitGroupGone(p.Pid, time.After(300*time.Millisecond), nil) {
		t.Error("the group was said to be gone while its sleep lives")
	}
}

// The reaps of other groups' orphans wake a poll, and are no time gone by:
// the poll still scans /proc only once it has waited for a while.
func TestReapsDoNotHastenScans(t *testing.T) {
	rp := newTestReaper(t, true)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "exec sleep 1000"}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		SignalGroup(p.Pid, syscall.SIGKILL)
		p.Exit()
	}()
	stop := make(chan time.Time)
	begun := time.Now()
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		rp.WaitGroupGone(p.Pid, stop, nil)
	}()
	// Each leaves an orphan that the Reaper reaps once it exits.
	for range 8 {
		q, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 0.01 & exit 0"}})
		if err != nil {
			t.Fatal(err)
		}
		q.Exit()
		rp.WaitGroupGone(q.Pid, time.After(10*time.Second), nil)
	}
	rp.census.mu.Lock()
	scans, at := rp.census.scans, rp.census.at
	rp.census.mu.Unlock()
	close(stop)
	<-polled
	if scans > 0 && at.Sub(begun) < 100*time.Millisecond {
		t.Errorf("a poll scanned /proc %s after it began, woken by reaps", at.Sub(begun))
	}
}

// While a tracked child's exit hides the others from the reaper, it waits
// for that child's wait to reap it, rather than looking again and again.
func TestReaperWaitsForTheTrackedChildItStoppedAt(t *testing.T) {
	rp := newTestReaper(t, true)
	c := exec.Command("sleep", "1000") // tracked: a wait of its own reaps it
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	rp.mu.Lock()
	rp.tracked[pid]++
	rp.mu.Unlock()
	defer c.Wait()
	defer rp.untrack(pid)
	c.Process.Kill()
	eventually(t, "the reaper to stop at it", func() bool {
		st, ok := ReadStat(pid)
		return ok && st.State == 'Z' && rp.rounds.Load() > 0
	})
	before := rp.rounds.Load()
	time.Sleep(100 * time.Millisecond) // a window to count rounds in, not a synchronisation
	if n := rp.rounds.Load() - before; n > 1 {
		t.Errorf("%d rounds of reaping in 100 ms while a tracked child hid the others, want at most 1", n)
	}
}

// A stop reaps its own group's orphans rather than waiting for the SIGCHLD
// loop, which sees one exited child at a time and, when many groups are
// stopped together, reaches their orphans only after every shell before
// them. Here the loop never runs: the group must still end with no zombie
// left, and without a scan of /proc.
func TestWaitGroupGoneReapsItsGroupsOrphans(t *testing.T) {
	rp := &Reaper{adopt: true, tracked: make(map[int]int), groups: make(map[int]*Proc), waiting: make(map[*Proc]struct{}),
		reaped: make(chan struct{}), chld: make(chan struct{}), untracked: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if err := setSubreaper(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rp.Close() })
	dir := t.TempDir()
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & : > forked; wait"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shell's child", func() bool { return exists(filepath.Join(dir, "forked")) })
	SignalGroup(p.Pid, syscall.SIGKILL)
	p.Exit()
	if !rp.WaitGroupGone(p.Pid, time.After(10*time.Second), nil) {
		t.Fatal("the group was said to outlive SIGKILL")
	}
	if killable(p.Pid) {
		t.Error("the group's orphan was left a zombie")
	}
	if rp.census.scans > 0 {
		t.Errorf("%d scans of /proc to see the group gone, want none", rp.census.scans)
	}
}
