package procman

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
)

func dur(d time.Duration) Duration { return Duration(d) }

func TestOneTimeExitsWithCodeAndCapturesStderr(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "once", Command: "echo hello; echo oops >&2; exit 3", Type: OneTime})
	w.start("once")
	st := w.waitFor("once", StateExited)
	if st.ExitCode == nil || *st.ExitCode != 3 || st.PID != 0 {
		t.Fatalf("status %+v, want exit code 3 and no pid", st)
	}
	if got := readFile(t, st.LogFile); got != "hello\noops\n" {
		t.Fatalf("log %q", got)
	}
	if filepath.Dir(st.LogFile) != filepath.Join(w.dir, "logs", "once") {
		t.Fatalf("log file %s not under logs/once", st.LogFile)
	}
}

func TestShellPipesQuotesEnvAndDir(t *testing.T) {
	w := setup(t)
	sub := filepath.Join(w.dir, "work")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "sh", Type: OneTime, Dir: sub, Env: map[string]string{"GREETING": "it's me"},
		Command: `printf '%s\n' "a b" 'c"d' | tr a-z A-Z; echo "$GREETING"; pwd`})
	w.start("sh")
	st := w.waitFor("sh", StateExited)
	if got, want := readFile(t, st.LogFile), "A B\nC\"D\nit's me\n"+sub+"\n"; got != want {
		t.Fatalf("log %q, want %q", got, want)
	}
}

func TestStartWhileRunningIsRefused(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "long", Command: "sleep 100", Type: OneTime})
	w.start("long")
	if err := w.m.Start(ctxT(t), "long"); !errors.Is(err, ErrRunning) {
		t.Fatalf("second Start: %v, want ErrRunning", err)
	}
	w.stop("long")
	if st, _ := w.m.State("long"); st.State != StateStopped || st.Signal != "terminated" {
		t.Fatalf("after stop: %+v", st)
	}
}

// spawnTimes reads each run's start from its log file name (unix nanoseconds).
func (w *world) spawnTimes(name string) []time.Time {
	var out []time.Time
	for _, f := range w.logFiles(name) {
		ns, err := strconv.ParseInt(strings.TrimSuffix(filepath.Base(f), ".log"), 10, 64)
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, time.Unix(0, ns))
	}
	return out
}

func TestFailingJobRetriesWithGrowingGaps(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "flaky", Command: "exit 1", Type: Continuous,
		BackoffInitial: dur(50 * time.Millisecond), BackoffMax: dur(time.Minute), MinUptime: dur(time.Minute)})
	w.start("flaky")
	st := w.until("flaky", "5 runs", func(st Status) bool { return st.State == StateRetrying && st.Restarts >= 4 })
	if st.ExitCode == nil || *st.ExitCode != 1 || !strings.Contains(st.Error, "min_uptime") {
		t.Fatalf("retrying status %+v", st)
	}
	times := w.spawnTimes("flaky")
	if len(times) < 5 {
		t.Fatalf("%d runs", len(times))
	}
	// With jitter ±50% and a doubling interval, the 4th gap (200ms±100) always
	// exceeds the 1st (50ms±25).
	first, fourth := times[1].Sub(times[0]), times[4].Sub(times[3])
	if fourth <= first {
		t.Fatalf("gaps did not grow: first %s, fourth %s", first, fourth)
	}
	w.stop("flaky")
}

func TestHealthyRunRestartsAtOnce(t *testing.T) {
	w := setup(t)
	// A failure would wait an hour; a healthy run (longer than min_uptime) must not wait at all.
	w.create(Job{Name: "svc", Command: "sleep 0.2", Type: Continuous,
		MinUptime: dur(50 * time.Millisecond), BackoffInitial: dur(time.Hour), BackoffMax: dur(time.Hour)})
	w.start("svc")
	w.until("svc", "3 restarts", func(st Status) bool { return st.Restarts >= 3 })
	if st, _ := w.m.State("svc"); st.State == StateRetrying {
		t.Fatalf("healthy job is retrying: %+v", st)
	}
	w.stop("svc")
}

