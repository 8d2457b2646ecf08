package procman

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
)

// wantOwner checks that err is an *OwnerError naming host at its URL.
func wantOwner(t *testing.T, what string, err error, host string) {
	t.Helper()
	var oe *OwnerError
	if !errors.As(err, &oe) || !errors.Is(err, ErrElsewhere) || oe.Host != host || oe.URL != "http://"+host+".example:10000" {
		t.Fatalf("%s: %v (%#v), want an OwnerError naming host %s", what, err, oe, host)
	}
}

// runsBy counts the runs of job recorded by host.
func runsBy(t *testing.T, m *Manager, job, host string) int {
	t.Helper()
	if err := m.w.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := m.store.db.NewRaw("SELECT count(*) FROM runs WHERE job = ? AND host = ?", job, host).Scan(ctxT(t), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A job pinned to b, created through a, is b's alone: a never starts it (by
// hand, at its creation, by its schedule, as a dependency) and answers each
// control of it with an OwnerError naming b; b learns of it at its Open and
// runs it.
func TestJobPinnedToAnotherHost(t *testing.T) {
	f := newFleet(t)
	a := f.open("a", 0)
	b := f.open("b", 0)
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	marker := filepath.Join(f.w.dir, "boot-ran")
	wa.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Host: "b", Labels: map[string]string{"tier": "svc"}})
	wa.create(Job{Name: "boot", Command: "touch " + marker, Schedule: ScheduleReboot, Host: "b"})
	wa.create(Job{Name: "tick", Command: "true", Schedule: "@every 1s", Host: "b"})
	wa.create(Job{Name: "user", Command: "true", DependsOn: Dependencies{"svc": ConditionStarted}})

	ctx := ctxT(t)
	wantOwner(t, "Start", a.Start(ctx, "svc"), "b")
	wantOwner(t, "Restart", a.Restart(ctx, "svc"), "b")
	wantOwner(t, "Stop", a.Stop(ctx, "svc"), "b")
	wantOwner(t, "Signal", a.Signal(ctx, "svc", syscall.SIGHUP), "b")
	_, err := a.Usage(ctx, "svc")
	wantOwner(t, "Usage", err, "b")
	_, err = a.Logs(ctx, "svc", LogOptions{})
	wantOwner(t, "Logs", err, "b")
	wantOwner(t, "Delete", a.Delete(ctx, "svc"), "b")
	res, err := a.StartJobs(ctx, AllJobs())
	if err != nil || len(res) != 4 {
		t.Fatalf("StartJobs: %v %+v", err, res)
	}
	for _, r := range res {
		if r.Name == "user" {
			continue // its start fails: its dependency runs elsewhere
		}
		wantOwner(t, "StartJobs of "+r.Name, r.Err, "b")
	}
	res, err = a.StopJobs(ctx, mustSelector(t, "tier=svc"))
	if err != nil || len(res) != 1 {
		t.Fatalf("StopJobs: %v %+v", err, res)
	}
	wantOwner(t, "StopJobs", res[0].Err, "b")

	loc, err := a.Locate("svc")
	if err != nil || loc != (Location{Host: "b", URL: "http://b.example:10000"}) {
		t.Fatalf("Locate on a: %+v %v", loc, err)
	}
	st, _ := a.State("svc")
	if st.State != StateUnknown || st.Host != "b" || st.Error != "on host b" || st.NextRun != nil {
		t.Fatalf("svc's status on a: %+v", st)
	}
	if r, _ := a.runner("tick"); func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.entry != 0 }() {
		t.Fatal("tick is scheduled on a")
	}
	for _, e := range a.Entries() {
		if want := map[string]string{"user": "a"}[e.Name]; e.Host != want && !(want == "" && e.Host == "b") {
			t.Fatalf("entry %s on a: host %q", e.Name, e.Host)
		}
	}

	// b learns of the jobs a wrote when it opens: it starts boot, ticks tick,
	// runs svc when asked; a has run none of them.
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	b = f.open("b", 0)
	wb := &world{t: t, dir: f.w.dir, m: b, logs: f.w.logs}
	if loc, err := b.Locate("svc"); err != nil || !loc.Local || loc.Host != "b" {
		t.Fatalf("Locate on b: %+v %v", loc, err)
	}
	wb.waitFor("boot", StateExited)
	wb.start("svc")
	if st := wb.waitFor("svc", StateRunning); st.Host != "b" {
		t.Fatalf("svc on b: %+v", st)
	}
	eventually(t, "tick's schedule firing on b", func() bool { return runsBy(t, b, "tick", "b") > 0 })
	wantOwner(t, "b's Start of a's job", b.Start(ctx, "user"), "a")
	for _, job := range []string{"svc", "boot", "tick"} {
		if n := runsBy(t, a, job, "a"); n != 0 {
			t.Fatalf("a ran %s %d times", job, n)
		}
	}
}

// A host must be one the fleet knows; "*" is any.
func TestJobHostChecked(t *testing.T) {
	f := newFleet(t)
	a := f.open("a", 0)
	for _, host := range []string{"nosuch", "a b", "x\x00"} {
		err := a.Create(ctxT(t), Job{Name: "j", Command: "true", Host: host})
		if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "host" {
			t.Errorf("Create with host %q: %v, want an invalid host", host, err)
		}
	}
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "here", Command: "true", Host: "a"})
	if _, err := a.Update(ctxT(t), "here", func(j *Job) error { j.Host = "nosuch"; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Update to an unknown host: %v", err)
	}
	_, err := a.Apply(ctxT(t), parse(t, "jobs:\n  d: {command: 'true', host: nosuch}\n"), ApplyOptions{})
	if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "host" {
		t.Fatalf("Apply with an unknown host: %v", err)
	}
}

// A job moves only at rest: changing the host of an active job is refused.
func TestActiveJobDoesNotMove(t *testing.T) {
	f := newFleet(t)
	a := f.open("a", 0)
	f.open("b", 0)
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	wa.start("svc")
	if _, err := a.Update(ctxT(t), "svc", func(j *Job) error { j.Host = "b"; return nil }); !errors.Is(err, ErrRunning) {
		t.Fatalf("moving a running job: %v, want ErrRunning", err)
	}
	if _, err := a.Update(ctxT(t), "svc", func(j *Job) error { j.Host = "a"; return nil }); err != nil {
		t.Fatalf("naming its own host: %v", err)
	}
	wa.stop("svc")
	if _, err := a.Update(ctxT(t), "svc", func(j *Job) error { j.Host = "b"; return nil }); err != nil {
		t.Fatalf("moving a stopped job: %v", err)
	}
	wantOwner(t, "Start after the move", a.Start(ctxT(t), "svc"), "b")
}

// On SQLite the one host runs every job: "*" and its own name are here,
// another name is refused.
func TestJobHostOnSQLite(t *testing.T) {
	w := setup(t, Config{Host: "solo"})
	w.create(Job{Name: "float", Command: "sleep 100", Type: Continuous, Host: HostAny})
	w.create(Job{Name: "pinned", Command: "true", Host: "solo"})
	w.start("float")
	if st := w.waitFor("float", StateRunning); st.Host != "solo" {
		t.Fatalf("float: %+v", st)
	}
	if loc, err := w.m.Locate("pinned"); err != nil || !loc.Local || loc.Host != "solo" {
		t.Fatalf("Locate: %+v %v", loc, err)
	}
	if err := w.m.Create(ctxT(t), Job{Name: "away", Command: "true", Host: "other"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Create pinned to another host on SQLite: %v", err)
	}
}
