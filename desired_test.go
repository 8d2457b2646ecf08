package procman

import (
	"syscall"
	"testing"
	"time"
)

// newestRun returns the job's latest run.
func newestRun(t *testing.T, m *Manager, name string) Run {
	t.Helper()
	runs, err := m.Runs(ctxT(t), name, RunsOptions{Limit: 1})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs of %s: %+v %v", name, runs, err)
	}
	return runs[0]
}

// A continuous job started by hand comes back when ProcMan is opened again
// after a clean shutdown; one stopped by hand, one that gave up, and one_time
// jobs do not; NoResume turns it off without forgetting.
func TestDesiredStateOutlivesShutdown(t *testing.T) { eachDialect(t, testDesiredStateOutlivesShutdown) }

func testDesiredStateOutlivesShutdown(t *testing.T, d dialect) {
	dir := t.TempDir()
	cfg := d.db(t, dir)
	cfg.StopTimeout = time.Second
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	w.m = w.open(cfg)
	for _, j := range []Job{
		{Name: "svc", Command: "sleep 100", Type: Continuous},
		{Name: "halted", Command: "sleep 100", Type: Continuous},
		{Name: "quitter", Command: "exit 1", Type: Continuous, MaxRetries: 1},
		{Name: "once", Command: "true", Type: OneTime},
		{Name: "later", Command: "sleep 100", Type: Continuous},
	} {
		w.create(j)
		if j.Name != "later" {
			w.start(j.Name)
		}
	}
	w.stop("halted")
	w.waitFor("quitter", StateError)
	w.waitFor("once", StateExited)
	if err := w.m.Replace(ctxT(t), "svc", Job{Command: "sleep 200", Type: Continuous}); err != nil {
		t.Fatal(err) // a definition write leaves the desired state alone
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	m := w.open(cfg)
	if st, _ := m.State("svc"); st.State != StateRunning || newestRun(t, m, "svc").Trigger != TriggerResume {
		t.Fatalf("svc after reopening: %+v, want running again, trigger resume", st)
	}
	for _, name := range []string{"halted", "quitter", "once", "later"} {
		if st, _ := m.State(name); st.State != StateStopped {
			t.Errorf("%s after reopening: %s, want stopped", name, st.State)
		}
	}
	if err := m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	off := cfg
	off.NoResume = true
	m = w.open(off)
	if st, _ := m.State("svc"); st.State != StateStopped {
		t.Fatalf("svc with NoResume: %s, want stopped", st.State)
	}
	if err := m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m = w.open(cfg)
	if st, _ := m.State("svc"); st.State != StateRunning {
		t.Fatalf("svc once NoResume is off again: %s, want running", st.State)
	}
}

// After a crash (SIGKILL), a wanted job comes back too: its lost run is
// recorded unknown, and a new one starts with trigger resume.
func TestDesiredStateOutlivesCrash(t *testing.T) { eachDialect(t, testDesiredStateOutlivesCrash) }

func testDesiredStateOutlivesCrash(t *testing.T, d dialect) {
	w := &world{t: t, dir: t.TempDir(), logs: &bugLog{t: t}}
	cfg := d.db(t, w.dir)
	helper := startCrashingManager(t, cfg)
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	m := w.openAfterCrash(cfg)
	if st, _ := m.State("svc"); st.State != StateRunning {
		t.Fatalf("svc after the crash: %+v, want running again", st)
	}
	runs, err := m.Runs(ctxT(t), "svc", RunsOptions{})
	if err != nil || len(runs) != 2 || runs[0].Trigger != TriggerResume || runs[1].Outcome != OutcomeUnknown {
		t.Fatalf("runs of svc: %+v %v, want the lost run (unknown) and a resumed one", runs, err)
	}
}
