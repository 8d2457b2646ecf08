//go:build linux

package osproc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// spawnGroup starts a shell with a child in a process group of its own; the
// test's cleanup kills the group if the test left it.
func spawnGroup(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil { // not yet reaped, so its pgid is still its own
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Wait()
		}
	})
	return cmd
}

// TestGuardianKillsGroupsWhenItsPipeCloses stands in for ProcMan dying: the
// guardian sees end of file and kills every group it was told about.
func TestGuardianKillsGroupsWhenItsPipeCloses(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kept, forgotten := spawnGroup(t), spawnGroup(t)
	g.Watch(kept.Process.Pid)
	g.Watch(forgotten.Process.Pid)
	g.Forget(forgotten.Process.Pid)

	// Kill the guardian behind the Manager's back: a new one takes its place.
	old := guardianPid(g)
	syscall.Kill(old, syscall.SIGKILL)
	// Reaped at once, not left a zombie until the next message finds it gone.
	eventually(t, "guardian dead and reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", old))
		return err != nil
	})
	extra := spawnGroup(t)
	if err := g.Watch(extra.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{kept, extra} {
		eventually(t, "group killed", func() bool { return gone(c.Process.Pid) })
		if err := c.Wait(); err == nil {
			t.Errorf("group %d exited by itself, not killed", c.Process.Pid)
		}
	}
	if forgotten.ProcessState != nil || gone(forgotten.Process.Pid) {
		t.Error("guardian killed a group it was told to forget")
	}
	syscall.Kill(-forgotten.Process.Pid, syscall.SIGKILL)
	forgotten.Wait()
}

func guardianPid(g *Guardian) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur.pid
}

// recordLog keeps the messages of the records it handles.
type recordLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordLog) WithGroup(string) slog.Handler            { return l }
func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}

func (l *recordLog) said(part string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.ContainsFunc(l.msgs, func(m string) bool { return strings.Contains(m, part) })
}

// A guardian that dies is replaced at once, not at the next message, and the
// new one knows every live group: if ProcMan then dies (its pipe closes)
// without having sent anything since, the jobs' groups are still killed.
func TestGuardianReplacedAtOnceWhenItDies(t *testing.T) {
	logs := &recordLog{}
	g, err := StartGuardian(newTestReaper(t, false), slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	kept := spawnGroup(t)
	g.Watch(kept.Process.Pid)
	for range 2 { // twice: the second dies as soon as it started
		old := guardianPid(g)
		syscall.Kill(old, syscall.SIGKILL)
		eventually(t, "a new guardian", func() bool { return guardianPid(g) != old && !gone(guardianPid(g)) })
	}
	if !logs.said("guardian process ended") {
		t.Errorf("the replacement was not logged: %q", logs.msgs)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "group killed by the new guardian", func() bool { return gone(kept.Process.Pid) })
	kept.Wait()
}

// With tens of thousands of groups listed, the kills must not exceed what one
// command line may hold: every group is killed, whatever its place in the list.
func TestGuardianKillsAmongManyGroups(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	real := []*exec.Cmd{spawnGroup(t), spawnGroup(t)}
	for i := range 20_000 { // above any pid_max: no such group can exist
		g.Watch(1<<23 + i)
	}
	for _, c := range real {
		g.Watch(c.Process.Pid)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range real {
		eventually(t, "group killed", func() bool { return gone(c.Process.Pid) })
		c.Wait()
	}
}

// The forget goes to the guardian that closes: a forgotten group is spared.
func TestGuardianSparesForgottenGroup(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	kept, forgotten := spawnGroup(t), spawnGroup(t)
	g.Watch(kept.Process.Pid)
	g.Watch(forgotten.Process.Pid)
	g.Forget(forgotten.Process.Pid)
	if err := g.Close(); err != nil { // the guardian has sent its kills when it exits
		t.Fatal(err)
	}
	// A SIGKILL from the guardian would already be pending, and would win over our TERM.
	syscall.Kill(-forgotten.Process.Pid, syscall.SIGTERM)
	forgotten.Wait()
	if ws := forgotten.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("forgotten group ended by %v, want our SIGTERM: the guardian killed it", forgotten.ProcessState)
	}
	eventually(t, "kept group killed", func() bool { return gone(kept.Process.Pid) })
	kept.Wait()
	if ws := kept.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("kept group ended by %v, want SIGKILL from the guardian", kept.ProcessState)
	}
}

