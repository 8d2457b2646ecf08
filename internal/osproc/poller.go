//go:build linux

package osproc

import (
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// poller is the one waiter for every process a Reaper started: an epoll set
// of their pidfds (each becomes readable when its process exits), itself
// watched by Go's netpoller. So a running process costs a descriptor and an
// entry in a map, not a goroutine with its stack, however many there are.
//
// Its goroutine runs from the first process waited for until Close. A
// process whose pidfd cannot be had (no descriptor left, a kernel before
// 5.3) is waited for the old way, by a goroutine of its own (Reaper.wait).
type poller struct {
	rp   *Reaper
	epfd *os.File // the epoll set, non-blocking: Read on it parks in the netpoller

	mu    sync.Mutex
	procs map[int32]*Proc // by pidfd; guarded by mu
	ended bool            // the loop has ended: nothing more is added
	done  chan struct{}   // closed when run has ended
}

// pollBatch is how many exits one look at the epoll set takes.
const pollBatch = 64

func newPoller(rp *Reaper) (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &poller{rp: rp, epfd: os.NewFile(uintptr(fd), "epoll"), procs: make(map[int32]*Proc), done: make(chan struct{})}, nil
}

// add waits for p through its pidfd; false if that cannot be done, and p
// needs a wait of its own.
func (pl *poller) add(p *Proc) bool {
	fd, err := unix.PidfdOpen(p.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return false
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.ended {
		unix.Close(fd)
		return false // the old way gives up at once: rp.closed is set
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(pl.fd(), unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return false
	}
	pl.procs[int32(fd)] = p
	return true
}

func (pl *poller) fd() int { return int(pl.epfd.Fd()) }

// run reaps each process as its pidfd says it has exited, until Close sets
// the epoll file's deadline; then it has a last look at every process still
// waited for and gives up the others (ErrAbandoned). Should the epoll set
// ever fail, each process left goes on with a wait of its own.
func (pl *poller) run() {
	defer close(pl.done)
	rc, err := pl.epfd.SyscallConn()
	if err == nil {
		events := make([]unix.EpollEvent, pollBatch)
		err = rc.Read(func(uintptr) bool {
			pl.collect(events)
			return false // wait for the set to be readable again
		})
	}
	closing := errors.Is(err, os.ErrDeadlineExceeded)
	pl.mu.Lock()
	pl.ended = true
	left := pl.procs
	pl.procs = nil
	pl.mu.Unlock()
	for fd, p := range left {
		pl.drop(fd)
		if !closing {
			go pl.rp.wait(p)
			continue
		}
		reaped, ws, werr := p.reapNow()
		if !reaped {
			ws, werr = 0, ErrAbandoned
		}
		pl.rp.finish(p, ws, werr)
	}
	pl.epfd.Close()
}

// collect reaps the processes whose pidfds are readable now.
func (pl *poller) collect(events []unix.EpollEvent) {
	for {
		n, err := unix.EpollWait(pl.fd(), events, 0)
		if err == unix.EINTR {
			continue
		}
		for _, ev := range events[:max(n, 0)] {
			pl.mu.Lock()
			p := pl.procs[ev.Fd]
			pl.mu.Unlock()
			if p == nil {
				continue
			}
			if reaped, ws, werr := p.reapNow(); reaped {
				pl.mu.Lock()
				delete(pl.procs, ev.Fd)
				pl.mu.Unlock()
				pl.drop(ev.Fd)
				pl.rp.finish(p, ws, werr)
			}
		}
		if n < len(events) {
			return
		}
	}
}

// drop takes a pidfd out of the set, and closes it.
func (pl *poller) drop(fd int32) {
	unix.EpollCtl(pl.fd(), unix.EPOLL_CTL_DEL, int(fd), nil)
	unix.Close(int(fd))
}

// stop makes run give up: it is parked on the epoll file, or about to be.
func (pl *poller) stop() { pl.epfd.SetReadDeadline(time.Now()) }
