package procman

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
)

func (w *world) runs(name string) []Run {
	w.t.Helper()
	runs, err := w.m.Runs(ctxT(w.t), name, RunsOptions{Limit: MaxRunsLimit})
	if err != nil {
		w.t.Fatal(err)
	}
	return runs
}

func TestRunHistoryRecordsTriggersAndOutcomes(t *testing.T) {
	eachDialect(t, testRunHistoryRecordsTriggersAndOutcomes)
}

func testRunHistoryRecordsTriggersAndOutcomes(t *testing.T, d dialect) {
	w := setupOn(t, d)
	ctx := ctxT(t)
	w.create(Job{Name: "once", Command: "exit 4", Type: OneTime, Schedule: ScheduleReboot})
	w.waitFor("once", StateExited)
	w.start("once")
	w.waitFor("once", StateExited)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	if err := w.m.Restart(ctx, "svc"); err != nil {
		t.Fatal(err)
	}
	w.stop("svc")
	w.create(Job{Name: "deaf", Command: `trap '' TERM; echo ready; while :; do sleep 1; done`, Type: Continuous,
		StopTimeout: dur(100 * time.Millisecond)})
	w.start("deaf")
	st := w.waitFor("deaf", StateRunning)
	eventually(t, "trap set", func() bool { return readFile(t, st.LogFile) == "ready\n" })
	w.stop("deaf")
	w.create(Job{Name: "nodir", Command: "true", Type: OneTime, Dir: filepath.Join(w.dir, "missing")})
	w.startFails("nodir")
	w.waitFor("nodir", StateError)
	w.create(Job{Name: "flaky", Command: "exit 1", Type: Continuous, MaxRetries: 2, BackoffInitial: dur(time.Millisecond)})
	w.start("flaky")
	w.waitFor("flaky", StateError)

	type rec struct {
		trigger Trigger
		outcome Outcome
	}
	for name, want := range map[string][]rec{
		"once":  {{TriggerManual, OutcomeExited}, {TriggerReboot, OutcomeExited}},
		"svc":   {{TriggerRestart, OutcomeStopped}, {TriggerManual, OutcomeStopped}},
		"deaf":  {{TriggerManual, OutcomeKilled}},
		"nodir": {{TriggerManual, OutcomeFailedToStart}},
		"flaky": {{TriggerRetry, OutcomeExited}, {TriggerManual, OutcomeExited}},
	} {
		runs := w.runs(name)
		if len(runs) != len(want) {
			t.Fatalf("%s: %d runs, want %d: %+v", name, len(runs), len(want), runs)
		}
		for i, r := range runs {
			if r.Trigger != want[i].trigger || r.Outcome != want[i].outcome || r.EndedAt == nil || r.Job != name {
				t.Errorf("%s run %d: %+v, want %v", name, i, r, want[i])
			}
			if want[i].outcome != OutcomeFailedToStart && (r.PID == 0 || r.PGID != r.PID || r.ProcStart == 0 || r.LogFile == "") {
				t.Errorf("%s run %d lacks process details: %+v", name, i, r)
			}
		}
	}
	once := w.runs("once")[0]
	if *once.ExitCode != 4 {
		t.Errorf("exit code %v", once.ExitCode)
	}
	if got, err := w.m.Run(ctx, "once", once.ID); err != nil || got.ID != once.ID || got.LogFile != once.LogFile {
		t.Errorf("Run(%d) = %+v, %v", once.ID, got, err)
	}
	st, _ = w.m.State("once")
	if st.LastRun == nil || st.LastRun.ID != once.ID || *st.LastRun.ExitCode != 4 || st.LastRun.Outcome != OutcomeExited {
		t.Errorf("last_run %+v", st.LastRun)
	}
	if deaf := w.runs("deaf")[0]; deaf.Signal != "killed" {
		t.Errorf("killed run: %+v", deaf)
	}
	if nodir := w.runs("nodir")[0]; !strings.Contains(nodir.Error, "missing") {
		t.Errorf("failed start: %+v", nodir)
	}
}

func TestRunsBadInput(t *testing.T) { eachDialect(t, testRunsBadInput) }

