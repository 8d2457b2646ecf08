package procman

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/robfig/cron/v3"
)

// runner holds one job: its saved definition, its status, and while the job is
// active the supervisor goroutine that owns its processes.
type runner struct {
	m    *Manager
	name string
	id   string // this incarnation of the job (jobRow.ID), which its runs carry
	// ctl is a one-slot semaphore that serialises Start, Stop, Restart and
	// Delete's stop of this job; a channel so that waiting for it honours a context.
	ctl chan struct{}
	// edit serialises the definition writes of this job (Replace, Delete's
	// write), which wait on the database: never under ctl, which Stop needs.
	edit chan struct{}

	mu      sync.Mutex
	job     Job
	version uint64 // of job (Entry.Version)
	st      Status
	sup     *supervisor   // non-nil while the job is active
	cur     *proc         // the run going on, if any
	entry   cron.EntryID  // the job's schedule entry, if it has a cron schedule
	next    time.Time     // the schedule's next tick
	queued  bool          // a schedule tick waits for the current run to end
	gen     int           // bumped by Stop, Replace and Delete: a queued tick is then dropped
	changed chan struct{} // closed and replaced on every transition
	deleted bool
	wanted  bool // the desired state (desired.go)
}

func newRunner(m *Manager, id string, j Job) *runner {
	return &runner{
		m: m, name: j.Name, id: id, job: j, version: m.versions.Add(1), ctl: make(chan struct{}, 1), edit: make(chan struct{}, 1), changed: make(chan struct{}),
		st: Status{Name: j.Name, State: StateStopped, Since: time.Now()},
	}
}

// lockSlot takes a one-slot semaphore (runner.ctl, runner.edit), unless ctx
// ends first. A ctx that has already ended never gets it: select would pick
// between a free slot and a closed Done at random.
func lockSlot(ctx context.Context, slot chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func unlockSlot(slot chan struct{}) { <-slot }

// supervisor is one activation of a job, from start until it rests again.
type supervisor struct {
	stopReq  chan struct{} // closed to ask for a graceful stop
	killReq  chan struct{} // closed to skip the grace period (forced shutdown)
	done     chan struct{} // closed when the job comes to rest (transitionLocked)
	stopOnce sync.Once
	killOnce sync.Once
}

func newSupervisor() *supervisor {
	return &supervisor{stopReq: make(chan struct{}), killReq: make(chan struct{}), done: make(chan struct{})}
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
	keepRuns       int
	maxLogBytes    int64
}

// start activates the job. The caller holds r.ctl. It returns once the first
// run is spawned (or failed to be), so that the state seen next is meaningful.
func (r *runner) start(trigger Trigger) error {
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

	// The first spawn runs on a goroutine of its own: not on the caller's,
	// whose OS thread may be locked and end with it, taking the parent-death
	// signal's trigger along (Go ties it to the forking thread); and not on
	// the supervisor's, which lives as long as the job and would keep the
	// stack a spawn and a database write grow (some 7 KiB per running job).
	var p *proc
	var err error
	launched := make(chan struct{})
	go func() {
		defer close(launched)
		p, err = r.launch(job, trigger)
	}()
	<-launched
	go r.supervise(s, job, r.m.cfg.settings(job), p, err)
	return nil
}

// stop asks the active supervisor, if any, to stop and waits until it has.
// The caller holds r.ctl.
func (r *runner) stop(ctx context.Context) error {
	r.mu.Lock()
	s := r.sup
	r.gen++ // a stop by hand also cancels a queued schedule tick
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
	if st := r.status(); st.State == StateError && strings.Contains(st.Error, ErrStopFailed.Error()) {
		return fmt.Errorf("stop %q: %w", r.name, ErrStopFailed)
	}
	return nil
}

// supervise runs the job until it rests: stopped, exited or error. From its
// first run (p, or the failure to spawn it) on, it is the only code that
// spawns, waits for or signals the job's processes.
func (r *runner) supervise(s *supervisor, job Job, set settings, p *proc, err error) {
	// The transition to a resting state ends the supervisor's ownership of the
	// job (see transitionLocked); returning is all that is left to do.
	defer r.m.wg.Done()
	th := newThrottle(set)
	failures := 0
	for ; ; p, err = r.launch(job, TriggerRetry) {
		reason, ran := "", time.Duration(0)
		if err != nil {
			reason = err.Error()
		} else {
			var rested bool
			ran, rested = r.watch(s, p, set)
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
				th.reset()
				failures = 0
				r.restartNow()
				continue
			}
			reason = fmt.Sprintf("run lasted %s, less than min_uptime %s", ran.Round(time.Millisecond), set.minUptime)
		}
		failures++
		if !r.retry(s, job, set, th.wait(ran), failures, reason) {
			return
		}
	}
}

// launch spawns a run and records it, or records the failure to.
func (r *runner) launch(job Job, trigger Trigger) (*proc, error) {
	p, err := r.spawn(job)
	if err != nil {
		r.recordFailedStart(trigger, err)
		return nil, err
	}
	r.recordStart(p, trigger)
	r.transition(StateRunning, func(st *Status) { st.PID, st.LogFile, st.Error = p.pgid, p.row.LogFile, "" })
	return p, nil
}

