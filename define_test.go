package procman

import (
	"errors"
	"testing"
	"time"
)

// A Replace waiting on a locked database holds the job's edit lock, never its
// control lock: a Stop meanwhile returns at once, and the Replace completes
// once the database takes it.
func TestStopIsNotQueuedBehindReplace(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	r, _ := w.m.runner("svc")
	release := holdDB(t, w.m.cfg)
	replaced := make(chan error, 1)
	go func() { replaced <- w.m.Replace(ctxT(t), "svc", Job{Command: "sleep 200", Type: Continuous}) }()
	eventually(t, "Replace waiting on the database", func() bool { return len(r.edit) == 1 })
	if err := w.m.Stop(within(t, 2*time.Second), "svc"); err != nil {
		t.Fatalf("Stop behind a Replace waiting on the database: %v", err)
	}
	release()
	if err := <-replaced; err != nil {
		t.Fatal(err)
	}
	if j, _ := w.m.Get("svc"); j.Command != "sleep 200" {
		t.Fatalf("after Replace: %+v", j)
	}
}

// Delete stops the job first, then writes: while the write waits, a start
// is refused at once (the job is being deleted) and never runs the job.
func TestStartDuringDeleteIsRefused(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	pid := w.waitFor("svc", StateRunning).PID
	r, _ := w.m.runner("svc")
	release := holdDB(t, w.m.cfg)
	deleted := make(chan error, 1)
	go func() { deleted <- w.m.Delete(ctxT(t), "svc") }()
	eventually(t, "Delete stopped the job and waits on the database", func() bool {
		st, _ := w.m.State("svc")
		return len(r.edit) == 1 && st.State == StateStopped
	})
	if !gone(pid) {
		t.Fatal("Delete left the process running")
	}
	if err := w.m.Start(within(t, 2*time.Second), "svc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Start during Delete: %v, want ErrNotFound at once", err)
	}
	release()
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Get("svc"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
}

// A Delete the database refuses leaves the job as it was, stopped, and
// usable.
func TestFailedDeleteKeepsTheJob(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Schedule: "@every 1h"})
	w.start("svc")
	holdDB(t, w.m.cfg) // for longer than a definition write waits
	if err := w.m.Delete(ctxT(t), "svc"); err == nil {
		t.Fatal("Delete succeeded on a locked database")
	}
	st, err := w.m.State("svc")
	if err != nil || st.State != StateStopped || st.NextRun == nil {
		t.Fatalf("after a failed Delete: %+v %v, want stopped and still scheduled", st, err)
	}
	w.start("svc")
	w.waitFor("svc", StateRunning)
}