func testRunsBadInput(t *testing.T, d dialect) {
	w := setupOn(t, d)
	ctx := ctxT(t)
	w.create(Job{Name: "a", Command: "true", Type: OneTime})
	if _, err := w.m.Run(ctx, "a", 12345); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown run: %v", err)
	}
	if _, err := w.m.Runs(ctx, "nope", RunsOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown job: %v", err)
	}
	for _, limit := range []int{-1, MaxRunsLimit + 1} {
		if _, err := w.m.Runs(ctx, "a", RunsOptions{Limit: limit}); !errors.Is(err, ErrInvalid) {
			t.Errorf("limit %d: %v", limit, err)
		}
	}
	if _, err := w.m.Logs(ctx, "a", LogOptions{Follow: true}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not run yet") {
		t.Errorf("logs of a job with no runs: %v", err)
	}
	for _, tail := range []int{-1, MaxTail + 1} {
		if _, err := w.m.Logs(ctx, "a", LogOptions{Tail: tail}); !errors.Is(err, ErrInvalid) {
			t.Errorf("tail %d: %v", tail, err)
		}
	}
}

func readAll(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLogsWholeTailAndByRun(t *testing.T) { eachDialect(t, testLogsWholeTailAndByRun) }

func testLogsWholeTailAndByRun(t *testing.T, d dialect) {
	w := setupOn(t, d)
	ctx := ctxT(t)
	w.create(Job{Name: "count", Command: `seq 1 $N`, Type: OneTime, Env: map[string]string{"N": "5"}})
	w.start("count")
	w.waitFor("count", StateExited)
	first := w.runs("count")[0].ID
	if err := w.m.Replace(ctx, "count", Job{Command: `seq 1 20000`, Type: OneTime}); err != nil {
		t.Fatal(err)
	}
	w.start("count")
	w.waitFor("count", StateExited)

	for _, tc := range []struct {
		opts LogOptions
		want string
	}{
		{LogOptions{Run: first}, "1\n2\n3\n4\n5\n"},
		{LogOptions{Run: first, Tail: 2}, "4\n5\n"},
		{LogOptions{Run: first, Tail: 50}, "1\n2\n3\n4\n5\n"},
		{LogOptions{Tail: 3}, "19998\n19999\n20000\n"},
		{LogOptions{Tail: 1, Follow: true}, "20000\n"}, // a finished run: follow just reads to the end
	} {
		rc, err := w.m.Logs(ctx, "count", tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, rc); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.opts, got, tc.want)
		}
	}
	rc, err := w.m.Logs(ctx, "count", LogOptions{Tail: 15000})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); !strings.HasPrefix(got, "5001\n") || !strings.HasSuffix(got, "\n20000\n") {
		t.Errorf("tail across read chunks starts %q", got[:10])
	}
}

func TestLogsFollowUntilRunEnds(t *testing.T) { eachDialect(t, testLogsFollowUntilRunEnds) }

