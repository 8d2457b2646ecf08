package procman

import (
	"strings"
	"testing"
	"time"
)

// Without reopening, each host learns what the others write: b runs a reboot
// job created for it through a, and a job moved to it; a shows the statuses
// of b's jobs as b writes them, and its events stream b's changes with b's
// name; a job deleted through a is stopped on b.
func TestMirrorFollowsTheFleet(t *testing.T) {
	f := newFleet(t)
	a := f.openFloating("a")
	b := f.openFloating("b")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wb := &world{t: t, dir: f.w.dir, m: b, logs: f.w.logs}
	events, stop := a.Subscribe(ctxT(t))
	defer stop()

	wa.create(Job{Name: "boot", Command: "sleep 100", Type: Continuous, Schedule: ScheduleReboot, Host: "b"})
	pid := runningOn(t, b, "boot")
	eventually(t, "boot running on b as a sees it", func() bool {
		st, _ := a.State("boot")
		return st.State == StateRunning && st.Host == "b" && st.PID == pid
	})
	for e := range events {
		if e.Job == "boot" && e.To == StateRunning && e.Status.Host == "b" {
			break
		}
	}

	wa.create(Job{Name: "moved", Command: "sleep 100", Type: Continuous})
	if _, err := a.Update(ctxT(t), "moved", func(j *Job) error { j.Host = "b"; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b knows it owns moved", func() bool {
		loc, err := b.Locate("moved")
		return err == nil && loc.Local
	})
	wb.start("moved")

	wb.stop("boot")
	eventually(t, "boot stopped as a sees it", func() bool {
		st, _ := a.State("boot")
		return st.State == StateStopped && st.Host == "b"
	})
	// A job made through a, then deleted through a: b learns of both.
	doc := "jobs:\n  other: {command: 'true'}\n"
	if _, err := a.Apply(ctxT(t), parse(t, doc), ApplyOptions{Source: "f.yaml"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b learns of other", func() bool { _, err := b.Get("other"); return err == nil })
	if err := a.Delete(ctxT(t), "other"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "b forgets other", func() bool { _, err := b.Get("other"); return err != nil })

	// A job deleted takes its status row with it.
	wb.stop("moved")
	if err := b.Delete(ctxT(t), "moved"); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := b.store.db.NewRaw("SELECT count(*) FROM job_status WHERE job = 'moved'").Scan(ctxT(t), &left); err != nil || left != 0 {
		t.Fatalf("status rows of a deleted job: %d (%v)", left, err)
	}
}

// A host whose lease has ended shows, on the others, its pinned jobs as
// unknown, naming it; back, they show what it writes again.
func TestDeadHostsJobsAreUnknown(t *testing.T) {
	f := newFleet(t)
	a := f.openFloating("a")
	b := f.openFloating("b")
	wb := &world{t: t, dir: f.w.dir, m: b, logs: f.w.logs}
	wb.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	wb.start("svc")
	eventually(t, "svc running as a sees it", func() bool {
		st, _ := a.State("svc")
		return st.State == StateRunning && st.Host == "b"
	})
	b.lock.(*hostLease).frozen.Store(true)
	eventually(t, "svc unknown on a", func() bool {
		st, _ := a.State("svc")
		return st.State == StateUnknown && strings.Contains(st.Error, "host b is not alive")
	})
	for _, e := range a.Entries() {
		if e.Name == "svc" && e.State != StateUnknown {
			t.Fatalf("a's listing of svc: %s", e.State)
		}
	}
	b.lock.(*hostLease).frozen.Store(false)
	eventually(t, "b back, svc running as a sees it", func() bool {
		st, _ := a.State("svc")
		return st.State == StateRunning && st.Host == "b"
	})
}

// A database outage longer than half the lease stops the floating jobs
// only; once the server is back every host reconnects by itself, the
// floating job runs again, and the mirror (which lost the notifications
// sent meanwhile) reads what changed at once.
func TestDatabaseOutageInAFleet(t *testing.T) {
	srv := pgRestarts.Server(t)
	f := &fleet{w: &world{t: t, dir: t.TempDir(), logs: &bugLog{t: t}}, dsn: pgRestarts.DB(t)}
	open := func(host string) *Manager {
		cfg := f.config(host, 2*time.Second)
		cfg.Grace = testGrace
		return f.w.open(cfg)
	}
	a := open("a")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "float", Command: "sleep 100", Type: Continuous, Host: HostAny, StopTimeout: dur(100 * time.Millisecond)})
	claimedBy(t, a, "float")
	b := open("b")
	wb := &world{t: t, dir: f.w.dir, m: b, logs: f.w.logs}
	wb.create(Job{Name: "pinned", Command: "sleep 100", Type: Continuous})
	wa.start("float")
	wb.start("pinned")
	pinned := runningOn(t, b, "pinned")

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			srv.Start()
		}
	})
	eventually(t, "float stopped by a's self-fencing", func() bool {
		st, _ := a.State("float")
		return st.State != StateRunning || st.Host != "a"
	})
	if st, _ := b.State("pinned"); st.State != StateRunning || st.PID != pinned {
		t.Fatalf("pinned during the outage: %+v, want running as pid %d", st, pinned)
	}
	wb.stop("pinned") // a hears of it only from the backstop after reconnecting
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	t.Cleanup(func() {
		if t.Failed() {
			f.w.logs.mu.Lock()
			for _, m := range f.w.logs.msgs {
				if !strings.Contains(m, "job state") || strings.Contains(m, "float") {
					t.Log(m)
				}
			}
			f.w.logs.mu.Unlock()
		}
	})
	eventually(t, "float running again", func() bool {
		for _, m := range []*Manager{a, b} {
			if st, _ := m.State("float"); st.State == StateRunning && st.Host == m.cfg.Host {
				return true
			}
		}
		return false
	})
	eventually(t, "pinned stopped as a sees it", func() bool {
		st, _ := a.State("pinned")
		return st.State == StateStopped && st.Host == "b"
	})
}
