package procman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestErrors(t *testing.T) {
	w := setup(t)
	ctx := ctxT(t)
	w.create(Job{Name: "a", Command: "sleep 100", Type: Continuous})
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"create duplicate", w.m.Create(ctx, Job{Name: "a", Command: "true", Type: OneTime}), ErrExists},
		{"create invalid", w.m.Create(ctx, Job{Name: "b", Command: "true", Type: "x"}), ErrInvalid},
		{"start unknown", w.m.Start(ctx, "nope"), ErrNotFound},
		{"stop unknown", w.m.Stop(ctx, "nope"), ErrNotFound},
		{"restart unknown", w.m.Restart(ctx, "nope"), ErrNotFound},
		{"delete unknown", w.m.Delete(ctx, "nope"), ErrNotFound},
		{"replace unknown", w.m.Replace(ctx, "nope", Job{Command: "true", Type: OneTime}), ErrNotFound},
		{"replace rename", w.m.Replace(ctx, "a", Job{Name: "b", Command: "true", Type: OneTime}), ErrInvalid},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := w.m.Get("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get unknown: %v", err)
	}
	if _, err := w.m.State("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State unknown: %v", err)
	}
	w.start("a")
	if err := w.m.Start(ctx, "a"); !errors.Is(err, ErrRunning) {
		t.Errorf("start running: %v", err)
	}
	if err := w.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Start(ctx, "a"); !errors.Is(err, ErrClosed) {
		t.Errorf("start after shutdown: %v", err)
	}
	if err := w.m.Create(ctx, Job{Name: "c", Command: "true", Type: OneTime}); !errors.Is(err, ErrClosed) {
		t.Errorf("create after shutdown: %v", err)
	}
	if st, err := w.m.State("a"); err != nil || st.State != StateStopped {
		t.Errorf("state after shutdown: %+v %v", st, err)
	}
}

func TestPersistenceAndReboot(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DBPath: filepath.Join(dir, "p.db"), LogDir: filepath.Join(dir, "logs"), StopTimeout: time.Second}
	ctx := ctxT(t)
	m, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	boot := Job{Name: "boot", Command: "sleep 100", Type: Continuous, Schedule: ScheduleReboot,
		Env: map[string]string{"K": "v"}, StopTimeout: dur(3 * time.Second), MaxRetries: 7}
	for _, j := range []Job{boot, {Name: "hand", Command: "sleep 100", Type: Continuous, Schedule: "manual"}} {
		if err := m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := m.State("boot")
	if first.State != StateRunning {
		t.Fatalf("reboot job not started on create: %+v", first)
	}
	if err := m.Start(ctx, "hand"); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}

	m2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(ctx)
	got, err := m2.Get("boot")
	if err != nil || fmt.Sprint(got) != fmt.Sprint(boot) {
		t.Fatalf("after reopen: %+v %v, want %+v", got, err, boot)
	}
	if st, _ := m2.State("boot"); st.State != StateRunning || st.PID == first.PID {
		t.Fatalf("reboot job after reopen: %+v", st)
	}
	// Started by hand and never stopped: wanted running (desired.go).
	if st, _ := m2.State("hand"); st.State != StateRunning {
		t.Fatalf("manual job after reopen: %+v, want resumed", st)
	}
	if n := len(m2.List()); n != 2 {
		t.Fatalf("%d jobs", n)
	}
}

func TestReplaceTakesEffectOnRestart(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "echo v1; sleep 100", Type: Continuous})
	w.start("svc")
	st1 := w.waitFor("svc", StateRunning)
	if err := w.m.Replace(ctxT(t), "svc", Job{Command: "echo v2; sleep 100", Type: Continuous}); err != nil {
		t.Fatal(err)
	}
	if j, _ := w.m.Get("svc"); j.Command != "echo v2; sleep 100" || j.Name != "svc" {
		t.Fatalf("Get after Replace: %+v", j)
	}
	if st, _ := w.m.State("svc"); st.PID != st1.PID {
		t.Fatal("Replace restarted the running job")
	}
	if err := w.m.Restart(ctxT(t), "svc"); err != nil {
		t.Fatal(err)
	}
	st2 := w.waitFor("svc", StateRunning)
	if st2.PID == st1.PID || !gone(st1.PID) {
		t.Fatalf("Restart kept the old process: %d -> %d", st1.PID, st2.PID)
	}
	eventually(t, "v2 output", func() bool { return readFile(t, st2.LogFile) == "v2\n" })
}

