package procman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// within returns a context that ends after d, for a call that must return promptly.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// allRecorded checks that every run ID the jobs' runners gave has its row,
// ended: nothing was lost while the database would not take writes.
func (w *world) allRecorded(jobs ...string) {
	w.t.Helper()
	for _, name := range jobs {
		ids := map[int64]bool{}
		for _, r := range w.runs(name) {
			ids[r.ID] = true
			if r.EndedAt == nil || r.Outcome == "" {
				w.t.Errorf("run %d of %s has no end recorded: %+v", r.ID, name, r)
			}
		}
		rn, err := w.m.runner(name)
		if err != nil {
			w.t.Fatal(err)
		}
		given := rn.lastRunID.Load()
		for id := int64(1); id <= given; id++ {
			if !ids[id] {
				w.t.Errorf("run %d of %s was given but is not in the history (%d runs recorded of %d)", id, name, len(ids), given)
			}
		}
	}
}

// Another program holding the database's write lock must not slow
// supervision: a crash-looping service restarts at its own pace, a stop
// returns at once, Ping reports the database unwritable at once, and once
// the lock goes every run is in the history.
func TestLockedDatabaseDoesNotStallSupervision(t *testing.T) {
	eachDialect(t, testLockedDatabaseDoesNotStallSupervision)
}

func testLockedDatabaseDoesNotStallSupervision(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "crash", Command: "exit 1", Type: Continuous,
		BackoffInitial: dur(50 * time.Millisecond), BackoffMax: dur(50 * time.Millisecond), MinUptime: dur(time.Hour)})
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	w.start("crash")
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping before the lock: %v", err)
	}
	release := holdDB(t, w.m.cfg)

	// Restarts come every 25-75 ms; a write in their way took a busy timeout (5 s) each.
	before := w.until("crash", "a restart", func(st Status) bool { return st.Restarts >= 1 }).Restarts
	if _, err := w.m.waitUntil(within(t, 4*time.Second), "crash", func(st Status) bool {
		return st.Restarts >= before+5
	}); err != nil {
		t.Fatalf("the crash loop stalled while the database was locked: %v", err)
	}
	if err := w.m.Stop(within(t, 2*time.Second), "svc"); err != nil {
		t.Fatalf("Stop while the database was locked: %v", err)
	}
	began := time.Now()
	err := w.m.Ping(ctxT(t))
	if err == nil || time.Since(began) > 2*time.Second {
		t.Fatalf("Ping while the database was locked: %v after %s, want an error within 2s", err, time.Since(began))
	}
	t.Logf("Ping: %v (%s)", err, time.Since(began).Round(time.Millisecond))
	// A read of the history waits for what is queued, as long as its ctx allows.
	if _, err := w.m.Runs(within(t, 100*time.Millisecond), "crash", RunsOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Runs while the database was locked: %v, want the ctx's deadline", err)
	}
	if err := w.m.Stop(within(t, 2*time.Second), "crash"); err != nil {
		t.Fatalf("Stop while the database was locked: %v", err)
	}

	release()
	w.allRecorded("crash", "svc")
	eventually(t, "Ping healthy again", func() bool { return w.m.Ping(ctxT(t)) == nil })
	if !w.logs.has("database write failed; retrying") || !w.logs.has("database writes resumed") {
		t.Error("the failing and resumed writes were not logged")
	}
}

// A run's ID comes from memory, so a run whose record waits in the queue
// still has its own, and last_run never names another run. Each job numbers
// its runs from 1.
func TestRunIDsAreNeverShared(t *testing.T) { eachDialect(t, testRunIDsAreNeverShared) }

func testRunIDsAreNeverShared(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "a", Command: "true", Type: OneTime})
	w.create(Job{Name: "b", Command: "true", Type: OneTime})
	w.start("b")
	w.waitFor("b", StateExited)
	w.start("a")
	first := w.waitFor("a", StateExited).LastRun.ID
	if first != 1 {
		t.Fatalf("the first run of a is %d, want 1: runs are numbered per job", first)
	}
	release := holdDB(t, w.m.cfg)
	seen := []int64{first}
	for range 3 {
		w.start("a")
		id := w.waitFor("a", StateExited).LastRun.ID
		if id <= seen[len(seen)-1] {
			t.Fatalf("run IDs %v then %d: not new", seen, id)
		}
		seen = append(seen, id)
	}
	release()
	runs := w.runs("a")
	for i, r := range runs {
		if want := seen[len(seen)-1-i]; r.ID != want {
			t.Errorf("history has run %d where last_run named %d", r.ID, want)
		}
	}
	// A new Manager goes on from the highest ID.
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m := w.open(w.m.cfg)
	if err := m.Start(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.WaitFor(ctxT(t), "a", StateExited); st.LastRun.ID != seen[len(seen)-1]+1 {
		t.Fatalf("first run after reopening: %d, want %d", st.LastRun.ID, seen[len(seen)-1]+1)
	}
}

// A burst of starts, then Shutdown at once: every start and every stop is
// in the database when Shutdown returns.
func TestShutdownWritesWhatIsQueued(t *testing.T) { eachDialect(t, testShutdownWritesWhatIsQueued) }

