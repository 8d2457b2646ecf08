package procman

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
)

// SourceAPI is the source of a job made one at a time: through the API, the
// command line, the dashboard or Create. No document's prune deletes it.
const SourceAPI = "api"

// maxSourceLen bounds a source's name: a path, or a name a client gives.
const maxSourceLen = 4096

// ApplyOptions say how Apply applies a document.
type ApplyOptions struct {
	// Source names the document: the path of its file, or a name its sender
	// gives. The jobs Apply creates record it, and Prune deletes only jobs of
	// this source. Empty is SourceAPI.
	Source string
	// DryRun only computes the plan: nothing is changed.
	DryRun bool
	// Prune deletes the jobs of Source that the document no longer has,
	// stopping them first. It is refused with SourceAPI: what was made by
	// hand is never pruned.
	Prune bool
	// Restart restarts the updated jobs that are active, so that they run
	// their new definition now rather than from their next start:
	// dependencies first, each wave of independent jobs at once.
	Restart bool

	noStart bool // at Open: the reboot jobs start after, with the others
}

// Plan is what Apply does, or with DryRun would do. Each list is sorted by
// name, and none is nil.
type Plan struct {
	Source string `json:"source"`
	DryRun bool   `json:"dry_run"`
	// Created are the jobs the document has and ProcMan had not.
	Created []string `json:"created"`
	// Updated are the jobs whose definition changes, with each changed field.
	Updated []JobChange `json:"updated"`
	// Deleted are the jobs of the source the document no longer has (Prune).
	Deleted []string `json:"deleted"`
	// Unchanged are the jobs the document has as they are.
	Unchanged []string `json:"unchanged"`
	// Restarted are the updated jobs that were active and were restarted
	// (Restart), or would be.
	Restarted []string `json:"restarted"`
}

// Changed reports whether the plan changes anything.
func (p Plan) Changed() bool { return len(p.Created)+len(p.Updated)+len(p.Deleted) > 0 }

// JobChange is a job that a document changes.
type JobChange struct {
	Name string `json:"name"`
	// Source is the job's, which Apply keeps: who made it.
	Source string        `json:"source"`
	Fields []FieldChange `json:"fields"`
}

// FieldChange is one field of a job that changes, with its value before and
// after as the API writes it (JSON); a value that is not set (the default)
// is absent.
type FieldChange struct {
	Field string          `json:"field"`
	Old   json.RawMessage `json:"old,omitempty"`
	New   json.RawMessage `json:"new,omitempty"`
}

// Apply makes the jobs of a document what it says. The whole document is
// checked first, as Create checks a job, and every problem is reported (each
// a *FieldError with the job, the field and the line; the error wraps
// ErrInvalid); then nothing is changed. Its jobs' depends_on are checked
// against the jobs there would be after it (its own, and those its prune
// leaves): a job in neither, a cycle, a condition on the end of a run of a
// continuous job; so is a prune of a job that a job left depends on, which
// is a problem of the document too (not ErrInUse, as Delete's refusal is).
// Otherwise Apply creates the jobs it
// has and ProcMan has not, recording opts.Source as theirs; replaces the
// definition of those that differ (whatever their source, which they keep),
// each as Replace would: a running job keeps its run and takes the new
// definition at its next start, unless opts.Restart restarts it now; and
// with opts.Prune stops and deletes the jobs of opts.Source that the document
// no longer has. Every definition is written in one transaction, all or
// none. Applies take turns. Created jobs with the reboot schedule are
// started, as Create starts them; those and the restarts go dependencies
// first, and a start that waits for its dependencies is not waited for.
// Once its changes have begun (the pruned jobs are stopping), Apply
// finishes even if ctx ends.
func (m *Manager) Apply(ctx context.Context, doc Document, opts ApplyOptions) (Plan, error) {
	opts.Source = cmp.Or(opts.Source, SourceAPI)
	if err := checkSource(opts); err != nil {
		return Plan{}, err
	}
	errs := m.checkDocument(ctx, &doc)
	if m.isClosed() {
		return Plan{}, ErrClosed
	}
	if err := lockSlot(ctx, m.applying); err != nil {
		return Plan{}, err
	}
	defer unlockSlot(m.applying)
	a := &applying{m: m, doc: doc, opts: opts}
	a.pruning = a.prunable()
	m.graphEdit.Lock()
	errs = append(errs, a.checkDeps()...)
	m.graphEdit.Unlock()
	if err := documentError(errs); err != nil {
		return Plan{}, err
	}
	if opts.DryRun {
		return a.plan(), nil
	}
	return a.run(ctx)
}

func checkSource(opts ApplyOptions) error {
	switch {
	case len(opts.Source) > maxSourceLen:
		return fmt.Errorf("%w source: longer than %d bytes", ErrInvalid, maxSourceLen)
	case strings.IndexFunc(opts.Source, unicode.IsControl) >= 0:
		return fmt.Errorf("%w source %q: holds a control character", ErrInvalid, opts.Source)
	case opts.Prune && opts.Source == SourceAPI:
		return fmt.Errorf("%w: prune needs the document's source (its file, or a name for it): "+
			"jobs of source %q were made by hand, and prune never deletes them", ErrInvalid, SourceAPI)
	}
	return nil
}

