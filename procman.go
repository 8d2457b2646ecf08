package procman

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/probe"
	"github.com/Mk-Chan/procman/internal/runlog"
	"github.com/robfig/cron/v3"
)

// Manager runs and supervises jobs. Open one with Open and end it with
// Shutdown; it owns every process and goroutine it starts.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	lock  dbLock // held from Open to the end of Shutdown
	store *store
	w     *writer // every database write but the definitions', in order (writer.go)
	guard *osproc.Guardian
	kids  *osproc.Reaper  // every child process: runs, the guardian, adopted orphans
	rot   *runlog.Watcher // keeps running runs' log files under max_run_log_bytes
	hub   hub
	cron  *cron.Cron // one goroutine and one timer for every job's schedule

	floats  *floaters      // floating jobs' claims and self-fencing (floating.go); nil on SQLite
	metrics *metrics       // Prometheus instrumentation, served by Metrics
	sampler osproc.Sampler // reads what running jobs cost (usage.go), when asked

	http *http.Client // of http health checks: no connection kept between them

	versions atomic.Uint64 // the last definition version given (Entry.Version)

	// ctx ends when Shutdown begins; it bounds the work of schedule ticks.
	ctx    context.Context
	cancel context.CancelFunc

	// applying is a one-slot semaphore: one Apply at a time (apply.go).
	applying chan struct{}

	mu     sync.RWMutex // guards jobs, sorted, graph and closed; never held while taking a runner's mu
	jobs   map[string]*runner
	sorted []*runner // jobs by name, built on demand; nil after a create or delete. Never modified in place.
	graph  graph     // who depends on whom (deps.go)
	closed bool
	wg     sync.WaitGroup // one per supervisor goroutine
	quiet  *quiet         // returns memory once the jobs are quiet; nil unless Config.ReturnMemory
	preps  sync.WaitGroup // one per spawn being prepared (runner.prepare)

	// graphEdit serialises the changes that may change graph (Create of a
	// job with dependencies, Replace and Update that touch them, Delete's
	// write), each with its checks and its database write.
	graphEdit sync.Mutex

	shutdownOnce sync.Once
	shutdownErr  error

	started time.Time // when Open made it

	// root: ProcMan runs as root, so jobs may have a user. Set by Open; tests flip it.
	root bool
	// prepareRun is prepareSpawn; tests wrap it to hold a preparation up.
	prepareRun func(Job) (*spawnPrep, error)
}

// Open opens (or creates) the database, which it holds for this host until
// Shutdown (a second Open fails with ErrLocked, having touched nothing), starts
// the guardian process, loads every job, applies Config.JobsFile if set,
// and starts those with the reboot schedule and the continuous jobs that were
// running when the last Manager on the database ended (see Config.NoResume).
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := cfg.database()
	if err != nil {
		return nil, err
	}
	lock, st, err := holdDatabase(ctx, cfg, db)
	if err != nil {
		return nil, err
	}
	m, err := open(ctx, cfg, lock, st)
	if err != nil {
		st.close()
		lock.release()
		return nil, err
	}
	m.w.start()
	m.cron.Start()
	m.startQuiet()
	if l, ok := lock.(*hostLease); ok {
		m.startFleet(l)
		m.retake(ctx, l.epochNow()) // recovery has killed what was left of their runs
	}
	if err := m.applyAtOpen(ctx); err != nil {
		m.Shutdown(context.WithoutCancel(ctx)) // no job has started: nothing to wait for
		return nil, err
	}
	m.startAtOpen(ctx)
	m.log.Info("procman open", "db", db.name, "host", cfg.Host, "logs", cfg.LogDir, "jobs", len(m.jobs))
	return m, nil
}

