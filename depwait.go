package procman

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// A start whose definition has dependencies (Job.DependsOn) waits for them
// on the job's supervisor goroutine, before its first run, holding no lock:
// a stop asks the supervisor to stop, as at any other moment, and the wait
// ends at once. The wait first starts each dependency that is neither active
// nor meeting its condition (trigger dependency: the dependency's own
// supervisor then waits for its own dependencies, and so on down the graph),
// then judges every condition again whenever one of the dependencies changes
// (it wakes on their Status changes), until all of them hold at once. A
// dependency that loses its health meanwhile is waited for again, never given
// up on: only one at rest that cannot meet its condition ends the wait, as
// does start_timeout.

// errStopped ends a wait that a stop came to.
var errStopped = errors.New("stopped while waiting for its dependencies")

// awaitDeps is the start of activation s, whose definition job has
// dependencies. It reports whether the first run may go ahead; if not, the
// activation has come to rest: stopped (a stop came), or error (a dependency
// cannot meet its condition, or start_timeout passed), which is recorded as a
// run that failed to start.
func (r *runner) awaitDeps(s *supervisor, job Job, trigger Trigger) bool {
	w := newDepWait(r, s, job)
	err := w.run()
	if w.timer != nil {
		w.timer.Stop()
	}
	switch {
	case err == nil:
		return true
	case errors.Is(err, errStopped):
		r.transition(StateStopped, nil)
		s.report(nil)
	default:
		r.recordFailedStart(trigger, err)
		r.fail(s, err)
		s.report(err)
	}
	return false
}

// dep is one dependency of the job being started.
type dep struct {
	name string
	cond Condition
	r    *runner // nil: no job has the name
}

// depView is what a dependency's condition is judged on.
type depView struct {
	st      Status
	deleted bool
	checked bool // its run is watched by a health check
	job     Job
	changed <-chan struct{}
}

func (d dep) view() depView {
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	v := depView{st: d.r.st, deleted: d.r.deleted, job: d.r.job, changed: d.r.changed}
	if d.r.sup != nil {
		v.checked = d.r.sup.checked
	}
	return v
}

func (d dep) fail(why string) error { return fmt.Errorf("dependency %q %s", d.name, why) }

// judge says whether a dependency as v shows it meets condition c. If not,
// why says why it never will unless it is started again, when it is at rest;
// an active one is on its way, and why is empty. A one_time dependency that
// has run and exited meets started and healthy as well as completed.
func judge(c Condition, v depView) (met bool, why string) {
	st := v.st
	if v.deleted {
		return false, "was deleted"
	}
	switch st.State {
	case StateRunning:
		switch c {
		case ConditionStarted:
			return true, ""
		case ConditionHealthy:
			return !v.checked || st.Health == HealthHealthy, ""
		}
		return false, ""
	case StateExited:
		if c == ConditionCompletedSuccessfully && !v.job.succeeded(st.ExitCode) {
			return false, exitText(st)
		}
		return true, ""
	case StateError:
		return false, "is in error: " + st.Error
	case StateStopped, StateUnknown:
		return false, "was stopped"
	}
	return false, ""
}

func exitText(st Status) string {
	switch {
	case st.ExitCode != nil:
		return fmt.Sprintf("exited with code %d", *st.ExitCode)
	case st.Signal != "":
		return "was ended by signal " + st.Signal
	}
	return "exited"
}

// depWait is one start's wait for its dependencies.
type depWait struct {
	r       *runner
	s       *supervisor
	deps    []dep // by name
	timeout time.Duration
	timer   *time.Timer
	expired <-chan time.Time     // fires at start_timeout; nil without one
	unmet   map[string]Condition // as last judged; never changed in place
}

func newDepWait(r *runner, s *supervisor, job Job) *depWait {
	w := &depWait{r: r, s: s, timeout: time.Duration(job.StartTimeout), unmet: maps.Clone(job.DependsOn)}
	for _, name := range slices.Sorted(maps.Keys(job.DependsOn)) {
		d, _ := r.m.runner(name)
		w.deps = append(w.deps, dep{name: name, cond: job.DependsOn[name], r: d})
	}
	if w.timeout > 0 {
		w.timer = time.NewTimer(w.timeout)
		w.expired = w.timer.C
	}
	return w
}

// run starts what needs starting, then waits until every condition holds.
func (w *depWait) run() error {
	for _, d := range w.deps {
		if err := w.begin(d); err != nil {
			return err
		}
	}
	for {
		watch, err := w.check()
		if err != nil {
			return err
		}
		w.r.setWaiting(w.s, w.unmet)
		if len(w.unmet) == 0 {
			return nil
		}
		if err := w.sleep(watch); err != nil {
			return err
		}
	}
}

