package procman

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// source is who made the job: SourceAPI, or a document (Apply). Never changes.
	source string
	// home is the host the job was created on, which owns it unless
	// Job.Host says otherwise (owner.go). Never changes.
	home string
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
	ticking bool          // a schedule tick waits for or holds ctl: later ticks are dropped
	gen     int           // bumped by every change by hand: pending and queued ticks are then dropped
	changed chan struct{} // closed and replaced on every transition
	deleted bool
	wanted  bool   // the desired state (desired.go)
	claimer string // of a floating job: the host that holds it ("" if none)
	// claimEpoch is the epoch under which this host claimed the floating
	// job, which fences its writes about it (writer.go).
	claimEpoch int64
	mirror     *Status     // of a job another host owns: its status as that host wrote it (mirror.go)
	rev        string      // the revision of the job's row last seen (mirror.go's backstop)
	counts     jobCounters // for the per-job metrics (metrics_jobs.go)

	lastRunID atomic.Int64 // the ID of the job's last run (runs.go)
	parts     partsSeen    // whether the job's log folder may hold parts (retention.go)
}

func newRunner(m *Manager, id, source, home string, j Job) *runner {
	return &runner{
		m: m, name: j.Name, id: id, source: source, home: home, job: j, version: m.versions.Add(1), ctl: make(chan struct{}, 1), edit: make(chan struct{}, 1), changed: make(chan struct{}),
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

	// first is closed once the first run is spawned, or failed to be (then
	// firstErr says why) and the job has moved on to retrying or error.
	first     chan struct{}
	firstErr  error
	firstOnce sync.Once

	// err is why the activation came to rest in StateError, if it did: set
	// before done is closed, and read after.
	err error

	// waits: the definition it runs has dependencies, which its first run
	// waits for (depwait.go).
	waits bool
	// checked: the definition it runs has a health check, so that
	// Status.Health says whether its run passes it (ConditionHealthy).
	checked bool

	// latest is the newest run begun, or at first a run that never was, whose
	// next is the first run: log followers go from run to run through next.
	// Guarded by runner.mu. Only the newest is kept here; a follower keeps the
	// one it reads.
	latest *proc

	// resume is the parked supervision's continuation (loop.park); nil
	// while a goroutine holds it.
	resume atomic.Pointer[func()]
}

func newSupervisor() *supervisor {
	s := &supervisor{stopReq: make(chan struct{}), killReq: make(chan struct{}), done: make(chan struct{}),
		first: make(chan struct{})}
	s.latest = &proc{sup: s}
	return s
}

func (s *supervisor) stop() {
	s.stopOnce.Do(func() { close(s.stopReq) })
	s.wake()
}

func (s *supervisor) kill() {
	s.killOnce.Do(func() { close(s.killReq) })
	s.wake()
}

// wake resumes the parked supervision, if it is parked, on a goroutine of its
// own: an event of its run has come. It never blocks nor locks, for it is
// called under runner.mu (a health check) and from the process waiter. A wake that finds nothing parked does
// nothing; one that comes after the event was seen resumes a supervision
// that parks again.
func (s *supervisor) wake() {
	if k := s.resume.Swap(nil); k != nil {
		go (*k)()
	}
}

func (s *supervisor) stopping() bool {
	select {
	case <-s.stopReq:
		return true
	default:
		return false
	}
}

// report settles the outcome of the first run; later calls do nothing.
func (s *supervisor) report(err error) {
	s.firstOnce.Do(func() {
		s.firstErr = err
		close(s.first)
	})
}

// firstRun waits for the outcome of the job's first run: nil once it is
// spawned (or a stop came first), else an error wrapping ErrStartFailed.
func (s *supervisor) firstRun(ctx context.Context, name string) error {
	select {
	case <-s.first:
	case <-ctx.Done():
		return fmt.Errorf("start %q: %w", name, ctx.Err())
	}
	if s.firstErr != nil {
		return fmt.Errorf("start %q: %w: %w", name, ErrStartFailed, s.firstErr)
	}
	return nil
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
	maxRunLogBytes int64
	onFailure      bool            // restart "on-failure": a run that succeeded is not followed by another
	successCodes   []int           // exit codes besides 0 that are a success
	health         *healthSettings // nil: no health check
}

// start activates the job: its supervisor goroutine spawns the first run.
// The caller holds r.ctl, and waits for the first run (supervisor.firstRun)
// only once it has let go of it, so that a stop is never held up by a spawn.
func (r *runner) start(trigger Trigger) (*supervisor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted {
		return nil, fmt.Errorf("start %q: %w", r.name, ErrNotFound)
	}
	if r.sup != nil {
		return nil, fmt.Errorf("start %q: %w (state %s)", r.name, ErrRunning, r.st.State)
	}
	if err := r.elsewhereLocked(); err != nil { // whoever asks: by hand, at Open, a tick, a dependent
		return nil, err
	}
	if r.job.Host == HostAny && r.m.floatingUnsafe() { // self-fencing: its lease is not being renewed
		return nil, &OwnerError{Job: r.name}
	}
	if err := r.m.track(); err != nil {
		return nil, fmt.Errorf("start %q: %w", r.name, err)
	}
	s := newSupervisor()
	job := r.job
	s.waits, s.checked = len(job.DependsOn) > 0, job.Health != nil
	r.sup = s
	r.transitionLocked(StateStarting, func(st *Status) { st.Restarts = 0 })
	go r.supervise(s, job, r.m.cfg.settings(job), trigger)
	return s, nil
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
	r.m.w.stopBegun()
	defer r.m.w.stopEnded()
	s.stop()
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if errors.Is(s.err, ErrStopFailed) {
		return fmt.Errorf("stop %q: %w", r.name, s.err)
	}
	return nil
}

// supervise runs the job until it rests: stopped, exited or error. It is the
// only code that spawns, waits for or signals the job's processes. While a
// run simply runs, the supervision holds no goroutine: it is parked (see
// park) until the run ends, a stop is asked for, a part of the log is rotated
// out or a health check fails, and resumes on a new goroutine.
func (r *runner) supervise(s *supervisor, job Job, set settings, trigger Trigger) {
	if s.waits && !r.awaitDeps(s, job, trigger) {
		r.m.wg.Done()
		return
	}
	l := &loop{r: r, s: s, job: job, set: set, th: newThrottle(set)}
	l.run(trigger)
}

// loop is one activation's supervision, as it goes from goroutine to
// goroutine: parked, it is all that is left of it.
type loop struct {
	r        *runner
	s        *supervisor
	job      Job
	set      settings
	th       *throttle
	failures int
}

// run begins runs until the job rests, or a run is parked.
func (l *loop) run(trigger Trigger) {
	for ; ; trigger = TriggerRetry {
		p, err := l.r.launch(l.s, l.job, l.set, trigger)
		if p == nil && err == nil { // stopped before the run was spawned
			l.s.report(nil)
			l.r.m.wg.Done()
			return
		}
		end := runResult{spawnErr: err}
		if err != nil {
			end.reason = err.Error()
		} else {
			l.s.report(nil)
			p.leader.WhenDone(l.s.wake)
			hc := l.r.startChecks(p, l.set)
			var parked bool
			if end, parked = l.watch(p, hc); parked {
				return
			}
		}
		if !l.next(end) {
			return
		}
	}
}

// resume goes on with run p's supervision, woken.
func (l *loop) resume(p *proc, hc *checker) {
	end, parked := l.watch(p, hc)
	if !parked && l.next(end) {
		l.run(TriggerRetry)
	}
}

// next reports whether another run follows the one that ended; if not, the
// job has come to rest and the supervision is over.
func (l *loop) next(end runResult) bool {
	if !end.rested && l.r.after(l.s, l.job, l.set, l.th, &l.failures, end) {
		return true
	}
	l.r.m.wg.Done()
	return false
}

// runResult is how a run ended, or failed to begin, for supervise to decide
// what follows.
type runResult struct {
	ran       time.Duration
	rested    bool  // the job came to rest (stopped, or error)
	spawnErr  error // the run failed to begin
	success   bool  // it exited 0, or with one of success_exit_codes
	unhealthy bool  // stopped because its health check failed
	healthy   bool  // a health check of it passed
	reason    string
}

// after decides what follows a run that ended (or failed to begin) without
// the job coming to rest: it brings the job to rest and reports false, or
// reports true once the next run may begin, at once or after a backoff.
func (r *runner) after(s *supervisor, job Job, set settings, th *throttle, failures *int, end runResult) bool {
	if end.spawnErr == nil {
		switch {
		case end.unhealthy && s.stopping(): // asked to stop during the unhealthy run's stop
			r.toStopped()
			return false
		case job.Type == OneTime && end.unhealthy && !set.onFailure:
			r.fail(s, errors.New(end.reason))
			return false
		case job.Type == OneTime && (end.success || !set.onFailure), job.Type == Continuous && set.onFailure && end.success:
			r.transition(StateExited, nil)
			return false
		case s.stopping(): // asked to stop just as the run ended
			r.toStopped()
			return false
		case job.Type == Continuous && !end.unhealthy && end.ran >= set.minUptime:
			th.reset()
			*failures = 0
			r.restartNow()
			return true
		}
	}
	ran, reason := end.ran, end.reason
	switch {
	case end.unhealthy && end.healthy && end.ran >= set.minUptime && job.Type == Continuous:
		// It was a good run until it went unhealthy: a first failure.
		th.reset()
		*failures = 0
		ran = 0
	case end.unhealthy, job.Type == OneTime:
		ran = 0 // the whole interval: the run's time was no healthy uptime
	case end.spawnErr == nil: // a continuous run too short
		reason = fmt.Sprintf("run lasted %s, less than min_uptime %s", end.ran.Round(time.Millisecond), set.minUptime)
		if set.onFailure {
			reason = end.reason + "; " + reason
		}
	}
	*failures++
	return r.retry(s, job, set, th.wait(ran), *failures, reason, end.spawnErr)
}

// toStopped brings a job whose run has ended to rest in StateStopped.
func (r *runner) toStopped() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.st.State != StateStopping {
		r.transitionLocked(StateStopping, nil)
	}
	r.transitionLocked(StateStopped, nil)
}