func testLogsFollowUntilRunEnds(t *testing.T, d dialect) {
	w := setupOn(t, d)
	gate := filepath.Join(w.dir, "gate")
	// Prints, then waits for the test to create the gate file, then prints again and ends.
	w.create(Job{Name: "talk", Type: OneTime, Dir: w.dir,
		Command: `echo first; while [ ! -e gate ]; do sleep 0.05; done; echo second`})
	w.start("talk")
	rc, err := w.m.Logs(ctxT(t), "talk", LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, err := br.ReadString('\n'); line != "first\n" || err != nil {
		t.Fatalf("first line %q, %v", line, err)
	}
	if st, _ := w.m.State("talk"); st.State != StateRunning {
		t.Fatalf("the run ended before the follower read its first line: %s", st.State)
	}
	os.WriteFile(gate, nil, 0o644)
	rest, err := io.ReadAll(br) // ends by itself when the run ends
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestLogsFollowEndsWithContext(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "quiet", Command: "sleep 100", Type: Continuous})
	w.start("quiet")
	ctx, cancel := context.WithCancel(context.Background())
	rc, err := w.m.Logs(ctx, "quiet", LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	done := make(chan error)
	go func() {
		_, err := io.ReadAll(rc)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end with its context")
	}
}

func TestEventsInOrderAndClosedAtShutdown(t *testing.T) {
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.create(Job{Name: "e", Command: "exit 3", Type: OneTime})
	w.start("e")
	w.waitFor("e", StateExited)
	want := []State{StateStarting, StateRunning, StateExited}
	from := StateStopped
	for _, to := range want {
		ev := <-events
		if ev.Type != "state" || ev.Job != "e" || ev.From != from || ev.To != to {
			t.Fatalf("event %+v, want %s -> %s", ev, from, to)
		}
		from = to
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-events; ok {
		t.Fatal("channel still open after Shutdown")
	}
	late, _ := w.m.Subscribe(context.Background())
	if _, ok := <-late; ok {
		t.Fatal("subscription after Shutdown is open")
	}
}

// TestEventsCarryTheStatus: each state change carries the job's whole
// status after it, as State would answer it then: pid, log file, exit code,
// last run and restarts, which a subscriber could otherwise only guess from
// the state machine's rules.
func TestEventsCarryTheStatus(t *testing.T) {
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.create(Job{Name: "twice", Command: "exit 3", Type: Continuous, MaxRetries: 2,
		BackoffInitial: dur(time.Millisecond), BackoffMax: dur(time.Millisecond)})
	w.start("twice")
	final := w.waitFor("twice", StateError)
	var got []Event
	for ev := range events {
		if ev.Job == "twice" {
			got = append(got, ev)
		}
		if ev.To == StateError {
			break
		}
	}
	var runs int
	for i, ev := range got {
		st := ev.Status
		if st.Name != "twice" || st.State != ev.To || !st.Since.Equal(ev.Time) || st.PID != ev.PID {
			t.Errorf("event %d %s -> %s: status %+v does not match it", i, ev.From, ev.To, st)
		}
		switch ev.To {
		case StateRunning:
			runs++
			if st.PID <= 0 || st.LogFile == "" || st.Restarts != runs-1 {
				t.Errorf("running event %d: status %+v, want a pid, a log file and %d restarts", i, st, runs-1)
			}
		case StateRetrying, StateError:
			if st.LastRun == nil || st.LastRun.ExitCode == nil || *st.LastRun.ExitCode != 3 || st.Error == "" ||
				st.ExitCode == nil || *st.ExitCode != 3 {
				t.Errorf("%s event %d: status %+v, want exit code 3 in it and in its last run, and an error", ev.To, i, st)
			}
		}
	}
	if last := got[len(got)-1].Status; !reflect.DeepEqual(last, final) {
		t.Errorf("the last event's status\n%+v\nState answers\n%+v", last, final)
	}
	if runs != 2 {
		t.Errorf("%d runs seen in the events, want 2", runs)
	}
}

func TestSlowSubscriberLagsButNeverBlocks(t *testing.T) {
	w := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	events, _ := w.m.Subscribe(ctx) // never read until the end
	w.create(Job{Name: "churn", Command: "true", Type: Continuous, MinUptime: dur(time.Hour),
		BackoffInitial: dur(time.Microsecond), BackoffMax: dur(time.Microsecond)})
	w.start("churn")
	// Each run makes three events; the buffer holds EventBuffer.
	w.until("churn", "many restarts", func(st Status) bool { return st.Restarts > EventBuffer })
	w.stop("churn")
	n, lagged := 0, 0
	for n < EventBuffer {
		ev := <-events
		n++
		if ev.Type == "lagged" {
			t.Fatalf("lagged marker inside the first full buffer: %+v", ev)
		}
	}
	w.create(Job{Name: "after", Command: "true", Type: OneTime})
	w.start("after")
	w.waitFor("after", StateExited)
	for ev := range drain(events) {
		if ev.Type == "lagged" {
			lagged = ev.Dropped
		}
	}
	if lagged == 0 {
		t.Fatal("no lagged marker after overflow")
	}
	cancel()
	eventually(t, "channel closed by ctx", func() bool {
		for {
			select {
			case _, ok := <-events:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
}

// drain returns what is buffered in ch now, without waiting for more.
func drain(ch <-chan Event) chan Event {
	out := make(chan Event, cap(ch)+1)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				close(out)
				return out
			}
			out <- ev
		default:
			close(out)
			return out
		}
	}
}

func TestRetentionKeepsNewestRuns(t *testing.T) { eachDialect(t, testRetentionKeepsNewestRuns) }

func testRetentionKeepsNewestRuns(t *testing.T, d dialect) {
	w := setupOn(t, d, Config{KeepRuns: 3})
	w.create(Job{Name: "r", Command: "echo $$", Type: OneTime})
	for range 5 {
		w.start("r")
		w.waitFor("r", StateExited)
	}
	runs := w.runs("r")
	files := w.logFiles("r")
	if len(runs) != 3 || len(files) != 3 {
		t.Fatalf("%d runs and %d files kept, want 3", len(runs), len(files))
	}
	for i, r := range runs {
		if r.LogFile != files[2-i] {
			t.Errorf("run %d keeps %s, files are %v", r.ID, r.LogFile, files)
		}
	}
}

// Each job numbers its runs from 1, so retention must prune by job and ID:
// one job's retention never takes another job's runs of the same IDs.
func TestRetentionPrunesOnlyItsJob(t *testing.T) { eachDialect(t, testRetentionPrunesOnlyItsJob) }

func testRetentionPrunesOnlyItsJob(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "keeper", Command: "true", Type: OneTime})
	w.create(Job{Name: "pruner", Command: "true", Type: OneTime, KeepRuns: 1})
	for _, name := range []string{"keeper", "keeper", "pruner", "pruner", "pruner"} {
		w.start(name)
		w.waitFor(name, StateExited)
	}
	if runs := w.runs("pruner"); len(runs) != 1 || runs[0].ID != 3 {
		t.Errorf("pruner's runs: %+v, want only run 3", runs)
	}
	if runs := w.runs("keeper"); len(runs) != 2 {
		t.Errorf("keeper's runs: %+v, want both (runs 1 and 2 of another job were pruned)", runs)
	}
}

// Runs that failed to start and skipped ticks count toward keep_runs like any
// other: a job that cannot start, or whose ticks keep being skipped, must not
// grow its history without bound.
func TestRetentionCountsFailedStartsAndSkips(t *testing.T) {
	eachDialect(t, testRetentionCountsFailedStartsAndSkips)
}

func testRetentionCountsFailedStartsAndSkips(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "nodir", Command: "true", Type: Continuous, Dir: "/nonexistent/dir", KeepRuns: 3,
		MaxRetries: 12, BackoffInitial: dur(time.Millisecond), BackoffMax: dur(time.Millisecond)})
	w.startFails("nodir")
	w.waitFor("nodir", StateError)
	if runs := w.runs("nodir"); len(runs) != 3 {
		t.Errorf("%d runs of a job that failed to start 12 times, want keep_runs 3", len(runs))
	}

	w.create(Job{Name: "slow", Command: "sleep 100", Type: OneTime, Schedule: "@yearly", KeepRuns: 2})
	w.start("slow")
	sched, err := parseCron("@yearly")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := w.m.runner("slow")
	for range 5 {
		r.tick(sched) // the run goes on: each tick is skipped
	}
	runs := w.runs("slow")
	if len(runs) != 3 || runs[0].Outcome != OutcomeSkipped || runs[2].EndedAt != nil {
		t.Errorf("runs %+v, want 2 skipped ticks and the run going on", runs)
	}
	w.stop("slow")
}