func TestDeleteStopsAndFreesTheName(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "d", Command: "sleep 100", Type: Continuous})
	w.start("d")
	pid := w.waitFor("d", StateRunning).PID
	if err := w.m.Delete(ctxT(t), "d"); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatal("Delete left the process running")
	}
	if _, err := w.m.Get("d"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	w.create(Job{Name: "d", Command: "true", Type: OneTime})
	if j, _ := w.m.Get("d"); j.Type != OneTime {
		t.Fatalf("recreated: %+v", j)
	}
}

func TestConcurrentCreatesAndStarts(t *testing.T) {
	w := setup(t)
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 50 {
		wg.Go(func() {
			name := fmt.Sprintf("job-%02d", i)
			if err := w.m.Create(ctx, Job{Name: name, Command: "sleep 100", Type: Continuous}); err != nil {
				errs <- err
				return
			}
			if err := w.m.Start(ctx, name); err != nil {
				errs <- err
			}
			w.m.States() // readers race with writers
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, st := range w.m.States() {
		if st.State != StateRunning || st.PID == 0 {
			t.Errorf("%+v", st)
		}
	}
	if n := len(w.m.List()); n != 50 {
		t.Fatalf("%d jobs", n)
	}
}

func TestShutdownForcesWhenContextEnds(t *testing.T) {
	w := setup(t)
	var pids []int
	for i := range 3 {
		name := fmt.Sprintf("deaf-%d", i)
		w.create(Job{Name: name, Command: `trap '' TERM; echo ready; while :; do sleep 1; done`, Type: Continuous,
			StopTimeout: dur(time.Hour)})
		w.start(name)
		st := w.waitFor(name, StateRunning)
		eventually(t, "trap set", func() bool { return readFile(t, st.LogFile) == "ready\n" })
		pids = append(pids, st.PID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := w.m.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want deadline exceeded", err)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("pid %d survived a forced shutdown", pid)
		}
	}
	for _, st := range w.m.States() {
		if st.State != StateStopped {
			t.Errorf("%s: %s", st.Name, st.State)
		}
	}
}

func TestOpenRejectsBadConfigAndDatabase(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(ctxT(t), Config{DBPath: filepath.Join(dir, "a.db"), StopTimeout: -1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative StopTimeout: %v", err)
	}
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, []byte("this is not a database, just some text that is long enough"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctxT(t), Config{DBPath: junk, LogDir: dir}); err == nil {
		t.Error("opened a file that is not a database")
	}
}

// If a stopped or swept group stayed listed, the guardian could kill a reused pgid.
func TestGuardianListFollowsRuns(t *testing.T) {
	w := setup(t)
	listed := func() map[int]bool {
		out := map[int]bool{}
		for _, pg := range w.m.guard.Groups() {
			out[pg] = true
		}
		return out
	}
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	pgid := w.waitFor("svc", StateRunning).PID
	if !listed()[pgid] {
		t.Fatalf("running group %d not given to the guardian", pgid)
	}
	w.stop("svc")
	if l := listed(); len(l) != 0 {
		t.Fatalf("guardian still lists %v after Stop", l)
	}
	w.create(Job{Name: "leaver", Command: `sleep 1000 & echo $! > gc.pid`, Type: OneTime, Dir: w.dir})
	w.start("leaver")
	w.waitFor("leaver", StateExited)
	if l := listed(); len(l) != 0 {
		t.Fatalf("guardian still lists %v after the run was swept", l)
	}
}

func TestReplaceIsPersisted(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "j", Command: "echo v1", Type: OneTime})
	want := Job{Name: "j", Command: "echo v2", Type: Continuous, MaxRetries: 2}
	if err := w.m.Replace(ctxT(t), "j", want); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m2 := w.open(w.m.cfg)
	if got, err := m2.Get("j"); err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after reopen: %+v %v, want %+v", got, err, want)
	}
}

// An entry's version changes with its definition and only then, and is
// never given twice, not even to a job that takes a deleted job's name: what
// a listing keeps per version (httpapi's encoded definitions) stays true.
func TestEntryVersions(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "a", Command: "echo one", Type: OneTime})
	w.create(Job{Name: "b", Command: "sleep 100", Type: Continuous})
	versions := func() map[string]uint64 {
		t.Helper()
		out := map[string]uint64{}
		for _, e := range w.m.Entries() {
			out[e.Name] = e.Version
		}
		return out
	}
	seen := map[uint64]string{}
	note := func(what string, v uint64) {
		t.Helper()
		if prev, ok := seen[v]; ok {
			t.Fatalf("%s has version %d, which %s had", what, v, prev)
		}
		seen[v] = what
	}
	v0 := versions()
	note("a", v0["a"])
	note("b", v0["b"])
	w.start("b")
	w.start("a")
	w.waitFor("a", StateExited)
	if v := versions(); v["a"] != v0["a"] || v["b"] != v0["b"] {
		t.Fatalf("runs changed the versions: %v, were %v", v, v0)
	}
	if err := w.m.Replace(ctxT(t), "a", Job{Command: "echo two", Type: OneTime}); err != nil {
		t.Fatal(err)
	}
	v1 := versions()
	note("a replaced", v1["a"])
	if _, err := w.m.Update(ctxT(t), "b", MergePatch([]byte(`{"max_retries":2}`))); err != nil {
		t.Fatal(err)
	}
	v2 := versions()
	note("b updated", v2["b"])
	if v2["a"] != v1["a"] {
		t.Fatalf("b's update changed a's version: %v, was %v", v2, v1)
	}
	if err := w.m.Delete(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "a", Command: "echo two", Type: OneTime})
	note("a created again", versions()["a"])
	if _, err := w.m.Update(ctxT(t), "b", MergePatch([]byte(`{"name":"c"}`))); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a refused update: %v", err)
	}
	if v := versions()["b"]; v != v2["b"] {
		t.Fatalf("a refused update changed b's version to %d, was %d", v, v2["b"])
	}
	for e := range w.m.AllEntries() { // and the iterator stops when asked to
		if e.Name != "a" {
			t.Fatalf("AllEntries began with %q, want a", e.Name)
		}
		break
	}
}