// launch prepares and spawns a run and records it, or records the failure to.
// A stop that comes while the run is being prepared ends the job at once
// (stopped), and launch returns neither a run nor an error.
func (r *runner) launch(s *supervisor, job Job, set settings, trigger Trigger) (*proc, error) {
	if job.Host == HostAny && r.m.floatingUnsafe() {
		// Self-fencing: a restart or retry must not begin while the lease goes
		// unrenewed. A ProcMan that wakes from SIGSTOP finds its floating runs
		// killed by the guardian, and would else start them again before its
		// watch of the lease has run. It is started again once renewed.
		r.m.floats.troubled.Store(true)
		r.transition(StateStopped, nil)
		return nil, nil
	}
	prep, ok := r.prepare(s, job)
	if !ok || (prep.err == nil && s.stopping()) {
		prep.sp.discard()
		r.transition(StateStopped, nil)
		return nil, nil
	}
	// Spawning and recording run on a goroutine of their own, not on the
	// supervisor's: it lives as long as the job, and would keep the stack a
	// spawn and a database write grow (some 7 KiB per running job).
	var p *proc
	err := prep.err
	onFreshStack(func() {
		if err == nil {
			p, err = r.spawn(s, job, set, prep.sp)
		}
		if err != nil {
			r.recordFailedStart(trigger, err)
			return
		}
		r.recordStart(p, trigger)
		r.transition(StateRunning, func(st *Status) {
			st.PID, st.LogFile, st.Error = p.pgid, p.row.LogFile, ""
			if set.health != nil {
				st.Health = HealthStarting
			}
		})
	})
	return p, err
}

