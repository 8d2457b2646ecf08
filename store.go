package procman

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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
	db *bun.DB
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
	CreatedAt      time.Time         `bun:"created_at,notnull"`
	UpdatedAt      time.Time         `bun:"updated_at,notnull"`
}

func openStore(ctx context.Context, path string) (*store, error) {
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
	for _, p := range []string{"PRAGMA busy_timeout = 5000", "PRAGMA journal_mode = WAL", "PRAGMA foreign_keys = ON"} {
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

// migrations lists the schema versions in order. Later versions are appended,
// never edited.
func migrations() *migrate.Migrations {
	ms := migrate.NewMigrations()
	ms.Add(migrate.Migration{
		Name:    "20261125000001",
		Comment: "jobs",
		Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().NewCreateTable().Model((*jobRow)(nil)).Exec(ctx)
			return err
		},
		Down: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
			_, err := m.DB().NewDropTable().Model((*jobRow)(nil)).IfExists().Exec(ctx)
			return err
		},
	})
	return ms
}

func (s *store) close() error { return s.db.Close() }

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
	}
}

func (r jobRow) job() Job {
	return Job{
		Name: r.Name, Command: r.Command, Type: Type(r.Type), Schedule: r.Schedule, Dir: r.Dir,
		Env: r.Env, StopSignal: r.StopSignal, StopTimeout: Duration(r.StopTimeout),
		BackoffInitial: Duration(r.BackoffInitial), BackoffMax: Duration(r.BackoffMax),
		MinUptime: Duration(r.MinUptime), MaxRetries: r.MaxRetries,
	}
}
