//go:build linux

package osproc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reaper owns this process's children: those it starts (the leaders of
// process groups, the guardian) and waits for, and, when it adopts, the
// orphans of all of them, which the kernel then hands to this process
// instead of to init.
//
// Why adopt them: a group's leader that is killed leaves its children to
// their new parent, and until that parent reaps them they are zombies that
// still count as members of the group. Many inits (and container runtimes'
// PID 1) reap late, so a stop would have to scan /proc to tell zombies from
// live processes. Adopted, they are reaped at once, and kill(-pgid, 0) alone
// says whether a group is gone.
//
// The catch: reaping adopted orphans means waiting for children this Reaper
// did not start, without ever stealing the exit status of one it did. So
// every fork happens under the fork gate (forks, read-locked, so that forks
// run in parallel), the child is tracked before the gate is let go, and an
// orphan is reaped only under the write lock, tracked children being left to
// their own waits.
//
// It owns one goroutine that waits for every process it started (poller.go;
// a process without a pidfd gets one of its own) and, when it adopts or has
// to wait without a pidfd, one that handles SIGCHLD: Close ends them all.
type Reaper struct {
	adopt   bool
	noPidfd bool // tests: wait as a kernel without pidfd_open makes it

	forks   sync.RWMutex
	mu      sync.Mutex
	tracked map[int]int // pid -> count: a pid recycled between a wait and its untrack stays tracked
	// groups are the groups StartGroup began, by id, until ForgetGroup: the
	// orphans of each are attributed to its leader (Proc.Orphans).
	groups map[int]*Proc
	// The waits under way, which Close gives up; those it gave up; whether
	// it has begun (nothing more is started then). Guarded by mu.
	waiting   map[*Proc]struct{}
	abandoned []int
	closed    bool
	looping   bool           // the SIGCHLD goroutine runs (guarded by mu)
	waits     sync.WaitGroup // one per process waited for
	poll      *poller        // the one wait for every process with a pidfd (poller.go); guarded by mu
	pollOnce  sync.Once
	closeOnce sync.Once
	closeErr  error

	census census // for the groups kill(-pgid, 0) cannot settle

	// orphanMu makes each orphan's reap one step, its cost counted once,
	// whether the SIGCHLD loop or the stop of its group reaps it.
	orphanMu sync.Mutex

	reapedMu sync.Mutex    // guards reaped and chld
	reaped   chan struct{} // closed and replaced whenever an orphan is reaped
	chld     chan struct{} // closed and replaced at every SIGCHLD, for waits without a pidfd
	// untracked holds a token once a tracked child has been reaped since the
	// SIGCHLD loop last took one.
	untracked chan struct{}
	rounds    atomic.Int64 // rounds of reaping, for tests

	quit chan struct{}
	done chan struct{}
}

// NewReaper makes this process the subreaper of its descendants when adopt is
// set, and starts the goroutine that reaps them on SIGCHLD.
func NewReaper(adopt bool) (*Reaper, error) {
	rp := &Reaper{adopt: adopt, tracked: make(map[int]int), groups: make(map[int]*Proc), waiting: make(map[*Proc]struct{}),
		reaped: make(chan struct{}), chld: make(chan struct{}), untracked: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	if adopt {
		if err := setSubreaper(true); err != nil {
			return nil, fmt.Errorf("subreaper: %w", err)
		}
		rp.startLoopLocked() // no other goroutine knows rp yet
	}
	return rp, nil
}

// startLoopLocked starts the goroutine that handles SIGCHLD. Asking for
// SIGCHLD undoes a SIG_IGN the program may have set for it, which makes the
// kernel reap its children: so it runs only when the Reaper adopts, or has
// to wait without a pidfd. The caller holds rp.mu.
func (rp *Reaper) startLoopLocked() {
	rp.looping = true
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	go rp.run(sig)
}

func setSubreaper(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, v, 0, 0, 0)
}

// untrack ends the tracking that fork began, once the wait has reaped the
// process (or given it up), and tells the SIGCHLD loop, which may be waiting
// for just that to see the orphans the exit hid.
func (rp *Reaper) untrack(pid int) {
	if !rp.adopt {
		return
	}
	rp.mu.Lock()
	if rp.tracked[pid]--; rp.tracked[pid] <= 0 {
		delete(rp.tracked, pid)
	}
	rp.mu.Unlock()
	select {
	case rp.untracked <- struct{}{}:
	default: // the loop has a token already
	}
}

// run handles SIGCHLD until Close: it reaps, and wakes the waits without a
// pidfd. When a tracked child's exit hides others (waitid shows one exited
// child at a time), it looks again as soon as a wait has reaped a tracked
// child, since the SIGCHLD of those hidden may have come and gone already:
// not in between, when it would find the same child again, nor a while
// later, which left the orphans of groups stopped together zombies, and
// their stops waiting, that long after the last shell was reaped.
func (rp *Reaper) run(sig chan os.Signal) {
	defer close(rp.done)
	defer signal.Stop(sig)
	var again <-chan struct{} // armed while a tracked child hides others
	for {
		select {
		case <-sig:
			rp.reapedMu.Lock()
			close(rp.chld)
			rp.chld = make(chan struct{})
			rp.reapedMu.Unlock()
		case <-again:
		case <-rp.quit:
			return
		}
		again = nil
		if rp.reap() {
			again = rp.untracked
		}
	}
}

