//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"golang.org/x/sys/unix"
)

// MaxOutput is how much of an exec probe's output is kept (the first bytes,
// as Docker keeps them); the rest is read and dropped, so the command never
// blocks on a full pipe.
const MaxOutput = 4 << 10

// drainWait bounds the read of an exec probe's output once its group is
// gone: only a process that left the group (setsid) can still hold the pipe
// open then, and it is not waited for.
const drainWait = 100 * time.Millisecond

// Exec is a command to run as a probe: it passes when it exits 0.
type Exec struct {
	// Reaper starts the command and waits for it.
	Reaper *osproc.Reaper
	// Guardian, if not nil, is told of the command's group while it runs, so
	// that a crash of this process does not leave it behind.
	Guardian *osproc.Guardian
	// Spec is the command; its Output is the probe's own pipe.
	Spec osproc.Spec
	// KillWait is how long the group may take to go once SIGKILLed.
	KillWait time.Duration
}

// Run runs the command once, and kills its whole group when it ends, when
// timeout passes, or when ctx ends. It returns nil if the command exited 0,
// else an error with how it ended and the start of its output.
func (e *Exec) Run(ctx context.Context, timeout time.Duration) error {
	rd, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	spec := e.Spec
	spec.Output = wr
	p, err := e.Reaper.StartGroup(spec)
	wr.Close() // the command's copy is the only writer left
	if err != nil {
		rd.Close()
		return fmt.Errorf("spawn: %w", err)
	}
	if e.Guardian != nil {
		e.Guardian.Watch(p.Pid)
	}
	out := make(chan string, 1)
	go func() { out <- readHead(rd, MaxOutput) }()

	t := time.NewTimer(timeout)
	defer t.Stop()
	var cut error
	select {
	case <-p.Done():
	case <-t.C:
		cut = fmt.Errorf("timed out after %s", timeout)
	case <-ctx.Done():
		cut = ctx.Err()
	}
	left := e.end(p)
	rd.SetReadDeadline(time.Now().Add(drainWait))
	output := <-out
	rd.Close()
	return verdict(p, cut, left, output)
}

// end kills what is left of the command's group and waits until none of it
// is, for KillWait at most. It reports an error if the group outlived that.
func (e *Exec) end(p *osproc.Proc) error {
	if e.Reaper.GroupAlive(p.Pid, false) {
		osproc.SignalGroup(p.Pid, unix.SIGKILL)
	}
	limit := time.NewTimer(e.KillWait)
	defer limit.Stop()
	select {
	case <-p.Done():
	case <-limit.C:
		return fmt.Errorf("its shell (pid %d) outlived SIGKILL", p.Pid)
	}
	if !e.Reaper.WaitGroupGone(p.Pid, limit.C, nil) {
		return fmt.Errorf("its process group %d outlived SIGKILL", p.Pid)
	}
	if e.Guardian != nil {
		e.Guardian.Forget(p.Pid)
	}
	return nil
}

// verdict is the probe's result: cut is why the command was cut short, if it
// was; left, whether its group outlived SIGKILL.
func verdict(p *osproc.Proc, cut, left error, output string) error {
	var why string
	switch {
	case cut != nil:
		why = cut.Error()
	case left != nil:
		why = left.Error()
	default:
		ws, err := p.Exit()
		switch {
		case err != nil:
			why = "wait: " + err.Error()
		case ws.Exited() && ws.ExitStatus() == 0:
			return nil
		case ws.Exited():
			why = fmt.Sprintf("exit code %d", ws.ExitStatus())
		case ws.Signaled():
			why = "killed by signal " + ws.Signal().String()
		default:
			why = "ended with status " + fmt.Sprint(int(ws))
		}
	}
	if output != "" {
		why += ": " + output
	}
	return errors.New(why)
}

// readHead reads r to its end (or its read deadline), keeping the first
// limit bytes, trimmed and as valid UTF-8, and dropping the rest.
func readHead(r io.Reader, limit int) string {
	buf := make([]byte, limit)
	n, more := 0, false
	var scratch []byte
	for {
		var m int
		var err error
		if n < limit {
			m, err = r.Read(buf[n:])
			n += m
		} else {
			if scratch == nil {
				scratch = make([]byte, 1024)
			}
			m, err = r.Read(scratch)
			more = more || m > 0
		}
		if err != nil {
			break
		}
	}
	s := strings.ToValidUTF8(strings.TrimSpace(string(buf[:n])), "\uFFFD")
	if more {
		s += " … (output cut at " + fmt.Sprint(limit) + " bytes)"
	}
	return s
}
