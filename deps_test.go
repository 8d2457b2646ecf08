package procman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantFieldError checks that err holds a *FieldError on field whose message holds want.
func wantFieldError(t *testing.T, what string, err error, field, want string) {
	t.Helper()
	for _, fe := range FieldErrors(err) {
		if fe.Field == field && strings.Contains(fe.Msg, want) {
			return
		}
	}
	t.Errorf("%s: %v, want an invalid %q saying %q", what, err, field, want)
}

// gate is a one_time job that runs until the file "<name>.go" appears in dir.
func gate(name, dir string) Job {
	return Job{Name: name, Type: OneTime, Dir: dir, Command: `while [ ! -e ` + name + `.go ]; do sleep 0.02; done`}
}

// letThrough lets the gate of that name end.
func letThrough(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name+".go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startAsync starts the job on a goroutine and returns Start's answer on a channel.
func (w *world) startAsync(name string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- w.m.Start(ctxT(w.t), name) }()
	return done
}

func (w *world) waitingFor(name string, want map[string]Condition) Status {
	w.t.Helper()
	return w.until(name, fmt.Sprintf("starting, waiting for %v", want), func(st Status) bool {
		return st.State == StateStarting && maps.Equal(st.WaitingFor, want)
	})
}

// checkedJob is a continuous job whose exec health check passes while the
// file <dir>/<name>.ok exists, and which is left running when unhealthy.
func (w *world) checkedJob(name string) Job {
	return Job{Name: name, Command: "sleep 100", Type: Continuous, Dir: w.dir, OnUnhealthy: OnUnhealthyIgnore,
		Health: fastCheck(HealthCheck{Exec: "test -e " + name + ".ok"})}
}

// setHealth makes the job's health check pass (healthy) or fail, and waits
// until its status says so.
func (w *world) setHealth(name string, healthy bool) {
	w.t.Helper()
	ok := filepath.Join(w.dir, name+".ok")
	if healthy {
		if err := os.WriteFile(ok, nil, 0o600); err != nil {
			w.t.Fatal(err)
		}
		w.health(name, HealthHealthy)
		return
	}
	if err := os.Remove(ok); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.t.Fatal(err)
	}
	w.health(name, HealthUnhealthy)
}

func TestDependsOnIsAnObjectOrAList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Dependencies
	}{
		{`["db","cache"]`, Dependencies{"db": ConditionStarted, "cache": ConditionStarted}},
		{`{"db":"healthy","mig":"completed_successfully"}`, Dependencies{"db": ConditionHealthy, "mig": ConditionCompletedSuccessfully}},
		{`[]`, nil},
		{`{}`, nil},
		{`null`, nil},
	} {
		j, err := DecodeJob([]byte(`{"name":"web","command":"true","depends_on":` + tc.in + `}`))
		if err != nil || !reflect.DeepEqual(j.DependsOn, tc.want) {
			t.Errorf("depends_on %s: %v, %v; want %v", tc.in, j.DependsOn, err, tc.want)
		}
	}
	j := Job{Name: "web", Command: "true", DependsOn: Dependencies{"db": ConditionStarted, "cache": ConditionHealthy}}
	if b, _ := json.Marshal(j); !strings.Contains(string(b), `"depends_on":{"cache":"healthy","db":"started"}`) {
		t.Errorf("sent as %s, want depends_on as an object", b)
	}
	for _, in := range []string{`["db","db"]`, `{"db":"started","db":"healthy"}`, `{"db":null}`, `"db"`, `[1]`, `{"db":3}`} {
		_, err := DecodeJob([]byte(`{"name":"web","command":"true","depends_on":` + in + `}`))
		wantFieldError(t, "depends_on "+in, err, "depends_on", "")
	}
}

