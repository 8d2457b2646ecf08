package procman

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/probe"
)

// checker runs the health checks of one run, from the moment it is running
// until its supervisor stops the checker, which it does before the run
// leaves StateRunning. Between two checks it is only a timer: each check runs
// on the timer's own short goroutine, which arms the timer again once it has
// recorded its result. So a checked job costs no goroutine between checks,
// and a job without a check has no checker at all.
type checker struct {
	r      *runner
	p      *proc
	hs     *healthSettings
	probe  func(ctx context.Context, timeout time.Duration) error
	ctx    context.Context // ends when the checker is stopped: a check under way is cut short
	cancel context.CancelFunc
	wg     sync.WaitGroup // the check armed or under way

	// Guarded by r.mu.
	timer    *time.Timer
	stopped  bool
	failures int  // checks failed in a row since the start period
	passed   bool // a check has passed: the start period is over
	// unhealthy is closed when the run has become unhealthy and is to be
	// stopped (on_unhealthy "restart"); reason says why. No check follows.
	unhealthy chan struct{}
	reason    string
}

// startChecks starts the run's health checks, the first at once; nil for a
// job without a check. The supervisor calls it once the run is running.
func (r *runner) startChecks(p *proc, set settings) *checker {
	hs := set.health
	if hs == nil {
		return nil
	}
	c := &checker{r: r, p: p, hs: hs, probe: r.probeFor(p, hs), unhealthy: make(chan struct{})}
	// Not Manager.ctx: Shutdown cancels it before it stops the runs, and a
	// check cut short then must not count as a failure. stop ends it.
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Add(1)
	r.mu.Lock()
	c.timer = time.AfterFunc(0, c.check)
	r.mu.Unlock()
	return c
}

// probeFor is the run's check. An exec check runs as the run does: its
// user, environment and dir (p.check).
func (r *runner) probeFor(p *proc, hs *healthSettings) func(context.Context, time.Duration) error {
	switch {
	case hs.check.Exec != "":
		return p.check.Run
	case hs.check.HTTP != "":
		url := hs.check.HTTP
		return func(ctx context.Context, timeout time.Duration) error { return probe.HTTP(ctx, r.m.http, url, timeout) }
	}
	addr := hs.check.TCP
	return func(ctx context.Context, timeout time.Duration) error { return probe.TCP(ctx, addr, timeout) }
}

// execProbe is the exec check of a run spawned from spec, or nil if the
// job has none.
func (r *runner) execProbe(set settings, spec osproc.Spec) *probe.Exec {
	if set.health == nil || set.health.check.Exec == "" {
		return nil
	}
	spec.Args, spec.Output = []string{"-c", set.health.check.Exec}, nil
	return &probe.Exec{Reaper: r.m.kids, Guardian: r.m.guard, Spec: spec, KillWait: r.m.cfg.KillWait}
}

// check runs one check, on the timer's goroutine, records its result and
// arms the timer for the next.
func (c *checker) check() {
	defer c.wg.Done()
	err := c.probe(c.ctx, c.hs.timeout)
	now := time.Now()
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.stopped { // the run is leaving running: its result no longer matters
		return
	}
	if c.recordLocked(err, now) && c.hs.restart {
		close(c.unhealthy)
		c.p.sup.wake()
		return
	}
	c.wg.Add(1)
	c.timer.Reset(c.hs.interval)
}

// recordLocked applies a check's result to the job's status, and reports
// whether the run has just become unhealthy.
func (c *checker) recordLocked(err error, now time.Time) bool {
	st := &c.r.st
	was := st.Health
	st.HealthCheckedAt = &now
	if err == nil {
		c.failures, c.passed = 0, true
		st.Health, st.HealthFailure = HealthHealthy, ""
	} else {
		st.HealthFailure = err.Error()
		// Failures in the start period do not count, until a check passes.
		if c.passed || now.Sub(c.p.started) >= c.hs.startPeriod {
			c.failures++
		}
		if c.failures >= c.hs.retries {
			st.Health = HealthUnhealthy
		}
	}
	if st.Health == was {
		return false
	}
	if st.Health == HealthUnhealthy {
		c.reason = fmt.Sprintf("unhealthy: %d health checks failed in a row, the last: %s", c.failures, st.HealthFailure)
		if c.failures == 1 {
			c.reason = "unhealthy: the health check failed: " + st.HealthFailure
		}
	}
	c.r.healthChangedLocked(was, now)
	return st.Health == HealthUnhealthy
}

// unhealthyC is closed when the run is to be stopped as unhealthy; nil
// (never ready) without a checker.
func (c *checker) unhealthyC() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.unhealthy
}

// stop ends the checks: no result is recorded after it, and the check under
// way, if any, is cut short and waited for (an exec check's group is
// killed: a few milliseconds). It reports whether a check had passed.
func (c *checker) stop() (passed bool) {
	if c == nil {
		return false
	}
	c.r.mu.Lock()
	c.stopped = true
	if c.timer.Stop() { // armed, not begun: it never will
		c.wg.Done()
	}
	c.r.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return c.passed
}

// healthChangedLocked tells of a change of the run's health, as a
// transition tells of a change of state: waiters wake, subscribers get an
// event with the whole status. The caller holds r.mu.
func (r *runner) healthChangedLocked(was Health, at time.Time) {
	close(r.changed)
	r.changed = make(chan struct{})
	ev := Event{Type: EventHealth, Job: r.name, Time: at, PID: r.st.PID, Status: r.statusLocked()}
	if r.st.Health == HealthUnhealthy {
		ev.Reason = r.st.HealthFailure
	}
	r.m.hub.publish(ev)
	attrs := []any{"job", r.name, "from", was, "to", r.st.Health}
	if r.st.Health == HealthUnhealthy {
		attrs = append(attrs, "failure", r.st.HealthFailure)
	}
	r.m.log.Info("job health", attrs...)
}
