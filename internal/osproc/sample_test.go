//go:build linux

package osproc

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A sample counts a group's live processes, their memory, and the CPU of
// its processes with what they reaped; PSS, read on request, is no more than
// the RSS.
func TestSampleOfAGroup(t *testing.T) {
	rp := newTestReaper(t, false)
	spun := filepath.Join(t.TempDir(), "spun")
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c",
		"sleep 1000 & sleep 1000 & (" + spin + "); touch " + spun + "; wait"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Exit()
	defer SignalGroup(p.Pid, syscall.SIGKILL)
	eventually(t, "the spin", func() bool { _, err := os.Stat(spun); return err == nil })
	var sm Sampler
	var g GroupUsage
	var s *Sample
	eventually(t, "three processes", func() bool {
		s, err = sm.Sample(context.Background())
		g = s.Group(p.Pid)
		return err == nil && g.Procs == 3
	})
	if g.User+g.System < 10*time.Millisecond {
		t.Errorf("CPU %v + %v: want the spin's, which the shell waited for", g.User, g.System)
	}
	if g.RSS < 3*100<<10 {
		t.Errorf("RSS %d bytes for three processes", g.RSS)
	}
	pss, ok := s.PSS(p.Pid)
	if !ok || pss <= 0 || pss > g.RSS {
		t.Errorf("PSS %d (ok %v), want some, no more than the RSS %d", pss, ok, g.RSS)
	}
	if none := s.Group(1<<22 - 3); none != (GroupUsage{}) {
		t.Errorf("a group no process is in: %+v", none)
	}
	if _, ok := s.PSS(1<<22 - 3); ok {
		t.Error("PSS of a group no process is in")
	}
}

// Callers who ask while a pass is under way share it.
func TestSamplesShareAPassUnderWay(t *testing.T) {
	release := make(chan struct{})
	sm := Sampler{take: func() *Sample { <-release; return takeSample(nil) }}
	got := make([]*Sample, 5)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], _ = sm.Sample(context.Background()) })
	}
	eventually(t, "four callers waiting for the first's pass", func() bool {
		sm.mu.Lock()
		defer sm.mu.Unlock()
		return sm.waiting == 4
	})
	close(release)
	wg.Wait()
	for i, s := range got {
		if s == nil || s != got[0] {
			t.Fatalf("caller %d got sample %p, the first %p: want one shared", i, s, got[0])
		}
	}
	if sm.passes != 1 {
		t.Errorf("%d passes, want 1", sm.passes)
	}
	// One that stops waiting goes its way; the pass goes on.
	release = make(chan struct{})
	go sm.Sample(context.Background())
	eventually(t, "a pass under way", func() bool { sm.mu.Lock(); defer sm.mu.Unlock(); return sm.cur != nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sm.Sample(ctx); err != context.Canceled {
		t.Errorf("a caller whose ctx ended: %v, want context.Canceled", err)
	}
	close(release)
	eventually(t, "the pass ended", func() bool { sm.mu.Lock(); defer sm.mu.Unlock(); return sm.cur == nil })
}

// The command name runs to the last ')' and may hold spaces and
// parentheses; the fields after it are counted from there.
func TestParseStat(t *testing.T) {
	line := "4242 (a) b (c) S 1 4240 4240 0 -1 4194560 100 0 0 0 250 75 12 3 20 0 1 0 5000 9000000 321 18446744073709551615\n"
	st, ok := parseStat([]byte(line))
	want := procStat{state: 'S', pgid: 4240, utime: 250, stime: 75, cutime: 12, cstime: 3, rss: 321}
	if !ok || st != want {
		t.Errorf("parseStat = %+v, %v; want %+v", st, ok, want)
	}
	for _, bad := range []string{"", "4242 (a", "4242 (a) S 1 4240", "4242 (a) S 1 x 4240 0 -1 4194560 100 0 0 0 250 75 12 3 20 0 1 0 5000 9000000 321"} {
		if _, ok := parseStat([]byte(bad)); ok {
			t.Errorf("parseStat(%q) ok", bad)
		}
	}
}

// kept reports whether the Sampler keeps pid's stat file open.
func (sm *Sampler) kept(pid int) bool {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.files == nil {
		return false
	}
	_, ok := sm.files.shards[pid%len(sm.files.shards)].open[pid]
	return ok
}

// A Sampler keeps the stat files of the processes it saw open between
// passes, reads a process that came since, and closes the file of one that
// has gone; files dropped when idle or at Close are opened again as needed.
func TestSamplerKeepsFilesOfLiveProcesses(t *testing.T) {
	rp := newTestReaper(t, false)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & sleep 1000 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Exit()
	defer SignalGroup(p.Pid, syscall.SIGKILL)
	var sm Sampler
	procs := func() int {
		s, err := sm.Sample(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return s.Group(p.Pid).Procs
	}
	eventually(t, "the shell and its sleeps", func() bool { return procs() == 3 })
	var child int
	for _, st := range GroupMembers(p.Pid) {
		if st.Pid != p.Pid {
			child = st.Pid
		}
	}
	if !sm.kept(p.Pid) || !sm.kept(child) {
		t.Fatalf("files kept of the shell %v, of its sleep %v: want both", sm.kept(p.Pid), sm.kept(child))
	}
	syscall.Kill(child, syscall.SIGKILL)
	// No pass until it is gone from /proc: the next pass does not see it.
	eventually(t, "the sleep reaped", func() bool { _, err := os.Stat("/proc/" + strconv.Itoa(child)); return err != nil })
	if n := procs(); n != 2 {
		t.Fatalf("%d processes once the sleep was reaped, want 2", n)
	}
	if sm.kept(child) || !sm.kept(p.Pid) {
		t.Errorf("after the sleep went: its file kept %v, the shell's %v; want only the shell's", sm.kept(child), sm.kept(p.Pid))
	}
	sm.dropIdle()
	if sm.kept(p.Pid) {
		t.Error("the shell's file still kept once dropped for idleness")
	}
	if n := procs(); n != 2 || !sm.kept(p.Pid) {
		t.Errorf("after the drop: %d processes, file kept %v; want 2, kept", n, sm.kept(p.Pid))
	}
	sm.Close()
	if sm.kept(p.Pid) {
		t.Error("the shell's file still kept after Close")
	}
	if n := procs(); n != 2 || sm.kept(p.Pid) {
		t.Errorf("after Close: %d processes, file kept %v; want 2, none kept", n, sm.kept(p.Pid))
	}
}

// A pass through kept files finds what a pass opening every file finds.
func TestKeptFilesReadAsOpenedOnes(t *testing.T) {
	rp := newTestReaper(t, false)
	var groups []*Proc
	for range 20 {
		p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & sleep 1000 & wait"}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Exit()
		defer SignalGroup(p.Pid, syscall.SIGKILL)
		groups = append(groups, p)
	}
	var sm Sampler
	defer sm.Close()
	eventually(t, "three processes in each group, in both passes", func() bool {
		sm.Sample(context.Background()) // keeps the files
		kept, _ := sm.Sample(context.Background())
		opened := takeSample(nil)
		for _, p := range groups {
			k, o := kept.Group(p.Pid), opened.Group(p.Pid)
			if k.Procs != 3 || o.Procs != 3 || k.RSS == 0 || (k.RSS-o.RSS) > 1<<20 || (o.RSS-k.RSS) > 1<<20 {
				return false
			}
		}
		return true
	})
	for _, p := range groups {
		if !sm.kept(p.Pid) {
			t.Fatalf("group %d: its shell's file not kept", p.Pid)
		}
	}
}