// TestDependsOnRefusals: what a definition cannot depend on, alone and among
// the Manager's jobs, is refused naming depends_on (a cycle is shown), at
// Create, Replace and Update alike, and changes nothing.
func TestDependsOnRefusals(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "mig", Command: "true"})
	w.create(Job{Name: "a", Command: "true"})
	w.create(Job{Name: "b", Command: "true", DependsOn: Dependencies{"a": ConditionCompleted}})
	w.create(Job{Name: "c", Command: "true", DependsOn: Dependencies{"b": ConditionStarted}})
	w.create(Job{Name: "web", Command: "true", DependsOn: Dependencies{"mig": ConditionCompletedSuccessfully}})
	ctx := ctxT(t)
	for _, tc := range []struct {
		deps        Dependencies
		field, says string
	}{
		{Dependencies{"nope": ConditionStarted}, "depends_on", `unknown job "nope"`},
		{Dependencies{"x": ConditionStarted}, "depends_on", "itself"},
		{Dependencies{"db": ConditionCompleted}, "depends_on", `"db" is continuous: completed applies only to one_time jobs`},
		{Dependencies{"db": ConditionCompletedSuccessfully}, "depends_on", "one_time"},
		{Dependencies{"db": "ready"}, "depends_on", `unknown condition "ready"`},
		{Dependencies{"no/name": ConditionStarted}, "depends_on", "not a job name"},
	} {
		err := w.m.Create(ctx, Job{Name: "x", Command: "true", DependsOn: tc.deps})
		wantFieldError(t, fmt.Sprintf("Create with %v", tc.deps), err, tc.field, tc.says)
	}
	err := w.m.Create(ctx, Job{Name: "x", Command: "true", StartTimeout: dur(time.Second)})
	wantFieldError(t, "start_timeout alone", err, "start_timeout", "depends_on")

	err = w.m.Replace(ctx, "a", Job{Command: "true", DependsOn: Dependencies{"b": ConditionStarted}})
	wantFieldError(t, "Replace closing a cycle", err, "depends_on", "a -> b -> a")
	_, err = w.m.Update(ctx, "a", MergePatch([]byte(`{"depends_on":["c"]}`)))
	wantFieldError(t, "Update closing a cycle", err, "depends_on", "a -> c -> b -> a")
	_, err = w.m.Update(ctx, "a", MergePatch([]byte(`{"depends_on":{"nope":"started"}}`)))
	wantFieldError(t, "Update naming an unknown job", err, "depends_on", `unknown job "nope"`)
	_, err = w.m.Update(ctx, "mig", MergePatch([]byte(`{"type":"continuous"}`)))
	wantFieldError(t, "a dependency made continuous", err, "type", `"web" depends on this job with completed_successfully`)
	if j, _ := w.m.Get("a"); j.DependsOn != nil {
		t.Errorf("a after refused changes: %v, want no dependencies", j.DependsOn)
	}
	if j, _ := w.m.Get("mig"); j.Type != OneTime {
		t.Errorf("mig after a refused change: %s, want one_time", j.Type)
	}
	if _, err := w.m.Get("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused Create made x: %v", err)
	}
}

