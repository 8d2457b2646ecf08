package procman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// runner holds one job: its saved definition, its status, and while the job is
// active the supervisor goroutine that owns its processes.
type runner struct {
	m    *Manager
	name string
	// ctl is a one-slot semaphore that serialises Start, Stop, Restart, Replace
	// and Delete of this job; a channel so that waiting for it honours a context.
	ctl chan struct{}

	mu      sync.Mutex
	job     Job
	st      Status
	sup     *supervisor   // non-nil while the job is active
	changed chan struct{} // closed and replaced on every transition
	deleted bool
}

func newRunner(m *Manager, j Job) *runner {
	return &runner{
		m: m, name: j.Name, job: j, ctl: make(chan struct{}, 1), changed: make(chan struct{}),
		st: Status{Name: j.Name, State: StateStopped, Since: time.Now()},
	}
}

func (r *runner) lock(ctx context.Context) error {
	select {
	case r.ctl <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *runner) unlock() { <-r.ctl }

// supervisor is one activation of a job, from start until it rests again.
type supervisor struct {
	stopReq  chan struct{} // closed to ask for a graceful stop
	killReq  chan struct{} // closed to skip the grace period (forced shutdown)
	started  chan struct{} // closed after the first spawn attempt
	done     chan struct{} // closed when the supervisor has returned
	stopOnce sync.Once
	killOnce sync.Once
}

func newSupervisor() *supervisor {
	return &supervisor{stopReq: make(chan struct{}), killReq: make(chan struct{}),
		started: make(chan struct{}), done: make(chan struct{})}
}

func (s *supervisor) stop() { s.stopOnce.Do(func() { close(s.stopReq) }) }
func (s *supervisor) kill() { s.killOnce.Do(func() { close(s.killReq) }) }

func (s *supervisor) stopping() bool {
	select {
	case <-s.stopReq:
		return true
	default:
		return false
	}
}

// settings is a job definition with the Manager's defaults filled in.
type settings struct {
	stopSignal     syscall.Signal
	stopTimeout    time.Duration
	backoffInitial time.Duration
	backoffMax     time.Duration
	minUptime      time.Duration
	maxRetries     int
	killWait       time.Duration
}

// start activates the job. The caller holds r.ctl. It returns once the first
// run has been spawned or has failed to, so the state seen next is meaningful.
func (r *runner) start(ctx context.Context) error {
	r.mu.Lock()
	if r.deleted {
		r.mu.Unlock()
		return fmt.Errorf("start %q: %w", r.name, ErrNotFound)
	}
	if r.sup != nil {
		st := r.st.State
		r.mu.Unlock()
		return fmt.Errorf("start %q: %w (state %s)", r.name, ErrRunning, st)
	}
	if err := r.m.track(); err != nil {
		r.mu.Unlock()
		return fmt.Errorf("start %q: %w", r.name, err)
	}
	s := newSupervisor()
	r.sup = s
	job := r.job
	r.transitionLocked(StateStarting, func(st *Status) { st.Restarts = 0 })
	r.mu.Unlock()

	go r.supervise(s, job, r.m.cfg.settings(job))
	select {
	case <-s.started:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stop asks the active supervisor, if any, to stop and waits until it has.
// The caller holds r.ctl.
func (r *runner) stop(ctx context.Context) error {
	r.mu.Lock()
	s := r.sup
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	s.stop()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if st := r.status(); st.State == StateError {
		return fmt.Errorf("stop %q: %w", r.name, ErrStopFailed)
	}
	return nil
}

// supervise runs the job until it rests: stopped, exited or error. It is the
// only code that spawns, waits for or signals the job's processes.
func (r *runner) supervise(s *supervisor, job Job, set settings) {
	defer r.m.wg.Done()
	defer r.finish(s)
	bo := newBackoff(set)
	failures := 0
	for first := true; ; first = false {
		p, err := r.spawn(job)
		if first {
			close(s.started)
		}
		reason := ""
		if err != nil {
			reason = err.Error()
		} else {
			ran, rested := r.watch(s, p, set)
			if rested {
				return
			}
			if job.Type == OneTime {
				r.transition(StateExited, nil)
				return
			}
			if s.stopping() { // asked to stop just as the run ended
				r.transition(StateStopping, nil)
				r.transition(StateStopped, nil)
				return
			}
			if ran >= set.minUptime {
				bo.Reset()
				failures = 0
				r.transition(StateStarting, func(st *Status) { st.Restarts++ })
				continue
			}
			reason = fmt.Sprintf("run lasted %s, less than min_uptime %s", ran.Round(time.Millisecond), set.minUptime)
		}
		failures++
		if !r.retry(s, job, set, bo, failures, reason) {
			return
		}
	}
}

func (r *runner) finish(s *supervisor) {
	r.mu.Lock()
	r.sup = nil
	r.mu.Unlock()
	close(s.done)
}

// retry decides what follows a failed run or spawn: wait out the backoff (state
// retrying) and report true, or give up (state error) or stop and report false.
func (r *runner) retry(s *supervisor, job Job, set settings, bo backoff.BackOff, failures int, reason string) bool {
	if job.Type == OneTime {
		r.transition(StateError, func(st *Status) { st.Error = reason })
		return false
	}
	if set.maxRetries > 0 && failures >= set.maxRetries {
		r.transition(StateError, func(st *Status) {
			st.Error = fmt.Sprintf("gave up after %d consecutive failures; last: %s", failures, reason)
		})
		return false
	}
	wait := bo.NextBackOff()
	r.transition(StateRetrying, func(st *Status) { st.Error = reason })
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		r.transition(StateStarting, func(st *Status) { st.Restarts++ })
		return true
	case <-s.stopReq:
		r.transition(StateStopped, nil)
		return false
	}
}

func newBackoff(set settings) backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = set.backoffInitial
	b.MaxInterval = set.backoffMax
	b.Multiplier = 2
	b.MaxElapsedTime = 0 // a supervisor never gives up on its own clock; max_retries decides
	b.Reset()
	return b
}

// proc is one run: a process group led by /bin/sh.
type proc struct {
	cmd     *exec.Cmd
	pgid    int
	started time.Time
	done    chan struct{} // closed when the leader has been waited for
}

// spawn opens the run's log file and starts the shell in its own process
// group, writing straight into the file: ProcMan copies no output.
func (r *runner) spawn(job Job) (*proc, error) {
	if job.Dir != "" {
		// exec reports a bad working directory as "fork/exec /bin/sh: ...", which
		// blames the shell; name the real culprit.
		if fi, err := os.Stat(job.Dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dir %q: not a usable directory", job.Dir)
		}
	}
	f, path, err := openLog(r.m.cfg.LogDir, job.Name)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	cmd := exec.Command("/bin/sh", "-c", job.Command)
	cmd.Dir = job.Dir
	cmd.Env = jobEnv(job.Env)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig is bound to the OS thread that forks, which Go never retires
	// while it runs ordinary goroutines; the guardian covers the rest of the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	p := &proc{cmd: cmd, pgid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
	if err := r.m.guard.watch(p.pgid); err != nil {
		r.m.log.Error("guardian unavailable; this run is not protected against a ProcMan crash", "job", job.Name, "err", err)
	}
	go func() { // ends when the leader exits; exactly one Wait per process
		cmd.Wait()
		close(p.done)
	}()
	r.transition(StateRunning, func(st *Status) {
		st.PID, st.LogFile, st.Error = p.pgid, path, ""
	})
	return p, nil
}

// watch waits for the run to end by itself or for a stop request. It reports
// how long the run lasted, and whether the job has come to rest (stopped or error).
func (r *runner) watch(s *supervisor, p *proc, set settings) (time.Duration, bool) {
	select {
	case <-p.done:
		ran := time.Since(p.started)
		if err := r.sweep(p, set, s.killReq); err != nil {
			r.transition(StateError, func(st *Status) { setExit(st, p); st.Error = err.Error() })
			return ran, true
		}
		r.recordExit(p)
		return ran, false
	case <-s.stopReq:
		r.transition(StateStopping, nil)
		err := r.terminate(p, set, s.killReq)
		if err != nil {
			r.transition(StateError, func(st *Status) { setExit(st, p); st.Error = err.Error() })
		} else {
			r.transition(StateStopped, func(st *Status) { setExit(st, p) })
		}
		return time.Since(p.started), true
	}
}

// sweep ends what a run whose leader exited left behind in its group, so no
// stray outlives its run (as systemd does for a service's control group).
func (r *runner) sweep(p *proc, set settings, force <-chan struct{}) error {
	if !groupAlive(p.pgid) {
		r.m.guard.forget(p.pgid)
		return nil
	}
	r.m.log.Info("run ended with processes left in its group; stopping them", "job", r.name, "pgid", p.pgid)
	return r.terminate(p, set, force)
}

// terminate sends the stop signal to the whole group, SIGKILL after the stop
// timeout (or at once when forced), and returns once no process of the group is left.
func (r *runner) terminate(p *proc, set settings, force <-chan struct{}) error {
	signalGroup(p.pgid, set.stopSignal)
	grace := time.NewTimer(set.stopTimeout)
	defer grace.Stop()
	if !waitRun(p, grace.C, force) {
		signalGroup(p.pgid, syscall.SIGKILL)
		t := time.NewTimer(set.killWait)
		defer t.Stop()
		if !waitRun(p, t.C, nil) {
			return fmt.Errorf("%w (pgid %d, waited %s)", ErrStopFailed, p.pgid, set.killWait)
		}
	}
	r.m.guard.forget(p.pgid)
	return nil
}

// waitRun waits until the leader has exited and no process of its group is left.
func waitRun(p *proc, deadline <-chan time.Time, force <-chan struct{}) bool {
	select {
	case <-p.done:
	case <-deadline:
		return false
	case <-force:
		return false
	}
	return waitGroupGone(p.pgid, deadline, force)
}

func (r *runner) recordExit(p *proc) {
	r.mu.Lock()
	setExit(&r.st, p)
	r.mu.Unlock()
}

// setExit records how the run's leader ended.
func setExit(st *Status, p *proc) {
	st.ExitCode, st.Signal = nil, ""
	select {
	case <-p.done:
	default:
		return // leader not reaped (it survived SIGKILL)
	}
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		st.Signal = ws.Signal().String()
	default:
		code := p.cmd.ProcessState.ExitCode()
		st.ExitCode = &code
	}
}