func testShutdownWritesWhatIsQueued(t *testing.T, d dialect) {
	w := setupOn(t, d)
	var wg sync.WaitGroup
	for i := range 200 {
		name := fmt.Sprintf("j%03d", i)
		w.create(Job{Name: name, Command: "sleep 100", Type: Continuous})
		wg.Go(func() { w.start(name) })
	}
	wg.Wait()
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s := openTestStore(t, w.m.cfg)
	defer s.close()
	var n int
	if err := s.db.NewRaw("SELECT count(*) FROM runs WHERE outcome = 'stopped'").Scan(ctxT(t), &n); err != nil || n != 200 {
		t.Fatalf("%d stopped runs recorded (%v), want 200", n, err)
	}
}

// A database that never takes the writes does not hold Shutdown for ever:
// after drainLimit it gives up on them, says how many, and a run whose end
// was lost shows outcome unknown at the next Open.
func TestShutdownGivesUpOnAStuckDatabase(t *testing.T) {
	eachDialect(t, testShutdownGivesUpOnAStuckDatabase)
}

func testShutdownGivesUpOnAStuckDatabase(t *testing.T, d dialect) {
	w := &world{t: t, dir: t.TempDir(), logs: &bugLog{t: t}} // no cleanup that would see Shutdown's error
	cfg := d.db(t, w.dir)
	cfg.Logger, cfg.NoResume = slog.New(w.logs), true
	m, err := Open(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	w.m = m
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	if runs := w.runs("svc"); len(runs) != 1 { // its start is written
		t.Fatalf("runs %+v", runs)
	}
	release := holdDB(t, cfg)
	began := time.Now()
	err = w.m.Shutdown(ctxT(t))
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "not written") || took > drainLimit+3*time.Second {
		t.Fatalf("Shutdown: %v after %s, want records reported unwritten within about %s", err, took, drainLimit)
	}
	if !w.logs.has("records not written to the database before shutdown count=") {
		t.Error("the unwritten records were not logged with their count")
	}
	release()
	m = w.open(cfg)
	runs, err := m.Runs(ctxT(t), "svc", RunsOptions{})
	if err != nil || len(runs) != 1 || runs[0].Outcome != OutcomeUnknown {
		t.Fatalf("runs after the lost end: %+v %v, want one with outcome unknown", runs, err)
	}
}

// The writes of one batch that the writer merges (runs' ends, desired
// states, retention) come out as if made one by one: the last desired state
// of a job wins, every run has its end, and retention keeps keep_runs runs of
// a job that had more, and all of one that had fewer.
func TestMergedWritesOfOneBatch(t *testing.T) { eachDialect(t, testMergedWritesOfOneBatch) }

func testMergedWritesOfOneBatch(t *testing.T, d dialect) {
	dir := t.TempDir()
	cfg := d.db(t, dir)
	cfg.KeepRuns = 2
	cfg.StopTimeout = time.Second
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	w.m = w.open(cfg)
	for _, name := range []string{"again", "kept", "halted"} {
		w.create(Job{Name: name, Command: "sleep 100", Type: Continuous})
	}
	w.create(Job{Name: "often", Command: "true", Type: OneTime})
	w.create(Job{Name: "few", Command: "true", Type: OneTime, KeepRuns: 5})

	release := holdDB(t, cfg)
	for _, name := range []string{"again", "kept", "halted"} {
		w.start(name)
	}
	w.stop("again") // wanted, not wanted, wanted again: the last counts
	w.start("again")
	w.stop("halted")
	for range 4 {
		w.start("often")
		w.waitFor("often", StateExited)
	}
	for range 2 {
		w.start("few")
		w.waitFor("few", StateExited)
	}
	release()

	ended := func(name string, runs ...int64) {
		t.Helper()
		got := map[int64]bool{}
		for _, r := range w.runs(name) {
			got[r.ID] = r.EndedAt != nil && r.Outcome != ""
		}
		for _, id := range runs {
			if !got[id] {
				t.Errorf("run %d of %s: no end recorded (runs: %v)", id, name, got)
			}
		}
	}
	ended("again", 1)
	ended("halted", 1)
	ended("often", 3, 4)
	ended("few", 1, 2)
	if runs, files := w.runs("often"), w.logFiles("often"); len(runs) != 2 || len(files) != 2 {
		t.Errorf("often: %d runs and %d log files kept, want keep_runs 2 of each", len(runs), len(files))
	}
	if runs, files := w.runs("few"), w.logFiles("few"); len(runs) != 2 || len(files) != 2 {
		t.Errorf("few: %d runs and %d log files kept, want both of each (keep_runs 5)", len(runs), len(files))
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m := w.open(cfg)
	for name, want := range map[string]State{"again": StateRunning, "kept": StateRunning, "halted": StateStopped} {
		if st, _ := m.State(name); st.State != want {
			t.Errorf("%s after reopening: %s, want %s", name, st.State, want)
		}
	}
}

// The writer holds its batches back while stops are under way, but for a
// bounded time: a stop that never ends (here, one begun and never ended)
// does not hold the history back for good.
func TestWriterYieldsToStopsForABoundedTime(t *testing.T) {
	w := setup(t)
	w.m.w.stopBegun()
	defer w.m.w.stopEnded()
	w.create(Job{Name: "once", Command: "true", Type: OneTime})
	w.start("once")
	w.waitFor("once", StateExited)
	if runs := w.runs("once"); len(runs) != 1 || runs[0].EndedAt == nil {
		t.Fatalf("runs of once while a stop is under way: %+v, want its one run, ended", runs)
	}
}