// TestConcurrentEditsCannotCloseACycle: edits of a ring of jobs, made at
// once, each making one job depend on the next, can never all succeed: one of
// them would close the ring, and the graph's checks and changes take turns.
func TestConcurrentEditsCannotCloseACycle(t *testing.T) {
	w := setup(t)
	const n = 6
	name := func(i int) string { return "j" + strconv.Itoa(i%n) }
	for i := range n {
		w.create(Job{Name: name(i), Command: "true"})
	}
	for round := range 5 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range n {
			wg.Go(func() {
				err := w.m.Replace(ctxT(t), name(i), Job{Command: "true", DependsOn: Dependencies{name(i + 1): ConditionStarted}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case len(FieldErrors(err)) == 0:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok != n-1 {
			t.Fatalf("round %d: %d of %d edits made, want all but the one that closes the ring", round, ok, n)
		}
		for i := range n { // undo, for the next round
			if err := w.m.Replace(ctxT(t), name(i), Job{Command: "true"}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestChainOfThreeWithEachCondition: starting the last job of a chain starts
// the others first (trigger dependency), each run beginning only once its
// condition holds: completed_successfully and completed after the end of
// the run before, started and healthy (no health check: as started) once it
// runs.
func TestChainOfThreeWithEachCondition(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "setup", Command: "true"})
	w.create(Job{Name: "migrate", Command: "exit 3", DependsOn: Dependencies{"setup": ConditionCompletedSuccessfully}})
	w.create(Job{Name: "app", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"migrate": ConditionCompleted}})
	w.start("app")
	if st, _ := w.m.State("app"); st.State != StateRunning {
		t.Fatalf("app after Start: %+v, want running", st)
	}
	setup, migrate, app := newestRun(t, w.m, "setup"), newestRun(t, w.m, "migrate"), newestRun(t, w.m, "app")
	if setup.Trigger != TriggerDependency || migrate.Trigger != TriggerDependency || app.Trigger != TriggerManual {
		t.Errorf("triggers: setup %s, migrate %s, app %s; want dependency, dependency, manual", setup.Trigger, migrate.Trigger, app.Trigger)
	}
	if setup.EndedAt == nil || migrate.EndedAt == nil || migrate.StartedAt.Before(*setup.EndedAt) || app.StartedAt.Before(*migrate.EndedAt) {
		t.Errorf("runs overlap: setup %+v, migrate %+v, app %+v; want each after the end of the one before", setup, migrate, app)
	}

	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "api", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"db": ConditionHealthy}})
	w.create(Job{Name: "worker", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"api": ConditionStarted}})
	w.start("worker")
	for _, name := range []string{"db", "api", "worker"} {
		if st, _ := w.m.State(name); st.State != StateRunning {
			t.Errorf("%s after starting worker: %+v, want running", name, st)
		}
	}
	db, api, worker := newestRun(t, w.m, "db"), newestRun(t, w.m, "api"), newestRun(t, w.m, "worker")
	if db.Trigger != TriggerDependency || api.Trigger != TriggerDependency || api.StartedAt.Before(db.StartedAt) || worker.StartedAt.Before(api.StartedAt) {
		t.Errorf("runs: db %+v, api %+v, worker %+v; want db, then api, then worker", db, api, worker)
	}
}

// TestWaitingForIsVisible: while a start waits, the job is starting and its
// status (and an event) lists the conditions not met yet; the wait ends, and
// the list goes, once they are.
func TestWaitingForIsVisible(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(gate("mig", w.dir))
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous,
		DependsOn: Dependencies{"db": ConditionStarted, "mig": ConditionCompletedSuccessfully}})
	events, cancel := w.m.Subscribe(ctxT(t))
	defer cancel()
	started := w.startAsync("web")
	w.waitingFor("web", map[string]Condition{"mig": ConditionCompletedSuccessfully})
	seen := false
	for ev := range events {
		if ev.Type == EventWaiting && ev.Job == "web" && maps.Equal(ev.Status.WaitingFor, map[string]Condition{"mig": ConditionCompletedSuccessfully}) {
			seen = true
			break
		}
	}
	if !seen {
		t.Error("no waiting event for web")
	}
	letThrough(t, w.dir, "mig")
	if err := <-started; err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st := w.waitFor("web", StateRunning); st.WaitingFor != nil {
		t.Errorf("web running: %+v, want no waiting_for", st)
	}
}

// TestFailingDependencyStopsTheChain: a dependency that cannot meet its
// condition fails the start of every job above it, each in error naming
// the dependency; Start says so.
func TestFailingDependencyStopsTheChain(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "bad", Command: "exit 4"})
	w.create(Job{Name: "mid", Command: "true", DependsOn: Dependencies{"bad": ConditionCompletedSuccessfully}})
	w.create(Job{Name: "top", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"mid": ConditionStarted}})
	err := w.m.Start(ctxT(t), "top")
	if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), `dependency "mid"`) {
		t.Fatalf("Start top: %v, want ErrStartFailed naming mid", err)
	}
	if st := w.waitFor("mid", StateError); st.Error != `dependency "bad" exited with code 4` {
		t.Errorf("mid: %q, want its reason", st.Error)
	}
	if st := w.waitFor("top", StateError); st.Error != `dependency "mid" is in error: dependency "bad" exited with code 4` {
		t.Errorf("top: %q, want its reason", st.Error)
	}
	if run := newestRun(t, w.m, "top"); run.Outcome != OutcomeFailedToStart || !strings.Contains(run.Error, `"mid"`) {
		t.Errorf("top's run: %+v, want failed_to_start naming mid", run)
	}

	w.create(Job{Name: "broken", Command: "true", Type: Continuous, Dir: "/no/such/dir", MaxRetries: 1})
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"broken": ConditionStarted}})
	w.startFails("svc")
	if st := w.waitFor("svc", StateError); !strings.HasPrefix(st.Error, `dependency "broken" is in error: gave up`) {
		t.Errorf("svc: %q, want broken's error", st.Error)
	}
}

// TestStartTimeout: past start_timeout, the start gives up, saying what it
// still waited for; the dependency goes on.
func TestStartTimeout(t *testing.T) {
	w := setup(t)
	w.create(gate("mig", w.dir))
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous, StartTimeout: dur(300 * time.Millisecond),
		DependsOn: Dependencies{"mig": ConditionCompleted}})
	w.startFails("web")
	if st := w.waitFor("web", StateError); st.Error != "start_timeout 300ms passed while waiting for mig (completed)" {
		t.Errorf("web: %q", st.Error)
	}
	if st, _ := w.m.State("mig"); st.State != StateRunning {
		t.Errorf("mig: %s, want still running", st.State)
	}
}