// prepared is the outcome of prepareSpawn.
type prepared struct {
	sp  *spawnPrep
	err error
}

// prepare runs prepareSpawn on a goroutine of its own and waits for it or for
// a stop request, whichever comes first (ok is then false): a file the job
// names can take its time, or never answer, without holding the job up. The
// preparation a stop walked away from is discarded when it ends.
func (r *runner) prepare(s *supervisor, job Job) (res prepared, ok bool) {
	handed := make(chan prepared) // unbuffered: the result is either taken or discarded
	r.m.preps.Add(1)
	go func() {
		defer r.m.preps.Done()
		sp, err := r.m.prepareRun(job)
		select {
		case handed <- prepared{sp, err}:
		case <-s.stopReq:
			sp.discard()
		}
	}()
	select {
	case res = <-handed:
		return res, true
	case <-s.stopReq:
		return prepared{}, false
	}
}

// onFreshStack runs f on a new goroutine and waits for it.
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (r *runner) restartNow() {
	r.m.metrics.restarted()
	r.transition(StateStarting, func(st *Status) { st.Restarts++; r.counts.restarts++ })
}

// watch waits for the run to end by itself, for a stop request or, with
// on_unhealthy "restart", for its health check to fail, and records its end.
// Meanwhile its health checks (hc) run, and whenever a part is rotated out of
// the run's log, it queues log retention (which never makes it wait). The
// checks end before the run leaves StateRunning. Whenever there is nothing
// to do, it parks the supervision (parked: this goroutine is done with it).
func (l *loop) watch(p *proc, hc *checker) (end runResult, parked bool) {
	r, s := l.r, l.s
	for {
		if l.park(p, hc) {
			return runResult{}, true
		}
		select {
		case <-p.rotated:
			r.m.prune(r, l.job, p.live)
		case <-p.done:
			healthy := hc.stop()
			end := r.ended(s, p, l.set)
			end.healthy = healthy
			return end, false
		case <-s.stopReq:
			hc.stop()
			return r.stopRun(s, p, l.set), false
		case <-hc.unhealthyC():
			healthy := hc.stop()
			end := r.stopUnhealthy(s, p, l.set, hc.reason)
			end.healthy = healthy
			return end, false
		}
	}
}

