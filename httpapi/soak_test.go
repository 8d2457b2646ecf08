package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"go.uber.org/goleak"
)

const (
	soakDuration      = 20 * time.Second // how long the clients churn
	soakShortDuration = 3 * time.Second  // the same with -short
	soakJobs          = 100              // job names the clients pick from
	soakClients       = 8                // concurrent client goroutines
	soakMaxOps        = 50_000           // requests per client at most, whatever the clock says
	soakErrorLimit    = 20               // unexpected answers reported before the clients give up
)

// soakCommands are short commands: each shell ends by itself within a second,
// some fail, and one leaves a sleep behind in its group, which the sweep at the
// run's end must stop (it would outlive the test otherwise).
var soakCommands = []string{
	"sleep 0.05",
	"exit 1",
	"echo x",
	"echo x; sleep 0.2",
	"sleep 0.05; exit 3",
	"sh -c 'sleep 0.1' & wait",
	"sleep 5 & echo left behind",
	"trap '' TERM; sleep 0.3",
	"kill -9 $$",
}

// soakPrefix starts every soak job name. The test binary's pid in it keeps
// the process scan of one test run from seeing the jobs of another run at the
// same time (go test runs packages, and people run go test, in parallel).
var soakPrefix = fmt.Sprintf("soak%d-", os.Getpid())

func soakName(i int) string { return fmt.Sprintf("%s%03d", soakPrefix, i) }

// soakJob is a random valid definition for name, run in dir.
func soakJob(rng *rand.Rand, name, dir string) procman.Job {
	j := procman.Job{Name: name, Command: soakCommands[rng.IntN(len(soakCommands))], Dir: dir,
		StopTimeout: procman.Duration(time.Duration(50+rng.IntN(450)) * time.Millisecond)}
	if rng.IntN(4) == 0 {
		j.Env = map[string]string{"SOAK": strconv.Itoa(rng.IntN(1000))}
	}
	switch rng.IntN(4) {
	case 0:
		j.KeepRuns = 1 + rng.IntN(3) // retention races with history and log reads
	case 1:
		j.MaxLogBytes = 4
	}
	if rng.IntN(2) == 0 {
		j.Type = procman.Continuous
		j.BackoffInitial = procman.Duration(time.Duration(10+rng.IntN(40)) * time.Millisecond)
		j.BackoffMax = procman.Duration(300 * time.Millisecond)
		j.MinUptime = procman.Duration(100 * time.Millisecond)
		j.MaxRetries = rng.IntN(4)
		if rng.IntN(10) == 0 {
			j.Schedule = procman.ScheduleReboot
		}
		return j
	}
	j.Type = procman.OneTime
	switch rng.IntN(10) {
	case 0:
		j.Schedule = procman.ScheduleReboot
	case 1, 2:
		j.Schedule = "@every 1s"
		j.Overlap = []procman.Overlap{"", procman.OverlapSkip, procman.OverlapQueue, procman.OverlapRestart}[rng.IntN(4)]
	case 3:
		j.Schedule = procman.ScheduleManual
	}
	return j
}

// soakStats counts answers by operation and status code.
type soakStats struct {
	mu     sync.Mutex
	counts map[string]int
	errs   int
}

func (st *soakStats) add(op string, code int) {
	st.mu.Lock()
	st.counts[fmt.Sprintf("%s %d", op, code)]++
	st.mu.Unlock()
}