// open builds the Manager on a held database: guardian, jobs. The caller
// closes the store if it fails.
func open(ctx context.Context, cfg Config, lock dbLock, st *store) (*Manager, error) {
	if st.pg {
		if err := st.adoptHomeless(ctx, cfg.Host); err != nil {
			return nil, err
		}
	}
	jobs, err := st.all(ctx)
	if err != nil {
		return nil, err
	}
	kids, err := osproc.NewReaper(cfg.Subreaper)
	if err != nil {
		return nil, err
	}
	g, err := osproc.StartGuardian(kids, cfg.Logger)
	if err != nil {
		kids.Close()
		return nil, err
	}
	m := &Manager{cfg: cfg, log: cfg.Logger, lock: lock, store: st, w: newWriter(st.wdb, cfg.Host, writeProbe(cfg.Host), nil, cfg.Logger),
		guard: g, kids: kids, jobs: make(map[string]*runner, len(jobs)), cron: newCron(cfg.Logger),
		rot: runlog.NewWatcher(cfg.Logger), http: probe.NewHTTPClient(), applying: make(chan struct{}, 1)}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.started = time.Now()
	m.root = os.Geteuid() == 0
	m.prepareRun = m.prepareSpawn
	m.w.retain = m.retainAll
	m.metrics = newMetrics(m) // before load, so that recovery counts
	if err := m.load(ctx, jobs); err != nil {
		m.cancel()
		m.w.cancel()
		m.rot.Close()
		g.Close()
		kids.Close()
		return nil, err
	}
	if l, ok := lock.(*hostLease); ok {
		l.setActiveJobs(m.activeJobs)
		m.w.onFenced = m.lostFloating // before the writer starts
	}
	return m, nil
}

// load builds the runners, after closing what an earlier ProcMan left open.
func (m *Manager) load(ctx context.Context, jobs []storedJob) error {
	lost, err := m.recover(ctx)
	if err != nil {
		return err
	}
	last, err := m.store.lastEnded(ctx)
	if err != nil {
		return err
	}
	top, err := m.store.lastRunIDs(ctx)
	if err != nil {
		return err
	}
	owners, err := m.store.floatingOwners(ctx, m.cfg.Host)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		r := newRunner(m, j.id, j.source, j.home, j.Job)
		r.wanted = j.wanted
		r.claimer = owners[j.id] // this host's own it takes back (retake), under its new epoch
		r.lastRunID.Store(top[j.id])
		if run, ok := last[j.id]; ok {
			r.st.LastRun = run.summary(j.SuccessExitCodes)
		}
		if lost[j.id] {
			r.st.State, r.st.Error = StateUnknown, unknownCause
		}
		r.planLocked() // no other goroutine knows r yet
		m.jobs[j.Name] = r
		m.graph.set(j.Name, j.DependsOn)
	}
	return nil
}

// track registers a supervisor goroutine about to start, unless the Manager is shutting down.
func (m *Manager) track() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.wg.Add(1)
	return nil
}

// runner finds a job. Reads keep working after Shutdown; control reports ErrClosed.
func (m *Manager) runner(name string) (*runner, error) {
	m.mu.RLock()
	r, ok := m.jobs[name]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("job %q: %w", name, ErrNotFound)
	}
	return r, nil
}

func (m *Manager) isClosed() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.closed
}