// A run whose shell outlives SIGKILL (here it moves to another process
// group, which to ProcMan is the same as a process stuck in the kernel) puts
// its job in error with ErrStopFailed. Shutdown reports it, and returns with
// no goroutine of the Manager left: the wait for that shell is given up, and
// the process stays a child of this one.
func TestShutdownGivesUpARunThatOutlivedSIGKILL(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	ctx := ctxT(t)
	haven := exec.Command("sleep", "1000") // the group the shell moves to
	haven.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := haven.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-haven.Process.Pid, syscall.SIGKILL)
		haven.Wait()
	})
	dir := t.TempDir()
	m, err := Open(ctx, Config{DBPath: filepath.Join(dir, "p.db"), LogDir: filepath.Join(dir, "logs"),
		StopTimeout: 100 * time.Millisecond, KillWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	shutdown := sync.OnceValue(func() error { return m.Shutdown(context.Background()) })
	t.Cleanup(func() { shutdown() })
	err = m.Create(ctx, Job{Name: "leaver", Type: Continuous, Command: "exec '" + os.Args[0] + "' -test.run='^$'",
		Env: map[string]string{helperVar: "setpgid", "PROCMAN_TEST_PGID": strconv.Itoa(haven.Process.Pid)}})
	if err == nil {
		err = m.Start(ctx, "leaver")
	}
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.WaitFor(ctx, "leaver", StateRunning)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the shell to leave its group", func() bool {
		b, _ := os.ReadFile(st.LogFile)
		return string(b) == "left\n"
	})
	if err := m.Stop(ctx, "leaver"); !errors.Is(err, ErrStopFailed) {
		t.Fatalf("Stop: %v, want ErrStopFailed", err)
	}
	if after, _ := m.State("leaver"); after.State != StateError {
		t.Errorf("after Stop: %+v, want error", after)
	}
	err = shutdown()
	if !errors.Is(err, ErrStopFailed) || !strings.Contains(err.Error(), strconv.Itoa(st.PID)) {
		t.Errorf("Shutdown: %v, want ErrStopFailed naming the shell %d", err, st.PID)
	}
	goleak.VerifyNone(t, leaks)
	if gone(st.PID) {
		t.Errorf("the shell %d is gone: the test expected it to outlive everything", st.PID)
	}
	syscall.Kill(st.PID, syscall.SIGKILL)
	var ws syscall.WaitStatus
	syscall.Wait4(st.PID, &ws, 0, nil) // still this process's child
}
