package procman

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Stops follow the graph the other way round from starts: a job stops only
// once every active job that depends on it, directly or through others, has
// stopped (as systemd's Requires= propagates a stop). Jobs are stopped in
// waves: a job's wave is the length of the longest chain of jobs that depend
// on it, so the first wave holds every job no one depends on, and each wave
// stops in parallel once the one before it has ended.

// StopWithDependents is Stop, and also says which dependents it stopped: the
// active jobs that depend on the job, directly or through others, in the
// order they were stopped (wave by wave, by name within a wave). Each
// dependent is stopped as by hand, and so not started again at Open; a job
// that is not active stops none. Once it holds the job, a stop that has
// dependents to stop finishes even if ctx ends, since its order is the point
// of it; one that has none returns ctx's error as Stop does, and the job still
// stops.
func (m *Manager) StopWithDependents(ctx context.Context, name string) (stopped []string, err error) {
	err = m.control(ctx, name, func(r *runner) error {
		r.mu.Lock()
		r.wantLocked(false)
		active := r.sup != nil
		r.mu.Unlock()
		if !active {
			return nil
		}
		waves := m.dependentWaves(name)
		if len(waves) == 0 {
			return r.stop(ctx)
		}
		begun := context.WithoutCancel(ctx)
		var err error
		stopped, err = stopDependents(begun, waves)
		return errors.Join(err, r.stop(begun))
	})
	return stopped, err
}

// dependentWaves lists the active jobs that depend on job name, directly or
// through others, wave by wave. The caller holds name's control lock, so
// that lock order goes from a dependency's to its dependents'.
func (m *Manager) dependentWaves(name string) [][]*runner {
	m.mu.RLock()
	if len(m.graph.by[name]) == 0 {
		m.mu.RUnlock()
		return nil
	}
	var closure []string
	seen := map[string]bool{name: true}
	for todo := []string{name}; len(todo) > 0; {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, by := range m.graph.by[n] {
			if !seen[by] {
				seen[by] = true
				closure = append(closure, by)
				todo = append(todo, by)
			}
		}
	}
	rs := make([]*runner, 0, len(closure))
	for _, n := range closure {
		if r, ok := m.jobs[n]; ok {
			rs = append(rs, r)
		}
	}
	waves := m.wavesLocked(rs)
	m.mu.RUnlock()
	for i, w := range waves {
		waves[i] = slices.DeleteFunc(w, func(r *runner) bool { return !r.active() })
	}
	return slices.DeleteFunc(waves, func(w []*runner) bool { return len(w) == 0 })
}

// wavesLocked groups rs by stop wave, each wave sorted by name. The caller
// holds m.mu.
func (m *Manager) wavesLocked(rs []*runner) [][]*runner { return groupWaves(m.graph.by, rs) }

// groupWaves groups rs by the length of their longest chain in adj (g.by:
// stop waves, g.on: start waves), each wave sorted by name.
func groupWaves(adj map[string][]string, rs []*runner) [][]*runner {
	memo, open := map[string]int{}, map[string]bool{}
	var waves [][]*runner
	for _, r := range rs {
		d := depth(adj, r.name, memo, open)
		for len(waves) <= d {
			waves = append(waves, nil)
		}
		waves[d] = append(waves[d], r)
	}
	for _, w := range waves {
		slices.SortFunc(w, func(a, b *runner) int { return strings.Compare(a.name, b.name) })
	}
	return waves
}

func (r *runner) active() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sup != nil
}

// stopDependents stops each wave's jobs in parallel, as by hand, and one
// wave after the other; it reports those it stopped, and goes on past a
// failed stop, since the jobs after it were asked to stop as well.
func stopDependents(ctx context.Context, waves [][]*runner) ([]string, error) {
	var stopped []string
	var errs []error
	for _, wave := range waves {
		did := make([]bool, len(wave))
		werrs := make([]error, len(wave))
		if len(wave) == 1 {
			did[0], werrs[0] = wave[0].stopAsDependent(ctx)
		} else {
			var wg sync.WaitGroup
			for i, r := range wave {
				wg.Go(func() { did[i], werrs[i] = r.stopAsDependent(ctx) })
			}
			wg.Wait()
		}
		for i, r := range wave {
			if did[i] {
				stopped = append(stopped, r.name)
			}
		}
		errs = append(errs, werrs...)
	}
	return stopped, errors.Join(errs...)
}

// stopAsDependent stops the job as Stop does by hand, but not its dependents
// (the caller stops every one of them before), and reports whether it was
// active. A job deleted meanwhile has nothing left to stop.
func (r *runner) stopAsDependent(ctx context.Context) (bool, error) {
	r.mu.Lock()
	r.gen++ // a change by hand: pending schedule ticks are dropped
	r.mu.Unlock()
	was := false
	err := r.control(ctx, func(r *runner) error {
		r.mu.Lock()
		r.wantLocked(false)
		was = r.sup != nil
		r.mu.Unlock()
		return r.stop(ctx)
	})
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return was, err
}

// shutdownWaves lists every active job's supervisor, wave by wave.
func (m *Manager) shutdownWaves() [][]*supervisor {
	rs := m.runners()
	m.mu.RLock()
	waves := m.wavesLocked(rs)
	m.mu.RUnlock()
	var out [][]*supervisor
	for _, w := range waves {
		var sups []*supervisor
		for _, r := range w {
			r.mu.Lock()
			if r.sup != nil {
				sups = append(sups, r.sup)
			}
			r.mu.Unlock()
		}
		if len(sups) > 0 {
			out = append(out, sups)
		}
	}
	return out
}

// stopInWaves asks each wave's supervisors to stop, and waits for them to
// come to rest before it asks the next wave. If ctx ends first, every
// supervisor left is told to kill at once.
func stopInWaves(ctx context.Context, waves [][]*supervisor) error {
	for i, wave := range waves {
		for _, s := range wave {
			s.stop()
		}
		for _, s := range wave {
			select {
			case <-s.done:
			case <-ctx.Done():
				for _, rest := range waves[i:] {
					for _, s := range rest {
						s.stop()
						s.kill()
					}
				}
				return fmt.Errorf("shutdown: graceful stop cut short, killed remaining jobs: %w", ctx.Err())
			}
		}
	}
	return nil
}