// checkDocument fills each job's defaults and lists every problem a job has
// on its own, as Create would, with its line. The document's jobs become
// copies: the caller keeps its maps, as Create's does.
func (m *Manager) checkDocument(ctx context.Context, doc *Document) []error {
	var errs []error
	seen := map[string]bool{}
	doc.Jobs = slices.Clone(doc.Jobs)
	for i := range doc.Jobs {
		j := &doc.Jobs[i]
		*j = j.clone()
		j.fillDefaults()
		if seen[j.Name] {
			errs = append(errs, doc.locate(j.Name, invalid("name", "the document defines this job twice"))...)
			continue
		}
		seen[j.Name] = true
		errs = append(errs, doc.locate(j.Name, errors.Join(m.check(*j), m.checkJobHost(ctx, *j)))...)
	}
	return errs
}

// applying is one Apply under way.
type applying struct {
	m    *Manager
	doc  Document
	opts ApplyOptions

	pruning []*runner        // the jobs to prune, by name
	victims []*runner        // of those, the ones stopped and marked deleted
	locked  map[*runner]bool // whose edit slot is held
}

// prunable lists the jobs of the source that the document no longer has.
func (a *applying) prunable() []*runner {
	if !a.opts.Prune {
		return nil
	}
	want := map[string]bool{}
	for _, j := range a.doc.Jobs {
		want[j.Name] = true
	}
	var out []*runner
	for _, r := range a.m.runners() {
		if r.source == a.opts.Source && !want[r.name] {
			out = append(out, r)
		}
	}
	return out
}

// plan compares the document with the jobs as they are now.
func (a *applying) plan() Plan {
	p := Plan{Source: a.opts.Source, DryRun: a.opts.DryRun, Created: []string{}, Updated: []JobChange{},
		Deleted: []string{}, Unchanged: []string{}, Restarted: []string{}}
	for _, j := range a.doc.Jobs {
		r, err := a.m.runner(j.Name)
		if err != nil {
			p.Created = append(p.Created, j.Name)
			continue
		}
		r.mu.Lock()
		old, active := r.job, r.st.State.active()
		r.mu.Unlock()
		if ch := diffJobs(old, j); len(ch) > 0 {
			p.Updated = append(p.Updated, JobChange{Name: j.Name, Source: r.source, Fields: ch})
			if active && a.opts.Restart {
				p.Restarted = append(p.Restarted, j.Name)
			}
		} else {
			p.Unchanged = append(p.Unchanged, j.Name)
		}
	}
	for _, r := range a.pruning {
		p.Deleted = append(p.Deleted, r.name)
	}
	slices.Sort(p.Created)
	slices.SortFunc(p.Updated, func(x, y JobChange) int { return strings.Compare(x.Name, y.Name) })
	slices.Sort(p.Unchanged)
	slices.Sort(p.Restarted)
	return p
}

// run applies the document: it stops the jobs to prune, takes the edit slot
// of every job it touches, then checks, plans, writes and puts the new
// definitions in place.
func (a *applying) run(ctx context.Context) (Plan, error) {
	if err := a.stopVictims(ctx); err != nil {
		return Plan{}, err
	}
	if err := a.lockJobs(ctx); err != nil {
		a.spare()
		return Plan{}, err
	}
	ctx = context.WithoutCancel(ctx) // begun: a half-applied document would be neither old nor new
	p, created, err := a.write(ctx)
	a.unlockJobs()
	if err != nil {
		a.spare()
		return Plan{}, err
	}
	return p, a.startAndRestart(ctx, p, created)
}

// write checks the dependencies again, writes the plan and puts it in
// place, graph included, in one turn of m.graphEdit: a job created, changed
// or deleted since Apply's first check (a Create of a job that depends on
// one to prune) is seen, and refuses the apply (the pruned jobs are then
// left stopped, as after a failed write).
func (a *applying) write(ctx context.Context) (Plan, []*runner, error) {
	a.m.graphEdit.Lock()
	defer a.m.graphEdit.Unlock()
	if err := documentError(a.checkDeps()); err != nil {
		return Plan{}, nil, err
	}
	p := a.plan()
	cs, err := a.changes(p)
	if err == nil {
		err = a.m.store.apply(ctx, a.m.cfg.Host, cs)
	}
	if err != nil {
		return Plan{}, nil, err
	}
	a.m.notifyDefs(cs.names()...)
	return p, a.commit(cs), nil
}

// stopVictims stops each job to prune and marks it deleted, as Delete does
// before its write, so that nothing starts it again meanwhile.
func (a *applying) stopVictims(ctx context.Context) error {
	for _, r := range a.pruning {
		err := r.control(ctx, func(r *runner) error {
			r.mu.Lock()
			r.wantLocked(false)
			r.mu.Unlock()
			if err := r.stop(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, ErrStopFailed) {
				return err
			}
			r.setDeleted(true)
			return nil
		})
		if err != nil {
			a.spare()
			return fmt.Errorf("prune %q: %w", r.name, err)
		}
		a.victims = append(a.victims, r)
		ctx = context.WithoutCancel(ctx) // one job stopped: the others follow
	}
	return nil
}

