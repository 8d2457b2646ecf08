//go:build linux

package osproc

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// ErrAbandoned: the Reaper was closed while it still waited for the
// process, which had outlived every attempt to end it; it is no longer
// waited for, and how it ends is not known.
var ErrAbandoned = errors.New("gave up waiting for processes still running")

// errNotPollable: the netpoller would not take a pidfd.
var errNotPollable = errors.New("pidfd not pollable")

// waitFor begins the one wait for p: through the Reaper's poller, which
// waits for every process at once, or where that cannot be, on a goroutine
// of p's own.
func (rp *Reaper) waitFor(p *Proc) {
	if pl := rp.waiter(); pl != nil && pl.add(p) {
		return
	}
	go rp.wait(p)
}

// waiter returns the poller, started with the first wait; nil if there can be
// none (tests without pidfds, or no epoll set to be had).
func (rp *Reaper) waiter() *poller {
	if rp.noPidfd {
		return nil
	}
	rp.pollOnce.Do(func() {
		pl, err := newPoller(rp)
		if err != nil {
			return
		}
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if rp.closed {
			pl.epfd.Close()
			return
		}
		rp.poll = pl
		go pl.run()
	})
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return rp.poll
}

// finish ends the wait for p, which has been reaped or given up.
func (rp *Reaper) finish(p *Proc, ws unix.WaitStatus, err error) {
	rp.untrack(p.Pid)
	p.proc.Release() // Go's own handle on the process: reaped now, or given up
	p.status, p.err = ws, err
	rp.mu.Lock()
	delete(rp.waiting, p)
	if errors.Is(p.err, ErrAbandoned) {
		rp.abandoned = append(rp.abandoned, p.Pid)
	}
	rp.mu.Unlock()
	p.closeDone()
	rp.waits.Done()
}

// wait is the goroutine that waits for a process the poller cannot, from its
// start until it has been reaped or Close gives it up.
func (rp *Reaper) wait(p *Proc) {
	ws, err := rp.waitExit(p)
	rp.finish(p, ws, err)
}

// waitExit waits for p and reaps it, without cmd.Wait: that blocks an OS
// thread in waitid for as long as the process lives, some 50 KiB of memory
// per process waited for. A pidfd (Linux 5.3) becomes readable when its
// process exits, so Go's netpoller waits for it; without one, the wait looks
// at every SIGCHLD. The error is that of the wait itself, or ErrAbandoned.
func (rp *Reaper) waitExit(p *Proc) (unix.WaitStatus, error) {
	if f := rp.openPidfd(p); f != nil {
		ws, err := waitPidfd(p, f)
		rp.mu.Lock()
		p.pidfd = nil // Close must not touch it once closed
		rp.mu.Unlock()
		f.Close()
		if !errors.Is(err, errNotPollable) {
			return ws, err
		}
	}
	return rp.waitPolled(p)
}

// openPidfd returns p's pidfd, registered for Close to cut its wait short;
// nil if there is none.
func (rp *Reaper) openPidfd(p *Proc) *os.File {
	if rp.noPidfd {
		return nil
	}
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "pidfd") // non-blocking: registered with the netpoller
	rp.mu.Lock()
	defer rp.mu.Unlock()
	p.pidfd = f
	if rp.closed { // Close came between the start and now
		f.SetReadDeadline(time.Now())
	}
	return f
}

// waitPidfd reaps child p once its pidfd f says it has exited, or gives up
// with ErrAbandoned once f's read deadline passes.
func waitPidfd(p *Proc, f *os.File) (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	reaped, werr := false, error(nil)
	try := func() bool {
		reaped, ws, werr = p.reapNow()
		return reaped
	}
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Read(func(uintptr) bool { return try() })
	}
	switch {
	case reaped:
		return ws, werr
	case errors.Is(err, os.ErrDeadlineExceeded):
		if try() { // it ended just now
			return ws, werr
		}
		return 0, ErrAbandoned
	}
	return 0, errNotPollable
}

// waitPolled waits for p without a pidfd (Linux before 5.3, or no descriptor
// left): it looks, without blocking, at every SIGCHLD, and at least once a
// second in case none comes (SIGCHLD ignored), until Close.
func (rp *Reaper) waitPolled(p *Proc) (unix.WaitStatus, error) {
	rp.mu.Lock()
	if !rp.looping && !rp.closed && !signal.Ignored(unix.SIGCHLD) {
		rp.startLoopLocked()
	}
	rp.mu.Unlock()
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for wait := time.Millisecond; ; wait = min(2*wait, time.Second) {
		chld := rp.nextChld() // before the look, so that no SIGCHLD is missed
		if reaped, ws, err := p.reapNow(); reaped {
			return ws, err
		}
		t.Reset(wait)
		select {
		case <-chld:
			t.Stop()
		case <-t.C:
		case <-p.quit:
			return 0, ErrAbandoned
		}
	}
}

// abandon stops every start and gives up the waits under way, once each has
// had its last look; it returns once their goroutines have ended, with an
// error naming the processes given up on.
func (rp *Reaper) abandon() error {
	rp.forks.Lock() // no start is under way, and none begins after
	rp.mu.Lock()
	rp.closed = true
	for p := range rp.waiting {
		close(p.quit)
		if p.pidfd != nil {
			p.pidfd.SetReadDeadline(time.Now())
		}
	}
	pl := rp.poll
	rp.mu.Unlock()
	rp.forks.Unlock()
	if pl != nil {
		pl.stop()
		<-pl.done
	}
	rp.waits.Wait()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if len(rp.abandoned) == 0 {
		return nil
	}
	slices.Sort(rp.abandoned)
	return fmt.Errorf("%w: pids %v, which stay children of this process (init reaps them once it exits)",
		ErrAbandoned, rp.abandoned)
}
