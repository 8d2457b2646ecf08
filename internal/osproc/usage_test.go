//go:build linux

package osproc

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// spin is a shell loop that burns a little CPU (some tens of milliseconds).
const spin = `i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done`

// What a leader cost comes back from its wait: its own CPU and that of the
// children it waited for, and the largest resident set among them.
func TestUsageOfALeaderAndWhatItWaitedFor(t *testing.T) {
	rp := newTestReaper(t, false)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "(" + spin + "); exit 0"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Usage(); got != (Usage{}) {
		t.Errorf("usage before the end: %+v, want none", got)
	}
	exitCode(t, p)
	u := p.Usage()
	if u.User+u.System < 10*time.Millisecond {
		t.Errorf("usage %+v: want the CPU of the child the shell waited for (tens of ms)", u)
	}
	if u.MaxRSS < 100<<10 || u.MaxRSS > 1<<30 {
		t.Errorf("peak RSS %d bytes, want a shell's (in KiB from the kernel, given in bytes)", u.MaxRSS)
	}
	if o := p.Orphans(); o != (Usage{}) {
		t.Errorf("orphans %+v of a group that left none", o)
	}
}

// The orphans of a group, reaped by an adopting Reaper, are its leader's:
// what they cost is in Orphans, not in the leader's own Usage.
func TestOrphansAreTheirGroups(t *testing.T) {
	rp := newTestReaper(t, true)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "(" + spin + ") & exit 0"}})
	if err != nil {
		t.Fatal(err)
	}
	exitCode(t, p)
	if !rp.WaitGroupGone(p.Pid, time.After(10*time.Second), nil) {
		t.Fatal("the orphan did not end")
	}
	eventually(t, "the orphan's cost", func() bool { o := p.Orphans(); return o.User+o.System >= 10*time.Millisecond })
	if u := p.Usage(); u.User+u.System >= 10*time.Millisecond {
		t.Errorf("the leader's own usage %+v holds the orphan's, which it never waited for", u)
	}
	if o := p.Orphans(); o.MaxRSS <= 0 {
		t.Errorf("orphans %+v: want their peak RSS", o)
	}
	rp.ForgetGroup(p)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if _, ok := rp.groups[p.Pid]; ok {
		t.Error("the group is still accounted for after ForgetGroup")
	}
}

// A leader's SignalGroup reaches its whole group; once the leader has been
// reaped it sends nothing, since its pid may already be another's.
func TestSignalGroupOfALeader(t *testing.T) {
	rp := newTestReaper(t, true)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	var child int
	eventually(t, "the shell's child", func() bool {
		for _, st := range GroupMembers(p.Pid) {
			if st.Pid != p.Pid {
				child = st.Pid
			}
		}
		return child != 0
	})
	if err := p.SignalGroup(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if ws, err := p.Exit(); err != nil || ws.Signal() != syscall.SIGTERM {
		t.Errorf("leader: %v, %v; want SIGTERM", ws, err)
	}
	eventually(t, "the child gone", func() bool { return gone(child) })
	if err := p.SignalGroup(syscall.SIGTERM); !errors.Is(err, ErrReaped) {
		t.Errorf("SignalGroup after the leader was reaped: %v, want ErrReaped", err)
	}
}