// runners returns every runner sorted by name. Listing is what clients poll,
// so the sorted slice is kept until the set of jobs changes; callers only read it.
func (m *Manager) runners() []*runner {
	m.mu.RLock()
	rs := m.sorted
	m.mu.RUnlock()
	if rs != nil {
		return rs
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sorted == nil {
		m.sorted = slices.SortedFunc(maps.Values(m.jobs), func(a, b *runner) int { return strings.Compare(a.name, b.name) })
	}
	return m.sorted
}

// Create validates and saves a new job; its dependencies must exist and must
// not close a cycle. A job with the reboot schedule is started at once, as it
// would be at the next start-up; Create returns once its first run is spawned
// or failed to be (a job with dependencies: once its start has begun, for its
// wait for them may be long), and a failure to start is no error of Create.
// Once the definition has passed its checks, Create finishes even if ctx
// ends: a job saved but not loaded, or a reboot job created but not started,
// would be half made.
func (m *Manager) Create(ctx context.Context, j Job) error {
	j = j.clone() // the caller keeps its maps, slices and health check
	j.fillDefaults()
	if err := m.check(j); err != nil {
		return err
	}
	if m.isClosed() {
		return ErrClosed
	}
	if err := m.checkJobHost(ctx, j); err != nil {
		return err
	}
	if _, err := m.runner(j.Name); err == nil {
		return fmt.Errorf("create %q: %w", j.Name, ErrExists)
	}
	if err := ctx.Err(); err != nil { // a caller that has gone begins nothing
		return err
	}
	ctx = context.WithoutCancel(ctx)
	j.DependsOn = maps.Clone(j.DependsOn) // the caller's map stays the caller's
	if err := m.insert(ctx, j); err != nil {
		return err
	}
	m.notifyDefs(j.Name)
	m.floatingChanged(j)
	if !j.startsOnBoot() || m.ownerOf(j, m.cfg.Host, "") != m.cfg.Host { // its owner starts it
		return nil
	}
	s, err := m.begin(ctx, j.Name, TriggerReboot)
	if err == nil && !s.waits {
		err = s.firstRun(ctx, j.Name)
	}
	// The job exists whatever its first run does: a run that failed to start
	// is in its status and history, not an error of Create.
	if errors.Is(err, ErrStartFailed) {
		return nil
	}
	return err
}

// insert saves a new job and puts it in place. A job with dependencies is
// checked against the others and saved under graphEdit.
func (m *Manager) insert(ctx context.Context, j Job) error {
	if len(j.DependsOn) > 0 {
		m.graphEdit.Lock()
		defer m.graphEdit.Unlock()
		if err := m.checkDeps(j); err != nil {
			return err
		}
	}
	id := newJobID()
	if err := m.store.insert(ctx, id, m.cfg.Host, j); err != nil {
		return err
	}
	r := newRunner(m, id, SourceAPI, m.cfg.Host, j)
	r.mu.Lock()
	r.planLocked()
	r.mu.Unlock()
	m.mu.Lock()
	m.jobs[j.Name] = r
	m.sorted = nil
	m.graph.set(j.Name, j.DependsOn)
	m.mu.Unlock()
	return nil
}

// Get returns the saved definition of a job, a copy the caller may change.
func (m *Manager) Get(name string) (Job, error) {
	r, err := m.runner(name)
	if err != nil {
		return Job{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.job.clone(), nil
}

// List returns every job definition, sorted by name.
func (m *Manager) List() []Job {
	rs := m.runners()
	jobs := make([]Job, len(rs))
	for i, r := range rs {
		r.mu.Lock()
		jobs[i] = r.job
		r.mu.Unlock()
	}
	return jobs
}

// Entry is a job's definition with its current state: a line of a listing.
type Entry struct {
	Job
	// Source is who made the job: SourceAPI, or the document it was
	// applied from (Apply), whose prune may delete it.
	Source string `json:"source"`
	State  State  `json:"state"`
	// Host is the host that runs the job, as in Status (Job.Host, which
	// this hides in JSON, says where it may run).
	Host string `json:"host"`
	// Version identifies the definition: it changes whenever Job does
	// (Replace, Update), and a Manager never gives one to two definitions,
	// whatever their names. So what a caller derives from Job (its JSON, for
	// a server that answers listings all day) can be kept until it changes.
	Version uint64 `json:"-"`
}

// Entries lists every job with its state, sorted by name.
func (m *Manager) Entries() []Entry {
	return slices.AppendSeq(make([]Entry, 0, len(m.runners())), m.AllEntries())
}

// AllEntries iterates over every job with its state, sorted by name, one job
// at a time: no copy of every definition at once, which a listing of
// thousands of jobs would otherwise make each time it is asked for.
func (m *Manager) AllEntries() iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		for _, r := range m.runners() {
			r.mu.Lock()
			e := Entry{Job: r.job, Source: r.source, State: r.stateLocked(), Host: r.ownerLocked(), Version: r.version}
			r.mu.Unlock()
			if !yield(e) {
				return
			}
		}
	}
}

// Replace saves a new definition for an existing job. A running job keeps the
// definition it was started with until it is next started; Restart applies it now.
// j.Name may be empty; otherwise it must equal name.
func (m *Manager) Replace(ctx context.Context, name string, j Job) error {
	if j.Name == "" {
		j.Name = name
	}
	j = j.clone()
	j.fillDefaults()
	if err := m.check(j); err != nil { // refused at once, without waiting for the job
		return err
	}
	_, err := m.save(ctx, name, func(Job) (Job, error) { return j, nil })
	return err
}

// Update changes some fields of a job's definition: edit is given the saved
// definition and changes it (MergePatch makes an edit of a JSON merge patch).
// It runs in turn with every other change of the job, so two updates of
// different fields both take effect. The result is checked as Replace checks
// a definition, cannot rename the job, and is returned. As with Replace, a
// running job keeps its definition until it is next started, and once its
// turn has come (edit is called then) the change finishes even if ctx ends.
func (m *Manager) Update(ctx context.Context, name string, edit func(*Job) error) (Job, error) {
	return m.save(ctx, name, func(j Job) (Job, error) {
		err := edit(&j)
		return j, err
	})
}

// save is the one way a job's definition changes (Replace, Update): edit
// turns the saved definition into the new one, which is checked, stored and
// put in place. A job's definition changes are serialised under its edit
// lock (each edit sees the last one's result, so that a read-modify-write
// loses nothing), never its control lock: a Stop never waits behind the
// database. Once it holds the edit lock, a change ignores the end of ctx: a
// write given up half way could leave the database and the Manager holding
// different definitions.
func (m *Manager) save(ctx context.Context, name string, edit func(Job) (Job, error)) (Job, error) {
	if m.isClosed() {
		return Job{}, ErrClosed
	}
	r, err := m.runner(name)
	if err != nil {
		return Job{}, err
	}
	if err := lockSlot(ctx, r.edit); err != nil {
		return Job{}, err
	}
	defer unlockSlot(r.edit)
	ctx = context.WithoutCancel(ctx)
	r.mu.Lock()
	old, deleted := r.job, r.deleted
	r.mu.Unlock()
	if deleted {
		return Job{}, fmt.Errorf("job %q: %w", name, ErrNotFound)
	}
	j, err := edit(old.clone()) // an edit may change the maps and slices it is given
	if err != nil {
		return Job{}, err
	}
	if j.Name == "" {
		j.Name = name
	}
	if j.Name != name {
		return Job{}, invalid("name", "is %q but the job being changed is %q; a job cannot be renamed", j.Name, name)
	}
	j.fillDefaults()
	if err := j.Validate(); err != nil {
		return Job{}, err
	}
	if j.User != old.User { // an unchanged user was checked when it was saved
		if err := m.checkUser(j); err != nil {
			return Job{}, err
		}
	}
	if j.Host != old.Host {
		if err := errors.Join(m.checkJobHost(ctx, j), r.checkMove(j)); err != nil {
			return Job{}, err
		}
	}
	graphed := touchesGraph(old, j)
	if graphed {
		m.graphEdit.Lock()
		defer m.graphEdit.Unlock()
		if err := m.checkDeps(j); err != nil {
			return Job{}, err
		}
	}
	if err := m.store.update(ctx, r.id, j); err != nil {
		return Job{}, err
	}
	if j.Host != old.Host {
		if err := m.store.disown(ctx, r.id); err != nil {
			return Job{}, err
		}
		r.mu.Lock()
		r.claimer = ""
		r.mu.Unlock()
		m.floatingChanged(j)
	}
	r.setJob(j)
	m.notifyDefs(name)
	if graphed {
		m.mu.Lock()
		m.graph.set(name, j.DependsOn)
		m.mu.Unlock()
	}
	return j, nil
}

// check reports every problem of a definition: Validate's, and a user this
// Manager cannot run it as.
func (m *Manager) check(j Job) error {
	err := j.Validate()
	for _, fe := range FieldErrors(err) {
		if fe.Field == "user" {
			return err // malformed: nothing to look up
		}
	}
	return errors.Join(err, m.checkUser(j))
}

// Delete stops the job (as Stop does) and removes it; its name can then be
// reused, by a new job with a history of its own. Its log files are kept. A
// job that others depend on is not deleted: ErrInUse names them. Once it
// holds the job (the stop has begun), Delete finishes even if ctx ends: a
// job stopped and marked deleted but still saved would be half gone.
func (m *Manager) Delete(ctx context.Context, name string) error {
	r, err := m.local(ctx, name) // a job of another host: its owner stops it, then deletes it
	if err != nil {
		return err
	}
	if by := m.dependents(name); len(by) > 0 {
		return inUse(name, by)
	}
	begun := context.WithoutCancel(ctx)
	// Stop it and mark it deleted under its control lock, so that no start
	// sneaks in; then write, under its edit lock only.
	err = r.control(ctx, func(r *runner) error {
		r.mu.Lock()
		r.wantLocked(false) // also if the write fails: the user wants it gone, not resumed
		r.mu.Unlock()
		if err := r.stop(begun); err != nil && !errors.Is(err, ErrStopFailed) {
			return err
		}
		r.setDeleted(true)
		return nil
	})
	if err != nil {
		return err
	}
	if err = lockSlot(begun, r.edit); err == nil { // a Replace under way ends first
		err = m.remove(begun, r)
		unlockSlot(r.edit)
	}
	if err != nil {
		r.setDeleted(false) // still there, and stopped
		return err
	}
	return nil
}

// remove deletes a stopped job from the database and the Manager, unless a
// job made to depend on it since Delete began does.
func (m *Manager) remove(ctx context.Context, r *runner) error {
	m.graphEdit.Lock()
	defer m.graphEdit.Unlock()
	if by := m.dependents(r.name); len(by) > 0 {
		return inUse(r.name, by)
	}
	if err := m.store.delete(ctx, r.id, r.name); err != nil {
		return err
	}
	m.notifyDefs(r.name)
	m.mu.Lock()
	delete(m.jobs, r.name)
	m.sorted = nil
	m.graph.set(r.name, nil)
	m.mu.Unlock()
	return nil
}

// setDeleted marks the job deleted, or no longer; either is a change that
// those who wait on the job see (a dependent's start among them).
func (r *runner) setDeleted(deleted bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = deleted
	r.gen++
	r.planLocked()
	close(r.changed)
	r.changed = make(chan struct{})
}

// Start starts a job that is not active, and returns once its first run has
// been spawned: ErrRunning if the job is already active, or an error wrapping
// ErrStartFailed, with the reason, if the run failed to start (bad dir,
// env_file or user, log folder not writable, ...). The job then goes on as
// after any failed run: a continuous job retries, a one_time job is in error.
//
// A job with dependencies (Job.DependsOn) first starts each of them that is
// not active, then waits, in StateStarting, until every condition holds: the
// first run, and so Start's answer, waits as long (at most its
// start_timeout, if it has one). If a dependency cannot meet its condition,
// or start_timeout passes, the job goes to StateError and Start's error
// wraps ErrStartFailed, naming the dependency. If ctx ends first, Start
// returns ctx's error and the start goes on.
func (m *Manager) Start(ctx context.Context, name string) error {
	return m.start(ctx, name, TriggerManual)
}

func (m *Manager) start(ctx context.Context, name string, trigger Trigger) error {
	s, err := m.begin(ctx, name, trigger)
	if err != nil {
		return err
	}
	return s.firstRun(ctx, name) // the control lock is free again: a stop may come meanwhile
}

// begin starts the job, and returns its activation, whose first run the
// caller may wait for.
func (m *Manager) begin(ctx context.Context, name string, trigger Trigger) (*supervisor, error) {
	var s *supervisor
	err := m.control(ctx, name, func(r *runner) (err error) {
		s, err = r.start(trigger)
		return err
	})
	return s, err
}

// Stop stops an active job: its stop signal to the whole process group, SIGKILL
// after its stop timeout. It returns once no process of the group is left.
// The active jobs that depend on it are stopped first (see StopWithDependents).
// Stopping a job that is not active does nothing.
// A stop by hand clears the job's desired state: it is not started again at Open.
// A stop once begun is carried through by the job's supervisor: if ctx ends
// first, Stop returns ctx's error and the job still stops.
func (m *Manager) Stop(ctx context.Context, name string) error {
	_, err := m.StopWithDependents(ctx, name)
	return err
}

// Restart stops the job if it is active and starts it again with its current
// definition and a fresh backoff. Like Start, it returns once the new first
// run has been spawned, or an error wrapping ErrStartFailed. Once it holds the
// job, it finishes even if ctx ends: a restart must not leave stopped a job it
// was asked to run.
//
// Its dependents are left alone. The start waits for the job's dependencies
// as Start's does, and so does the answer, as long as ctx lets it.
func (m *Manager) Restart(ctx context.Context, name string) error {
	s, err := m.restart(ctx, name)
	if err != nil {
		return err
	}
	if s.waits {
		return s.firstRun(ctx, name)
	}
	return s.firstRun(context.WithoutCancel(ctx), name) // bounded: a spawn's preparation cannot block
}

// restart stops the job and starts it again, and returns its activation,
// whose first run the caller may wait for.
func (m *Manager) restart(ctx context.Context, name string) (*supervisor, error) {
	var s *supervisor
	err := m.control(ctx, name, func(r *runner) (err error) {
		if err := r.stop(context.WithoutCancel(ctx)); err != nil {
			return err
		}
		s, err = r.start(TriggerRestart)
		return err
	})
	return s, err
}

// control runs op on the named job while holding its control lock. It is a
// change by hand: it first drops the job's pending and queued schedule ticks,
// before it waits for the lock, so that none of them acts after it (a stop
// that waits behind a tick's restart must not see it start the job again).
func (m *Manager) control(ctx context.Context, name string, op func(*runner) error) error {
	r, err := m.local(ctx, name)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.gen++
	r.mu.Unlock()
	return r.control(ctx, op)
}

// control runs op while holding the job's control lock, unless the job has
// been deleted. A ctx that has ended, or ends while the lock is awaited,
// begins nothing. Schedule ticks use it directly: they belong to this runner,
// never to a later job that reuses the name.
func (r *runner) control(ctx context.Context, op func(*runner) error) error {
	if err := lockSlot(ctx, r.ctl); err != nil {
		return err
	}
	defer unlockSlot(r.ctl)
	return r.controlled(op)
}

// controlled runs op, unless the job has been deleted. The caller holds r.ctl.
func (r *runner) controlled(op func(*runner) error) error {
	r.mu.Lock()
	deleted := r.deleted
	r.mu.Unlock()
	if deleted {
		return fmt.Errorf("job %q: %w", r.name, ErrNotFound)
	}
	return op(r)
}

// State returns the job's current status.
func (m *Manager) State(name string) (Status, error) {
	r, err := m.runner(name)
	if err != nil {
		return Status{}, err
	}
	return r.status(), nil
}

// States returns the status of every job, sorted by name.
func (m *Manager) States() []Status {
	rs := m.runners()
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = r.status()
	}
	return out
}