// nextChld is closed at the next SIGCHLD.
func (rp *Reaper) nextChld() <-chan struct{} {
	rp.reapedMu.Lock()
	defer rp.reapedMu.Unlock()
	return rp.chld
}

// reap collects every exited child that is not tracked. It reports whether
// it stopped at a tracked one, behind which others may wait. Most SIGCHLDs
// are for tracked children, which their own waits reap: a first look,
// without the fork gate, settles those, and the gate is taken only when an
// orphan may be there (or a child forked just now, whose fork the gate then
// waits for, and which it then finds tracked).
func (rp *Reaper) reap() (blocked bool) {
	if !rp.adopt {
		return false
	}
	rp.rounds.Add(1)
	if pid := peekExited(); pid <= 0 || rp.isTracked(pid) {
		return pid > 0
	}
	n := 0
	defer func() {
		if n > 0 {
			rp.reapedMu.Lock()
			close(rp.reaped)
			rp.reaped = make(chan struct{})
			rp.reapedMu.Unlock()
		}
	}()
	rp.forks.Lock()
	defer rp.forks.Unlock()
	for {
		pid := peekExited()
		if pid <= 0 {
			return false
		}
		if rp.isTracked(pid) {
			return true
		}
		if !rp.reapOrphan(pid) {
			return false // cannot happen; but never spin holding the fork lock
		}
		n++
	}
}

// reapOrphan reaps exited orphan pid, once what it cost is given to the
// group it was in: both are read before the reap, since its group id cannot
// be reused while it is a zombie, and whoever sees it gone sees it counted.
// It reports whether pid is reaped, by this call or by one before.
func (rp *Reaper) reapOrphan(pid int) bool {
	rp.orphanMu.Lock()
	defer rp.orphanMu.Unlock()
	var info unix.Siginfo
	var ru unix.Rusage
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, &ru)
	if errors.Is(err, unix.ECHILD) {
		return true // the stop of its group, or the loop, was first
	}
	if pgid, gerr := unix.Getpgid(pid); err == nil && gerr == nil {
		rp.attribute(pgid, usageOf(&ru))
	}
	var ws unix.WaitStatus
	got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	return got == pid
}

// reapGroup reaps the exited orphans of group pgid: a stop need not wait
// for the SIGCHLD loop, which sees one exited child at a time, and reaches
// the orphans of groups stopped together only after every shell before
// them. No fork gate is needed: a child this process forks is in a group of
// its own or in this process's, never in a job's group, whose id stays in
// use as long as the group has members; and the group's leader, while it
// has not been reaped, is tracked and left to its wait.
func (rp *Reaper) reapGroup(pgid int) {
	if !rp.adopt {
		return
	}
	for {
		var info unix.Siginfo // zeroed: with WNOHANG and no exited child, the kernel leaves it so
		err := unix.Waitid(unix.P_PGID, pgid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		pid := childPid(&info)
		if err != nil || pid <= 0 || rp.isTracked(pid) || !rp.reapOrphan(pid) {
			return
		}
	}
}

func (rp *Reaper) isTracked(pid int) bool {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	_, ok := rp.tracked[pid]
	return ok
}

// nextReap is closed when an orphan is next reaped: nil, which never fires,
// when ProcMan adopts none.
func (rp *Reaper) nextReap() <-chan struct{} {
	if !rp.adopt {
		return nil
	}
	rp.reapedMu.Lock()
	defer rp.reapedMu.Unlock()
	return rp.reaped
}

// peekExited returns an exited child without reaping it, or 0 if there is none.
func peekExited() int {
	for {
		var info unix.Siginfo // zeroed: with WNOHANG and no exited child, the kernel leaves it so
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0 // ECHILD: no children at all
		}
		return childPid(&info)
	}
}

// sigchld is the head of a siginfo_t as waitid fills it in for a child:
// si_signo, si_errno and si_code, then a union aligned as a pointer whose
// first field is the child's pid. unix.Siginfo leaves that union opaque.
type sigchld struct {
	signo, errno, code int32
	_                  [0]uintptr // the union's alignment: 16 bytes in on 64-bit, 12 on 32-bit
	pid                int32
}

// childPid is si_pid of what waitid reported.
func childPid(info *unix.Siginfo) int {
	return int((*sigchld)(unsafe.Pointer(info)).pid)
}

// Close stops adopting and reaping, and gives up the waits still under way
// (see Proc): their processes outlived every attempt to end them, and the
// error, wrapping ErrAbandoned, names them. Those stay this process's
// children, as do orphans adopted already: in the binary, which exits next,
// they go to init, which reaps them. It returns once every goroutine of the
// Reaper has ended.
func (rp *Reaper) Close() error {
	rp.closeOnce.Do(func() { rp.closeErr = rp.close() })
	return rp.closeErr
}

func (rp *Reaper) close() error {
	err := rp.abandon()
	rp.mu.Lock()
	looping := rp.looping // none starts once closed
	rp.mu.Unlock()
	if looping {
		close(rp.quit)
		<-rp.done
	}
	if rp.adopt {
		err = errors.Join(err, setSubreaper(false))
		rp.reap()
	}
	return err
}
