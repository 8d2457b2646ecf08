//go:build linux

package osproc

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
//
// Fencing (Guardian.Fence) adds the lines "*PGID" (a group to kill also
// when the deadline passes), "L SECONDS" (the deadline's length), "r T" (a
// renewal sent at T) and, from the ticker, "t T" (the time now); times are
// seconds of CLOCK_BOOTTIME, which /proc/uptime shows. A tick finding no
// renewal for the deadline's length kills the fenced groups: this process
// may be frozen (SIGSTOP), and cannot do it itself.
const guardianProgram = `
/^[+]/ { live[substr($0, 2)] = 1; next }
/^[*]/ { pg = substr($0, 2); live[pg] = 1; fenced[pg] = 1; next }
/^-/ { pg = substr($0, 2); delete live[pg]; delete fenced[pg]; next }
/^L / { limit = $2 + 0; next }
/^r / { last = $2 + 0; next }
/^t / { if (limit > 0 && last > 0 && $2 - last >= limit) fence(); next }
END { kill(live) }
function fence(   pg) {
	kill(fenced)
	for (pg in fenced) delete live[pg]
	split("", fenced)
}
function kill(groups,   pg, n, line) {
	n = 0; line = ""
	for (pg in groups) {
		line = line " -" pg
		if (++n % 200 == 0) { system("kill -KILL" line " 2>/dev/null"); line = "" }
	}
	if (line != "") system("kill -KILL" line " 2>/dev/null")
}`

// tickerProgram writes the time ("t T", seconds of CLOCK_BOOTTIME) into
// the guardian's pipe every $1 seconds, with $2 the sleep binary: a process
// of its own, so that it ticks on while this one is frozen. It ends once
// its parent has gone (it has been given to another), so that the pipe
// reaches EOF as before; and when the guardian has gone (the write fails).
const tickerProgram = `every=$1 sleep=$2
while read -r s </proc/$$/stat && set -- $s && [ "$4" = "$PPID" ] &&
	read -r up rest </proc/uptime && echo "t $up"; do "$sleep" "$every"; done`

// Guardian is the link to a guardian process. It keeps its own copy
// of the live groups, so that a guardian that dies (killed by someone, OOM) is
// replaced at once by its monitor goroutine and told everything again: until
// then, a crash of this process would leave every group behind.
type Guardian struct {
	mu    sync.Mutex
	cur   *guardianProc
	live  map[int]bool // the groups to kill, each true if fenced too
	done  bool
	kids  *Reaper
	log   *slog.Logger
	awk   []string // the awk command, found once at start
	sleep string   // the sleep binary, found by Fence

	limit   time.Duration // Fence's; 0 while not fencing
	renewed float64       // when the last renewal was sent (CLOCK_BOOTTIME seconds); 0 for none

	// forgets are the Forget lines not yet written, which go out together
	// when forgetT fires (armed by the first of them), or ahead of the next
	// line written: a stop of 200 jobs otherwise woke the guardian 200 times.
	forgets []byte
	forgetT *time.Timer

	poke    chan struct{} // the monitor reads cur again
	quit    chan struct{} // closed by close: the monitor ends
	stopped chan struct{} // closed when the monitor has ended
}

// guardianProc is one guardian process, and its ticker once fencing.
type guardianProc struct {
	w       *os.File
	proc    *Proc
	pid     int
	tick    *Proc // nil while not fencing
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
	cmd := []string{awk, guardianProgram}
	// mawk reads a pipe a buffer at a time, a tick's line left unread until
	// more came: its interactive mode reads line by line.
	if real, err := filepath.EvalSymlinks(awk); err == nil && strings.Contains(filepath.Base(real), "mawk") {
		cmd = []string{awk, "-W", "interactive", guardianProgram}
	}
	g := &Guardian{live: make(map[int]bool), kids: kids, log: log, awk: cmd, forgetT: time.NewTimer(forgetDelay),
		poke: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{})}
	g.forgetT.Stop()
	if g.cur, err = g.spawn(); err != nil {
		return nil, err
	}
	go g.monitor()
	return g, nil
}