// WaitFor waits until the job is in one of the given states and returns its
// status then. A state passed through faster than the caller looks may be missed,
// so wait for states a job rests in (running, exited, stopped, error, retrying).
func (m *Manager) WaitFor(ctx context.Context, name string, states ...State) (Status, error) {
	return m.waitUntil(ctx, name, func(st Status) bool { return slices.Contains(states, st.State) })
}

func (m *Manager) waitUntil(ctx context.Context, name string, ok func(Status) bool) (Status, error) {
	r, err := m.runner(name)
	if err != nil {
		return Status{}, err
	}
	for {
		r.mu.Lock()
		st, ch := r.statusLocked(), r.changed
		r.mu.Unlock()
		if ok(st) {
			return st, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return st, fmt.Errorf("wait for %q (state %s): %w", name, st.State, ctx.Err())
		}
	}
}

// Shutdown stops every job gracefully (stop signal, then SIGKILL after its
// stop timeout), in waves: every job after the jobs that depend on it, and
// each wave in parallel, so that the jobs no other job depends on,
// independent ones among them, all stop at once, first. If ctx ends first,
// every remaining group is killed at once. It then waits for every
// goroutine, gives the database up to 5 s (whatever ctx says) to take the
// records still queued, which a healthy one does in milliseconds, ends the
// guardian and closes and releases the database. Records left unwritten then are logged and reported in the
// error; a run whose end was among them shows outcome unknown at the next
// Open. A run's shell that outlived SIGKILL (its job is in StateError) is no
// longer waited for: the error, wrapping ErrStopFailed, names it, and it stays
// this process's child (init reaps it once this process exits). Shutdown's
// stops leave every job's desired state as it was. Later calls return the
// first call's result.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.shutdownOnce.Do(func() { m.shutdownErr = m.shutdown(ctx) })
	return m.shutdownErr
}

