package procman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Dependencies is Job.DependsOn: the jobs a job needs, each with the
// condition its start waits for.
type Dependencies map[string]Condition

// UnmarshalJSON reads an object from job name to condition, or a list of job
// names, each of which is then waited for as started. Empty is none.
func (d *Dependencies) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*d = nil
		return nil
	case len(b) > 0 && b[0] == '[':
		var names []string
		if err := json.Unmarshal(b, &names); err != nil {
			return errors.New("want a list of job names, or an object from job name to condition")
		}
		out := make(Dependencies, len(names))
		for _, n := range names {
			if _, dup := out[n]; dup {
				return fmt.Errorf("%q given twice", n)
			}
			out[n] = ConditionStarted
		}
		*d = nilIfEmpty(out)
		return nil
	}
	var conds map[string]*Condition
	if err := json.Unmarshal(b, &conds); err != nil {
		return errors.New("want an object from job name to condition, or a list of job names")
	}
	out := make(Dependencies, len(conds))
	for n, c := range conds {
		if c == nil {
			return fmt.Errorf("%q: want a condition (%s), got null", n, conditionList())
		}
		out[n] = *c
	}
	*d = nilIfEmpty(out)
	return nil
}

func nilIfEmpty(d Dependencies) Dependencies {
	if len(d) == 0 {
		return nil
	}
	return d
}

func conditionList() string {
	var s []string
	for _, c := range Conditions() {
		s = append(s, string(c))
	}
	return strings.Join(s, ", ")
}

// needsOneTime reports whether the condition is about a run that ends.
func (c Condition) needsOneTime() bool {
	return c == ConditionCompleted || c == ConditionCompletedSuccessfully
}

// validateDependsOn checks what the definition alone can tell; the Manager
// checks the rest against its other jobs (checkDeps).
func (j Job) validateDependsOn() error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(j.DependsOn)) {
		switch c := j.DependsOn[name]; {
		case name == j.Name:
			errs = append(errs, invalid("depends_on", "a job cannot depend on itself"))
		case !nameRE.MatchString(name):
			errs = append(errs, invalid("depends_on", "%q is not a job name", name))
		case !slices.Contains(Conditions(), c):
			errs = append(errs, invalid("depends_on", "%q: unknown condition %q: use %s", name, c, conditionList()))
		}
	}
	if j.StartTimeout != 0 && len(j.DependsOn) == 0 {
		errs = append(errs, invalid("start_timeout", "applies only to jobs with depends_on"))
	}
	return errors.Join(errs...)
}

// succeeded reports whether a run of the job that exited with code (nil: it
// was killed by a signal) succeeded: the one rule for
// ConditionCompletedSuccessfully.
func (j Job) succeeded(code *int) bool { return code != nil && *code == 0 }

// graph is the dependencies between jobs, as their saved definitions say.
// Guarded by Manager.mu; changed only under Manager.graphEdit, which also
// covers the checks and the database write of each change, so that two
// changes made at once cannot close a cycle between them.
type graph struct {
	on map[string][]string // a job → the jobs it depends on, sorted
	by map[string][]string // a job → the jobs that depend on it, sorted
}

// set makes deps the dependencies of job name (nil: none, or a deleted job).
func (g *graph) set(name string, deps Dependencies) {
	for _, d := range g.on[name] {
		g.by[d] = slices.DeleteFunc(slices.Clone(g.by[d]), func(n string) bool { return n == name })
		if len(g.by[d]) == 0 {
			delete(g.by, d)
		}
	}
	delete(g.on, name)
	if len(deps) == 0 {
		return
	}
	if g.on == nil {
		g.on, g.by = map[string][]string{}, map[string][]string{}
	}
	g.on[name] = slices.Sorted(maps.Keys(deps))
	for _, d := range g.on[name] {
		by := append(slices.Clone(g.by[d]), name)
		slices.Sort(by)
		g.by[d] = by
	}
}

// cycle returns the path name -> ... -> name that deps, as the dependencies
// of job name, would close, or nil.
func (g *graph) cycle(name string, deps Dependencies) []string {
	seen := map[string]bool{}
	path := []string{name}
	var reach func(n string) bool
	reach = func(n string) bool {
		path = append(path, n)
		if n == name {
			return true
		}
		if !seen[n] {
			seen[n] = true
			for _, next := range g.on[n] {
				if reach(next) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	for _, d := range slices.Sorted(maps.Keys(deps)) {
		if d != name && reach(d) { // a job naming itself is Validate's to refuse
			return path
		}
	}
	return nil
}

// depth is the length of the longest chain of edges from name in adj (g.on:
// dependencies, g.by: dependents), memoised in memo. A cycle, which only a
// database edited by hand can hold, is cut where it closes.
func depth(adj map[string][]string, name string, memo map[string]int, open map[string]bool) int {
	if d, ok := memo[name]; ok {
		return d
	}
	if open[name] {
		return 0
	}
	open[name] = true
	d := 0
	for _, next := range adj[name] {
		d = max(d, depth(adj, next, memo, open)+1)
	}
	delete(open, name)
	memo[name] = d
	return d
}

// dependents lists the jobs whose saved definitions depend on job name.
func (m *Manager) dependents(name string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.graph.by[name])
}

// liveRunner is the job of that name unless there is none or it is being deleted.
func (m *Manager) liveRunner(name string) *runner {
	r, err := m.runner(name)
	if err != nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted {
		return nil
	}
	return r
}

// checkDeps reports what definition j would do wrong among the other jobs:
// a dependency that does not exist, a condition on a run's end of a
// continuous job, a cycle, or (j becoming continuous) a dependent that waits
// for its run's end. The caller holds m.graphEdit.
func (m *Manager) checkDeps(j Job) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(j.DependsOn)) {
		if name == j.Name {
			continue // Validate's
		}
		d := m.liveRunner(name)
		if d == nil {
			errs = append(errs, invalid("depends_on", "unknown job %q", name))
			continue
		}
		if c := j.DependsOn[name]; c.needsOneTime() && d.definition().Type == Continuous {
			errs = append(errs, invalid("depends_on", "%q is continuous: %s applies only to one_time jobs", name, c))
		}
	}
	m.mu.RLock()
	cycle := m.graph.cycle(j.Name, j.DependsOn)
	m.mu.RUnlock()
	if cycle != nil {
		errs = append(errs, invalid("depends_on", "would make a cycle: %s", strings.Join(cycle, " -> ")))
	}
	if j.Type == Continuous {
		for _, by := range m.dependents(j.Name) {
			if w := m.liveRunner(by); w != nil {
				if c := w.definition().DependsOn[j.Name]; c.needsOneTime() {
					errs = append(errs, invalid("type", "%q depends on this job with %s, which needs a one_time job", by, c))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// touchesGraph reports whether a change of definition from old to j may
// change the graph or what its checks say.
func touchesGraph(old, j Job) bool {
	return len(old.DependsOn) > 0 || len(j.DependsOn) > 0 || old.Type != j.Type
}

// inUse is Delete's refusal of a job others depend on.
func inUse(name string, by []string) error {
	return fmt.Errorf("delete %q: %w: %s", name, ErrInUse, strings.Join(by, ", "))
}

func (r *runner) definition() Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.job
}
