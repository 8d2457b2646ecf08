//go:build linux

package osproc

import (
	"context"
	"os"
	"path/filepath"
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
	sm := Sampler{take: func() *Sample { <-release; return takeSample() }}
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