// TestStopDuringTheWait: a stop ends the wait at once, even while the wait
// is held up on a dependency's control lock, and the job is stopped; its
// dependencies are left alone.
func TestStopDuringTheWait(t *testing.T) {
	w := setup(t)
	w.create(gate("mig", w.dir))
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"mig": ConditionCompleted}})
	started := w.startAsync("web")
	w.waitingFor("web", map[string]Condition{"mig": ConditionCompleted})
	w.stop("web")
	if err := <-started; err != nil {
		t.Errorf("Start of a job stopped while it waited: %v, want nil", err)
	}
	if st, _ := w.m.State("web"); st.State != StateStopped || st.WaitingFor != nil {
		t.Errorf("web: %+v, want stopped", st)
	}
	if st := w.waitFor("mig", StateRunning, StateStopped, StateExited); st.State != StateRunning {
		t.Errorf("mig: %s, want still running", st.State)
	}

	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "api", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"db": ConditionStarted}})
	db, _ := w.m.runner("db")
	db.ctl <- struct{}{} // someone holds db: api's start waits to start it
	defer unlockSlot(db.ctl)
	started = w.startAsync("api")
	w.until("api", "starting", func(st Status) bool { return st.State == StateStarting })
	w.stop("api")
	if err := <-started; err != nil {
		t.Errorf("Start of api: %v, want nil", err)
	}
	if st, _ := w.m.State("db"); st.State != StateStopped {
		t.Errorf("db: %s, want never started", st.State)
	}
}

// TestDependencyDeletedMeanwhile: a dependency deleted while a start waits
// for it (the job's definition no longer names it, but the start under way
// does) fails the start.
func TestDependencyDeletedMeanwhile(t *testing.T) {
	w := setup(t)
	w.create(gate("mig", w.dir))
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"mig": ConditionCompleted}})
	started := w.startAsync("web")
	w.waitingFor("web", map[string]Condition{"mig": ConditionCompleted})
	if err := w.m.Replace(ctxT(t), "web", Job{Command: "sleep 100", Type: Continuous}); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Delete(ctxT(t), "mig"); err != nil {
		t.Fatal(err)
	}
	if err := <-started; !errors.Is(err, ErrStartFailed) {
		t.Errorf("Start: %v, want ErrStartFailed", err)
	}
	if st := w.waitFor("web", StateError); st.Error != `dependency "mig" was deleted` {
		t.Errorf("web: %q", st.Error)
	}
}

// stopMarker is a continuous job that, on its stop signal, writes when it
// got it into <name>.term, takes a moment, and writes when it ends into
// <name>.end: dependents stopped first end before their dependencies hear
// of the stop.
func stopMarker(name, dir string, deps Dependencies) Job {
	return Job{Name: name, Type: Continuous, Dir: dir, DependsOn: deps,
		Command: `trap 'date +%s%N > ` + name + `.term; sleep 0.2; date +%s%N > ` + name + `.end; exit 0' TERM; ` +
			`: > ` + name + `.ready; while :; do sleep 0.05; done`}
}

func (w *world) waitReady(names ...string) {
	w.t.Helper()
	for _, n := range names {
		eventually(w.t, n+"'s trap", func() bool {
			_, err := os.Stat(filepath.Join(w.dir, n+".ready"))
			return err == nil
		})
	}
}

// nanos reads a time a stopMarker wrote.
func (w *world) nanos(file string) int64 {
	w.t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(readFile(w.t, filepath.Join(w.dir, file))), 10, 64)
	if err != nil {
		w.t.Fatalf("%s: %v", file, err)
	}
	return n
}

// before fails the test unless what first wrote happened before what then did.
func (w *world) before(first, then string) {
	w.t.Helper()
	if a, b := w.nanos(first), w.nanos(then); a >= b {
		w.t.Errorf("%s at %d, not before %s at %d", first, a, then, b)
	}
}

