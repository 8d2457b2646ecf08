package procman

import (
	"context"
	"fmt"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/uptrace/bun"
)

// Run is one run of a job, as recorded in the runs table. A job's runs are
// numbered 1, 2, 3, ... in the order they start, never twice.
type Run struct {
	ID  int64  `json:"id"`
	Job string `json:"job"`
	// Host is the host that ran it (absent for runs recorded before runs had one).
	Host      string     `json:"host,omitempty"`
	Trigger   Trigger    `json:"trigger"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	PID       int        `json:"pid,omitempty"`
	PGID      int        `json:"pgid,omitempty"`
	// ProcStart is the shell's start time in clock ticks after boot (from
	// /proc/<pid>/stat): with PID it identifies the process even after a crash.
	ProcStart uint64  `json:"proc_start,omitempty"`
	ExitCode  *int    `json:"exit_code,omitempty"`
	Signal    string  `json:"signal,omitempty"`
	Outcome   Outcome `json:"outcome,omitempty"` // empty while the run goes on
	Error     string  `json:"error,omitempty"`
	// CPUUserSeconds and CPUSystemSeconds are the CPU time the run's
	// processes spent in user and in system mode, and MaxRSSBytes the largest
	// resident memory one of them had: what the kernel reported for the shell
	// once it was reaped, with every process it waited for, and for each
	// orphan of its process group that ProcMan reaped (Config.Subreaper).
	// Set once the run has ended; absent for a run that never had a process,
	// one whose shell was not reaped or whose wait failed, and runs recorded
	// before ProcMan kept them.
	CPUUserSeconds   *float64 `json:"cpu_user_seconds,omitempty"`
	CPUSystemSeconds *float64 `json:"cpu_system_seconds,omitempty"`
	MaxRSSBytes      *int64   `json:"max_rss_bytes,omitempty"`
	LogFile          string   `json:"log_file,omitempty"`
	// Pruned: the log file was removed by retention.
	Pruned bool `json:"pruned,omitempty"`
	// Invocation is the run's PROCMAN_INVOCATION environment variable.
	Invocation string `json:"invocation,omitempty"`
}

// LastRun summarises how a job's last finished run ended.
type LastRun struct {
	ID       int64     `json:"id"`
	Outcome  Outcome   `json:"outcome"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	EndedAt  time.Time `json:"ended_at"`
	// Success: the run exited by itself (outcome exited) with 0 or one of
	// the job's success_exit_codes.
	Success bool `json:"success,omitempty"`
}

// summary is the run as a LastRun, for a job whose success codes are codes.
func (r Run) summary(codes []int) *LastRun {
	if r.EndedAt == nil {
		return nil
	}
	return &LastRun{ID: r.ID, Outcome: r.Outcome, ExitCode: r.ExitCode, Signal: r.Signal, EndedAt: *r.EndedAt,
		Success: succeeded(r.Outcome, r.ExitCode, codes)}
}

// RunsOptions selects runs for Runs.
type RunsOptions struct {
	// Limit is the most runs returned, newest first. Default 20, at most 1000.
	Limit int
}

// MaxRunsLimit caps RunsOptions.Limit.
const MaxRunsLimit = 1000

// Runs returns the job's runs, newest first. Runs of an earlier job of the
// same name, since deleted, are not its runs. Every run recorded before the
// call is in the answer: it waits, as long as ctx lets it, for the database
// to take what is queued for it.
func (m *Manager) Runs(ctx context.Context, name string, opts RunsOptions) ([]Run, error) {
	r, err := m.runner(name)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Limit == 0:
		opts.Limit = 20
	case opts.Limit < 0 || opts.Limit > MaxRunsLimit:
		return nil, fmt.Errorf("%w: limit must be 1 to %d", ErrInvalid, MaxRunsLimit)
	}
	if err := m.w.sync(ctx); err != nil {
		return nil, fmt.Errorf("runs of %q: %w", name, err)
	}
	return m.store.runs(ctx, r.id, name, opts.Limit)
}

// Run returns one run of the job; like Runs, it sees every run recorded before it.
func (m *Manager) Run(ctx context.Context, name string, id int64) (Run, error) {
	r, err := m.runner(name)
	if err != nil {
		return Run{}, err
	}
	if err := m.w.sync(ctx); err != nil {
		return Run{}, fmt.Errorf("run %d of %q: %w", id, name, err)
	}
	return m.store.run(ctx, r.id, name, id)
}