// ignoreSIGCHLD sets SIGCHLD to SIG_IGN until the test ends: the kernel then
// reaps every child the moment it exits, and a wait for one fails.
func ignoreSIGCHLD(t *testing.T) {
	signal.Ignore(syscall.SIGCHLD)
	t.Cleanup(func() {
		// Reset does not undo Ignore: Notify puts Go's handler back, and Stop keeps it.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGCHLD)
		signal.Stop(c)
	})
}

// A guardian reaped by someone else ended in a way no one learnt: Close
// reports the failed wait, not a made-up status.
func TestGuardianWhoseWaitFailedSaysSo(t *testing.T) {
	ignoreSIGCHLD(t)
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); !errors.Is(err, syscall.ECHILD) || !strings.Contains(err.Error(), "wait") {
		t.Fatalf("Close: %v, want the wait's ECHILD", err)
	}
}

func tickerPid(g *Guardian) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cur.tick == nil {
		return 0
	}
	return g.cur.tick.Pid
}

// Fencing stands in for a ProcMan frozen by SIGSTOP: once no renewal has
// been reported for the limit, the guardian kills the fenced groups by
// itself, and only those; renewals in time spare them. A ticker killed
// behind its back is replaced, and the deadline still holds.
func TestGuardianKillsFencedGroupsPastTheDeadline(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	const limit = time.Second
	if err := g.Fence(limit); err != nil {
		t.Fatal(err)
	}
	fenced, plain := spawnGroup(t), spawnGroup(t)
	g.Renewed(time.Now())
	g.WatchFenced(fenced.Process.Pid)
	g.Watch(plain.Process.Pid)
	// Renewals every tenth of the limit, for three limits: the group lives.
	for range 30 {
		g.Renewed(time.Now())
		if gone(fenced.Process.Pid) {
			t.Fatal("a fenced group was killed although renewals came in time")
		}
		time.Sleep(limit / 10) // the renewals' pace, not a wait for anything
	}
	old := tickerPid(g)
	syscall.Kill(old, syscall.SIGKILL)
	eventually(t, "a new ticker", func() bool { p := tickerPid(g); return p != 0 && p != old })
	last := time.Now()
	g.Renewed(last)
	eventually(t, "fenced group killed", func() bool { return gone(fenced.Process.Pid) })
	if took := time.Since(last); took < limit {
		t.Errorf("fenced group killed %s after the last renewal, before the limit of %s", took, limit)
	}
	fenced.Wait()
	if ws := fenced.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("fenced group ended by %v, want SIGKILL from the guardian", fenced.ProcessState)
	}
	if gone(plain.Process.Pid) {
		t.Fatal("the guardian's deadline killed a group not watched fenced")
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "plain group killed at close", func() bool { return gone(plain.Process.Pid) })
	plain.Wait()
}

// A forget waits to be written with others, but never behind the watch of
// the same group id, reused meanwhile: the group watched again is killed.
func TestGuardianKillsGroupWatchedAgainAfterForget(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	c := spawnGroup(t)
	g.Watch(c.Process.Pid)
	g.Forget(c.Process.Pid)
	g.Watch(c.Process.Pid) // as a new group of the same id would be
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "group killed", func() bool { return gone(c.Process.Pid) })
	c.Wait()
	if ws := c.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("group ended by %v, want SIGKILL from the guardian", c.ProcessState)
	}
}

// Forgets go to the guardian soon even when nothing else is written.
func TestGuardianWritesForgetsUnprompted(t *testing.T) {
	g, err := StartGuardian(newTestReaper(t, false), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	c := spawnGroup(t)
	g.Watch(c.Process.Pid)
	g.Forget(c.Process.Pid)
	eventually(t, "the forget written", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.forgets) == 0
	})
}