// spare gives back the jobs marked deleted when the apply fails: still
// there, and stopped.
func (a *applying) spare() {
	for _, r := range a.victims {
		r.setDeleted(false)
	}
	a.victims = nil
}

// lockJobs takes the edit slots of the jobs the document names and of the
// victims, in name order, so that two applies, or an apply and a Replace,
// never wait on each other in a circle.
func (a *applying) lockJobs(ctx context.Context) error {
	rs := slices.Clone(a.victims)
	for _, j := range a.doc.Jobs {
		if r, err := a.m.runner(j.Name); err == nil {
			rs = append(rs, r)
		}
	}
	slices.SortFunc(rs, func(x, y *runner) int { return strings.Compare(x.name, y.name) })
	a.locked = map[*runner]bool{}
	for _, r := range rs {
		if err := lockSlot(ctx, r.edit); err != nil {
			a.unlockJobs()
			return err
		}
		a.locked[r] = true
	}
	return nil
}

func (a *applying) unlockJobs() {
	for r := range a.locked {
		unlockSlot(r.edit)
	}
	a.locked = nil
}

// changes are the writes of plan p.
func (a *applying) changes(p Plan) (changeSet, error) {
	var cs changeSet
	byName := map[string]Job{}
	for _, j := range a.doc.Jobs {
		byName[j.Name] = j
	}
	for _, name := range p.Created {
		cs.create = append(cs.create, createdJob{id: newJobID(), source: a.opts.Source, job: byName[name]})
	}
	for _, u := range p.Updated {
		r, err := a.m.runner(u.Name)
		if err != nil {
			return cs, err
		}
		r.mu.Lock()
		deleted := r.deleted
		r.mu.Unlock()
		switch {
		case deleted:
			return cs, fmt.Errorf("apply: job %q is being deleted; apply again once it is gone: %w", u.Name, ErrExists)
		case !a.locked[r]:
			return cs, fmt.Errorf("apply: job %q was created meanwhile; apply again: %w", u.Name, ErrExists)
		}
		if err := r.checkMove(byName[u.Name]); err != nil {
			return cs, fmt.Errorf("apply: %w", err)
		}
		cs.update = append(cs.update, storedJob{Job: byName[u.Name], id: r.id})
	}
	for _, r := range a.victims {
		cs.remove = append(cs.remove, storedJob{Job: Job{Name: r.name}, id: r.id})
	}
	return cs, nil
}

// commit puts the written changes in place, in the graph too, and returns
// the new runners. The caller holds m.graphEdit.
func (a *applying) commit(cs changeSet) []*runner {
	m := a.m
	for _, u := range cs.update {
		r, _ := m.runner(u.Name)
		r.setJob(u.Job)
	}
	created := make([]*runner, len(cs.create))
	for i, c := range cs.create {
		r := newRunner(m, c.id, c.source, m.cfg.Host, c.job)
		r.mu.Lock()
		r.planLocked()
		r.mu.Unlock()
		created[i] = r
		m.floatingChanged(c.job)
	}
	m.mu.Lock()
	for _, r := range a.victims {
		delete(m.jobs, r.name)
		m.graph.set(r.name, nil)
	}
	for _, r := range created {
		m.jobs[r.name] = r
		m.graph.set(r.name, r.job.DependsOn)
	}
	for _, u := range cs.update {
		m.graph.set(u.Name, u.Job.DependsOn)
	}
	m.sorted = nil
	m.mu.Unlock()
	a.victims = nil
	return created
}

// setJob puts a saved definition in place: the job's next start runs it.
func (r *runner) setJob(j Job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.job, r.version = j, r.m.versions.Add(1)
	r.gen++ // a queued schedule tick belongs to the old definition
	r.planLocked()
	if j.Type != Continuous {
		r.wantLocked(false) // one_time jobs are never started again at Open
	}
}

// diffJobs lists the fields that differ between two definitions, in the
// order of the API, as it writes them.
func diffJobs(old, new Job) []FieldChange {
	o, n := fieldsOf(old), fieldsOf(new)
	var out []FieldChange
	for _, f := range jobFields {
		if f == "name" || bytes.Equal(o[f], n[f]) {
			continue
		}
		out = append(out, FieldChange{Field: f, Old: o[f], New: n[f]})
	}
	return out
}

// fieldsOf is a definition's fields as the API writes them; those left at
// their default are absent.
func fieldsOf(j Job) map[string]json.RawMessage {
	raw, _ := json.Marshal(j) // a Job always encodes
	var fields map[string]json.RawMessage
	json.Unmarshal(raw, &fields)
	for k, v := range maps.All(fields) {
		if string(v) == `""` { // written though empty (schedule): still the default
			delete(fields, k)
		}
	}
	return fields
}