// A spawn that fails once its log file is open (here execve refuses an
// environment string over 128 KiB) leaves no empty log file behind.
func TestFailedSpawnRemovesItsLogFile(t *testing.T) {
	w := setup(t)
	env := filepath.Join(w.dir, "big.env")
	if err := os.WriteFile(env, []byte("BIG="+strings.Repeat("x", 200<<10)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "big", Command: "true", Type: OneTime, EnvFile: env})
	w.startFails("big")
	if st := w.waitFor("big", StateError); !strings.Contains(st.Error, "argument list too long") {
		t.Fatalf("status %+v", st)
	}
	if files := w.logFiles("big"); len(files) != 0 {
		t.Errorf("log files left by a failed spawn: %v", files)
	}
}

func TestRetentionCapsLogBytes(t *testing.T) { eachDialect(t, testRetentionCapsLogBytes) }

func testRetentionCapsLogBytes(t *testing.T, d dialect) {
	w := setupOn(t, d)
	// Each run writes 1000 bytes; a 2500-byte cap keeps two logs.
	w.create(Job{Name: "b", Command: "head -c 1000 /dev/zero", Type: OneTime, MaxLogBytes: 2500})
	for range 4 {
		w.start("b")
		w.waitFor("b", StateExited)
	}
	runs := w.runs("b")
	if len(runs) != 4 || len(w.logFiles("b")) != 2 {
		t.Fatalf("%d runs, %d files", len(runs), len(w.logFiles("b")))
	}
	for i, r := range runs {
		if r.Pruned != (i >= 2) {
			t.Errorf("run %d pruned=%v", i, r.Pruned)
		}
	}
	if _, err := w.m.Logs(ctxT(t), "b", LogOptions{Run: runs[3].ID}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "retention") {
		t.Errorf("pruned log: %v", err)
	}
}

