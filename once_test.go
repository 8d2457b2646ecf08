package procman

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// slowStopper takes a second to stop: its shell runs a trap on SIGTERM. It
// creates the file "ready" in dir once the trap is set.
func slowStopper(name, dir string) Job {
	return Job{Name: name, Type: Continuous, Dir: dir,
		Command: `trap 'sleep 1; exit 0' TERM; : > ready; while :; do sleep 0.05; done`}
}

// startSlowStopper creates and starts a slowStopper and waits until its trap is set.
func (w *world) startSlowStopper(name string) Status {
	w.t.Helper()
	dir := w.t.TempDir()
	w.create(slowStopper(name, dir))
	w.start(name)
	eventually(w.t, name+"'s trap", func() bool {
		_, err := os.Stat(filepath.Join(dir, "ready"))
		return err == nil
	})
	return w.waitFor(name, StateRunning)
}

// cancelWhenStopping runs op on a goroutine with a context that is cancelled once the job
// is stopping (op has begun), and returns op's error.
func (w *world) cancelWhenStopping(name string, op func(ctx context.Context) error) error {
	w.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(ctx) }()
	w.waitFor(name, StateStopping)
	cancel()
	return <-done
}

// TestRestartFinishesOnceBegun: a caller that goes away while its restart
// stops the job does not leave the job stopped.
func TestRestartFinishesOnceBegun(t *testing.T) {
	w := setup(t)
	first := w.startSlowStopper("slow")
	err := w.cancelWhenStopping("slow", func(ctx context.Context) error { return w.m.Restart(ctx, "slow") })
	if err != nil {
		t.Fatalf("Restart whose caller left during the stop: %v, want it done", err)
	}
	if st := w.waitFor("slow", StateRunning, StateStopped); st.State != StateRunning || st.PID == first.PID {
		t.Fatalf("after the restart: %+v, want running again, not as pid %d", st, first.PID)
	}
}

// TestDeleteFinishesOnceBegun: a caller that goes away while its delete stops
// the job does not leave the job stopped but still there.
func TestDeleteFinishesOnceBegun(t *testing.T) {
	w := setup(t)
	w.startSlowStopper("slow")
	err := w.cancelWhenStopping("slow", func(ctx context.Context) error { return w.m.Delete(ctx, "slow") })
	if err != nil {
		t.Fatalf("Delete whose caller left during the stop: %v, want it done", err)
	}
	if _, err := w.m.Get("slow"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after the delete: Get = %v, want ErrNotFound", err)
	}
	if saved, err := w.m.store.all(ctxT(t)); err != nil || len(saved) != 0 {
		t.Errorf("after the delete the database holds %+v (%v), want nothing", saved, err)
	}
}

// TestUpdateFinishesOnceBegun: once an update's turn has come, its caller
// going away does not stop the change half way.
func TestUpdateFinishesOnceBegun(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "j", Command: "echo old"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := w.m.Update(ctx, "j", func(j *Job) error {
		cancel() // the caller goes away while its change is being made
		j.Command = "echo new"
		return nil
	})
	if err != nil {
		t.Fatalf("Update whose caller left during the change: %v, want it done", err)
	}
	if j, err := w.m.Get("j"); err != nil || j.Command != "echo new" {
		t.Errorf("after the update: %+v, %v; want the new command", j, err)
	}
	saved, err := w.m.store.all(ctxT(t))
	if err != nil || len(saved) != 1 || saved[0].Command != "echo new" {
		t.Errorf("after the update the database holds %+v (%v), want the new command", saved, err)
	}
}

// TestGoneCallerBeginsNothing: a call whose context has already ended
// changes nothing, every time (a free lock and an ended context must not be
// a coin toss).
func TestGoneCallerBeginsNothing(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "idle", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "busy", Command: "sleep 100", Type: Continuous})
	w.start("busy")
	busy := w.waitFor("busy", StateRunning)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		for what, err := range map[string]error{
			"Create":        w.m.Create(gone, Job{Name: "new", Command: "true"}),
			"Start idle":    w.m.Start(gone, "idle"),
			"Stop busy":     w.m.Stop(gone, "busy"),
			"Restart busy":  w.m.Restart(gone, "busy"),
			"Delete idle":   w.m.Delete(gone, "idle"),
			"Replace idle":  w.m.Replace(gone, "idle", Job{Command: "true"}),
			"Update idle":   func() error { _, err := w.m.Update(gone, "idle", MergePatch([]byte(`{"command":"true"}`))); return err }(),
			"Restart idle":  w.m.Restart(gone, "idle"),
			"Delete busy":   w.m.Delete(gone, "busy"),
			"Replace busy":  w.m.Replace(gone, "busy", Job{Command: "true"}),
			"Start (again)": w.m.Start(gone, "idle"),
		} {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with an ended context: %v, want context.Canceled", what, err)
			}
		}
	}
	if _, err := w.m.Get("new"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Create with an ended context made the job: %v", err)
	}
	if st, _ := w.m.State("idle"); st.State != StateStopped {
		t.Errorf("idle after the calls: %+v, want stopped", st)
	}
	if st, _ := w.m.State("busy"); st.State != StateRunning || st.PID != busy.PID {
		t.Errorf("busy after the calls: %+v, want running as pid %d", st, busy.PID)
	}
	for _, name := range []string{"idle", "busy"} {
		if j, err := w.m.Get(name); err != nil || j.Command != "sleep 100" {
			t.Errorf("%s after the calls: %+v, %v", name, j, err)
		}
	}
}
