//go:build linux

package osproc

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Leftover names a process group that an earlier ProcMan may have left
// running when it died, and how to tell its processes from strangers that
// merely reuse its pid or pgid.
type Leftover struct {
	PGID int
	// Leader is the pid of the group's leader, LeaderStart its start time
	// (Stat.Start; 0: unknown). Both must match for the leader to count.
	Leader      int
	LeaderStart uint64
	// Marker is an environment entry ("K=V") that every process of the group
	// inherited; "" if none.
	Marker string
}

// KillLeftovers SIGKILLs what is left of group l.PGID, sparing any process
// that is not provably its own, and returns the pids it killed. While the
// leader lives (rarely: its parent-death signal kills it with its parent),
// every live process of the group is its own; else those whose environment
// holds the marker are.
func KillLeftovers(l Leftover) []int {
	if l.PGID <= 0 {
		return nil
	}
	leader, ok := ReadStat(l.Leader)
	sameLeader := ok && leader.Alive() && l.LeaderStart != 0 && leader.Start == l.LeaderStart && leader.PGID == l.PGID
	var killed []int
	for _, p := range GroupMembers(l.PGID) {
		if sameLeader || (l.Marker != "" && hasEnv(p.Pid, l.Marker)) {
			if unix.Kill(p.Pid, unix.SIGKILL) == nil {
				killed = append(killed, p.Pid)
			}
		}
	}
	return killed
}

// hasEnv reports whether the process was started with the variable kv ("K=V").
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}