func TestRetentionNeverTouchesTheRunningLog(t *testing.T) {
	eachDialect(t, testRetentionNeverTouchesTheRunningLog)
}

func testRetentionNeverTouchesTheRunningLog(t *testing.T, d dialect) {
	w := setupOn(t, d, Config{KeepRuns: 1})
	w.create(Job{Name: "s", Command: "echo up; sleep 100", Type: Continuous, MinUptime: dur(time.Millisecond)})
	w.start("s")
	st := w.waitFor("s", StateRunning)
	w.create(Job{Name: "s2", Command: "true", Type: OneTime})
	if err := w.m.Restart(ctxT(t), "s"); err != nil {
		t.Fatal(err)
	}
	st2 := w.waitFor("s", StateRunning)
	if _, err := os.Stat(st2.LogFile); err != nil {
		t.Fatalf("running run's log: %v", err)
	}
	if _, err := os.Stat(st.LogFile); err != nil {
		t.Fatalf("newest finished run's log removed with keep_runs 1: %v", err)
	}
}

// TestRecoveryReapsOrphansAndMarksUnknown plays a ProcMan that died: its run
// is still open in the database and its process group still runs.
func TestRecoveryReapsOrphansAndMarksUnknown(t *testing.T) {
	eachDialect(t, testRecoveryReapsOrphansAndMarksUnknown)
}

func testRecoveryReapsOrphansAndMarksUnknown(t *testing.T, d dialect) {
	dir := t.TempDir()
	cfg := d.db(t, dir)
	ctx := ctxT(t)
	m, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []Job{{Name: "lost", Command: "true", Type: Continuous}, {Name: "stranger", Command: "true", Type: Continuous},
		{Name: "boot", Command: "echo boot >> " + filepath.Join(dir, "boots"), Type: OneTime, Schedule: ScheduleReboot}} {
		if err := m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	m.WaitFor(ctx, "boot", StateExited)
	m.Shutdown(ctx)

	// The orphaned run: a shell with a grandchild, in its own group.
	orphan := exec.Command("/bin/sh", "-c", "sleep 1000 & echo $! > "+filepath.Join(dir, "gc.pid")+"; wait")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	orphan.Env = append(os.Environ(), invocationVar+"orphan-run")
	// A live process whose pid a run row claims, but with another start time: a recycled pid.
	innocent := exec.Command("sleep", "1000")
	innocent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	for _, c := range []*exec.Cmd{orphan, innocent} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	defer syscall.Kill(-orphan.Process.Pid, syscall.SIGKILL)
	defer syscall.Kill(-innocent.Process.Pid, syscall.SIGKILL)
	gc := readPid(t, filepath.Join(dir, "gc.pid"))
	// The shell has gone already, as its parent-death signal makes it when
	// ProcMan dies: only its child is left to recognise.
	syscall.Kill(orphan.Process.Pid, syscall.SIGKILL)
	orphan.Wait()
	openRun(t, cfg, "lost", orphan.Process.Pid, gc, "orphan-run")
	openRun(t, cfg, "stranger", innocent.Process.Pid, innocent.Process.Pid, "stranger-run")

	m2, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Shutdown(ctx)
	// Recovery's SIGKILL is sent by the time Open returns; the kernel ends the process a moment later.
	waitGone(t, gc, 5*time.Second)
	if gone(innocent.Process.Pid) {
		t.Fatal("recovery killed a process that only shares a recorded pid")
	}
	for _, name := range []string{"lost", "stranger"} {
		stat, _ := m2.State(name)
		runs, _ := m2.Runs(ctx, name, RunsOptions{})
		if stat.State != StateUnknown || len(runs) != 1 || runs[0].Outcome != OutcomeUnknown || runs[0].EndedAt == nil {
			t.Errorf("%s: %+v, runs %+v", name, stat, runs)
		}
	}
	m2.WaitFor(ctx, "boot", StateExited)
	if b, _ := os.ReadFile(filepath.Join(dir, "boots")); string(b) != "boot\nboot\n" {
		t.Errorf("reboot job ran %q", b)
	}
	if err := m2.Start(ctx, "lost"); err != nil { // unknown -> starting
		t.Fatal(err)
	}
}

// openRun records an open run as a dead ProcMan would have left it: pid was
// its shell, a member of the group is alive, and the recorded start time is
// off by one when the pid is a stranger's.
func openRun(t *testing.T, db Config, job string, pid, member int, invocation string) {
	t.Helper()
	st, ok := osproc.ReadStat(member)
	if !ok {
		t.Fatalf("no process %d", member)
	}
	insertOpenRun(t, db, runRow{Job: job, Trigger: string(TriggerManual), StartedAt: time.Now(), PID: pid, PGID: st.PGID,
		ProcStart: st.Start - 1, Invocation: invocation})
}

// A log removed behind ProcMan's back (retention racing a reader) is a 404, not a fault.
func TestLogsOfARemovedFile(t *testing.T) { eachDialect(t, testLogsOfARemovedFile) }

func testLogsOfARemovedFile(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "gone", Command: "echo hi", Type: OneTime})
	w.start("gone")
	st := w.waitFor("gone", StateExited)
	os.Remove(st.LogFile)
	if _, err := w.m.Logs(ctxT(t), "gone", LogOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Logs of a removed file: %v", err)
	}
}

