//go:build linux

package osproc

import (
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// sleeper starts sleep in group pgid (0: a group of its own) with the extra
// environment entries; cleanup kills and reaps it.
func sleeper(t *testing.T, pgid int, env ...string) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "1000")
	c.Env = append(os.Environ(), env...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	return c
}

func startOf(t *testing.T, pid int) uint64 {
	t.Helper()
	st, ok := ReadStat(pid)
	if !ok {
		t.Fatalf("no process %d", pid)
	}
	return st.Start
}

// The leader, known by pid and start time, vouches for its whole group.
func TestKillLeftoversOfALiveLeader(t *testing.T) {
	leader := sleeper(t, 0)
	pgid := leader.Process.Pid
	member := sleeper(t, pgid)
	killed := KillLeftovers(Leftover{PGID: pgid, Leader: pgid, LeaderStart: startOf(t, pgid)})
	slices.Sort(killed)
	if want := []int{pgid, member.Process.Pid}; !slices.Equal(killed, want) {
		t.Fatalf("killed %v, want %v", killed, want)
	}
	for _, c := range []*exec.Cmd{leader, member} {
		if c.Wait(); c.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("%d ended %v, want SIGKILL", c.Process.Pid, c.ProcessState)
		}
	}
}

// A process that reuses the leader's pid with another start time, or shares
// the group without the marker, is a stranger: only the marked go.
func TestKillLeftoversSparesStrangers(t *testing.T) {
	stranger := sleeper(t, 0)
	pgid := stranger.Process.Pid
	marked := sleeper(t, pgid, "RUN_ID=r1")
	other := sleeper(t, pgid, "RUN_ID=r2")
	killed := KillLeftovers(Leftover{PGID: pgid, Leader: pgid, LeaderStart: startOf(t, pgid) - 1, Marker: "RUN_ID=r1"})
	if want := []int{marked.Process.Pid}; !slices.Equal(killed, want) {
		t.Fatalf("killed %v, want only the marked process %v", killed, want)
	}
	marked.Wait()
	for _, c := range []*exec.Cmd{stranger, other} {
		if gone(c.Process.Pid) {
			t.Errorf("%d was killed: a stranger", c.Process.Pid)
		}
	}
	if got := KillLeftovers(Leftover{PGID: pgid, Leader: pgid}); len(got) != 0 {
		t.Errorf("without a start time or a marker, killed %v", got)
	}
}