func (r *runner) restartNow() {
	r.m.metrics.restarted()
	r.transition(StateStarting, func(st *Status) { st.Restarts++ })
}

// watch waits for the run to end by itself or for a stop request, and records
// its end. It reports how long the run lasted, and whether the job has come
// to rest (stopped or error).
func (r *runner) watch(s *supervisor, p *proc, set settings) (time.Duration, bool) {
	select {
	case <-p.done:
		ran := time.Since(p.started)
		killed, err := r.sweep(p, set, s.killReq)
		if err != nil {
			r.recordEnd(p, OutcomeKilled, err.Error())
			r.transition(StateError, func(st *Status) { st.Error = err.Error() })
			return ran, true
		}
		outcome := OutcomeExited
		if killed && s.stopping() { // a forced shutdown cut the sweep short
			outcome = OutcomeKilled
		}
		r.recordEnd(p, outcome, "")
		return ran, false
	case <-s.stopReq:
		r.transition(StateStopping, nil)
		killed, err := r.terminate(p, set, s.killReq)
		switch {
		case err != nil:
			r.recordEnd(p, OutcomeKilled, err.Error())
			r.transition(StateError, func(st *Status) { st.Error = err.Error() })
		case killed:
			r.recordEnd(p, OutcomeKilled, "")
			r.transition(StateStopped, nil)
		default:
			r.recordEnd(p, OutcomeStopped, "")
			r.transition(StateStopped, nil)
		}
		return time.Since(p.started), true
	}
}

// retry decides what follows a failed run or spawn: restart at once, or wait
// (state retrying), and report true; or give up (state error) or stop, and
// report false.
func (r *runner) retry(s *supervisor, job Job, set settings, wait time.Duration, failures int, reason string) bool {
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
	if wait <= 0 {
		r.restartNow()
		return true
	}
	r.transition(StateRetrying, func(st *Status) { st.Error = reason })
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		r.restartNow()
		return true
	case <-s.stopReq:
		r.transition(StateStopped, nil)
		return false
	}
}

// throttle spaces the starts of a continuous job that keeps failing: no two
// starts closer than the backoff interval, which doubles each time a run ends
// sooner than that (the job would restart faster than allowed) and resets
// after a healthy run. So a failed run that outlived the interval restarts at
// once: a service killed now and then is back without delay, while one that
// dies on start waits 1s, 2s, 4s, and so on.
type throttle struct {
	bo      backoff.BackOff
	cur     time.Duration // the interval in force
	failing bool          // cur is set: there was a failure since the last reset
}

func newThrottle(set settings) *throttle {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = set.backoffInitial
	b.MaxInterval = set.backoffMax
	b.Multiplier = 2
	b.MaxElapsedTime = 0 // a supervisor never gives up on its own clock; max_retries decides
	b.Reset()
	return &throttle{bo: b}
}

func (t *throttle) reset() {
	t.bo.Reset()
	t.failing = false
}

// wait is how long to wait before the next start, after a failed run that
// lasted ran (0 for a failure to spawn).
func (t *throttle) wait(ran time.Duration) time.Duration {
	if !t.failing {
		t.cur, t.failing = t.bo.NextBackOff(), true
	}
	if ran > 0 && ran >= t.cur {
		return 0
	}
	w := max(t.cur-ran, time.Millisecond) // a failure to spawn always waits
	t.cur = t.bo.NextBackOff()
	return w
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
	r.noteStateLocked(from, to)
	if !to.active() && r.sup != nil {
		// At rest: a new Start may begin at once, and Stop's wait is over.
		close(r.sup.done)
		r.sup = nil
	}
	close(r.changed)
	r.changed = make(chan struct{})
	ev := Event{Type: "state", Job: r.name, From: from, To: to, Time: r.st.Since, PID: r.st.PID, Status: r.statusLocked()}
	switch to {
	case StateError, StateRetrying:
		ev.Reason = r.st.Error
	case StateExited, StateStopped:
		ev.ExitCode, ev.Signal = r.st.ExitCode, r.st.Signal
	}
	r.m.hub.publish(ev) // never blocks; under r.mu so each job's events stay in order
	r.logTransition(from, to)
}

// logTransition logs a state change with only the attributes that say
// something: no pid=0 or error="" on every line.
func (r *runner) logTransition(from, to State) {
	attrs := []any{"job", r.name, "from", from, "to", to}
	if r.st.PID != 0 {
		attrs = append(attrs, "pid", r.st.PID)
	}
	if r.st.Error != "" {
		attrs = append(attrs, "error", r.st.Error)
	}
	r.m.log.Info("job state", attrs...)
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked()
}

func (r *runner) statusLocked() Status {
	st := r.st
	if r.entry != 0 {
		next := r.next
		st.NextRun = &next
	}
	return st
}
