//go:build linux

package osproc

import (
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what processes cost as the kernel accounts it when it reaps them
// (wait4's rusage): CPU time in user and in system mode, and the largest
// resident set any of them had.
type Usage struct {
	User, System time.Duration
	MaxRSS       int64 // bytes
}

// Add is the cost of both: the times summed, the larger peak.
func (u Usage) Add(v Usage) Usage {
	return Usage{User: u.User + v.User, System: u.System + v.System, MaxRSS: max(u.MaxRSS, v.MaxRSS)}
}

// usageOf reads a rusage; Linux gives ru_maxrss in KiB.
func usageOf(ru *unix.Rusage) Usage {
	return Usage{User: time.Duration(ru.Utime.Nano()), System: time.Duration(ru.Stime.Nano()), MaxRSS: ru.Maxrss * 1024}
}

// Usage is what the process cost, itself and the descendants it waited for,
// as wait4 reported when it was reaped; zero until Done.
func (p *Proc) Usage() Usage {
	select {
	case <-p.done:
		return p.usage
	default:
		return Usage{}
	}
}

// Orphans is what the orphans of the process's group that the Reaper reaped
// (when it adopts) cost, so far: the processes of the group whose parent
// died before them, which its own Usage never includes. Only StartGroup's
// processes have it, until ForgetGroup.
func (p *Proc) Orphans() Usage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orphans
}

// ForgetGroup ends the attribution of reaped orphans to p's group; call it
// once the group is gone, before its id can be given to another.
func (rp *Reaper) ForgetGroup(p *Proc) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.groups[p.Pid] == p {
		delete(rp.groups, p.Pid)
	}
}

// attribute adds what a reaped orphan cost to the group it was in, if the
// Reaper started that group.
func (rp *Reaper) attribute(pgid int, u Usage) {
	rp.mu.Lock()
	p := rp.groups[pgid]
	rp.mu.Unlock()
	if p == nil {
		return
	}
	p.mu.Lock()
	p.orphans = p.orphans.Add(u)
	p.mu.Unlock()
}