// Every failed run (shorter than min_uptime) doubles the interval, even one
// that outlived it: runs of 200ms with an interval from 100ms restart at once
// at first, then wait for what is left of the interval (400ms or more from
// the 4th failure). The runs count toward max_retries.
func TestEveryFailedRunDoublesTheInterval(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 0.2; exit 1", Type: Continuous, MaxRetries: 6,
		BackoffInitial: dur(100 * time.Millisecond), BackoffMax: dur(time.Hour), MinUptime: dur(time.Hour)})
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.start("svc")
	st := w.waitFor("svc", StateError)
	if !strings.Contains(st.Error, "gave up after 6 consecutive failures") {
		t.Fatalf("status %+v", st)
	}
	waited := 0
	for len(events) > 0 {
		if ev := <-events; ev.Job == "svc" && ev.To == StateRetrying {
			waited++
		}
	}
	if waited == 0 {
		t.Fatal("never waited in retrying: the interval did not grow past the runs' 200ms")
	}
}

// The wait after a failed run is what is left of the interval, which
// doubles at each failure up to backoff_max, whatever the run lasted: the
// README's "sleep 1.6; exit 1" with the defaults.
func TestThrottleWaitIsWhatIsLeftOfADoublingInterval(t *testing.T) {
	th := newThrottle(settings{backoffInitial: time.Second, backoffMax: time.Minute})
	ran := 1600 * time.Millisecond
	var waits []time.Duration
	for range 12 {
		waits = append(waits, th.wait(ran))
	}
	// Intervals with ±50% jitter: [0.5s,1.5s], [1s,3s], [2s,6s], [4s,12s], ...
	if waits[0] != 0 {
		t.Errorf("first wait %s: a run longer than the interval restarts at once", waits[0])
	}
	if waits[3] < 4*time.Second-ran || waits[4] < 8*time.Second-ran {
		t.Errorf("waits %v: the 4th and 5th must be at least 2.4s and 6.4s", waits)
	}
	for i, w := range waits {
		if w > time.Minute-ran {
			t.Errorf("wait %d is %s: the interval must stay within backoff_max", i, w)
		}
	}
	th.reset() // after a healthy run
	if w := th.wait(ran); w != 0 {
		t.Errorf("after a reset: wait %s, want 0", w)
	}
	if w := th.wait(0); w < time.Millisecond {
		t.Errorf("a failure to spawn waits %s, want at least 1ms", w)
	}
}

func TestMaxRetriesGivesUp(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "bad", Command: "echo try; exit 2", Type: Continuous, MaxRetries: 3,
		BackoffInitial: dur(10 * time.Millisecond), MinUptime: dur(time.Minute)})
	w.start("bad")
	st := w.waitFor("bad", StateError)
	if !strings.Contains(st.Error, "gave up after 3 consecutive failures") || *st.ExitCode != 2 {
		t.Fatalf("status %+v", st)
	}
	if n := len(w.logFiles("bad")); n != 3 {
		t.Fatalf("%d runs, want 3", n)
	}
	w.start("bad") // a job in error can be started again
	w.waitFor("bad", StateError)
}

func TestStopDuringRetryingEndsAtOnce(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "slow", Command: "exit 1", Type: Continuous,
		BackoffInitial: dur(time.Hour), BackoffMax: dur(time.Hour), MinUptime: dur(time.Minute)})
	w.start("slow")
	w.waitFor("slow", StateRetrying)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.m.Stop(ctx, "slow"); err != nil {
		t.Fatalf("Stop during retrying: %v", err)
	}
	if st, _ := w.m.State("slow"); st.State != StateStopped {
		t.Fatalf("state %s", st.State)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "stubborn", Command: `trap '' TERM; echo ready; while :; do sleep 1; done`, Type: Continuous,
		StopTimeout: dur(200 * time.Millisecond)})
	w.start("stubborn")
	st := w.waitFor("stubborn", StateRunning)
	eventually(t, "trap set", func() bool { return strings.Contains(readFile(t, st.LogFile), "ready") })
	begin := time.Now()
	w.stop("stubborn")
	if took := time.Since(begin); took < 200*time.Millisecond {
		t.Fatalf("stopped in %s, before the stop timeout: TERM was not ignored?", took)
	}
	after, _ := w.m.State("stubborn")
	if after.State != StateStopped || after.Signal != "killed" || !gone(st.PID) {
		t.Fatalf("after stop: %+v, leader gone=%v", after, gone(st.PID))
	}
}

