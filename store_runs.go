package procman

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/uptrace/bun"
)

// The run history in the database: every run's record (runs.go), written by
// the writer (writer.go) and read by Runs, Run and Logs.

type runRow struct {
	bun.BaseModel `bun:"table:runs"`

	// A run is keyed by its job and its number among the job's runs, given by
	// the job's runner (runner.nextRunID).
	JobID     string     `bun:"job_id,pk"` // jobRow.ID
	ID        int64      `bun:"id,pk"`
	Job       string     `bun:"job,notnull"`
	Host      string     `bun:"host,notnull"` // the host that ran it; "" in rows older than the column
	Trigger   string     `bun:"trigger,notnull"`
	StartedAt time.Time  `bun:"started_at,notnull"`
	EndedAt   *time.Time `bun:"ended_at"`
	PID       int        `bun:"pid,notnull"`
	PGID      int        `bun:"pgid,notnull"`
	ProcStart uint64     `bun:"proc_start,notnull"`
	ExitCode  *int       `bun:"exit_code"`
	Signal    string     `bun:"signal,notnull"`
	Outcome   string     `bun:"outcome,notnull"`
	Error     string     `bun:"error,notnull"`
	LogFile   string     `bun:"log_file,notnull"`
	LogBytes  int64      `bun:"log_bytes,notnull"`
	Pruned    bool       `bun:"pruned,notnull"`
	// Invocation is a random ID put in the run's environment as
	// PROCMAN_INVOCATION, which every process of the run inherits.
	Invocation string `bun:"invocation,notnull"`
	// What the run cost (runCost), once it ended; NULL where that is not
	// known, and in rows older than the columns.
	CPUUserUS   *int64 `bun:"cpu_user_us"`
	CPUSystemUS *int64 `bun:"cpu_system_us"`
	MaxRSSBytes *int64 `bun:"max_rss_bytes"`
}

func (r runRow) run() Run {
	if r.EndedAt != nil { // PostgreSQL's driver gives times in the local zone
		ended := r.EndedAt.UTC()
		r.EndedAt = &ended
	}
	return Run{ID: r.ID, Job: r.Job, Host: r.Host, Trigger: Trigger(r.Trigger), StartedAt: r.StartedAt.UTC(), EndedAt: r.EndedAt,
		PID: r.PID, PGID: r.PGID, ProcStart: r.ProcStart, ExitCode: r.ExitCode, Signal: r.Signal,
		Outcome: Outcome(r.Outcome), Error: r.Error, CPUUserSeconds: seconds(r.CPUUserUS), CPUSystemSeconds: seconds(r.CPUSystemUS),
		MaxRSSBytes: r.MaxRSSBytes, LogFile: r.LogFile, Pruned: r.Pruned, Invocation: r.Invocation}
}

// seconds is a count of microseconds in seconds.
func seconds(us *int64) *float64 {
	if us == nil {
		return nil
	}
	s := float64(*us) / 1e6
	return &s
}

// insertRun records a run as it starts (or fails to). The writer may apply
// it twice, if a commit failed after all: the second time does nothing.
func insertRun(ctx context.Context, db bun.IDB, row *runRow) error {
	if _, err := db.NewInsert().Model(row).On("CONFLICT (job_id, id) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("record run %d of %q: %w", row.ID, row.Job, err)
	}
	return nil
}

// endRun records how a run ended.
func endRun(ctx context.Context, db bun.IDB, row *runRow) error {
	_, err := db.NewUpdate().Model(row).
		Column("ended_at", "exit_code", "signal", "outcome", "error", "log_bytes", "cpu_user_us", "cpu_system_us", "max_rss_bytes").
		WherePK().Where("host = ?", row.Host).Exec(ctx) // never a run another host numbered alike
	if err != nil {
		return fmt.Errorf("record end of run %d of %q: %w", row.ID, row.Job, err)
	}
	return nil
}

// lastRunIDs returns each job's highest run ID, by job ID: its next runs
// follow it (runner.nextRunID). Retention never deletes a job's newest run,
// so no ID is given twice.
func (s *store) lastRunIDs(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		JobID string `bun:"job_id"`
		Top   int64  `bun:"top"`
	}
	if err := s.db.NewRaw("SELECT job_id, max(id) AS top FROM runs GROUP BY job_id").Scan(ctx, &rows); err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, r := range rows {
		out[r.JobID] = r.Top
	}
	return out, nil
}

// runs returns the newest runs of job id (named name, for errors).
func (s *store) runs(ctx context.Context, id, name string, limit int) ([]Run, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var rows []runRow
	err := s.db.NewSelect().Model(&rows).Where("job_id = ?", id).OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("runs of %q: %w", name, err)
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, nil
}

func (s *store) run(ctx context.Context, id, name string, runID int64) (Run, error) {
	if s.closed.Load() {
		return Run{}, ErrClosed
	}
	var row runRow
	err := s.db.NewSelect().Model(&row).Where("job_id = ? AND id = ?", id, runID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %d of job %q: %w", runID, name, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %d of %q: %w", runID, name, err)
	}
	return row.run(), nil
}

// lastEnded returns the newest finished run of each job, by job ID, for
// Status.LastRun at start-up.
func (s *store) lastEnded(ctx context.Context) (map[string]Run, error) {
	var rows []runRow
	err := s.db.NewSelect().Model(&rows).
		Where("(job_id, id) IN (SELECT job_id, max(id) FROM runs WHERE ended_at IS NOT NULL GROUP BY job_id)").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	out := make(map[string]Run, len(rows))
	for _, r := range rows {
		out[r.JobID] = r.run()
	}
	return out, nil
}

// openRuns returns the runs of host that never ended: left by a ProcMan that
// died. Rows older than the host column are taken for this host's: they come
// from a database only one host used.
func (s *store) openRuns(ctx context.Context, host string) ([]runRow, error) {
	var rows []runRow
	err := s.db.NewSelect().Model(&rows).Where("ended_at IS NULL AND host IN (?, '')", host).OrderExpr("job_id, id").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("open runs: %w", err)
	}
	return rows, nil
}

// finishedRuns returns job id's finished runs, newest first, with what
// retention needs.
func finishedRuns(ctx context.Context, db bun.IDB, id string, skip int) ([]runRow, error) {
	var rows []runRow
	q := db.NewSelect().Model(&rows).Column("id", "log_file", "log_bytes", "pruned").
		Where("job_id = ? AND ended_at IS NOT NULL", id).OrderExpr("id DESC")
	if skip > 0 {
		q = q.Limit(math.MaxInt32).Offset(int64(skip)) // SQLite takes no OFFSET without LIMIT
	}
	err := q.Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("runs of job %s: %w", id, err)
	}
	return rows, nil
}

// pruneRuns deletes some runs of job jobID and marks others' logs as
// removed, in the writer's transaction.
func pruneRuns(ctx context.Context, db bun.IDB, jobID string, del, pruned []int64) error {
	if len(del) > 0 {
		_, err := db.NewDelete().Model((*runRow)(nil)).Where("job_id = ? AND id IN (?)", jobID, bun.List(del)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("prune runs: %w", err)
		}
	}
	if len(pruned) > 0 {
		_, err := db.NewUpdate().Model((*runRow)(nil)).Set("pruned = ?", true).
			Where("job_id = ? AND id IN (?)", jobID, bun.List(pruned)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("prune runs: %w", err)
		}
	}
	return nil
}