// park leaves the supervision of run p to whichever of its events comes
// first (supervisor.wake), and reports true; or false if one has come
// already. The continuation is published before the events are looked at,
// and taken by one wake only: an event that comes meanwhile either finds it
// or is found here.
func (l *loop) park(p *proc, hc *checker) bool {
	k := func() { l.resume(p, hc) }
	l.s.resume.Store(&k)
	select { // channel operations all, so that no event's send slips past
	case <-p.done:
	case <-l.s.stopReq:
	case <-hc.unhealthyC():
	case <-p.rotated:
		select { // given back, for watch
		case p.rotated <- struct{}{}:
		default:
		}
	default:
		return true
	}
	if l.s.resume.CompareAndSwap(&k, nil) {
		return false // taken back: go on here
	}
	return true // a wake took it, and resumes on a goroutine of its own
}

// ended records a run that ended by itself, once nothing is left of its group.
func (r *runner) ended(s *supervisor, p *proc, set settings) runResult {
	ran := time.Since(p.started)
	killed, err := r.sweep(p, set, s.killReq)
	if err != nil {
		r.recordEnd(p, OutcomeKilled, err.Error())
		r.fail(s, err)
		return runResult{ran: ran, rested: true}
	}
	outcome := OutcomeExited
	if killed && s.stopping() { // a forced shutdown cut the sweep short
		outcome = OutcomeKilled
	}
	r.recordEnd(p, outcome, "")
	return runResult{ran: ran, success: succeeded(outcome, p.row.ExitCode, set.successCodes), reason: p.howEnded()}
}

// stopRun stops the run on request and records its end.
func (r *runner) stopRun(s *supervisor, p *proc, set settings) runResult {
	r.transition(StateStopping, nil)
	killed, err := r.terminate(p, set, s.killReq)
	switch {
	case err != nil:
		r.recordEnd(p, OutcomeKilled, err.Error())
		r.fail(s, err)
	case killed:
		r.recordEnd(p, OutcomeKilled, "")
		r.transition(StateStopped, nil)
	default:
		r.recordEnd(p, OutcomeStopped, "")
		r.transition(StateStopped, nil)
	}
	return runResult{ran: time.Since(p.started), rested: true}
}