func TestStopKillsGrandchildren(t *testing.T) {
	for _, tc := range []struct{ name, cmd string }{
		{"leader-waits", `sleep 1000 & echo $! > gc.pid; wait`},
		// The shell dies of TERM at once; its child ignores TERM and must still be gone
		// (by SIGKILL) before Stop returns.
		// The grandchild writes its pid only once its trap is set, so TERM cannot beat the trap.
		{"leader-exits-first", `sh -c 'trap "" TERM; echo $$ > gc.pid; while :; do sleep 1; done' & wait`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := setup(t)
			w.create(Job{Name: "tree", Command: tc.cmd, Type: Continuous, Dir: w.dir, StopTimeout: dur(300 * time.Millisecond)})
			w.start("tree")
			gc := readPid(t, filepath.Join(w.dir, "gc.pid"))
			t.Cleanup(func() { syscall.Kill(gc, syscall.SIGKILL) }) // if the test fails
			w.stop("tree")
			if !gone(gc) {
				t.Fatalf("grandchild %d survived Stop", gc)
			}
		})
	}
}

func TestRunEndSweepsLeftovers(t *testing.T) {
	w := setup(t)
	// The run's shell exits at once, leaving a background child in its group.
	w.create(Job{Name: "leaver", Command: `sleep 1000 & echo $! > gc.pid`, Type: OneTime, Dir: w.dir})
	w.start("leaver")
	w.waitFor("leaver", StateExited)
	if gc := readPid(t, filepath.Join(w.dir, "gc.pid")); !gone(gc) {
		t.Fatalf("leftover %d of a finished run is alive", gc)
	}
}

func TestSpawnFailure(t *testing.T) {
	w := setup(t)
	missing := filepath.Join(w.dir, "missing")
	w.create(Job{Name: "once", Command: "true", Type: OneTime, Dir: missing})
	w.startFails("once")
	if st := w.waitFor("once", StateError); !strings.Contains(st.Error, "missing") {
		t.Fatalf("status %+v", st)
	}
	// For a continuous job a spawn failure is a failure like any other.
	w.create(Job{Name: "svc", Command: "true", Type: Continuous, Dir: missing, MaxRetries: 2,
		BackoffInitial: dur(10 * time.Millisecond)})
	w.startFails("svc")
	if st := w.waitFor("svc", StateError); !strings.Contains(st.Error, "gave up after 2") || st.Restarts != 1 {
		t.Fatalf("status %+v", st)
	}
}

func TestUnwritableLogFolder(t *testing.T) {
	w := setup(t)
	// A file where the job's log folder should be: MkdirAll fails even for root.
	if err := os.MkdirAll(filepath.Join(w.dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.dir, "logs", "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "blocked", Command: "true", Type: OneTime})
	w.startFails("blocked")
	if st := w.waitFor("blocked", StateError); !strings.Contains(st.Error, "log folder") {
		t.Fatalf("status %+v", st)
	}
}

func TestOpenLogNeverReusesAName(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	for range 500 {
		f, path, err := openLog(filepath.Join(dir, "j"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if seen[path] {
			t.Fatalf("%s handed out twice", path)
		}
		seen[path] = true
	}
}

// Every 4th run outlives min_uptime; the others fail at once. Healthy runs must
// reset both the backoff (else 18 doubling waits take minutes) and the failure
// count (else max_retries 4 is reached).
func TestHealthyRunResetsBackoffAndFailureCount(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "cycle", Type: Continuous, Dir: w.dir,
		Command:   `n=$(cat n 2>/dev/null); n=$((${n:-0} + 1)); echo $n > n; [ $((n % 4)) -eq 0 ] && exec sleep 0.3; exit 1`,
		MinUptime: dur(100 * time.Millisecond), MaxRetries: 4,
		BackoffInitial: dur(time.Millisecond), BackoffMax: dur(time.Hour)})
	w.start("cycle")
	st := w.until("cycle", "24 restarts or error", func(st Status) bool {
		return st.State == StateError || st.Restarts >= 24
	})
	if st.State == StateError {
		t.Fatalf("healthy runs did not clear the failure count: %+v", st)
	}
	w.stop("cycle")
}

// Capped at 2ms, 18 failed runs take well under a second; uncapped, minutes.
func TestBackoffMaxCapsTheWait(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "capped", Command: "exit 1", Type: Continuous, MinUptime: dur(time.Minute),
		BackoffInitial: dur(time.Millisecond), BackoffMax: dur(2 * time.Millisecond)})
	w.start("capped")
	w.until("capped", "18 restarts", func(st Status) bool { return st.Restarts >= 18 })
	w.stop("capped")
}

