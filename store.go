package procman

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
	"github.com/uptrace/bun/migrate"
)

// store persists job definitions. It is the only code that sees bun or driver
// errors: everything it returns is either nil, a ProcMan sentinel, or a wrapped
// database fault.
type store struct {
	db     *bun.DB
	closed atomic.Bool // reads that come in as the Manager shuts down get ErrClosed, not a driver error
}

type jobRow struct {
	bun.BaseModel `bun:"table:jobs"`

	Name           string            `bun:"name,pk"`
	Command        string            `bun:"command,notnull"`
	Type           string            `bun:"type,notnull"`
	Schedule       string            `bun:"schedule,notnull"`
	Dir            string            `bun:"dir,notnull"`
	Env            map[string]string `bun:"env,type:json"`
	StopSignal     string            `bun:"stop_signal,notnull"`
	StopTimeout    time.Duration     `bun:"stop_timeout,notnull"`
	BackoffInitial time.Duration     `bun:"backoff_initial,notnull"`
	BackoffMax     time.Duration     `bun:"backoff_max,notnull"`
	MinUptime      time.Duration     `bun:"min_uptime,notnull"`
	MaxRetries     int               `bun:"max_retries,notnull"`
	KeepRuns       int               `bun:"keep_runs,notnull"`
	MaxLogBytes    int64             `bun:"max_log_bytes,notnull"`
	Overlap        string            `bun:"overlap,notnull"`
	RunAs          string            `bun:"run_as,notnull"` // Job.User
	EnvFile        string            `bun:"env_file,notnull"`
	MaxRunLogBytes int64             `bun:"max_run_log_bytes,notnull"`
	CreatedAt      time.Time         `bun:"created_at,notnull"`
	UpdatedAt      time.Time         `bun:"updated_at,notnull"`
}

func openStore(ctx context.Context, path string) (*store, error) {
	// SQLite reports these as "out of memory" or "unable to open": say what is wrong.
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("open database %s: is a directory", path)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sqldb, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and per-connection pragmas
	// (busy_timeout, foreign_keys) then hold for every statement.
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	s := &store{db: db}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return s, nil
}

func (s *store) init(ctx context.Context) error {
	for _, p := range []string{"PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"} {
		if _, err := s.db.ExecContext(ctx, p); err != nil {
			return err
		}
	}
	mg := migrate.NewMigrator(s.db, migrations(), migrate.WithMarkAppliedOnSuccess(true))
	if err := mg.Init(ctx); err != nil {
		return err
	}
	if _, err := mg.Migrate(ctx); err != nil {
		return err
	}
	return nil
}

// migrations lists the schema versions in order. Each is frozen SQL: later
// versions are appended, never edited, so every database upgrades the same way.
func migrations() *migrate.Migrations {
	ms := migrate.NewMigrations()
	for i, step := range [][]string{
		{`CREATE TABLE jobs (
			name TEXT PRIMARY KEY, command TEXT NOT NULL, type TEXT NOT NULL, schedule TEXT NOT NULL,
			dir TEXT NOT NULL, env TEXT, stop_signal TEXT NOT NULL, stop_timeout INTEGER NOT NULL,
			backoff_initial INTEGER NOT NULL, backoff_max INTEGER NOT NULL, min_uptime INTEGER NOT NULL,
			max_retries INTEGER NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)`},
		// Runs outlive their job's definition, so no foreign key.
		{`CREATE TABLE runs (
			id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, trigger TEXT NOT NULL,
			started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, pid INTEGER NOT NULL, pgid INTEGER NOT NULL,
			proc_start INTEGER NOT NULL, exit_code INTEGER, signal TEXT NOT NULL,
			outcome TEXT NOT NULL, error TEXT NOT NULL, log_file TEXT NOT NULL, log_bytes INTEGER NOT NULL,
			pruned BOOLEAN NOT NULL, invocation TEXT NOT NULL DEFAULT '')`,
			`CREATE INDEX runs_job_id ON runs (job, id)`,
			`CREATE INDEX runs_open ON runs (ended_at) WHERE ended_at IS NULL`},
		{`ALTER TABLE jobs ADD COLUMN keep_runs INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE jobs ADD COLUMN max_log_bytes INTEGER NOT NULL DEFAULT 0`},
		{`ALTER TABLE jobs ADD COLUMN overlap TEXT NOT NULL DEFAULT ''`},
		{`ALTER TABLE jobs ADD COLUMN run_as TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE jobs ADD COLUMN env_file TEXT NOT NULL DEFAULT ''`},
		{`ALTER TABLE jobs ADD COLUMN max_run_log_bytes INTEGER NOT NULL DEFAULT 0`},
	} {
		ms.Add(migrate.Migration{
			Name: fmt.Sprintf("%014d", 20261125000001+i),
			Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
				return m.DB().RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
					for _, q := range step {
						if _, err := tx.ExecContext(ctx, q); err != nil {
							return err
						}
					}
					return nil
				})
			},
		})
	}
	return ms
}