// gatedCounter counts its runs in dir/count, prints "run N" and exits 1; its
// first run waits for dir/gate first.
func gatedCounter(name, dir string) Job {
	return Job{Name: name, Type: Continuous, Dir: dir, MaxRetries: 3, MinUptime: dur(time.Hour),
		BackoffInitial: dur(10 * time.Millisecond), BackoffMax: dur(20 * time.Millisecond),
		Command: `n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; printf "run $n"; [ $n -gt 1 ] || echo; ` +
			`if [ $n -eq 1 ]; then while [ ! -e gate ]; do sleep 0.05; done; fi; exit 1`}
}

// Following a job goes on into its next runs, with a marker line between
// them (after a newline the run did not write), until the job comes to rest.
func TestLogsFollowGoesOnIntoNextRuns(t *testing.T) { eachDialect(t, testLogsFollowGoesOnIntoNextRuns) }

func testLogsFollowGoesOnIntoNextRuns(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(gatedCounter("svc", w.dir))
	w.start("svc")
	rc, err := w.m.Logs(ctxT(t), "svc", LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, err := br.ReadString('\n'); line != "run 1\n" || err != nil {
		t.Fatalf("first line %q, %v", line, err)
	}
	os.WriteFile(filepath.Join(w.dir, "gate"), nil, 0o644)
	rest, err := io.ReadAll(br) // ends by itself when the job gives up (error)
	want := "--- procman: run 1 exited, exit code 1; run 2 started (retry) ---\nrun 2\n" +
		"--- procman: run 2 exited, exit code 1; run 3 started (retry) ---\nrun 3"
	if err != nil || string(rest) != want {
		t.Fatalf("after the first run: %q, %v\nwant %q", rest, err, want)
	}
	if st, _ := w.m.State("svc"); st.State != StateError {
		t.Errorf("the follow ended before the job came to rest: %+v", st)
	}
}

// A follow that begins between two runs (here while the next one is being
// prepared) reads the last one and waits for the next; a restart by hand,
// which stops the job, ends it.
func TestLogsFollowBetweenRunsAndUntilStopped(t *testing.T) {
	eachDialect(t, testLogsFollowBetweenRunsAndUntilStopped)
}

func testLogsFollowBetweenRunsAndUntilStopped(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "svc", Type: Continuous, Dir: w.dir, MinUptime: dur(time.Hour),
		BackoffInitial: dur(time.Millisecond), BackoffMax: dur(time.Millisecond),
		Command: `if [ -e up ]; then echo up; exec sleep 1000; fi; echo down; touch up; exit 1`})
	held, release := w.holdPreparations(1) // the first run goes; the next waits
	w.start("svc")
	<-held
	rc, err := w.m.Logs(ctxT(t), "svc", LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	br := bufio.NewReader(rc)
	if line, _ := br.ReadString('\n'); line != "down\n" {
		t.Fatalf("the last run's output: %q", line)
	}
	release()
	if line, _ := br.ReadString('\n'); line != "--- procman: run 1 exited, exit code 1; run 2 started (retry) ---\n" {
		t.Fatalf("marker %q", line)
	}
	if line, _ := br.ReadString('\n'); line != "up\n" {
		t.Fatalf("the next run's output: %q", line)
	}
	if err := w.m.Restart(ctxT(t), "svc"); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(br); err != nil || len(rest) != 0 {
		t.Errorf("after a restart by hand: %q, %v", rest, err)
	}
	w.stop("svc")
}