func TestStartResetsRestarts(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "r", Command: "exit 1", Type: Continuous, MinUptime: dur(time.Minute),
		BackoffInitial: dur(time.Millisecond), BackoffMax: dur(time.Millisecond)})
	w.start("r")
	w.until("r", "3 restarts", func(st Status) bool { return st.Restarts >= 3 })
	w.stop("r")
	// An hour's backoff holds the next start in its first retrying state.
	if err := w.m.Replace(ctxT(t), "r", Job{Command: "exit 1", Type: Continuous, MinUptime: dur(time.Minute),
		BackoffInitial: dur(time.Hour), BackoffMax: dur(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	w.start("r")
	if st := w.waitFor("r", StateRetrying); st.Restarts != 0 {
		t.Fatalf("Restarts %d after a fresh start, want 0", st.Restarts)
	}
	w.stop("r")
}

func TestJobStopSignal(t *testing.T) {
	w := setup(t) // Manager default: TERM
	w.create(Job{Name: "usr1", Command: "sleep 100", Type: OneTime, StopSignal: "USR1"})
	w.start("usr1")
	w.stop("usr1")
	if st, _ := w.m.State("usr1"); st.State != StateStopped || st.Signal != syscall.SIGUSR1.String() {
		t.Fatalf("after stop: %+v, want ended by %q", st, syscall.SIGUSR1.String())
	}
}

// With the Manager's hour, this Stop could not finish within its 10s.
func TestJobStopTimeoutOverridesDefault(t *testing.T) {
	w := setup(t, Config{StopTimeout: time.Hour})
	w.create(Job{Name: "deaf", Command: `trap '' TERM; echo ready; while :; do sleep 1; done`, Type: Continuous,
		StopTimeout: dur(100 * time.Millisecond)})
	w.start("deaf")
	st := w.waitFor("deaf", StateRunning)
	eventually(t, "trap set", func() bool { return readFile(t, st.LogFile) == "ready\n" })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.m.Stop(ctx, "deaf"); err != nil {
		force, cancel := context.WithTimeout(context.Background(), 0)
		defer cancel()
		w.m.Shutdown(force) // kill the group now rather than in an hour
		t.Fatalf("Stop: %v", err)
	}
	if after, _ := w.m.State("deaf"); after.Signal != "killed" {
		t.Fatalf("after stop: %+v", after)
	}
}

// A process of the test joins the job's group and exits unreaped: a zombie in
// the group, whatever the machine's init does. Stop must not wait for it.
func TestZombieInGroupDoesNotHoldUpStop(t *testing.T) {
	w := setup(t, Config{StopTimeout: time.Hour})
	w.create(Job{Name: "z", Command: "sleep 100", Type: Continuous})
	w.start("z")
	pgid := w.waitFor("z", StateRunning).PID
	z := exec.Command("/bin/sh", "-c", "exit 0")
	z.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := z.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { z.Wait() }) // runs before the Manager's Shutdown
	eventually(t, "zombie", func() bool {
		st, ok := osproc.ReadStat(z.Process.Pid)
		return ok && st.State == 'Z' && st.PGID == pgid
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.m.Stop(ctx, "z"); err != nil {
		t.Fatalf("Stop with a zombie in the group: %v", err)
	}
	if st, _ := w.m.State("z"); st.State != StateStopped || st.Signal != "terminated" {
		t.Fatalf("after stop: %+v", st)
	}
}

// Inside a synctest bubble the clock stands still: both calls read the same
// nanosecond, and only O_EXCL keeps them apart.
func TestOpenLogSkipsATakenName(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		f1, p1, err := openLog(filepath.Join(dir, "j"))
		if err != nil {
			t.Fatal(err)
		}
		defer f1.Close()
		f2, p2, err := openLog(filepath.Join(dir, "j"))
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		if p1 == p2 || filepath.Dir(p1) != filepath.Dir(p2) {
			t.Fatalf("%s and %s", p1, p2)
		}
	})
}

// The API token opens every job; jobs must not inherit it.
func TestJobsDoNotSeeTheToken(t *testing.T) {
	t.Setenv("PROCMAN_TOKEN", "a-secret-token-of-some-length")
	t.Setenv("PROCMAN_OTHER", "inherited")
	w := setup(t)
	w.create(Job{Name: "env", Command: `echo "token=$PROCMAN_TOKEN other=$PROCMAN_OTHER job=$PROCMAN_JOB"`, Type: OneTime})
	w.start("env")
	st := w.waitFor("env", StateExited)
	if got := readFile(t, st.LogFile); got != "token= other=inherited job=env\n" {
		t.Fatalf("job saw %q", got)
	}
}

// A job that cannot even be spawned always waits in retrying between tries,
// however small its interval: it never restarts without a pause.
func TestSpawnFailureAlwaysWaits(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "nodir", Command: "true", Type: Continuous, Dir: "/nonexistent", MaxRetries: 3,
		BackoffInitial: dur(time.Nanosecond), BackoffMax: dur(time.Nanosecond)})
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.startFails("nodir")
	w.waitFor("nodir", StateError)
	retrying := 0
	for len(events) > 0 {
		if ev := <-events; ev.Job == "nodir" && ev.To == StateRetrying {
			retrying++
		}
	}
	if retrying != 2 {
		t.Fatalf("%d waits in retrying between 3 failed spawns, want 2", retrying)
	}
}