func (s *store) close() error {
	s.closed.Store(true)
	return s.db.Close()
}

func (s *store) ping(ctx context.Context) error {
	var one int
	if err := s.db.NewSelect().ColumnExpr("1").Scan(ctx, &one); err != nil {
		return fmt.Errorf("database: %w", err)
	}
	return nil
}

func (s *store) insert(ctx context.Context, j Job) error {
	row := toRow(j)
	row.CreatedAt = time.Now().UTC()
	row.UpdatedAt = row.CreatedAt
	if _, err := s.db.NewInsert().Model(&row).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("create %q: %w", j.Name, ErrExists)
		}
		return fmt.Errorf("create %q: %w", j.Name, err)
	}
	return nil
}

func (s *store) update(ctx context.Context, j Job) error {
	row := toRow(j)
	row.UpdatedAt = time.Now().UTC()
	res, err := s.db.NewUpdate().Model(&row).ExcludeColumn("created_at").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("replace %q: %w", j.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("replace %q: %w", j.Name, ErrNotFound)
	}
	return nil
}

func (s *store) delete(ctx context.Context, name string) error {
	res, err := s.db.NewDelete().Model((*jobRow)(nil)).Where("name = ?", name).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete %q: %w", name, ErrNotFound)
	}
	return nil
}

func (s *store) all(ctx context.Context) ([]Job, error) {
	var rows []jobRow
	if err := s.db.NewSelect().Model(&rows).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load jobs: %w", err)
	}
	jobs := make([]Job, len(rows))
	for i, r := range rows {
		jobs[i] = r.job()
	}
	return jobs, nil
}

