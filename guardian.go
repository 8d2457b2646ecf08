package procman

import (
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
)

// guardianProgram runs in a small awk process, one per Manager. ProcMan
// writes "+PGID" when a run starts and "-PGID" once its group is gone. When
// the pipe reaches EOF, which is also what happens when ProcMan is killed with
// SIGKILL, it kills every group still listed. The parent-death signal alone
// reaches only each run's shell, never its grandchildren. awk, for its
// associative arrays: a shell keeping the list in a string spent half a minute
// of CPU on the removals when 2,000 jobs stopped. The kills go 200 groups to a
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

// guardian is the Manager's link to its guardian process. It keeps its own copy
// of the live groups so that a guardian killed by someone else is replaced and
// told everything again.
type guardian struct {
	mu   sync.Mutex
	w    io.WriteCloser
	cmd  *exec.Cmd
	live map[int]struct{}
	done bool
	kids *reaper
	awk  string        // the awk binary, found once at start
	gone chan struct{} // closed once the current guardian process is reaped
	err  error         // how it ended, once gone is closed
}

func startGuardian(kids *reaper) (*guardian, error) {
	awk, err := exec.LookPath("awk")
	if err != nil { // without it, no job would be protected against a crash of ProcMan
		return nil, fmt.Errorf("guardian: %w", err)
	}
	g := &guardian{live: make(map[int]struct{}), kids: kids, awk: awk}
	if err := g.spawn(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guardian) spawn() error {
	cmd := exec.Command(g.awk, guardianProgram)
	// Its own process group: a Ctrl-C meant for ProcMan's terminal must not take
	// the guardian down with it. No parent-death signal: outliving ProcMan is its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// It needs nothing of ProcMan's environment: an empty one keeps ProcMan's
	// secrets (PROCMAN_TOKEN) out of it, and tools that find a job's processes
	// by inherited environment do not count it as one.
	cmd.Env = []string{}
	w, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	if err := g.kids.start(cmd); err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	gone := make(chan struct{})
	g.w, g.cmd, g.gone = w, cmd, gone
	// Reaped as soon as it ends, whoever ends it: left a zombie, it would keep
	// the reaper looking again every few milliseconds (see reaper.run). g.err
	// is read only after gone is closed.
	go func() {
		g.err = g.kids.wait(cmd)
		close(gone)
	}()
	return nil
}

// watch asks the guardian to kill group pgid if ProcMan dies.
func (g *guardian) watch(pgid int) error { return g.send('+', pgid) }

// forget tells the guardian the group is gone, so a recycled pgid is never killed.
func (g *guardian) forget(pgid int) error { return g.send('-', pgid) }

func (g *guardian) send(op byte, pgid int) error {
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
	if _, err := fmt.Fprintf(g.w, "%c%d\n", op, pgid); err == nil {
		return nil
	}
	return g.respawn()
}

// respawn replaces a guardian that went away and replays the live groups.
func (g *guardian) respawn() error {
	g.w.Close()
	<-g.gone // it has ended already, and is reaped now
	if err := g.spawn(); err != nil {
		return err
	}
	for pg := range g.live {
		if _, err := fmt.Fprintf(g.w, "+%d\n", pg); err != nil {
			return fmt.Errorf("guardian: %w", err)
		}
	}
	return nil
}

// close ends the guardian; groups still listed are killed by it.
func (g *guardian) close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	g.done = true
	g.w.Close()
	<-g.gone
	return g.err
}
