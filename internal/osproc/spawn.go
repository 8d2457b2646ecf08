//go:build linux

package osproc

import (
	"errors"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Spec is a program to start as the leader of a process group of its own.
type Spec struct {
	// Path is the program; Args are its arguments, after its name.
	Path string
	Args []string
	// Dir is its working directory; empty: this process's.
	Dir string
	// Env is its whole environment.
	Env []string
	// Output takes what it writes to stdout and stderr. The process writes to
	// the file itself: nothing is copied, and no pipe can hold up its wait.
	// nil: /dev/null.
	Output *os.File
	// Cred, if not nil, is who it runs as.
	Cred *Credential
}

// Credential is a user to run a process as.
type Credential struct {
	UID, GID uint32
	Groups   []uint32 // supplementary groups
}

// StartGroup starts the program of s as the leader of a new process group,
// whose id is its pid, with SIGKILL as its parent-death signal, under the
// fork gate; the Reaper waits for it from then on (see Proc).
func (rp *Reaper) StartGroup(s Spec) (*Proc, error) {
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Dir, cmd.Env = s.Dir, s.Env
	if s.Output != nil {
		cmd.Stdout, cmd.Stderr = s.Output, s.Output
	}
	// Pdeathsig is bound to the OS thread that forks, which Go never retires
	// while it runs ordinary goroutines; a guardian covers the rest of the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c := s.Cred; c != nil {
		// The child switches after the fork; it keeps the files it was given,
		// which stay this process's. Go sets Pdeathsig after the switch, which
		// would otherwise clear it.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID, Groups: c.Groups}
	}
	return rp.start(cmd, true)
}

// Proc is a child process a Reaper started and waits for, from the start:
// exactly one wait per process, which no other may take.
type Proc struct {
	// Pid is its pid, and for StartGroup's its process group's id.
	Pid int
	// Start is its start time (Stat.Start), read before it could be reaped;
	// 0 if /proc had none.
	Start uint64

	proc   *os.Process // to signal it: Go's handle, a pidfd, never reaches a recycled pid
	done   chan struct{}
	status unix.WaitStatus
	err    error
	quit   chan struct{} // closed by Close: the wait gives up
	pidfd  *os.File      // what the wait polls, while it does; guarded by Reaper.mu
	usage  Usage         // what wait4 reported; set before done is closed

	// thenMu guards then, WhenDone's f, and fired: done is closed.
	thenMu sync.Mutex
	then   func()
	fired  bool

	// mu makes reaping the process and signalling its group exclusive
	// (SignalGroup), and guards reaped and orphans.
	mu      sync.Mutex
	reaped  bool
	orphans Usage
}

// Done is closed once the process has ended and been reaped, or once the
// Reaper's Close gave up waiting for it.
func (p *Proc) Done() <-chan struct{} { return p.done }

// WhenDone has f called once Done is closed: by the wait that closes it, so
// f must not block; or at once, if it is closed already. A Proc takes one f.
func (p *Proc) WhenDone(f func()) {
	p.thenMu.Lock()
	fired := p.fired
	if !fired {
		p.then = f
	}
	p.thenMu.Unlock()
	if fired {
		f()
	}
}

// closeDone closes done, then calls what WhenDone was given.
func (p *Proc) closeDone() {
	close(p.done)
	p.thenMu.Lock()
	f := p.then
	p.fired, p.then = true, nil
	p.thenMu.Unlock()
	if f != nil {
		f()
	}
}

// Exit waits until Done and says how the process ended: its wait status, or
// the error of the wait (ErrAbandoned if Close gave it up), in which case
// that is not known.
func (p *Proc) Exit() (unix.WaitStatus, error) {
	<-p.done
	return p.status, p.err
}

func (p *Proc) kill() { p.proc.Kill() }

// ErrReaped: the process has ended and been reaped, so its pid, the id of its
// group, may already name another process.
var ErrReaped = errors.New("the process has been reaped")

// SignalGroup sends sig to every process of the group p leads (StartGroup),
// as long as p has not been reaped: until then no other process can be given
// its pid, so the group of that id is surely p's, never one that took the
// id over. Once p is reaped it returns ErrReaped, whatever is left of the group.
func (p *Proc) SignalGroup(sig unix.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return ErrReaped
	}
	return SignalGroup(p.Pid, sig)
}

// reapNow reaps p if it has exited, without blocking, and keeps what it cost.
func (p *Proc) reapNow() (reaped bool, ws unix.WaitStatus, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ru unix.Rusage
	got, err := unix.Wait4(p.Pid, &ws, unix.WNOHANG, &ru)
	if err == unix.EINTR || (err == nil && got == 0) {
		return false, 0, nil
	}
	// Reaped, or beyond reach (the wait failed): either way the pid may be
	// someone else's from now on.
	p.reaped = true
	if err == nil {
		p.usage = usageOf(&ru)
	}
	return true, ws, err
}

// ErrClosed: the Reaper has been closed, and starts nothing more.
var ErrClosed = errors.New("the reaper is closed")

// start starts cmd under the fork gate, tracks its process until its wait
// has reaped it, and begins that wait. A process that leads a group of its
// own is given the orphans of the group the Reaper reaps (Orphans).
func (rp *Reaper) start(cmd *exec.Cmd, leads bool) (*Proc, error) {
	p, err := rp.fork(cmd, leads)
	if err != nil {
		return nil, err
	}
	if st, ok := ReadStat(p.Pid); ok { // a zombie's is readable too: nothing reaps it before the wait
		p.Start = st.Start
	}
	rp.waitFor(p)
	return p, nil
}

// fork starts cmd under the fork gate's read lock, which Close takes to
// stop every start: a process is either started and waited for, or refused.
func (rp *Reaper) fork(cmd *exec.Cmd, leads bool) (*Proc, error) {
	rp.forks.RLock()
	defer rp.forks.RUnlock()
	rp.mu.Lock()
	closed := rp.closed
	rp.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{Pid: cmd.Process.Pid, proc: cmd.Process, done: make(chan struct{}), quit: make(chan struct{})}
	rp.mu.Lock()
	if rp.adopt {
		rp.tracked[p.Pid]++
	}
	if leads { // before the fork gate is let go: no orphan of the group is reaped before
		rp.groups[p.Pid] = p
	}
	rp.waiting[p] = struct{}{}
	rp.waits.Add(1)
	rp.mu.Unlock()
	return p, nil
}