// A start answers with what happened to the first run: nil once it is
// spawned, ErrStartFailed with the reason when it could not be; the job goes
// where a failed run takes it (a one_time job to error, a continuous one to
// retrying). Restart answers the same way.
func TestStartAnswersWhatTheFirstRunDid(t *testing.T) {
	w := setup(t)
	missing := filepath.Join(w.dir, "missing")
	w.create(Job{Name: "once", Command: "true", Type: OneTime, Dir: missing})
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Dir: missing, BackoffInitial: dur(time.Hour)})
	w.create(Job{Name: "good", Command: "sleep 100", Type: Continuous})
	ctx := ctxT(t)
	for name, want := range map[string]State{"once": StateError, "svc": StateRetrying} {
		err := w.m.Start(ctx, name)
		if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "not a usable directory") {
			t.Errorf("Start %s: %v, want ErrStartFailed naming the dir", name, err)
		}
		if st, _ := w.m.State(name); st.State != want || !strings.Contains(st.Error, "not a usable directory") {
			t.Errorf("%s after Start: %+v, want %s with the reason", name, st, want)
		}
	}
	if err := w.m.Restart(ctx, "svc"); !errors.Is(err, ErrStartFailed) {
		t.Errorf("Restart svc: %v, want ErrStartFailed", err)
	}
	if err := w.m.Start(ctx, "good"); err != nil {
		t.Fatalf("Start good: %v", err)
	}
	if st, _ := w.m.State("good"); st.State != StateRunning || st.PID == 0 {
		t.Errorf("good after Start: %+v", st)
	}
	w.stop("svc")
}

// holdPreparations makes every run's preparation after the first skip wait
// until release is called (or the test ends). Call it before any job starts.
func (w *world) holdPreparations(skip int) (held <-chan struct{}, release func()) {
	orig := w.m.prepareRun
	gate, in := make(chan struct{}), make(chan struct{}, 100)
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	w.t.Cleanup(release)
	var n atomic.Int32
	w.m.prepareRun = func(j Job) (*spawnPrep, error) {
		if n.Add(1) > int32(skip) {
			in <- struct{}{}
			<-gate
		}
		return orig(j)
	}
	return in, release
}