// stopUnhealthy stops a run whose health check failed, as a stop does (the
// stop signal, SIGKILL after stop_timeout), and records it as a failed run
// with outcome unhealthy, whatever its exit: a service that exits 0 on
// SIGTERM did not succeed. The job is left in StateStopping for after.
func (r *runner) stopUnhealthy(s *supervisor, p *proc, set settings, reason string) runResult {
	r.transition(StateStopping, nil)
	killed, err := r.terminate(p, set, s.killReq)
	ran := time.Since(p.started)
	if err != nil {
		r.recordEnd(p, OutcomeKilled, reason+"; "+err.Error())
		r.fail(s, err)
		return runResult{ran: ran, rested: true}
	}
	cause := reason
	if killed {
		cause += "; ended by SIGKILL"
	}
	r.recordEnd(p, OutcomeUnhealthy, cause)
	return runResult{ran: ran, unhealthy: true, reason: reason}
}

// retry decides what follows a failed run or spawn: restart at once, or wait
// (state retrying), and report true; or give up (state error) or stop, and
// report false. spawnErr is the failure to spawn, if that is what failed: it
// settles the outcome of a first run (supervisor.report) once the job has
// moved on.
func (r *runner) retry(s *supervisor, job Job, set settings, wait time.Duration, failures int, reason string, spawnErr error) bool {
	defer s.report(spawnErr)
	if job.Type == OneTime && !set.onFailure {
		r.fail(s, errors.New(reason))
		return false
	}
	if set.maxRetries > 0 && failures >= set.maxRetries {
		r.fail(s, fmt.Errorf("gave up after %d consecutive failures; last: %s", failures, reason))
		return false
	}
	if wait <= 0 {
		r.restartNow()
		return true
	}
	r.transition(StateRetrying, func(st *Status) { st.Error = reason })
	s.report(spawnErr) // before the wait
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

// fail brings the activation to rest in StateError because of err, which the
// supervisor keeps as a value for those who wait for its end (runner.stop).
func (r *runner) fail(s *supervisor, err error) {
	s.err = err
	r.transition(StateError, func(st *Status) { st.Error = err.Error() })
}

// throttle spaces the starts of a continuous job that keeps failing. Each
// failed run (or failure to spawn) doubles the interval, from backoff_initial
// up to backoff_max (±50% jitter, never above backoff_max), and the next start
// waits for what is left of the interval once the run's own duration is
// taken off; a healthy run resets it. So a job that dies on start waits 1s,
// 2s, 4s, ...; one that fails after 1.6s restarts at once, then after about
// 0.4s, 2.4s, 6.4s, ...; and a service killed now and then, after a healthy
// run, is back at once.
type throttle struct {
	bo  backoff.BackOff
	max time.Duration
}

func newThrottle(set settings) *throttle {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = set.backoffInitial
	b.MaxInterval = set.backoffMax
	b.Multiplier = 2
	b.MaxElapsedTime = 0 // a supervisor never gives up on its own clock; max_retries decides
	b.Reset()
	return &throttle{bo: b, max: set.backoffMax}
}

func (t *throttle) reset() { t.bo.Reset() }

// wait is how long to wait before the next start, after a failed run that
// lasted ran (0 for a failure to spawn, which always waits).
func (t *throttle) wait(ran time.Duration) time.Duration {
	iv := min(t.bo.NextBackOff(), t.max) // the jitter may go above the cap
	if ran == 0 {
		return max(iv, time.Millisecond)
	}
	return max(iv-ran, 0)
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
	r.m.quiet.touched()
	if to != StateRunning && to != StateStopping { // no run goes on
		r.st.PID = 0
		r.st.Health, r.st.HealthFailure, r.st.HealthCheckedAt = "", "", nil
	}
	if to != StateStarting {
		r.st.WaitingFor = nil
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
	ev := Event{Type: EventState, Job: r.name, From: from, To: to, Time: r.st.Since, PID: r.st.PID, Status: r.statusLocked()}
	r.publishStatusLocked(ev.Status)
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
	st.Host = r.ownerLocked()
	if r.sup == nil && st.Host != r.m.cfg.Host {
		st = r.remoteStatusLocked(st)
	}
	if r.entry != 0 {
		next := r.next
		st.NextRun = &next
	}
	return st
}

// stateLocked is the job's state as its status says. The caller holds r.mu.
func (r *runner) stateLocked() State {
	if r.sup == nil && !r.localLocked() {
		return r.remoteStatusLocked(Status{Host: r.ownerLocked()}).State
	}
	return r.st.State
}