// TestSoak churns soakJobs jobs through every control route from soakClients
// goroutines at once, tolerating only the answers a race can explain (404 for
// a job just deleted, 409 for one just created or started) and never a 500.
// Then it stops everything and checks that nothing is left behind: no job
// process, no goroutine, no job that is not at rest or that the store does not
// hold; and that a new Manager on the same database sees the same jobs.
func TestSoak(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	// Registered before setup's cleanup, so it runs after it: the server and
	// the Manager are gone by then.
	t.Cleanup(func() { goleak.VerifyNone(t, leaks) })

	s := setup(t)
	dir := filepath.Dir(s.logDir)
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	names := make(map[string]bool, soakJobs)
	for i := range soakJobs {
		names[soakName(i)] = true
	}
	length := soakDuration
	if testing.Short() {
		length = soakShortDuration
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %s, %d jobs, %d clients", seed, length, soakJobs, soakClients)

	stats := &soakStats{counts: map[string]int{}}
	ctx, stopClients := context.WithCancel(context.Background())
	defer stopClients()
	deadline := time.Now().Add(length)
	fail := func(format string, args ...any) {
		stats.mu.Lock()
		stats.errs++
		n := stats.errs
		stats.mu.Unlock()
		if n <= soakErrorLimit {
			t.Errorf(format, args...)
		}
		if n >= soakErrorLimit {
			stopClients()
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for c := range soakClients {
		rng := rand.New(rand.NewPCG(seed, uint64(c)))
		wg.Go(func() {
			for range soakMaxOps {
				if ctx.Err() != nil || time.Now().After(deadline) {
					return
				}
				soakOp(s, rng, dir, stats, fail)
			}
		})
	}
	wg.Wait()
	churn := time.Since(start)
	ops := 0
	for _, n := range stats.counts {
		ops += n
	}
	t.Logf("%d requests in %s (%.0f/s)", ops, churn.Round(time.Millisecond), float64(ops)/churn.Seconds())
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range stats.counts {
			if !yield(k) {
				return
			}
		}
	})
	var sb strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&sb, " [%s]=%d", k, stats.counts[k])
	}
	t.Logf("answers:%s", sb.String())
	if t.Failed() {
		t.FailNow()
	}

	// Stop everything: schedules off first, so that no new tick starts a job.
	for _, j := range decode[[]procman.Entry](t, s.doJSON(t, http.MethodGet, "/jobs", nil)) {
		if j.Schedule != procman.ScheduleManual && j.Schedule != "" && j.Schedule != procman.ScheduleReboot {
			j.Schedule, j.Overlap = "", ""
			want(t, s.doJSON(t, http.MethodPut, "/job/replace/"+j.Name, j.Job), http.StatusOK)
		}
	}
	// A stop also drops a tick queued (overlap queue) while a run went on, so
	// once every job has been stopped, none may start again.
	stopAll := func() { // by soakClients goroutines, as stops may wait out stop timeouts
		jobs := make(chan string)
		var wg sync.WaitGroup
		for range soakClients {
			wg.Go(func() {
				for name := range jobs {
					if r, err := s.send(http.MethodPost, "/job/"+name+"/stop", nil); err != nil || r.code != http.StatusOK {
						t.Errorf("stop %s: %v (err %v), want 200", name, r, err)
					}
				}
			})
		}
		for _, j := range decode[[]procman.Entry](t, s.doJSON(t, http.MethodGet, "/jobs", nil)) {
			jobs <- j.Name
		}
		close(jobs)
		wg.Wait()
	}
	stopAll()
	for _, st := range decode[[]procman.Status](t, s.doJSON(t, http.MethodGet, "/jobs/states", nil)) {
		if !atRest(st.State) {
			t.Errorf("%s is %s after every job was stopped", st.Name, st.State)
		}
	}
	for _, j := range decode[[]procman.Entry](t, s.doJSON(t, http.MethodGet, "/jobs", nil)) {
		s.waitState(t, j.Name, "at rest", func(st procman.Status) bool { return atRest(st.State) })
	}

	// Every job at rest, and the API, the Manager and the store agree on the set.
	listed := decode[[]procman.Entry](t, s.doJSON(t, http.MethodGet, "/jobs", nil))
	states := decode[[]procman.Status](t, s.doJSON(t, http.MethodGet, "/jobs/states", nil))
	var listedNames, stateNames, managerNames []string
	for _, j := range listed {
		listedNames = append(listedNames, j.Name)
		if !names[j.Name] {
			t.Errorf("GET /jobs lists %q, which no client created", j.Name)
		}
	}
	for _, st := range states {
		stateNames = append(stateNames, st.Name)
		if !atRest(st.State) {
			t.Errorf("after stopping everything: %+v, want stopped, exited or error", st)
		}
	}
	for _, st := range s.m.States() {
		managerNames = append(managerNames, st.Name)
		if !atRest(st.State) {
			t.Errorf("Manager.States after stopping everything: %+v", st)
		}
	}
	if !slices.Equal(listedNames, stateNames) || !slices.Equal(listedNames, managerNames) {
		t.Errorf("job sets differ:\n GET /jobs        %v\n GET /jobs/states %v\n Manager.States   %v",
			listedNames, stateNames, managerNames)
	}
	t.Logf("%d jobs left after the churn", len(listed))
	// At rest means no run is open in the history either.
	for _, j := range listed {
		for _, run := range decode[[]procman.Run](t, s.doJSON(t, http.MethodGet, "/job/"+j.Name+"/runs?limit=1000", nil)) {
			if run.EndedAt == nil || run.Outcome == "" {
				t.Errorf("job %s is at rest but its run %+v is still open", j.Name, run)
			}
		}
	}
	// Stop answers once every process of the job is gone: nothing may be left.
	for _, p := range soakProcs(dir, names) {
		t.Errorf("after stopping every job: %s", p)
	}

	// A new Manager on the same database sees exactly the same jobs.
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.m.Shutdown(shutCtx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, p := range soakProcs(dir, names) {
		t.Errorf("after Shutdown: %s", p)
	}
	m2, err := procman.Open(context.Background(), procman.Config{
		DBPath: filepath.Join(filepath.Dir(s.logDir), "procman.db"), LogDir: s.logDir,
		StopTimeout: stopTimeout, Logger: slog.New(errorLogs{t}),
	})
	if err != nil {
		t.Fatalf("reopening the database: %v", err)
	}
	reopened := m2.List()
	for _, st := range m2.States() {
		if st.State == procman.StateUnknown {
			t.Errorf("after a clean shutdown and reopen: %+v; no run may have been left open", st)
		}
	}
	if err := m2.Shutdown(shutCtx); err != nil {
		t.Errorf("Shutdown of the reopened Manager: %v", err)
	}
	listedJobs := make([]procman.Job, len(listed))
	for i, e := range listed {
		listedJobs[i] = e.Job
	}
	if !reflect.DeepEqual(reopened, listedJobs) {
		t.Errorf("the reopened database holds other jobs:\n got  %+v\n want %+v", reopened, listedJobs)
	}
	for _, p := range soakProcs(dir, names) {
		t.Errorf("after Shutdown of the reopened Manager: %s", p)
	}
}