// TestStopStopsDependentsFirst: a stop first stops the active jobs that
// depend on the job, directly or not, the farthest first, and says which;
// they are not wanted any more; other jobs go on.
func TestStopStopsDependentsFirst(t *testing.T) {
	w := setup(t)
	w.create(stopMarker("db", w.dir, nil))
	w.create(stopMarker("web", w.dir, Dependencies{"db": ConditionStarted}))
	w.create(stopMarker("worker", w.dir, Dependencies{"web": ConditionStarted}))
	w.create(Job{Name: "idle", Command: "true", DependsOn: Dependencies{"db": ConditionStarted}})
	w.create(Job{Name: "other", Command: "sleep 100", Type: Continuous})
	w.start("worker")
	w.start("other")
	w.waitReady("db", "web", "worker")
	stopped, err := w.m.StopWithDependents(ctxT(t), "db")
	if err != nil || !reflect.DeepEqual(stopped, []string{"worker", "web"}) {
		t.Fatalf("StopWithDependents: %v, %v; want worker, then web", stopped, err)
	}
	for _, name := range []string{"db", "web", "worker"} {
		r, _ := w.m.runner(name)
		r.mu.Lock()
		st, wanted := r.st, r.wanted
		r.mu.Unlock()
		if st.State != StateStopped || wanted {
			t.Errorf("%s: %s (wanted %v), want stopped and not wanted", name, st.State, wanted)
		}
	}
	w.before("worker.end", "web.term")
	w.before("web.end", "db.term")
	if st, _ := w.m.State("other"); st.State != StateRunning {
		t.Errorf("other: %s, want running", st.State)
	}
	if stopped, err := w.m.StopWithDependents(ctxT(t), "db"); err != nil || stopped != nil {
		t.Errorf("stopping db again: %v, %v; want nothing stopped", stopped, err)
	}
}

// TestRestartLeavesDependentsAlone: a restart of a dependency does not touch
// the jobs that depend on it.
func TestRestartLeavesDependentsAlone(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"db": ConditionStarted}})
	w.start("web")
	web, db := w.waitFor("web", StateRunning), w.waitFor("db", StateRunning)
	if err := w.m.Restart(ctxT(t), "db"); err != nil {
		t.Fatal(err)
	}
	if st := w.waitFor("db", StateRunning); st.PID == db.PID {
		t.Errorf("db after its restart: pid %d, want a new run", st.PID)
	}
	if st, _ := w.m.State("web"); st.State != StateRunning || st.PID != web.PID {
		t.Errorf("web after db's restart: %+v, want still running as pid %d", st, web.PID)
	}
}

// TestShutdownStopsDependentsFirst: Shutdown stops the jobs no one depends on
// first, independent ones among them, all at once, then the jobs they
// depended on, wave by wave.
func TestShutdownStopsDependentsFirst(t *testing.T) {
	w := setup(t)
	w.create(stopMarker("db", w.dir, nil))
	w.create(stopMarker("web", w.dir, Dependencies{"db": ConditionStarted}))
	w.create(stopMarker("worker", w.dir, Dependencies{"web": ConditionStarted}))
	w.create(stopMarker("solo", w.dir, nil))
	w.start("worker")
	w.start("solo")
	w.waitReady("db", "web", "worker", "solo")
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	w.before("worker.end", "web.term")
	w.before("web.end", "db.term")
	w.before("solo.term", "worker.end")
	w.before("solo.term", "web.term")
}

// TestDeleteRefusedWhileDependedOn: a job others depend on cannot be deleted
// (ErrInUse names them), and nothing is done to it; once no definition
// depends on it, it can.
func TestDeleteRefusedWhileDependedOn(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "web", Command: "true", DependsOn: Dependencies{"db": ConditionStarted}})
	w.create(Job{Name: "api", Command: "true", DependsOn: Dependencies{"db": ConditionStarted}})
	w.start("db")
	db := w.waitFor("db", StateRunning)
	err := w.m.Delete(ctxT(t), "db")
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "api, web") {
		t.Fatalf("Delete db: %v, want ErrInUse naming api and web", err)
	}
	if st, _ := w.m.State("db"); st.State != StateRunning || st.PID != db.PID {
		t.Errorf("db after the refused delete: %+v, want still running as pid %d", st, db.PID)
	}
	if err := w.m.Delete(ctxT(t), "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.m.Update(ctxT(t), "api", MergePatch([]byte(`{"depends_on":null}`))); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Delete(ctxT(t), "db"); err != nil {
		t.Fatalf("Delete db once nothing depends on it: %v", err)
	}
}