// Close is Shutdown without a deadline: each job gets its full stop timeout.
func (m *Manager) Close() error { return m.Shutdown(context.Background()) }

func (m *Manager) shutdown(ctx context.Context) error {
	start := time.Now()
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	if m.floats != nil {
		<-m.floats.done // no claim is adopted, no job dropped, from now on
	}
	ticks := m.cron.Stop() // no new ticks; those under way end with m.ctx
	waves := m.shutdownWaves()
	err := stopInWaves(ctx, waves)
	m.wg.Wait()
	<-ticks.Done()
	err = errors.Join(err, m.waitPreps(ctx))
	if m.quiet != nil {
		<-m.quiet.done // ended with m.ctx
	}
	m.hub.close()
	if lost := m.w.close(drainLimit); lost > 0 {
		m.log.Error("records not written to the database before shutdown", "count", lost, "waited", drainLimit)
		err = errors.Join(err, fmt.Errorf("shutdown: %d records not written to the database", lost))
	}
	err = errors.Join(err, m.rot.Close(), m.guard.Close(), m.closeKids(), m.store.close(), m.lock.release())
	stopped := 0
	for _, w := range waves {
		stopped += len(w)
	}
	m.log.Info("procman shut down", "jobs_stopped", stopped, "took", time.Since(start).Round(time.Millisecond))
	return err
}

// closeKids ends the reaper, which gives up waiting for the run leaders still
// alive: those that outlived SIGKILL (their jobs are in StateError). They are
// reported, and left to this process (init reaps them once it exits).
func (m *Manager) closeKids() error {
	err := m.kids.Close()
	if errors.Is(err, osproc.ErrAbandoned) {
		m.log.Error("processes outlived SIGKILL and are no longer waited for", "err", err)
		return fmt.Errorf("shutdown: %w: %w", ErrStopFailed, err)
	}
	return err
}

// waitPreps waits for the spawn preparations that stops walked away from. They
// touch only files, so the database may close without them; ctx bounds the
// wait for one that a file keeps blocked.
func (m *Manager) waitPreps(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		m.preps.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shutdown: a run's preparation is still blocked on a file: %w", ctx.Err())
	}
}
