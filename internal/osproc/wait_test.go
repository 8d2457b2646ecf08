//go:build linux

package osproc

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// reapLater kills and reaps pid at cleanup: a process whose wait was given
// up is still the test's child.
func reapLater(t *testing.T, pid int) {
	t.Cleanup(func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	})
}

// Close gives up the waits still under way, names their processes, and ends
// their goroutines (the package's leak check would see one left); Done closes
// and Exit says ErrAbandoned. Without a pidfd too.
func TestCloseGivesUpTheWaitsStillUnderWay(t *testing.T) {
	for _, noPidfd := range []bool{false, true} {
		t.Run(fmt.Sprintf("noPidfd=%v", noPidfd), func(t *testing.T) {
			rp, err := NewReaper(false)
			if err != nil {
				t.Fatal(err)
			}
			rp.noPidfd = noPidfd
			p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "exec sleep 1000"}})
			if err != nil {
				rp.Close()
				t.Fatal(err)
			}
			reapLater(t, p.Pid)
			err = rp.Close()
			if !errors.Is(err, ErrAbandoned) || !strings.Contains(err.Error(), strconv.Itoa(p.Pid)) {
				t.Errorf("Close: %v, want ErrAbandoned naming %d", err, p.Pid)
			}
			select {
			case <-p.Done():
			default:
				t.Fatal("Done is still open after Close")
			}
			if _, err := p.Exit(); !errors.Is(err, ErrAbandoned) {
				t.Errorf("Exit: %v, want ErrAbandoned", err)
			}
			if _, err := rp.StartGroup(Spec{Path: "/bin/true"}); !errors.Is(err, ErrClosed) {
				t.Errorf("StartGroup after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// A wait that cannot use a pidfd looks at each SIGCHLD: exit codes and
// signals still come back, each to its own process.
func TestWaitWithoutPidfd(t *testing.T) {
	rp := newTestReaper(t, false)
	rp.noPidfd = true
	var ps []*Proc
	for i := range 5 {
		p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", fmt.Sprintf("sleep 0.0%d; exit %d", i, 40+i)}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	killed, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "kill -TERM $$"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		if code := exitCode(t, p); code != 40+i {
			t.Errorf("process %d: exit code %d, want %d", i, code, 40+i)
		}
	}
	if ws, err := killed.Exit(); err != nil || ws.Signal() != syscall.SIGTERM {
		t.Errorf("killed: %v, %v; want SIGTERM", ws, err)
	}
}

// Processes waited for hold no goroutine each: one poller waits for them
// all, and each is still reaped, with its own status, as it exits.
func TestOneWaiterForEveryProcess(t *testing.T) {
	rp := newTestReaper(t, false)
	if _, err := rp.StartGroup(Spec{Path: "/bin/true"}); err != nil { // the poller starts with the first wait
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	var ps []*Proc
	for i := range 50 {
		p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", fmt.Sprintf("sleep 100; exit %d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	if n := runtime.NumGoroutine() - before; n > 5 {
		t.Errorf("%d goroutines more while 50 processes run, want none per process", n)
	}
	for _, p := range ps {
		p.SignalGroup(unix.SIGTERM)
	}
	for _, p := range ps {
		if ws, err := p.Exit(); err != nil || ws.Signal() != syscall.SIGTERM {
			t.Errorf("pid %d: %v, %v; want SIGTERM", p.Pid, ws, err)
		}
	}
}

// WhenDone's f runs once the process is reaped, whether given before the end
// or after it.
func TestWhenDoneFiresOnce(t *testing.T) {
	rp := newTestReaper(t, false)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 100"}})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	before := make(chan struct{}, 2)
	p.WhenDone(func() { calls.Add(1); before <- struct{}{} })
	p.SignalGroup(unix.SIGTERM)
	<-before
	select {
	case <-p.Done():
	default:
		t.Fatal("f ran before Done was closed")
	}
	after := make(chan struct{}, 2)
	p.WhenDone(func() { calls.Add(1); after <- struct{}{} })
	<-after
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls of two WhenDone, want one each", n)
	}
}
