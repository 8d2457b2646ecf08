//go:build linux

package osproc

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// SignalGroup sends sig to every process of group pgid. A group that is already
// gone is not an error.
func SignalGroup(pgid int, sig unix.Signal) error {
	if err := unix.Kill(-pgid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return err
	}
	return nil
}

// GroupAlive reports whether any live (non-zombie) process is in group pgid.
// scan says whether to tell zombies from live processes by reading /proc,
// which costs milliseconds with many processes: without it, a zombie whose
// parent has yet to reap it counts as alive. Adopted orphans never linger as
// zombies (the Reaper's goroutine reaps them on SIGCHLD, and WaitGroupGone
// wakes when it has), so while the rest of a group is being killed, a plain
// kill(-pgid, 0) is enough; a scan settles the rare zombie whose parent lives
// outside the group. It never reaps, nor takes the fork gate: a stop's polls
// hold up no start.
func (rp *Reaper) GroupAlive(pgid int, scan bool) bool {
	return rp.groupAlive(pgid, scan, time.Now())
}

// groupAlive is GroupAlive, content with a census scan begun after since.
func (rp *Reaper) groupAlive(pgid int, scan bool, since time.Time) bool {
	if !killable(pgid) {
		return false
	}
	if !scan {
		return true
	}
	// Zombies that someone else has yet to reap still count as members:
	// look at each process.
	return rp.census.alive(pgid, since)
}

func killable(pgid int) bool {
	return !errors.Is(unix.Kill(-pgid, 0), unix.ESRCH)
}

// GroupMembers lists the live (non-zombie) processes of group pgid.
func GroupMembers(pgid int) []Stat {
	var out []Stat
	eachProc(func(st Stat) {
		if st.PGID == pgid && st.Alive() {
			out = append(out, st)
		}
	})
	return out
}

// eachProc calls f with every process it can read in /proc.
func eachProc(f func(Stat)) {
	d, err := os.Open("/proc")
	if err != nil {
		return
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if st, ok := readStat(n); ok {
			f(st)
		}
	}
}

// census counts the live processes of every group from one /proc scan,
// shared by every stop that needs one: with 2,000 groups being stopped at
// once, a scan each read 4,000 stat files 2,000 times over, and a shutdown
// took 6 s.
type census struct {
	mu    sync.Mutex
	at    time.Time   // when the last scan began
	live  map[int]int // pgid -> live members, as of at
	scans int         // how many there were, for tests
}

// alive reports whether group pgid had a live member in a scan begun after
// since; it scans again only if the last one is older.
func (c *census) alive(pgid int, since time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.Before(since) {
		c.at = time.Now()
		c.scans++
		c.live = liveByGroup(len(c.live))
	}
	return c.live[pgid] > 0
}

// liveByGroup counts the live processes of every group that /proc shows,
// as the sampler reads them (eachStat): a scan of thousands of processes
// allocates nothing per process (it was four fifths of a stop's allocations
// when ProcMan does not adopt orphans).
func liveByGroup(size int) map[int]int {
	live := make(map[int]int, size)
	d, err := os.Open("/proc")
	if err != nil {
		return live
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	eachStat(int(d.Fd()), names, func(_ string, st procStat) {
		if st.state != 'Z' {
			live[st.pgid]++
		}
	})
	return live
}

// Stat is what osproc reads from /proc/<pid>/stat.
type Stat struct {
	Pid, PPid, PGID int
	State           byte   // R, S, D, Z (zombie), ... as proc(5) lists them
	Comm            string // the command name, at most 15 bytes
	// Start is the process's start time in clock ticks after boot: with the pid,
	// it names one process for good, so a recycled pid is never mistaken for it.
	Start uint64
}

// Alive reports whether the process has not ended: neither a zombie nor dead.
func (p Stat) Alive() bool { return p.State != 'Z' && p.State != 'X' }

// ReadStat parses /proc/<pid>/stat; ok is false when the process is gone.
func ReadStat(pid int) (Stat, bool) {
	return readStat(strconv.Itoa(pid))
}

// Procs lists every process that /proc shows, zombies included.
func Procs() []Stat {
	var out []Stat
	eachProc(func(st Stat) { out = append(out, st) })
	return out
}

func readStat(pid string) (Stat, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return Stat{}, false
	}
	// The command name may hold spaces and parentheses: it runs from the
	// first '(' to the last ')', and the other fields follow.
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return Stat{}, false
	}
	f := bytes.Fields(b[end+1:]) // f[0] is field 3 (state) of proc(5)
	if len(f) < 20 || len(f[0]) == 0 {
		return Stat{}, false
	}
	st := Stat{State: f[0][0], Comm: string(b[open+1 : end])}
	var e1, e2, e3, e4 error
	st.Pid, e1 = strconv.Atoi(pid)
	st.PPid, e2 = strconv.Atoi(string(f[1]))
	st.PGID, e3 = strconv.Atoi(string(f[2]))
	st.Start, e4 = strconv.ParseUint(string(f[19]), 10, 64)
	return st, errors.Join(e1, e2, e3, e4) == nil
}

// WaitGroupGone waits until group pgid has no live process, or until stop or
// force fires. It wakes when the Reaper reaps an adopted orphan, and
// otherwise polls with a wait growing from 1ms to 50ms: only stops wait
// here, so an idle Reaper does no work.
//
// A poll asks kill(-pgid, 0), which says a group is gone once its last
// zombie has been reaped; only a group that outlasts that for a while is
// also looked for in a census scan of /proc, which reads every process's
// stat file (some 100 ms with 4,000 processes on a busy host). Without
// adopting, that is after 15 ms: an init may leave the group's zombies for
// seconds. When the Reaper adopts, each poll first reaps the group's exited
// orphans (see reapGroup), so a group with no live member left has no member
// at all, and only a zombie whose parent lives on outside the group needs the census:
// polls scan from 100 ms on, and then make do with a scan up to ten polls
// old, which every stop shares. Never one begun before the wait: the group
// may be younger.
func (rp *Reaper) WaitGroupGone(pgid int, stop <-chan time.Time, force <-chan struct{}) bool {
	begun := time.Now()
	scanFrom, wait := 15*time.Millisecond, time.Millisecond
	if rp.adopt {
		scanFrom = 100 * time.Millisecond
	}
	for {
		reaped := rp.nextReap() // before the look, so that no reap is missed
		now := time.Now()
		since := now
		if rp.adopt {
			since = later(begun, now.Add(-10*wait))
		}
		rp.reapGroup(pgid)
		if !rp.groupAlive(pgid, now.Sub(begun) >= scanFrom, since) {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-reaped: // the same wait again: a reap of another group's orphan is no time gone by
		case <-t.C:
			wait = min(wait*2, 50*time.Millisecond)
		case <-stop:
			t.Stop()
			return !rp.GroupAlive(pgid, true)
		case <-force:
			t.Stop()
			return !rp.GroupAlive(pgid, true)
		}
		t.Stop()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