func (g *Guardian) spawn() (*guardianProc, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("guardian: %w", err)
	}
	cmd := exec.Command(g.awk[0], g.awk[1:]...)
	cmd.Stdin = r
	// Its own process group: a Ctrl-C meant for this process's terminal must
	// not take the guardian down with it. No parent-death signal: outliving
	// this process is what it is for.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// It needs nothing of this process's environment: an empty one keeps its
	// secrets (PROCMAN_TOKEN) out, and tools that find a group's processes by
	// an inherited variable do not count the guardian as one.
	cmd.Env = []string{}
	// Reaped the moment it ends, whoever ends it (its pidfd wakes the
	// netpoller): left a zombie, it would hide the orphans behind it from
	// the reaper (see Reaper.run), and the monitor learns of it at once.
	p, err := g.kids.start(cmd, false)
	r.Close()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("guardian: %w", err)
	}
	gp := &guardianProc{w: w, proc: p, pid: p.Pid, spawned: time.Now(), gone: p.Done()}
	if g.limit > 0 {
		if err := g.startTicker(gp); err != nil {
			p.kill() // killed, its pipe still open: no END, no kill of any group
			<-gp.gone
			w.Close()
			return nil, err
		}
	}
	return gp, nil
}

// startTicker starts gp's ticker, writing into gp's pipe: a tenth of the
// deadline apart, at most a second.
func (g *Guardian) startTicker(gp *guardianProc) error {
	every := min(g.limit/10, time.Second)
	cmd := exec.Command("/bin/sh", "-c", tickerProgram, "procman-ticker",
		strconv.FormatFloat(every.Seconds(), 'f', 3, 64), g.sleep)
	cmd.Stdout = gp.w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = []string{}
	p, err := g.kids.start(cmd, false)
	if err != nil {
		return fmt.Errorf("guardian: ticker: %w", err)
	}
	gp.tick = p
	return nil
}