// begin starts dependency d, unless it is active or meets its condition
// already (a one_time dependency that completed since this Manager opened is
// not run again).
func (w *depWait) begin(d dep) error {
	if d.r == nil {
		return d.fail("does not exist")
	}
	idle := func() bool {
		v := d.view()
		met, why := judge(d.cond, v)
		return !met && why != ""
	}
	if !idle() {
		return nil
	}
	err := w.control(d.r, func(r *runner) error {
		if !idle() {
			return nil
		}
		_, err := r.start(TriggerDependency)
		return err
	})
	switch {
	case err == nil, errors.Is(err, ErrRunning):
		return nil
	case errors.Is(err, ErrNotFound):
		return d.fail("was deleted")
	case errors.Is(err, ErrClosed): // shutting down: the stop is on its way
		<-w.s.stopReq
		return errStopped
	}
	return err
}

// check judges every dependency, keeps those not met in w.unmet, and returns
// the channels that tell of their next changes; an error if one of them can
// no longer meet its condition.
func (w *depWait) check() ([]<-chan struct{}, error) {
	unmet := map[string]Condition{}
	watch := make([]<-chan struct{}, 0, len(w.deps))
	for _, d := range w.deps {
		v, err := w.settled(d)
		if err != nil {
			return nil, err
		}
		if met, _ := judge(d.cond, v); !met {
			unmet[d.name] = d.cond
		}
		watch = append(watch, v.changed)
	}
	w.unmet = unmet
	return watch, nil
}

// settled returns a view of d that is not a stop about to be undone, or the
// error d's condition fails with. A dependency stopped without meeting its
// condition fails it; but one being restarted is stopped for a moment too,
// between the restart's stop and its start, which its control lock covers:
// so a stop is taken for one only once that lock has been had.
func (w *depWait) settled(d dep) (depView, error) {
	for {
		v := d.view()
		met, why := judge(d.cond, v)
		if met || why == "" {
			return v, nil
		}
		if v.deleted || (v.st.State != StateStopped && v.st.State != StateUnknown) {
			return v, d.fail(why)
		}
		err := w.control(d.r, func(*runner) error {
			if met, why := judge(d.cond, d.view()); !met && why != "" {
				return d.fail(why)
			}
			return nil
		})
		if errors.Is(err, ErrNotFound) {
			return v, d.fail("was deleted")
		}
		if err != nil {
			return v, err
		}
	}
}

// sleep waits for a change of a dependency, a stop or start_timeout.
func (w *depWait) sleep(watch []<-chan struct{}) error {
	recv := func(ch any) reflect.SelectCase {
		return reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
	}
	cases := []reflect.SelectCase{recv(w.s.stopReq)}
	if w.expired != nil {
		cases = append(cases, recv(w.expired))
	}
	for _, ch := range watch {
		cases = append(cases, recv(ch))
	}
	switch i, _, _ := reflect.Select(cases); {
	case i == 0:
		return errStopped
	case i == 1 && w.expired != nil:
		return w.timedOut()
	}
	return nil
}

// control runs op on dependency d under its control lock, unless a stop or
// start_timeout comes first.
func (w *depWait) control(d *runner, op func(*runner) error) error {
	if w.s.stopping() {
		return errStopped
	}
	select {
	case d.ctl <- struct{}{}:
	case <-w.s.stopReq:
		return errStopped
	case <-w.expired:
		return w.timedOut()
	}
	defer unlockSlot(d.ctl)
	return d.controlled(op)
}

func (w *depWait) timedOut() error {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(w.unmet)) {
		parts = append(parts, fmt.Sprintf("%s (%s)", name, w.unmet[name]))
	}
	return fmt.Errorf("start_timeout %s passed while waiting for %s", w.timeout, strings.Join(parts, ", "))
}

// setWaiting records the conditions the start of activation s still waits
// for, as a change that those who wait on the job see, and as an event.
func (r *runner) setWaiting(s *supervisor, unmet map[string]Condition) {
	if len(unmet) == 0 {
		unmet = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sup != s || r.st.State != StateStarting || maps.Equal(r.st.WaitingFor, unmet) {
		return
	}
	r.st.WaitingFor = unmet
	close(r.changed)
	r.changed = make(chan struct{})
	r.m.hub.publish(Event{Type: EventWaiting, Job: r.name, Time: time.Now(), Status: r.statusLocked()})
}
