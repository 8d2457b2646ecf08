package procman

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// An apply's dependencies: the document's depends_on are checked against the
// jobs there would be once it is applied (the document's, and those of the
// Manager that its prune leaves), under Manager.graphEdit, as Create and
// Replace check a job's against the others; the graph then takes every
// created, updated and pruned job in the same turn (applying.commit); and the
// starts and restarts that follow go dependencies first.

// checkDeps lists what the document's depends_on would do wrong among the
// jobs there would be after it, each problem located in the document: a
// dependency on a job neither in the document nor left by the prune, a
// completed* condition on a continuous job, a cycle (once per cycle, on
// its first job in the document), a job the document makes continuous while
// another job waits for its end, and a pruned job that a job left depends
// on. The caller holds m.graphEdit.
func (a *applying) checkDeps() []error {
	v := a.after()
	var errs []error
	seen := map[string]bool{}
	cycles := map[string]bool{}
	for _, j := range a.doc.Jobs {
		if seen[j.Name] {
			continue // given twice: checkDocument's
		}
		seen[j.Name] = true
		jerrs := v.dependencies(j)
		if c := v.g.cycle(j.Name, j.DependsOn); c != nil {
			if key := cycleKey(c); !cycles[key] {
				cycles[key] = true
				jerrs = append(jerrs, invalid("depends_on", "would make a cycle: %s", strings.Join(c, " -> ")))
			}
		}
		jerrs = append(jerrs, v.waitingForItsEnd(j)...)
		errs = append(errs, a.doc.locate(j.Name, jerrs...)...)
	}
	return append(errs, v.prunedInUse(a.pruning)...)
}

// afterApply is the jobs as they would be after the apply.
type afterApply struct {
	m      *Manager
	doc    map[string]Job // the document's jobs, the first of each name
	pruned map[string]bool
	g      graph // the dependencies, the document's in place of the saved ones
	by     map[string][]string
}

// after computes the jobs as they would be after the apply.
func (a *applying) after() afterApply {
	v := afterApply{m: a.m, doc: map[string]Job{}, pruned: map[string]bool{}, g: graph{on: map[string][]string{}}}
	for _, j := range a.doc.Jobs {
		if _, dup := v.doc[j.Name]; !dup {
			v.doc[j.Name] = j
		}
	}
	for _, r := range a.pruning {
		v.pruned[r.name] = true
	}
	a.m.mu.RLock()
	for name, on := range a.m.graph.on {
		if _, ok := v.doc[name]; !ok && !v.pruned[name] {
			v.g.on[name] = on
		}
	}
	v.by = maps.Clone(a.m.graph.by)
	a.m.mu.RUnlock()
	for name, j := range v.doc {
		if len(j.DependsOn) > 0 {
			v.g.on[name] = slices.Sorted(maps.Keys(j.DependsOn))
		}
	}
	return v
}

// definition is the job of that name after the apply, if there is one.
func (v afterApply) definition(name string) (Job, bool) {
	if j, ok := v.doc[name]; ok {
		return j, true
	}
	if v.pruned[name] {
		return Job{}, false
	}
	if r := v.m.liveRunner(name); r != nil {
		return r.definition(), true
	}
	return Job{}, false
}

// dependencies checks each dependency of j: that it is there, and that a
// condition on its run's end is on a one_time job.
func (v afterApply) dependencies(j Job) []error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(j.DependsOn)) {
		if name == j.Name || !nameRE.MatchString(name) {
			continue // Validate's
		}
		d, ok := v.definition(name)
		switch c := j.DependsOn[name]; {
		case !ok && v.pruned[name]:
			errs = append(errs, invalid("depends_on", "%q: not in the document, and the prune deletes it", name))
		case !ok:
			errs = append(errs, invalid("depends_on", "unknown job %q: neither in the document nor in ProcMan", name))
		case c.needsOneTime() && d.Type == Continuous:
			errs = append(errs, invalid("depends_on", "%q is continuous: %s applies only to one_time jobs", name, c))
		}
	}
	return errs
}