func atRest(s procman.State) bool {
	return s == procman.StateStopped || s == procman.StateExited || s == procman.StateError
}

// soakOp sends one random request and checks its answer.
func soakOp(s *server, rng *rand.Rand, dir string, stats *soakStats, fail func(string, ...any)) {
	name := soakName(rng.IntN(soakJobs))
	var (
		op, method, path string
		body             any
		ok               []int // the codes a race can explain
	)
	switch n := rng.IntN(100); {
	case n < 14:
		op, method, path, body = "create", http.MethodPost, "/job/create", soakJob(rng, name, dir)
		ok = []int{http.StatusCreated, http.StatusConflict}
		if body.(procman.Job).Schedule == procman.ScheduleReboot {
			// Create then starts it: another client may have deleted or started it in between.
			ok = append(ok, http.StatusNotFound)
		}
	case n < 30:
		op, method, path = "start", []string{http.MethodGet, http.MethodPost}[rng.IntN(2)], "/job/"+name+"/start"
		ok = []int{http.StatusOK, http.StatusNotFound, http.StatusConflict}
	case n < 44:
		op, method, path = "stop", []string{http.MethodGet, http.MethodPost}[rng.IntN(2)], "/job/"+name+"/stop"
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 52:
		op, method, path = "restart", http.MethodPost, "/job/"+name+"/restart"
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 60:
		j := soakJob(rng, name, dir)
		if rng.IntN(2) == 0 {
			j.Name = ""
		}
		op, method, path, body = "replace", http.MethodPut, "/job/replace/"+name, j
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 68:
		op, method, path = "delete", http.MethodDelete, "/job/delete/"+name
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 76:
		op, method, path = "state", http.MethodGet, "/job/"+name+"/state"
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 80:
		op, method, path = "get", http.MethodGet, "/job/"+name
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 84:
		op, method, path = "list", http.MethodGet, []string{"/jobs", "/jobs/states"}[rng.IntN(2)]
		ok = []int{http.StatusOK}
	case n < 89:
		op, method, path = "runs", http.MethodGet, "/job/"+name+"/runs?limit="+strconv.Itoa(1+rng.IntN(5))
		ok = []int{http.StatusOK, http.StatusNotFound}
	case n < 92:
		op, method, path = "run", http.MethodGet, "/job/"+name+"/runs/"+strconv.FormatInt(recentRun(s, rng, name), 10)
		ok = []int{http.StatusOK, http.StatusNotFound}
	default:
		op, method, path = "logs", http.MethodGet, "/job/"+name+"/logs?tail="+strconv.Itoa(1+rng.IntN(3))
		if rng.IntN(2) == 0 {
			// An older run, whose log retention may be removing right now.
			path += "&run=" + strconv.FormatInt(recentRun(s, rng, name), 10)
		}
		ok = []int{http.StatusOK, http.StatusNotFound}
	}
	r, err := s.send(method, path, body)
	if err != nil {
		fail("%s %s: %v", method, path, err)
		return
	}
	stats.add(op, r.code)
	if !slices.Contains(ok, r.code) {
		fail("%v: unexpected status (want one of %v)", r, ok)
		return
	}
	if ct := r.header.Get("Content-Type"); r.code >= 400 || op != "logs" {
		if ct != jsonType {
			fail("%v: Content-Type %q", r, ct)
		}
	}
}