// nextRunID gives a run of the job its ID, the next after the job's last.
// A job runs on one host at a time, whose Manager holds the database for that
// host (lock.go), so IDs come from memory, asking no one: a run's record may
// wait in the writer's queue, and a failed write never lets two runs share an
// ID.
func (r *runner) nextRunID() int64 { return r.lastRunID.Add(1) }

// recordRun queues a run's first record; the writer retries it until the
// database takes it.
func (r *runner) recordRun(row runRow) {
	r.mu.Lock()
	f := r.fenceLocked()
	r.mu.Unlock()
	r.m.w.enqueueFenced(f, func(ctx context.Context, db bun.IDB) error { return insertRun(ctx, db, &row) })
}

// recordStart saves a run as it begins.
func (r *runner) recordStart(p *proc, trigger Trigger) {
	p.row.ID, p.row.JobID, p.row.Host = r.nextRunID(), r.id, r.m.cfg.Host
	p.row.Job, p.row.Trigger = r.name, string(trigger)
	r.recordRun(p.row)
	r.m.metrics.runStarted(trigger)
	r.mu.Lock()
	r.cur = p
	p.sup.latest.next = p // log followers go on into it
	p.sup.latest = p
	r.mu.Unlock()
}

// recordFailedStart saves a run that never had a process, and applies log
// retention: such runs count as any other.
func (r *runner) recordFailedStart(trigger Trigger, cause error) {
	now := dbNow()
	row := runRow{ID: r.nextRunID(), JobID: r.id, Job: r.name, Host: r.m.cfg.Host, Trigger: string(trigger), StartedAt: now, EndedAt: &now,
		Outcome: string(OutcomeFailedToStart), Error: cause.Error()}
	r.recordRun(row)
	r.m.metrics.failedStart(trigger)
	r.mu.Lock()
	r.st.LastRun = row.run().summary(nil)
	job := r.job
	r.mu.Unlock()
	r.m.prune(r.id, job, nil)
}

// recordEnd saves how a run ended, releases its log followers and applies
// log retention.
func (r *runner) recordEnd(p *proc, outcome Outcome, cause string) {
	now := dbNow()
	code, sig, werr := p.exit()
	if werr != nil {
		r.m.log.Error("wait for a run's shell failed; its exit status is lost", "job", r.name, "pid", p.pgid, "err", werr)
		if cause != "" {
			cause += "; "
		}
		cause += "its exit status is lost: wait: " + werr.Error()
	}
	p.row.EndedAt, p.row.Outcome, p.row.Error = &now, string(outcome), cause
	p.row.ExitCode, p.row.Signal = code, sig
	cost, known := p.cost()
	r.m.kids.ForgetGroup(p.leader) // the group is gone: no orphan of it is left to reap
	if known {
		user, system := cost.User.Microseconds(), cost.System.Microseconds()
		p.row.CPUUserUS, p.row.CPUSystemUS, p.row.MaxRSSBytes = &user, &system, &cost.MaxRSS
	}
	p.live.Unwatch() // no one writes to it any more
	p.row.LogBytes = p.live.Bytes()
	row := p.row
	r.m.w.enqueue(func(ctx context.Context, db bun.IDB) error { return endRun(ctx, db, &row) })
	r.m.metrics.runEnded(outcome, time.Since(p.started))
	r.mu.Lock()
	r.st.LastRun = p.row.run().summary(p.successCodes)
	r.st.ExitCode, r.st.Signal = p.row.ExitCode, p.row.Signal
	r.counts.cpuDone += cost.User + cost.System
	r.cur = nil
	job := r.job
	r.mu.Unlock()
	close(p.ended)
	r.m.prune(r.id, job, nil)
}

// cost is what the run cost once its shell has been reaped: the shell's
// rusage, with the processes it waited for, and its group's orphans that
// ProcMan reaped. known is false while the shell lives (it outlived SIGKILL)
// and when its wait failed.
func (p *proc) cost() (u osproc.Usage, known bool) {
	select {
	case <-p.done:
	default:
		return u, false
	}
	if _, err := p.leader.Exit(); err != nil {
		return u, false
	}
	return p.leader.Usage().Add(p.leader.Orphans()), true
}

// dbNow is the current time as the database keeps it (microseconds), so that
// a status read from memory and a run read back from the database agree.
func dbNow() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