func isUniqueViolation(err error) bool {
	// Both drivers sqliteshim may pick report this text; matching it keeps the
	// store free of driver-specific error types.
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func toRow(j Job) jobRow {
	return jobRow{
		Name: j.Name, Command: j.Command, Type: string(j.Type), Schedule: j.Schedule, Dir: j.Dir,
		Env: j.Env, StopSignal: j.StopSignal, StopTimeout: time.Duration(j.StopTimeout),
		BackoffInitial: time.Duration(j.BackoffInitial), BackoffMax: time.Duration(j.BackoffMax),
		MinUptime: time.Duration(j.MinUptime), MaxRetries: j.MaxRetries,
		KeepRuns: j.KeepRuns, MaxLogBytes: j.MaxLogBytes, Overlap: j.Overlap,
		RunAs: j.User, EnvFile: j.EnvFile, MaxRunLogBytes: j.MaxRunLogBytes,
	}
}

func (r jobRow) job() Job {
	return Job{
		Name: r.Name, Command: r.Command, Type: Type(r.Type), Schedule: r.Schedule, Dir: r.Dir,
		Env: r.Env, StopSignal: r.StopSignal, StopTimeout: Duration(r.StopTimeout),
		BackoffInitial: Duration(r.BackoffInitial), BackoffMax: Duration(r.BackoffMax),
		MinUptime: Duration(r.MinUptime), MaxRetries: r.MaxRetries,
		KeepRuns: r.KeepRuns, MaxLogBytes: r.MaxLogBytes, Overlap: r.Overlap,
		User: r.RunAs, EnvFile: r.EnvFile, MaxRunLogBytes: r.MaxRunLogBytes,
	}
}

type runRow struct {
	bun.BaseModel `bun:"table:runs"`

	ID        int64      `bun:"id,pk,autoincrement"`
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

// insertRun records a run as it starts (or fails to) and sets its ID.
func (s *store) insertRun(ctx context.Context, row *runRow) error {
	if _, err := s.db.NewInsert().Model(row).Exec(ctx); err != nil {
		return fmt.Errorf("record run of %q: %w", row.Job, err)
	}
	return nil
}

// endRun records how a run ended.
func (s *store) endRun(ctx context.Context, row *runRow) error {
	_, err := s.db.NewUpdate().Model(row).
		Column("ended_at", "exit_code", "signal", "outcome", "error", "log_bytes").WherePK().Exec(ctx)
	if err != nil {
		return fmt.Errorf("record end of run %d: %w", row.ID, err)
	}
	return nil
}

func (s *store) runs(ctx context.Context, job string, limit int) ([]Run, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	var rows []runRow
	err := s.db.NewSelect().Model(&rows).Where("job = ?", job).OrderExpr("id DESC").Limit(int64(limit)).Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("runs of %q: %w", job, err)
	}
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, nil
}

func (s *store) run(ctx context.Context, job string, id int64) (Run, error) {
	if s.closed.Load() {
		return Run{}, ErrClosed
	}
	var row runRow
	err := s.db.NewSelect().Model(&row).Where("job = ? AND id = ?", job, id).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %d of job %q: %w", id, job, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %d of %q: %w", id, job, err)
	}
	return row.run(), nil
}

// lastEnded returns the newest finished run of each job, for Status.LastRun at start-up.
func (s *store) lastEnded(ctx context.Context) (map[string]Run, error) {
	var rows []runRow
	err := s.db.NewSelect().Model(&rows).
		Where("id IN (SELECT max(id) FROM runs WHERE ended_at IS NOT NULL GROUP BY job)").Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("last runs: %w", err)
	}
	out := make(map[string]Run, len(rows))
	for _, r := range rows {
		out[r.Job] = r.run()
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

// finishedRuns returns the job's finished runs, newest first, with what
// retention needs.
func (s *store) finishedRuns(ctx context.Context, job string, skip int) ([]runRow, error) {
	var rows []runRow
	q := s.db.NewSelect().Model(&rows).Column("id", "log_file", "log_bytes", "pruned").
		Where("job = ? AND ended_at IS NOT NULL", job).OrderExpr("id DESC")
	if skip > 0 {
		q = q.Limit(math.MaxInt32).Offset(int64(skip)) // SQLite takes no OFFSET without LIMIT
	}
	err := q.Scan(ctx)
	if err != nil {
		return nil, fmt.Errorf("runs of %q: %w", job, err)
	}
	return rows, nil
}

// pruneRuns deletes some run rows and marks others' logs as removed, in one transaction.
func (s *store) pruneRuns(ctx context.Context, del, pruned []int64) error {
	if len(del) == 0 && len(pruned) == 0 {
		return nil // most runs end with nothing to prune: no empty write transaction
	}
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if len(del) > 0 {
			if _, err := tx.NewDelete().Model((*runRow)(nil)).Where("id IN (?)", bun.In(del)).Exec(ctx); err != nil {
				return fmt.Errorf("prune runs: %w", err)
			}
		}
		if len(pruned) > 0 {
			_, err := tx.NewUpdate().Model((*runRow)(nil)).Set("pruned = 1").Where("id IN (?)", bun.In(pruned)).Exec(ctx)
			if err != nil {
				return fmt.Errorf("prune runs: %w", err)
			}
		}
		return nil
	})
}