// TestCompletedDependencyIsNotRunAgain: a one_time dependency that completed
// (successfully, where that is asked) since this Manager opened is not run
// again; one that failed where success is asked is, and so is any after the
// Manager is opened again.
func TestCompletedDependencyIsNotRunAgain(t *testing.T) {
	dir := t.TempDir()
	cfg := sqliteDB.db(t, dir)
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	cfg.Logger = slog.New(w.logs)
	w.m = w.open(cfg)
	w.create(Job{Name: "mig", Command: "true"})
	w.create(Job{Name: "flaky", Dir: dir, Command: "[ -e flaky.once ] && exit 0; : > flaky.once; exit 1"})
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous,
		DependsOn: Dependencies{"mig": ConditionCompletedSuccessfully, "flaky": ConditionCompletedSuccessfully}})
	w.start("mig")
	w.waitFor("mig", StateExited)
	w.start("flaky")
	if st := w.waitFor("flaky", StateExited); *st.ExitCode != 1 {
		t.Fatalf("flaky: %+v, want it failed once", st)
	}
	w.start("web")
	runs := func(m *Manager, name string) int {
		rs, err := m.Runs(ctxT(t), name, RunsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return len(rs)
	}
	if n, f := runs(w.m, "mig"), runs(w.m, "flaky"); n != 1 || f != 2 {
		t.Errorf("runs after starting web: mig %d, flaky %d; want 1 (completed already) and 2 (run again)", n, f)
	}
	w.stop("web")
	w.start("web")
	if n, f := runs(w.m, "mig"), runs(w.m, "flaky"); n != 1 || f != 2 {
		t.Errorf("runs after starting web again: mig %d, flaky %d; want no more", n, f)
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m := w.open(cfg) // web was wanted: it comes back, and runs its dependencies again
	w.m = m
	w.waitFor("web", StateRunning)
	if n, f := runs(m, "mig"), runs(m, "flaky"); n != 2 || f != 3 {
		t.Errorf("runs after opening again: mig %d, flaky %d; want each run again", n, f)
	}
	if run := newestRun(t, m, "mig"); run.Trigger != TriggerDependency {
		t.Errorf("mig's run at open: trigger %s, want dependency", run.Trigger)
	}
}

// TestLateHealthyDependentAfterALossOfHealth is process-compose #544: a job
// waiting for healthy starts once its dependency is healthy, however often
// its health came and went before or while it waited; a loss of health alone
// never fails it.
func TestLateHealthyDependentAfterALossOfHealth(t *testing.T) {
	w := setup(t)
	w.create(w.checkedJob("db"))
	w.create(w.checkedJob("cache"))
	w.create(Job{Name: "web", Command: "sleep 100", Type: Continuous,
		DependsOn: Dependencies{"db": ConditionHealthy, "cache": ConditionHealthy}})
	w.start("db")
	w.start("cache")
	w.setHealth("cache", true)
	w.setHealth("db", true)
	w.setHealth("db", false) // a brief loss, before web is started
	started := w.startAsync("web")
	w.waitingFor("web", map[string]Condition{"db": ConditionHealthy})
	w.setHealth("db", true)
	if err := <-started; err != nil {
		t.Fatalf("Start of web once db was healthy again: %v", err)
	}
	w.waitFor("web", StateRunning)

	w.stop("web")
	w.setHealth("db", false) // unhealthy, and losing health again while web waits
	w.setHealth("cache", false)
	started = w.startAsync("web")
	w.waitingFor("web", map[string]Condition{"db": ConditionHealthy, "cache": ConditionHealthy})
	w.setHealth("db", true)
	w.setHealth("db", false)
	w.setHealth("cache", true)
	// web has judged db unhealthy when it sees cache healthy, and waits on.
	w.waitingFor("web", map[string]Condition{"db": ConditionHealthy})
	w.setHealth("db", true)
	if err := <-started; err != nil {
		t.Fatalf("Start of web: %v", err)
	}
	w.waitFor("web", StateRunning)
}

// TestStopWithDependentsFinishesOnceBegun: a stop whose caller leaves while
// dependents are being stopped still stops them all, and the job, in order.
func TestStopWithDependentsFinishesOnceBegun(t *testing.T) {
	w := setup(t)
	w.create(stopMarker("db", w.dir, nil))
	w.create(stopMarker("web", w.dir, Dependencies{"db": ConditionStarted}))
	w.start("web")
	w.waitReady("db", "web")
	err := w.cancelWhenStopping("web", func(ctx context.Context) error { return w.m.Stop(ctx, "db") })
	if err != nil {
		t.Fatalf("Stop whose caller left: %v, want it done", err)
	}
	w.before("web.end", "db.term")
	if st, _ := w.m.State("db"); st.State != StateStopped {
		t.Errorf("db: %s, want stopped", st.State)
	}
}
