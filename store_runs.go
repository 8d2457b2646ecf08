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

	ID        int64      `bun:"id,pk,autoincrement"` // given by the Manager (Manager.nextRunID)
	JobID     string     `bun:"job_id,notnull"`      // jobRow.ID
	Job       string     `bun:"job,notnull"`
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
}

func (r runRow) run() Run {
	return Run{ID: r.ID, Job: r.Job, Trigger: Trigger(r.Trigger), StartedAt: r.StartedAt, EndedAt: r.EndedAt,
		PID: r.PID, PGID: r.PGID, ProcStart: r.ProcStart, ExitCode: r.ExitCode, Signal: r.Signal,
		Outcome: Outcome(r.Outcome), Error: r.Error, LogFile: r.LogFile, Pruned: r.Pruned, Invocation: r.Invocation}
}

// insertRun records a run as it starts (or fails to). The writer may apply
// it twice, if a commit failed after all: the second time does nothing.
func insertRun(ctx context.Context, db bun.IDB, row *runRow) error {
	if _, err := db.NewInsert().Model(row).On("CONFLICT (id) DO NOTHING").Returning("NULL").Exec(ctx); err != nil {
		return fmt.Errorf("record run %d of %q: %w", row.ID, row.Job, err)
	}
	return nil
}

// endRun records how a run ended.
func endRun(ctx context.Context, db bun.IDB, row *runRow) error {
	_, err := db.NewUpdate().Model(row).
		Column("ended_at", "exit_code", "signal", "outcome", "error", "log_bytes").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("record end of run %d of %q: %w", row.ID, row.Job, err)
	}
	return nil
}

// maxRunID is the highest run ID ever given on this database, even to a row
// since deleted: the next ones follow it (Manager.nextRunID).
func (s *store) maxRunID(ctx context.Context) (int64, error) {
	var top, seq int64
	if err := s.db.NewRaw("SELECT coalesce(max(id), 0) FROM runs").Scan(ctx, &top); err != nil {
		return 0, fmt.Errorf("last run: %w", err)
	}
	err := s.db.NewRaw("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").Scan(ctx, &seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("last run: %w", err)
	}
	return max(top, seq), nil
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
		Where("id IN (SELECT max(id) FROM runs WHERE ended_at IS NOT NULL GROUP BY job_id)").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	out := make(map[string]Run, len(rows))
	for _, r := range rows {
		out[r.JobID] = r.run()
	}
	return out, nil
}

// openRuns returns the runs that never ended: left by a ProcMan that died.
func (s *store) openRuns(ctx context.Context) ([]runRow, error) {
	var rows []runRow
	if err := s.db.NewSelect().Model(&rows).Where("ended_at IS NULL").OrderExpr("id").Scan(ctx); err != nil {
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

// pruneRuns deletes some run rows and marks others' logs as removed, in the
// writer's transaction.
func pruneRuns(ctx context.Context, db bun.IDB, del, pruned []int64) error {
	if len(del) > 0 {
		if _, err := db.NewDelete().Model((*runRow)(nil)).Where("id IN (?)", bun.List(del)).Exec(ctx); err != nil {
			return fmt.Errorf("prune runs: %w", err)
		}
	}
	if len(pruned) > 0 {
		_, err := db.NewUpdate().Model((*runRow)(nil)).Set("pruned = 1").Where("id IN (?)", bun.List(pruned)).Exec(ctx)
		if err != nil {
			return fmt.Errorf("prune runs: %w", err)
		}
	}
	return nil
}