// monitor replaces the guardian whenever it or its ticker ends before close,
// until close. A guardian that keeps dying as soon as it starts is replaced
// once a second, not in a loop.
func (g *Guardian) monitor() {
	defer close(g.stopped)
	quick := false // the last guardian replaced lived less than a second
	for {
		g.mu.Lock()
		gp := g.cur
		var ticked <-chan struct{} // nil while not fencing: never ready
		if gp.tick != nil {
			ticked = gp.tick.Done()
		}
		g.mu.Unlock()
		select {
		case <-gp.gone:
		case <-ticked:
		case <-g.poke:
			continue
		case <-g.forgetT.C:
			g.mu.Lock()
			if !g.done {
				g.writeLocked(nil)
			}
			g.mu.Unlock()
			continue
		case <-g.quit:
			return
		}
		g.end(gp)
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

// end kills what is left of gp, guardian first: gone before its pipe
// closes, it never reaches its END, which would kill every group.
func (g *Guardian) end(gp *guardianProc) {
	gp.proc.kill()
	<-gp.gone
	g.mu.Lock()
	tick := gp.tick
	g.mu.Unlock()
	if tick != nil {
		tick.kill()
		<-tick.Done()
	}
	gp.w.Close()
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
// it everything.
func (g *Guardian) replace(old *guardianProc) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.cur != old {
		return nil // closing, or replaced already
	}
	gp, err := g.spawn()
	if err != nil {
		return err
	}
	g.cur = gp
	g.forgets = g.forgets[:0] // of groups no longer in live, all the new one is told
	if err := g.tellLocked(); err != nil {
		return err
	}
	g.log.Warn("guardian process ended; started a new one and gave it every live group",
		"old_pid", old.pid, "how", old.how(), "pid", gp.pid, "groups", len(g.live))
	return nil
}

// tellLocked gives the current guardian everything it is to know.
func (g *Guardian) tellLocked() error {
	var b []byte
	if g.limit > 0 {
		b = fmt.Appendf(b, "L %.3f\n", g.limit.Seconds())
	}
	if g.renewed > 0 {
		b = fmt.Appendf(b, "r %.3f\n", g.renewed)
	}
	for pg, fenced := range g.live {
		b = fmt.Appendf(b, "%c%d\n", mark(fenced), pg)
	}
	if _, err := g.cur.w.Write(b); err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	return nil
}

func mark(fenced bool) byte {
	if fenced {
		return '*'
	}
	return '+'
}

// Watch asks the guardian to kill group pgid if this process dies.
func (g *Guardian) Watch(pgid int) error { return g.send(mark(false), pgid) }

// WatchFenced is Watch, and asks too that the group be killed once the
// deadline set by Fence has passed since the last renewal.
func (g *Guardian) WatchFenced(pgid int) error { return g.send(mark(true), pgid) }

// forgetDelay is how long a Forget may wait to be written with others. The
// group stays on the guardian's list meanwhile, which matters only if this
// process dies within it and the group's id has been given to another.
const forgetDelay = 20 * time.Millisecond

// Forget tells the guardian the group is gone, so a recycled pgid is never
// killed: within forgetDelay, or with the next line written.
func (g *Guardian) Forget(pgid int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	delete(g.live, pgid)
	if len(g.forgets) == 0 {
		g.forgetT.Reset(forgetDelay)
	}
	g.forgets = append(strconv.AppendInt(append(g.forgets, '-'), int64(pgid), 10), '\n')
	return nil
}

// Fence has the guardian kill the groups watched fenced once limit has
// passed, by the machine's clock, since the renewal last reported
// (Renewed) was sent: it does so whatever this process does, frozen or
// hung. Its ticker is a process that wakes every limit/10 (at most every
// second) for as long as this process lives.
func (g *Guardian) Fence(limit time.Duration) error {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return fmt.Errorf("guardian: %w", err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.limit > 0 {
		return nil
	}
	g.sleep, g.limit = sleep, limit
	if !g.writeLocked(fmt.Appendf(nil, "L %.3f\n", limit.Seconds())) {
		return nil // the monitor replaces it, ticker and all
	}
	if err := g.startTicker(g.cur); err != nil {
		g.limit = 0
		return err
	}
	select { // the monitor watches the ticker from now on
	case g.poke <- struct{}{}:
	default:
	}
	return nil
}

// Renewed tells the guardian that a renewal sent at sent succeeded: the
// fenced groups may run until sent plus Fence's limit.
func (g *Guardian) Renewed(sent time.Time) {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return
	}
	at := time.Duration(ts.Nano()) - time.Since(sent)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return
	}
	g.renewed = at.Seconds()
	g.writeLocked(fmt.Appendf(nil, "r %.3f\n", g.renewed))
}

// Processes lists the guardian's process and its ticker's: for a test that
// freezes a host whole.
func (g *Guardian) Processes() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	pids := []int{g.cur.pid}
	if g.cur.tick != nil {
		pids = append(pids, g.cur.tick.Pid)
	}
	return pids
}

// Groups lists the groups the guardian would kill now, in no order.
func (g *Guardian) Groups() []int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Collect(maps.Keys(g.live))
}

// send tells the guardian of a group to kill.
func (g *Guardian) send(op byte, pgid int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done {
		return nil
	}
	g.live[pgid] = op == '*'
	g.writeLocked(append(strconv.AppendInt([]byte{op}, int64(pgid), 10), '\n'))
	return nil
}

// writeLocked writes the forgets waiting, then b, in one write: in order, so
// that the forget of a group id never comes after its reuse's watch. A
// guardian that cannot be written to is dead or dying: it is killed to be
// sure, and the monitor replaces it and tells the new one every live group,
// this change included. The caller holds g.mu.
func (g *Guardian) writeLocked(b []byte) bool {
	if len(g.forgets) > 0 {
		b = append(g.forgets, b...)
		g.forgets = b[:0]
	}
	if len(b) == 0 {
		return true
	}
	if _, err := g.cur.w.Write(b); err != nil {
		g.cur.proc.kill()
		return false
	}
	return true
}

// Close ends the guardian; groups still listed are killed by it.
func (g *Guardian) Close() error {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return nil
	}
	g.writeLocked(nil) // the forgets: a forgotten group is not killed
	g.done = true
	g.forgetT.Stop()
	gp := g.cur
	gp.w.Close()
	g.mu.Unlock()
	close(g.quit)
	<-g.stopped
	if gp.tick != nil { // it holds the pipe open too
		gp.tick.kill()
		<-gp.tick.Done()
	}
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
