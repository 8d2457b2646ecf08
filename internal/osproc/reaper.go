//go:build linux

package osproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Reaper owns ProcMan's children: the runs' leaders and the guardian, which
// os/exec starts and waits for, and, with Config.Subreaper, the orphans of
// every job, which the kernel hands to ProcMan instead of to init.
//
// Why adopt them: a job's shell that is killed leaves its children to their
// new parent, and until that parent reaps them they are zombies that still
// count as members of the job's process group. Many inits (and container
// runtimes' PID 1) reap late, so a stop would have to scan /proc to tell
// zombies from live processes. Adopted, they are reaped at once, and
// kill(-pgid, 0) alone says whether a group is gone.
//
// The catch: reaping adopted orphans means waiting for children os/exec did
// not start, without ever stealing the exit status of one it did. So every
// fork happens under forks (read-locked, so spawns run in parallel), the child
// is tracked before the lock is released, and the reaper looks at exited
// children only under the write lock, leaving tracked ones to their Wait.
type Reaper struct {
	adopt bool

	forks   sync.RWMutex
	mu      sync.Mutex
	tracked map[int]int // pid -> count: a pid recycled between a Wait and its untrack stays tracked

	census census // for the groups kill(-pgid, 0) cannot settle

	reapedMu sync.Mutex
	reaped   chan struct{} // closed and replaced whenever an orphan is reaped

	quit chan struct{}
	done chan struct{}
}

// NewReaper makes this process the subreaper of its descendants when adopt is
// set, and starts the goroutine that reaps them on SIGCHLD.
func NewReaper(adopt bool) (*Reaper, error) {
	rp := &Reaper{adopt: adopt, tracked: make(map[int]int), reaped: make(chan struct{})}
	if !adopt {
		return rp, nil
	}
	if err := setSubreaper(true); err != nil {
		return nil, fmt.Errorf("subreaper: %w", err)
	}
	rp.quit, rp.done = make(chan struct{}), make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, unix.SIGCHLD)
	go rp.run(sig)
	return rp, nil
}

func setSubreaper(on bool) error {
	v := uintptr(0)
	if on {
		v = 1
	}
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, v, 0, 0, 0)
}

// startCmd starts cmd under the fork gate and tracks its process until waitExit.
func (rp *Reaper) startCmd(cmd *exec.Cmd) error {
	if !rp.adopt {
		return cmd.Start()
	}
	rp.forks.RLock()
	defer rp.forks.RUnlock()
	if err := cmd.Start(); err != nil {
		return err
	}
	rp.mu.Lock()
	rp.tracked[cmd.Process.Pid]++
	rp.mu.Unlock()
	return nil
}

// waitExit waits for a process started by startCmd and reaps it, without
// cmd.Wait: that blocks an OS thread in waitid for as long as the process
// lives, some 50 KiB of ProcMan's memory per running job. A pidfd (Linux 5.3)
// becomes readable when its process exits, so Go's netpoller waits for all
// of them on one thread. The error is that of the wait itself.
// It takes the process, not its Cmd, so that the Cmd and the environment it
// holds are garbage once the process has started.
func (rp *Reaper) waitExit(p *os.Process) (unix.WaitStatus, error) {
	pid := p.Pid
	defer rp.untrack(pid)
	ws, err := waitPidfd(pid)
	if errors.Is(err, errNoPidfd) {
		state, err := p.Wait()
		if err != nil {
			return 0, err
		}
		sys, _ := state.Sys().(syscall.WaitStatus)
		return unix.WaitStatus(sys), nil
	}
	p.Release() // Go's own handle on the process, reaped now
	return ws, err
}

func (rp *Reaper) untrack(pid int) {
	if !rp.adopt {
		return
	}
	rp.mu.Lock()
	if rp.tracked[pid]--; rp.tracked[pid] <= 0 {
		delete(rp.tracked, pid)
	}
	rp.mu.Unlock()
}

var errNoPidfd = errors.New("pidfd_open unavailable")

// waitPidfd reaps child pid once its pidfd says it has exited.
func waitPidfd(pid int) (unix.WaitStatus, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return 0, errNoPidfd
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: registered with the netpoller
	defer f.Close()
	var ws unix.WaitStatus
	reaped, werr := false, error(nil)
	try := func(opts int) bool {
		got, err := unix.Wait4(pid, &ws, opts, nil)
		if err == unix.EINTR || (err == nil && got == 0) {
			return false
		}
		reaped, werr = true, err
		return true
	}
	if rc, err := f.SyscallConn(); err == nil {
		rc.Read(func(uintptr) bool { return try(unix.WNOHANG) })
	}
	for !reaped { // the netpoller would not take the pidfd: block as cmd.Wait does
		try(0)
	}
	return ws, werr
}

// run reaps on every SIGCHLD until close. It looks again shortly when a
// tracked child's exit hides others (waitid shows one child at a time), since
// the SIGCHLD of those may have come and gone already.
func (rp *Reaper) run(sig chan os.Signal) {
	defer close(rp.done)
	defer signal.Stop(sig)
	var again <-chan time.Time
	for {
		select {
		case <-sig:
		case <-again:
		case <-rp.quit:
			return
		}
		again = nil
		if rp.reap() {
			again = time.After(5 * time.Millisecond)
		}
	}
}

// reap collects every exited child that is not tracked. It reports whether
// it stopped at a tracked one, behind which others may wait.
func (rp *Reaper) reap() (blocked bool) {
	if !rp.adopt {
		return false
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
		rp.mu.Lock()
		_, mine := rp.tracked[pid]
		rp.mu.Unlock()
		if mine {
			return true
		}
		var ws unix.WaitStatus
		if got, _ := unix.Wait4(pid, &ws, unix.WNOHANG, nil); got != pid {
			return false // cannot happen; but never spin holding the fork lock
		}
		n++
	}
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

// Close stops adopting and reaping. Orphans adopted already stay this
// process's children: in the binary, which exits next, they then go to init.
func (rp *Reaper) Close() error {
	if !rp.adopt {
		return nil
	}
	close(rp.quit)
	<-rp.done
	err := setSubreaper(false)
	rp.reap()
	return err
}

// GroupAlive reports whether any live (non-zombie) process is in group pgid.
// scan says whether to tell zombies from live processes by reading /proc,
// which costs milliseconds with many processes: without it, a zombie whose
// parent has yet to reap it counts as alive. Adopted orphans never linger as
// zombies, so while the rest of a group is being killed, a plain kill(-pgid, 0)
// is enough; a scan settles the rare zombie whose parent lives outside the group.
func (rp *Reaper) GroupAlive(pgid int, scan bool) bool {
	since := time.Now()
	if !killable(pgid) {
		return false
	}
	if rp.adopt {
		rp.reap()
		if !killable(pgid) {
			return false
		}
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