// waitingForItsEnd checks that no job left as it is waits for the end of a
// run of j, if j is continuous (a job of the document that does is
// reported by its own dependencies).
func (v afterApply) waitingForItsEnd(j Job) []error {
	if j.Type != Continuous {
		return nil
	}
	var errs []error
	for _, by := range v.by[j.Name] {
		if _, ok := v.doc[by]; ok || v.pruned[by] {
			continue
		}
		if w := v.m.liveRunner(by); w != nil {
			if c := w.definition().DependsOn[j.Name]; c.needsOneTime() {
				errs = append(errs, invalid("type", "%q depends on this job with %s, which needs a one_time job", by, c))
			}
		}
	}
	return errs
}

// prunedInUse refuses the prune of a job that a job neither pruned nor in
// the document depends on (one in the document is reported by its own
// dependencies), as Delete refuses it.
func (v afterApply) prunedInUse(pruning []*runner) []error {
	var errs []error
	for _, r := range pruning {
		var users []string
		for _, by := range v.by[r.name] {
			if _, ok := v.doc[by]; !ok && !v.pruned[by] {
				users = append(users, by)
			}
		}
		if len(users) > 0 {
			errs = append(errs, &FieldError{Job: r.name, Msg: fmt.Sprintf(
				"the prune would delete this job, which %s still depend on (in use)", strings.Join(users, ", "))})
		}
	}
	return errs
}

// cycleKey names a cycle whatever job it is read from.
func cycleKey(path []string) string {
	names := slices.Clone(path[:len(path)-1])
	slices.Sort(names)
	return strings.Join(names, " ")
}

// startAndRestart starts the created reboot jobs, as Create does, and
// restarts the updated active jobs if asked, dependencies first: in waves
// by the length of their longest chain of dependencies, each wave at once,
// and once the one before it has begun. A start that waits for its
// dependencies is not waited for (as Create's is not): its wait begins, and
// the jobs that depend on it wait for it in turn. A run that fails to start
// is in its job's status, not an error of Apply.
func (a *applying) startAndRestart(ctx context.Context, p Plan, created []*runner) error {
	restart := map[string]bool{}
	var names []string
	if !a.opts.noStart {
		for _, r := range created {
			if r.job.startsOnBoot() {
				names = append(names, r.name)
			}
		}
	}
	for _, name := range p.Restarted {
		restart[name] = true
		names = append(names, name)
	}
	var errs []error
	for _, wave := range a.m.startWaves(names) {
		if len(wave) == 1 {
			errs = append(errs, a.m.startBegun(ctx, wave[0], restart[wave[0]]))
			continue
		}
		werrs := make([]error, len(wave))
		var wg sync.WaitGroup
		for i, name := range wave {
			wg.Go(func() { werrs[i] = a.m.startBegun(ctx, name, restart[name]) })
		}
		wg.Wait()
		errs = append(errs, werrs...)
	}
	return errors.Join(errs...)
}

// startWaves groups the jobs by the length of their longest chain of
// dependencies, shortest first, each wave in name order.
func (m *Manager) startWaves(names []string) [][]string {
	m.mu.RLock()
	memo, open := map[string]int{}, map[string]bool{}
	var waves [][]string
	for _, n := range names {
		d := depth(m.graph.on, n, memo, open)
		for len(waves) <= d {
			waves = append(waves, nil)
		}
		waves[d] = append(waves[d], n)
	}
	m.mu.RUnlock()
	for _, w := range waves {
		slices.Sort(w)
	}
	return slices.DeleteFunc(waves, func(w []string) bool { return len(w) == 0 })
}

// startBegun starts the job (restart: restarts it) and waits for its first
// run unless that waits for its dependencies. A job already active (started
// meanwhile as another's dependency) or whose run failed to start is no
// error.
func (m *Manager) startBegun(ctx context.Context, name string, restart bool) error {
	var s *supervisor
	var err error
	if restart {
		s, err = m.restart(ctx, name)
	} else {
		s, err = m.begin(ctx, name, TriggerReboot)
	}
	if err == nil && !s.waits {
		err = s.firstRun(ctx, name)
	}
	if errors.Is(err, ErrStartFailed) || errors.Is(err, ErrElsewhere) || (!restart && errors.Is(err, ErrRunning)) {
		return nil
	}
	return err
}