// recentRun picks one of the job's last few runs, or a made-up ID if it has none.
func recentRun(s *server, rng *rand.Rand, name string) int64 {
	var runs []procman.Run
	if r, err := s.send(http.MethodGet, "/job/"+name+"/runs?limit=4", nil); err == nil && r.code == http.StatusOK {
		json.Unmarshal(r.body, &runs)
	}
	if len(runs) == 0 {
		return 1 + rng.Int64N(2000)
	}
	return runs[rng.IntN(len(runs))].ID
}

// soakProcs lists the live processes of the soak's jobs: those whose
// environment names one of its jobs in PROCMAN_JOB, or whose working folder is
// the soak's folder. A zombie counts as gone.
func soakProcs(dir string, names map[string]bool) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []string{"reading /proc: " + err.Error()}
	}
	var out []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || gone(pid) {
			continue
		}
		proc := "/proc/" + e.Name()
		why := ""
		if env, err := os.ReadFile(proc + "/environ"); err == nil {
			for kv := range bytes.SplitSeq(env, []byte{0}) {
				if job, ok := bytes.CutPrefix(kv, []byte("PROCMAN_JOB=")); ok && names[string(job)] {
					why = "PROCMAN_JOB=" + string(job)
				}
			}
		}
		if cwd, err := os.Readlink(proc + "/cwd"); err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
			why += " cwd=" + cwd
		}
		if why != "" && !gone(pid) {
			cmdline, _ := os.ReadFile(proc + "/cmdline")
			out = append(out, fmt.Sprintf("process %d (%q) left: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), why))
		}
	}
	return out
}