// openLog creates LogDir/<job>/<unix-nanos>.log, never reusing an existing name.
func openLog(dir, job string) (*os.File, string, error) {
	dir = filepath.Join(dir, job)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("log folder: %w", err)
	}
	for t := time.Now().UnixNano(); ; t++ {
		path := filepath.Join(dir, strconv.FormatInt(t, 10)+".log")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("log file: %w", err)
		}
		return f, path, nil
	}
}

// jobEnv is ProcMan's environment with the job's variables on top; os/exec
// keeps the last value of a repeated key.
func jobEnv(env map[string]string) []string {
	if len(env) == 0 {
		return nil // nil means "inherit ProcMan's environment"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := os.Environ()
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// transition moves the job to state to, applying edit to its status.
func (r *runner) transition(to State, edit func(*Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transitionLocked(to, edit)
}

func (r *runner) transitionLocked(to State, edit func(*Status)) {
	from := r.st.State
	if !canTransition(from, to) {
		// A bug, not an input error: say so loudly, and still record the truth.
		r.m.log.Error("invalid state transition", "job", r.name, "from", from, "to", to)
	}
	r.st.State, r.st.Since = to, time.Now()
	if to != StateRunning && to != StateStopping {
		r.st.PID = 0
	}
	if edit != nil {
		edit(&r.st)
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.m.log.Info("job state", "job", r.name, "from", from, "to", to, "pid", r.st.PID, "error", r.st.Error)
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}
