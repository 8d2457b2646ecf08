package procman

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
	_ "time/tzdata"
)

func (w *world) runsWith(name string, ok func(Run) bool) []Run {
	var out []Run
	for _, r := range w.runs(name) {
		if ok(r) {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) untilRuns(name, what string, n int, ok func(Run) bool) []Run {
	w.t.Helper()
	var got []Run
	deadline := time.Now().Add(20 * time.Second)
	for got = w.runsWith(name, ok); len(got) < n; got = w.runsWith(name, ok) {
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: %d runs %s, want %d: %+v", name, len(got), what, n, w.runs(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return got
}

func bySchedule(r Run) bool { return r.Trigger == TriggerSchedule && r.Outcome != OutcomeSkipped }
func skipped(r Run) bool    { return r.Outcome == OutcomeSkipped }

func TestScheduleRunsAtEachTickAndNextRunMoves(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(Job{Name: "tick", Command: "echo tick", Type: OneTime, Schedule: "@every 1s"})
	st, _ := w.m.State("tick")
	if st.NextRun == nil || !st.NextRun.After(time.Now()) || st.State != StateStopped {
		t.Fatalf("before the first tick: %+v", st)
	}
	first := *st.NextRun
	// Finished runs: the newest may have just been spawned and have written nothing yet.
	done := w.untilRuns("tick", "by schedule", 2, func(r Run) bool { return bySchedule(r) && r.EndedAt != nil })
	st, _ = w.m.State("tick")
	if st.NextRun == nil || !st.NextRun.After(first) {
		t.Fatalf("next_run did not move forward from %s: %+v", first, st.NextRun)
	}
	if r := done[0]; readFile(t, r.LogFile) != "tick\n" {
		t.Fatalf("run %+v", r)
	}
}

func TestScheduleOverlapSkip(t *testing.T) {
	t.Parallel()
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.create(Job{Name: "slow", Command: "sleep 2.5", Type: OneTime, Schedule: "@every 1s"})
	skips := w.untilRuns("slow", "skipped", 1, skipped)
	if skips[0].Trigger != TriggerSchedule || skips[0].PID != 0 || skips[0].Error == "" {
		t.Fatalf("skipped run %+v", skips[0])
	}
	for ev := range events {
		if ev.Type == "skipped" && ev.Job == "slow" {
			if ev.Status.Name != "slow" || ev.Status.State != StateRunning || ev.Status.NextRun == nil {
				t.Errorf("skipped event's status %+v, want slow running, with its next run", ev.Status)
			}
			break
		}
	}
	if n := len(w.runsWith("slow", bySchedule)); n != 1 {
		t.Fatalf("%d runs while the first one went on", n)
	}
}

func TestScheduleOverlapQueue(t *testing.T) {
	t.Parallel()
	w := setup(t)
	// Each run outlasts a tick: the next tick waits for it instead of being skipped.
	w.create(Job{Name: "q", Command: "sleep 1.2", Type: OneTime, Schedule: "@every 1s", Overlap: OverlapQueue})
	runs := w.untilRuns("q", "finished", 2, func(r Run) bool { return bySchedule(r) && r.EndedAt != nil })
	first, second := runs[len(runs)-1], runs[len(runs)-2]
	if second.StartedAt.Before(*first.EndedAt) {
		t.Fatalf("runs overlap: %+v then %+v", first, second)
	}
	for _, s := range w.runsWith("q", skipped) {
		if s.StartedAt.Before(second.StartedAt) {
			t.Fatalf("the tick during the first run was skipped, not queued: %+v", s)
		}
	}
}

func TestScheduleOverlapRestart(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(Job{Name: "r", Command: "sleep 100", Type: OneTime, Schedule: "@every 1s", Overlap: OverlapRestart})
	runs := w.untilRuns("r", "by schedule", 2, bySchedule)
	if old := runs[len(runs)-1]; old.Outcome != OutcomeStopped {
		t.Fatalf("the restarted run: %+v", old)
	}
	if s := w.runsWith("r", skipped); len(s) != 0 {
		t.Fatalf("restart skipped ticks: %+v", s)
	}
}

func TestScheduleBringsContinuousJobBack(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Schedule: "@every 1s"})
	first := w.untilRuns("svc", "by schedule", 1, bySchedule)[0]
	w.stop("svc")
	second := w.untilRuns("svc", "by schedule", 2, bySchedule)[0]
	if second.ID == first.ID || second.PID == first.PID {
		t.Fatalf("not started again: %+v", second)
	}
	// While it runs, ticks leave it alone.
	st := w.waitFor("svc", StateRunning)
	eventually(t, "next tick passes", func() bool {
		s, _ := w.m.State("svc")
		return s.NextRun != nil && s.NextRun.After(st.NextRun.Add(time.Second))
	})
	if n := len(w.runs("svc")); n != 2 {
		t.Fatalf("%d runs: ticks touched a running service", n)
	}
}

func TestReplaceReplansAndDeleteUnplans(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(Job{Name: "p", Command: "true", Type: OneTime, Schedule: "@every 1s"})
	if err := w.m.Replace(ctxT(t), "p", Job{Command: "true", Type: OneTime}); err != nil {
		t.Fatal(err)
	}
	if st, _ := w.m.State("p"); st.NextRun != nil {
		t.Fatalf("manual job has next_run %v", st.NextRun)
	}
	if err := w.m.Replace(ctxT(t), "p", Job{Command: "true", Type: OneTime, Schedule: "@every 1s"}); err != nil {
		t.Fatal(err)
	}
	w.untilRuns("p", "by schedule", 1, bySchedule)
	if err := w.m.Delete(ctxT(t), "p"); err != nil {
		t.Fatal(err)
	}
	w.m.mu.RLock()
	defer w.m.mu.RUnlock()
	if n := len(w.m.cron.Entries()); n != 0 {
		t.Fatalf("%d schedule entries left after Delete", n)
	}
}

func TestCronTimeZone(t *testing.T) {
	sched, err := parseCron("CRON_TZ=Europe/Berlin 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	for from, want := range map[string]string{
		"2026-07-01T00:00:00Z": "2026-07-01T01:00:00Z", // summer: Berlin is UTC+2
		"2026-01-15T00:00:00Z": "2026-01-15T02:00:00Z", // winter: UTC+1
		"2026-01-15T02:00:00Z": "2026-01-16T02:00:00Z", // at the tick: the next day's
	} {
		f, _ := time.Parse(time.RFC3339, from)
		if got := sched.Next(f).UTC().Format(time.RFC3339); got != want {
			t.Errorf("after %s: %s, want %s", from, got, want)
		}
	}
}

// A tick queued behind a run is dropped when the job is stopped by hand, and
// a deleted job's ticks never log errors or touch a new job of the same name.
func TestQueuedTickDroppedByStop(t *testing.T) {
	t.Parallel()
	w := setup(t)
	w.create(Job{Name: "q", Command: "sleep 5", Type: OneTime, Schedule: "@every 1s", Overlap: OverlapQueue})
	first := w.untilRuns("q", "started by schedule", 1, bySchedule)[0]
	eventually(t, "a tick queued", func() bool {
		w.m.mu.RLock()
		r := w.m.jobs["q"]
		w.m.mu.RUnlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.queued
	})
	if err := w.m.Replace(ctxT(t), "q", Job{Command: "sleep 5", Type: OneTime}); err != nil {
		t.Fatal(err)
	}
	w.stop("q")
	// Had the queued tick survived, it would start a run at once; a start by hand now must be the next run.
	w.start("q")
	runs := w.runs("q")
	if runs[0].Trigger != TriggerManual || runs[1].ID != first.ID {
		t.Fatalf("a queued tick ran after the stop: %+v", runs[:2])
	}
	w.stop("q")
}

// With overlap restart and a stop slower than the tick, ticks coalesce: while
// one restart is under way the next ticks return at once instead of piling
// up behind it, and a stop by hand that comes meanwhile is not followed by the
// pending restart's start. Ticks are fired by hand, so the test owns the clock.
func TestOverlapRestartTicksCoalesce(t *testing.T) {
	w := setup(t)
	gate := filepath.Join(w.dir, "gate")
	w.create(Job{Name: "slow", Type: OneTime, Schedule: "@yearly", Overlap: OverlapRestart, Dir: w.dir,
		StopTimeout: dur(time.Minute),
		Command:     `trap 'while [ ! -e gate ]; do sleep 0.05; done; exit 0' TERM; echo ready; while :; do sleep 0.1; done`})
	w.start("slow")
	st := w.waitFor("slow", StateRunning)
	eventually(t, "trap set", func() bool { return readFile(t, st.LogFile) == "ready\n" })
	sched, err := parseCron("@yearly")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := w.m.runner("slow")
	first := make(chan struct{})
	go func() {
		defer close(first)
		r.tick(sched) // restarts: the stop waits for the gate
	}()
	w.waitFor("slow", StateStopping)
	var ticks sync.WaitGroup
	for range 20 {
		ticks.Go(func() { r.tick(sched) })
	}
	returned := make(chan struct{})
	go func() {
		ticks.Wait()
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("ticks piled up behind the restart under way")
	}
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	stopped := make(chan error, 1)
	go func() { stopped <- w.m.Stop(ctxT(t), "slow") }()
	eventually(t, "the stop by hand to begin", func() bool { return r.changedSince(gen) })
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-first
	if st, _ := w.m.State("slow"); st.State != StateStopped {
		t.Errorf("after the stop by hand: %+v", st)
	}
	if runs := w.runs("slow"); len(runs) != 1 || runs[0].Outcome != OutcomeStopped {
		t.Errorf("runs %+v: the pending restart started the job again after the stop", runs)
	}
}
