package procman

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// Bulk actions act on every job a Selector chooses, in the order of the
// graph of dependencies: stops go in waves, the jobs that depend on others
// first (as Shutdown's do), starts and restarts in waves the other way
// round, dependencies first. The jobs of a wave, independent of each other,
// are acted on in parallel, and a wave begins once the one before it has
// ended. Each job is acted on as by its own Start, Stop or Restart, and
// gets a Result of its own: a failure of one is no failure of the others.

// Result is what a bulk action did to one job.
type Result struct {
	Name string
	// Status is the job's status once the action on it had ended.
	Status Status
	// Dependent: the job was not chosen but depends, directly or through
	// others, on one that was, and was active: a stop stopped it first.
	Dependent bool
	// Err is why the action failed for this job; nil if it did what was
	// asked, which for a start of an active job is to leave it be.
	Err error
}

// StopJobs stops every job sel chooses, as Stop does (each by hand: not
// started again at Open), and before them the active jobs that depend on
// them, chosen or not. It returns a Result for every chosen job and every
// dependent it stopped, in the order they were stopped: wave by wave, by
// name within a wave. The zero Selector is refused (ErrInvalid): AllJobs
// chooses every job. Once begun, the stops are carried through even if ctx
// ends, since their order is the point of them.
func (m *Manager) StopJobs(ctx context.Context, sel Selector) ([]Result, error) {
	if err := m.checkBulk(sel); err != nil {
		return nil, err
	}
	waves, chosen := m.stopWaves(sel)
	begun := context.WithoutCancel(ctx)
	return eachWave(waves, func(r *runner) (Result, bool) {
		if err := m.elsewhere(begun, r); err != nil { // chosen: a dependent elsewhere is not active here
			return Result{Name: r.name, Status: r.status(), Err: err}, true
		}
		was, err := r.stopAsDependent(begun)
		if !chosen[r] && !was { // no longer active: not stopped by this
			return Result{}, false
		}
		return Result{Name: r.name, Status: r.status(), Dependent: !chosen[r], Err: err}, true
	}), nil
}

// StartJobs starts every job sel chooses that is not active, as Start does,
// dependencies first (a start also starts the dependencies not chosen, as
// Start does). It returns a Result for every chosen job, wave by wave, by
// name within a wave; the start of a job that was active already is no
// error. The zero Selector is refused (ErrInvalid); AllJobs chooses every
// job. If ctx ends, the starts not yet begun are not made: their Results
// hold ctx's error.
func (m *Manager) StartJobs(ctx context.Context, sel Selector) ([]Result, error) {
	return m.startEach(sel, func(name string) error {
		if err := m.Start(ctx, name); !errors.Is(err, ErrRunning) {
			return err
		}
		return nil
	})
}

// RestartJobs restarts every job sel chooses, as Restart does, dependencies
// first: each Restart leaves the job's dependents alone, and those chosen
// are restarted in a later wave. It returns a Result for every chosen job,
// wave by wave, by name within a wave. The zero Selector is refused
// (ErrInvalid); AllJobs chooses every job. If ctx ends, the restarts not yet
// begun are not made: their Results hold ctx's error.
func (m *Manager) RestartJobs(ctx context.Context, sel Selector) ([]Result, error) {
	return m.startEach(sel, func(name string) error { return m.Restart(ctx, name) })
}

func (m *Manager) startEach(sel Selector, start func(name string) error) ([]Result, error) {
	if err := m.checkBulk(sel); err != nil {
		return nil, err
	}
	rs := m.selected(sel)
	m.mu.RLock()
	waves := groupWaves(m.graph.on, rs)
	m.mu.RUnlock()
	return eachWave(waves, func(r *runner) (Result, bool) {
		err := start(r.name)
		return Result{Name: r.name, Status: r.status(), Err: err}, true
	}), nil
}

func (m *Manager) checkBulk(sel Selector) error {
	if sel.IsZero() {
		return fmt.Errorf("%w selector: none given; to act on every job, say so with AllJobs", ErrInvalid)
	}
	if m.isClosed() {
		return ErrClosed
	}
	return nil
}

// stopWaves lists, wave by wave, the jobs sel chooses and the active jobs
// that depend on them; chosen tells the first from the second.
func (m *Manager) stopWaves(sel Selector) ([][]*runner, map[*runner]bool) {
	rs := m.selected(sel)
	chosen := make(map[*runner]bool, len(rs))
	for _, r := range rs {
		chosen[r] = true
	}
	seen := maps.Clone(chosen)
	all := slices.Clone(rs)
	m.mu.RLock()
	for todo := slices.Clone(rs); len(todo) > 0; {
		r := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, by := range m.graph.by[r.name] {
			if d, ok := m.jobs[by]; ok && !seen[d] {
				seen[d] = true
				all = append(all, d)
				todo = append(todo, d)
			}
		}
	}
	waves := groupWaves(m.graph.by, all)
	m.mu.RUnlock()
	for i, w := range waves { // a dependent at rest is left alone: its schedule goes on
		var keep []*runner
		for _, r := range w {
			if chosen[r] || r.active() {
				keep = append(keep, r)
			}
		}
		waves[i] = keep
	}
	return waves, chosen
}

// eachWave calls act on every job of a wave in parallel, one wave after the
// other, and returns the results act kept, in the order of the waves.
func eachWave(waves [][]*runner, act func(*runner) (Result, bool)) []Result {
	out := []Result{}
	for _, wave := range waves {
		res := make([]Result, len(wave))
		keep := make([]bool, len(wave))
		var wg sync.WaitGroup
		for i, r := range wave {
			wg.Go(func() { res[i], keep[i] = act(r) })
		}
		wg.Wait()
		for i := range wave {
			if keep[i] {
				out = append(out, res[i])
			}
		}
	}
	return out
}
