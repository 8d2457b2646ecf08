package procman

import (
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
)

// guardianScript runs in a small process, one per Manager. ProcMan writes
// "+PGID" when a run starts and "-PGID" once its group is gone. When the pipe
// reaches EOF, which is also what happens when ProcMan is killed with SIGKILL,
// it kills every group still listed. The parent-death signal alone reaches
// only each run's shell, never its grandchildren. awk, for its associative
// arrays: a shell keeping the list in a string spent half a minute of CPU on
// the removals when 2,000 jobs stopped.
const guardianScript = `exec awk '
/^[+]/ { live[substr($0, 2)] = 1; next }
/^-/ { delete live[substr($0, 2)]; next }
END {
	groups = ""
	for (pg in live) groups = groups " -" pg
	# "kill -KILL -PGID...": dash has no "kill --"
	if (groups != "") system("kill -KILL" groups " 2>/dev/null")
}'`

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
}

func startGuardian(kids *reaper) (*guardian, error) {
	g := &guardian{live: make(map[int]struct{}), kids: kids}
	if err := g.spawn(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guardian) spawn() error {
	cmd := exec.Command("/bin/sh", "-c", guardianScript)
	// Its own process group: a Ctrl-C meant for ProcMan's terminal must not take
	// the guardian down with it. No parent-death signal: outliving ProcMan is its job.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// It needs awk and the shell's kill, nothing of ProcMan's environment: a
	// bare PATH keeps ProcMan's secrets (PROCMAN_TOKEN) out of it, and tools
	// that find a job's processes by inherited environment do not count it as one.
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	w, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	if err := g.kids.start(cmd); err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	g.w, g.cmd = w, cmd
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
	g.kids.wait(g.cmd) // it is gone already; collect it
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
	return g.kids.wait(g.cmd)
}