// A spawn being prepared (env_file, dir, user, log file) holds up neither a
// stop nor a delete: they answer at once, the job is stopped, and the
// preparation is thrown away when it ends, leaving no process and no log file.
func TestStopIsNotHeldUpBySpawnPreparation(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	held, release := w.holdPreparations(0)
	started := make(chan error, 1)
	go func() { started <- w.m.Start(context.Background(), "svc") }()
	<-held
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.m.Stop(ctx, "svc"); err != nil {
		t.Fatalf("Stop while the first run is prepared: %v", err)
	}
	if err := <-started; err != nil {
		t.Errorf("Start: %v, want nil (stopped before its run began)", err)
	}
	if st, _ := w.m.State("svc"); st.State != StateStopped {
		t.Errorf("after Stop: %+v", st)
	}
	// The same for Delete, with a run being prepared again.
	go func() { started <- w.m.Start(context.Background(), "svc") }()
	<-held
	if err := w.m.Delete(ctx, "svc"); err != nil {
		t.Fatalf("Delete while a run is prepared: %v", err)
	}
	<-started
	release()
	if err := w.m.Shutdown(ctx); err != nil { // waits for the preparations to end
		t.Fatal(err)
	}
	if files := w.logFiles("svc"); len(files) != 0 {
		t.Errorf("log files of runs that never began: %v", files)
	}
}

// ignoreSIGCHLD sets SIGCHLD to SIG_IGN until the test ends, as a program
// that embeds a Manager and cares nothing for its own children might: the
// kernel then reaps every child the moment it exits, and a wait for one
// fails with ECHILD.
func ignoreSIGCHLD(t *testing.T) {
	signal.Ignore(syscall.SIGCHLD)
	t.Cleanup(func() {
		// Reset does not undo Ignore: Notify puts Go's handler back, and Stop keeps it.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGCHLD)
		signal.Stop(c)
	})
}

// A run whose shell someone else reaped (here the kernel, SIGCHLD being
// ignored) ended with an exit status ProcMan never learnt: its record says
// so, rather than showing an end with neither an exit code nor a signal.
func TestLostExitStatusIsAnError(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "once", Command: "exit 3", Type: OneTime})
	ignoreSIGCHLD(t)
	w.start("once")
	w.waitFor("once", StateExited)
	runs := w.runs("once")
	if len(runs) != 1 || runs[0].ExitCode != nil || !strings.Contains(runs[0].Error, "exit status is lost") ||
		!strings.Contains(runs[0].Error, "no child processes") {
		t.Fatalf("runs %+v, want one without an exit code whose error says the wait failed", runs)
	}
	if !w.logs.has("exit status is lost") {
		t.Error("the failed wait was not logged")
	}
}

// A Stop that finds the job coming to rest in error for another reason (its
// run failed to start) has not failed, however that reason reads: here the
// job's dir is named after ErrStopFailed's text.
func TestStopFailedIsAValueNotAText(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "once", Command: "true", Type: OneTime, Dir: filepath.Join(w.dir, ErrStopFailed.Error())})
	r, err := w.m.runner("once")
	if err != nil {
		t.Fatal(err)
	}
	// With the writer's lock held, the supervisor that took the failed
	// preparation waits to record the failed start: past the point where a
	// stop would end the job as stopped, before it rests in error.
	var release sync.Once
	w.m.w.mu.Lock()
	defer release.Do(w.m.w.mu.Unlock)
	before := r.lastRunID.Load()
	started, stopped := make(chan error, 1), make(chan error, 1)
	go func() { started <- w.m.Start(context.Background(), "once") }()
	eventually(t, "the failed start to be recorded", func() bool { return r.lastRunID.Load() > before })
	go func() { stopped <- w.m.Stop(context.Background(), "once") }()
	eventually(t, "the stop request", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.sup != nil && r.sup.stopping()
	})
	release.Do(w.m.w.mu.Unlock)
	if err := <-stopped; err != nil {
		t.Errorf("Stop: %v, want nil: no group outlived anything", err)
	}
	if err := <-started; !errors.Is(err, ErrStartFailed) {
		t.Errorf("Start: %v, want ErrStartFailed", err)
	}
	if st, _ := w.m.State("once"); st.State != StateError || !strings.Contains(st.Error, "not a usable directory") {
		t.Errorf("after Stop: %+v, want error for the dir", st)
	}
}
