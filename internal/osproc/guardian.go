//go:build linux

package osproc

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// guardianProgram runs in a small awk process, one per Guardian. Watch
// writes "+PGID" to it, and Forget "-PGID" once the group is gone. When the
// pipe reaches EOF, which is also what happens when this process is killed
// with SIGKILL, it kills every group still listed. The parent-death signal
// alone reaches only each group's leader, never the rest of the group. awk,
// for its associative arrays: a shell keeping the list in a string spent half
// a minute of CPU on the removals when 2,000 groups were forgotten. The kills go 200 groups to a
// shell command line, well under the kernel's limit on one argument; the
// shell's kill needs no PATH, and "kill -KILL -PGID" is how dash takes a group.
const guardianProgram = `
/^[+]/ { live[substr($0, 2)] = 1; next }
/^-/ { delete live[substr($0, 2)]; next }
END {
	n = 0; groups = ""
	for (pg in live) {
		groups = groups " -" pg
		if (++n % 200 == 0) { system("kill -KILL" groups " 2>/dev/null"); groups = "" }
	}
	if (groups != "") system("kill -KILL" groups " 2>/dev/null")
}`

// Guardian is the link to a guardian process. It keeps its own copy
// of the live groups, so that a guardian that dies (killed by someone, OOM) is
// replaced at once by its monitor goroutine and told everything again: until
// then, a crash of this process would leave every group behind.
type Guardian struct {
	mu   sync.Mutex
	cur  *guardianProc
	live map[int]struct{}
	done bool
	kids *Reaper
	log  *slog.Logger
	awk  string // the awk binary, found once at start

	quit    chan struct{} // closed by close: the monitor ends
	stopped chan struct{} // closed when the monitor has ended
}

// guardianProc is one guardian process.
type guardianProc struct {
	w       io.WriteCloser
	proc    *Proc
	pid     int
	spawned time.Time
	gone    <-chan struct{} // closed once it is reaped
}

// StartGuardian starts a guardian process, started and waited for by kids,
// and the goroutine that replaces it whenever it ends before Close.
func StartGuardian(kids *Reaper, log *slog.Logger) (*Guardian, error) {
	awk, err := exec.LookPath("awk")
	if err != nil { // without it, no group would be protected against a crash of this process
		return nil, fmt.Errorf("guardian: %w", err)
	}
	g := &Guardian{live: make(map[int]struct{}), kids: kids, log: log, awk: awk,
		quit: make(chan struct{}), stopped: make(chan struct{})}
	if g.cur, err = g.spawn(); err != nil {
		return nil, err
	}
	go g.monitor()
	return g, nil
}

func (g *Guardian) spawn() (*guardianProc, error) {
	cmd := exec.Command(g.awk, guardianProgram)
	// Its own process group: a Ctrl-C meant for this process's terminal must
	// not take the guardian down with it. No parent-death signal: outliving
	// this process is what it is for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// It needs nothing of this process's environment: an empty one keeps its
	// secrets (PROCMAN_TOKEN) out, and tools that find a group's processes by
	// an inherited variable do not count the guardian as one.
	cmd.Env = []string{}
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("guardian: %w", err)
	}
	// Reaped the moment it ends, whoever ends it (its pidfd wakes the
	// netpoller): left a zombie, it would hide the orphans behind it from
	// the reaper (see Reaper.run), and the monitor learns of it at once.
	p, err := g.kids.start(cmd, false)
	if err != nil {
		return nil, fmt.Errorf("guardian: %w", err)
	}
	return &guardianProc{w: w, proc: p, pid: p.Pid, spawned: time.Now(), gone: p.Done()}, nil
}

// monitor replaces the guardian whenever it ends before close, until close.
// A guardian that keeps dying as soon as it starts is replaced once a second,
// not in a loop.
func (g *Guardian) monitor() {
	defer close(g.stopped)
	quick := false // the last guardian replaced lived less than a second
	for {
		g.mu.Lock()
		gp := g.cur
		g.mu.Unlock()
		select {
		case <-gp.gone:
		case <-g.quit:
			return
		}
		wasQuick := quick
		quick = time.Since(gp.spawned) < time.Second
		for wait := quick && wasQuick; ; wait = true {
			if wait && !g.pause(time.Second) {
				return
			}
			err := g.replace(gp)
			if err == nil {
				break
			}
			g.log.Error("guardian could not be restarted; jobs are not protected against a crash of ProcMan", "err", err)
		}
	}
}

// pause waits for d, or reports false if close comes first.
func (g *Guardian) pause(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.quit:
		return false
	}
}

// replace starts a new guardian in place of old, which has ended, and tells
// it every live group.
func (g *Guardian) replace(old *guardianProc) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.cur != old {
		return nil // closing, or replaced already
	}
	old.w.Close()
	gp, err := g.spawn()
	if err != nil {
		return err
	}
	g.cur = gp
	for pg := range g.live {
		if _, err := fmt.Fprintf(gp.w, "+%d\n", pg); err != nil {
			return fmt.Errorf("guardian: %w", err)
		}
	}
	g.log.Warn("guardian process ended; started a new one and gave it every live group",
		"old_pid", old.pid, "how", old.how(), "pid", gp.pid, "groups", len(g.live))
	return nil
}

// Watch asks the guardian to kill group pgid if this process dies.
func (g *Guardian) Watch(pgid int) error { return g.send('+', pgid) }

// Forget tells the guardian the group is gone, so a recycled pgid is never killed.
func (g *Guardian) Forget(pgid int) error { return g.send('-', pgid) }

// Groups lists the groups the guardian would kill now, in no order.
func (g *Guardian) Groups() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Collect(maps.Keys(g.live))
}

// send tells the guardian of a change. A guardian that cannot be written to
// is dead or dying: it is killed to be sure, and the monitor replaces it and
// tells the new one every live group, this change included.
func (g *Guardian) send(op byte, pgid int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	if op == '+' {
		g.live[pgid] = struct{}{}
	} else {
		delete(g.live, pgid)
	}
	if _, err := fmt.Fprintf(g.cur.w, "%c%d\n", op, pgid); err != nil {
		g.cur.proc.kill()
	}
	return nil
}

// Close ends the guardian; groups still listed are killed by it.
func (g *Guardian) Close() error {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return nil
	}
	g.done = true
	gp := g.cur
	gp.w.Close()
	g.mu.Unlock()
	close(g.quit)
	<-g.stopped
	<-gp.gone
	ws, err := gp.proc.Exit()
	if err != nil {
		return fmt.Errorf("guardian: wait: %w", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("guardian: %s", gp.how())
	}
	return nil
}

// how says how the guardian process ended, once gone is closed.
func (gp *guardianProc) how() string {
	ws, err := gp.proc.Exit()
	switch {
	case err != nil:
		return "unknown (wait: " + err.Error() + ")"
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	}
	return "unknown"
}
