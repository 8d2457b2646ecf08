package procman

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"
)

// Migrations are kept per dialect: SQLite's list begins with ProcMan's first
// schema and is upgraded in place; PostgreSQL's begins with today's. Each
// version is frozen once released: later ones are appended, never edited, so
// every database upgrades the same way.

// migrationStep is one schema version: SQL, then, for what SQL alone cannot
// write, code.
type migrationStep struct {
	sql  []string
	code func(context.Context, bun.Tx) error
}

func (step migrationStep) apply(ctx context.Context, tx bun.Tx) error {
	for _, q := range step.sql {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	if step.code != nil {
		return step.code(ctx, tx)
	}
	return nil
}

// postgresMigrations are PostgreSQL's schema versions.
func postgresMigrations() []migrationStep {
	return []migrationStep{
		// SQLite's schema as of its version 11, in one step. Runs outlive
		// their job's definition, so no foreign key; they are numbered per
		// job, by the host running it, which needs no one else to agree. A
		// job is found by name, its key, and id. Definitions are kept as the
		// API writes them (TEXT: JSONB would reorder their fields).
		{sql: []string{`CREATE TABLE jobs (
			name TEXT PRIMARY KEY, id TEXT NOT NULL, wanted BOOLEAN NOT NULL DEFAULT false, def TEXT NOT NULL,
			created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL)`,
			`CREATE TABLE runs (
			job_id TEXT NOT NULL, id BIGINT NOT NULL, job TEXT NOT NULL, host TEXT NOT NULL DEFAULT '',
			trigger TEXT NOT NULL, started_at TIMESTAMPTZ NOT NULL, ended_at TIMESTAMPTZ, pid INTEGER NOT NULL,
			pgid INTEGER NOT NULL, proc_start BIGINT NOT NULL, exit_code INTEGER, signal TEXT NOT NULL,
			outcome TEXT NOT NULL, error TEXT NOT NULL, log_file TEXT NOT NULL, log_bytes BIGINT NOT NULL,
			pruned BOOLEAN NOT NULL, invocation TEXT NOT NULL DEFAULT '', PRIMARY KEY (job_id, id))`,
			`CREATE INDEX runs_open ON runs (host) WHERE ended_at IS NULL`,
			`CREATE TABLE health (host TEXT PRIMARY KEY, written_at TIMESTAMPTZ NOT NULL)`}},
		sourceMigration,
		// What each run cost: CPU in microseconds, peak memory in bytes; NULL
		// where not known.
		{sql: []string{`ALTER TABLE runs ADD COLUMN cpu_user_us BIGINT, ADD COLUMN cpu_system_us BIGINT,
			ADD COLUMN max_rss_bytes BIGINT`}},
		// The hosts of the fleet, each held by a lease (lease.go). Times are
		// the database's: no host's clock is trusted. machine and proc_start
		// name the holder's process for good, to a ProcMan on its machine.
		{sql: []string{`CREATE TABLE hosts (
			name TEXT PRIMARY KEY, epoch BIGINT NOT NULL, advertise TEXT NOT NULL DEFAULT '',
			version TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, machine TEXT NOT NULL DEFAULT '',
			proc_start BIGINT NOT NULL DEFAULT 0, labels JSONB NOT NULL DEFAULT '{}',
			started_at TIMESTAMPTZ NOT NULL, heartbeat_at TIMESTAMPTZ NOT NULL, lease_until TIMESTAMPTZ NOT NULL,
			active_jobs INTEGER NOT NULL DEFAULT 0)`}},
		homeMigration,
		// Floating jobs' owners (floating.go): floating says the definition
		// is one (host "*"), kept by the database itself from def; owner and
		// owner_epoch are set by the claim, and fence the owner's writes.
		{sql: []string{`ALTER TABLE jobs ADD COLUMN floating BOOLEAN NOT NULL
				GENERATED ALWAYS AS (coalesce(def::jsonb ->> 'host', '') = '*') STORED,
			ADD COLUMN owner TEXT, ADD COLUMN owner_epoch BIGINT NOT NULL DEFAULT 0`,
			`CREATE INDEX jobs_floating ON jobs (owner) WHERE floating`}},
		// Every job's status as its owner last wrote it, for the others to
		// show (mirror.go): the Status's JSON, updated_at by the database's clock.
		{sql: []string{`CREATE TABLE job_status (job_id TEXT PRIMARY KEY, job TEXT NOT NULL, host TEXT NOT NULL,
				epoch BIGINT NOT NULL, status TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL)`,
			`CREATE INDEX job_status_updated ON job_status (updated_at)`}},
	}
}

// homeMigration records the host each job was created on (jobRow.Home):
// none for the jobs made before, which the next ProcMan to open adopts
// (store.adoptHomeless; on SQLite, the one host owns every job anyway).
var homeMigration = migrationStep{sql: []string{`ALTER TABLE jobs ADD COLUMN home TEXT NOT NULL DEFAULT ''`}}

// sourceMigration records each job's source (Manager.Apply): every job made
// before is one made through the API.
var sourceMigration = migrationStep{sql: []string{`ALTER TABLE jobs ADD COLUMN source TEXT NOT NULL DEFAULT 'api'`}}

// migratePostgres brings a PostgreSQL database's schema up to date, every
// missing version in one transaction. The ProcMans sharing the database take
// turns under an advisory lock of that transaction, which ends with it
// however it ends: a ProcMan that dies while migrating leaves nothing locked
// (bun's lock table, by contrast, stays locked after a crash).
func migratePostgres(ctx context.Context, db *bun.DB, steps []migrationStep) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(?)", advisoryKey(migrationLockName)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS procman_schema (
			version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		var have int
		if err := tx.NewRaw("SELECT coalesce(max(version), 0) FROM procman_schema").Scan(ctx, &have); err != nil {
			return err
		}
		if have > len(steps) {
			return fmt.Errorf("the schema is at version %d, newer than this ProcMan knows (%d): run a newer ProcMan", have, len(steps))
		}
		for v := have + 1; v <= len(steps); v++ {
			if err := steps[v-1].apply(ctx, tx); err != nil {
				return fmt.Errorf("schema version %d: %w", v, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO procman_schema (version) VALUES (?)", v); err != nil {
				return err
			}
		}
		return nil
	})
}

// migrateSQLite brings a SQLite database's schema up to date with bun's
// migrator; the database's lock (lock.go) keeps any other ProcMan out meanwhile.
func (s *store) migrateSQLite(ctx context.Context, ms *migrate.Migrations) error {
	if _, err := s.db.ExecContext(ctx, "PRAGMA journal_mode = WAL"); err != nil { // kept in the file
		return err
	}
	mg := migrate.NewMigrator(s.db, ms, migrate.WithMarkAppliedOnSuccess(true))
	if err := mg.Init(ctx); err != nil {
		return err
	}
	if _, err := mg.Migrate(ctx); err != nil {
		return err
	}
	return nil
}

// sqliteMigrations are SQLite's schema versions.
func sqliteMigrations() []migrationStep {
	return []migrationStep{
		{sql: []string{`CREATE TABLE jobs (
			name TEXT PRIMARY KEY, command TEXT NOT NULL, type TEXT NOT NULL, schedule TEXT NOT NULL,
			dir TEXT NOT NULL, env TEXT, stop_signal TEXT NOT NULL, stop_timeout INTEGER NOT NULL,
			backoff_initial INTEGER NOT NULL, backoff_max INTEGER NOT NULL, min_uptime INTEGER NOT NULL,
			max_retries INTEGER NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)`}},
		// Runs outlive their job's definition, so no foreign key.
		{sql: []string{`CREATE TABLE runs (
			id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, trigger TEXT NOT NULL,
			started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, pid INTEGER NOT NULL, pgid INTEGER NOT NULL,
			proc_start INTEGER NOT NULL, exit_code INTEGER, signal TEXT NOT NULL,
			outcome TEXT NOT NULL, error TEXT NOT NULL, log_file TEXT NOT NULL, log_bytes INTEGER NOT NULL,
			pruned BOOLEAN NOT NULL, invocation TEXT NOT NULL DEFAULT '')`,
			`CREATE INDEX runs_job_id ON runs (job, id)`,
			`CREATE INDEX runs_open ON runs (ended_at) WHERE ended_at IS NULL`}},
		{sql: []string{`ALTER TABLE jobs ADD COLUMN keep_runs INTEGER NOT NULL DEFAULT 0`,
			`ALTER TABLE jobs ADD COLUMN max_log_bytes INTEGER NOT NULL DEFAULT 0`}},
		{sql: []string{`ALTER TABLE jobs ADD COLUMN overlap TEXT NOT NULL DEFAULT ''`}},
		{sql: []string{`ALTER TABLE jobs ADD COLUMN run_as TEXT NOT NULL DEFAULT ''`,
			`ALTER TABLE jobs ADD COLUMN env_file TEXT NOT NULL DEFAULT ''`}},
		// Job identity: history belongs to one incarnation of a job, not to its
		// name. A run is given to the job of its name created before it
		// started; the runs of an earlier job of that name, since deleted, to
		// none. (Times are text of one format, so they compare as strings.) A
		// job is found by name, its key, and id: no index on id, whose random
		// keys would cost every create a page.
		{sql: []string{`ALTER TABLE jobs ADD COLUMN id TEXT NOT NULL DEFAULT ''`,
			`UPDATE jobs SET id = lower(hex(randomblob(16)))`,
			`ALTER TABLE runs ADD COLUMN job_id TEXT NOT NULL DEFAULT ''`,
			`UPDATE runs SET job_id = coalesce((SELECT id FROM jobs
				WHERE jobs.name = runs.job AND jobs.created_at <= runs.started_at), '')`,
			`DROP INDEX runs_job_id`,
			`CREATE INDEX runs_job ON runs (job_id, id)`}},
		// One row that /healthz rewrites to prove the database takes writes.
		{sql: []string{`CREATE TABLE health (id INTEGER PRIMARY KEY CHECK (id = 1), written_at TIMESTAMP NOT NULL)`}},
		// The desired state: a continuous job started and not stopped by a user.
		{sql: []string{`ALTER TABLE jobs ADD COLUMN wanted BOOLEAN NOT NULL DEFAULT 0`}},
		{sql: []string{`ALTER TABLE jobs ADD COLUMN max_run_log_bytes INTEGER NOT NULL DEFAULT 0`}},
		// Definitions as JSON: the columns of each field give way to one.
		{sql: []string{`ALTER TABLE jobs ADD COLUMN def TEXT NOT NULL DEFAULT ''`}, code: definitionsAsJSON},
		// Runs numbered per job: the key becomes (job_id, id), which SQLite
		// changes only by rebuilding the table. IDs stay as they were: unique
		// overall, so unique per job. A run names the host that ran it (none
		// before this version), and each host has its health row.
		{sql: []string{`CREATE TABLE runs_per_job (
			job_id TEXT NOT NULL, id INTEGER NOT NULL, job TEXT NOT NULL, host TEXT NOT NULL DEFAULT '',
			trigger TEXT NOT NULL, started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP, pid INTEGER NOT NULL,
			pgid INTEGER NOT NULL, proc_start INTEGER NOT NULL, exit_code INTEGER, signal TEXT NOT NULL,
			outcome TEXT NOT NULL, error TEXT NOT NULL, log_file TEXT NOT NULL, log_bytes INTEGER NOT NULL,
			pruned BOOLEAN NOT NULL, invocation TEXT NOT NULL DEFAULT '', PRIMARY KEY (job_id, id))`,
			`INSERT INTO runs_per_job (job_id, id, job, trigger, started_at, ended_at, pid, pgid, proc_start,
				exit_code, signal, outcome, error, log_file, log_bytes, pruned, invocation)
			SELECT job_id, id, job, trigger, started_at, ended_at, pid, pgid, proc_start,
				exit_code, signal, outcome, error, log_file, log_bytes, pruned, invocation FROM runs`,
			`DROP TABLE runs`, // its indexes, and its row of sqlite_sequence, with it
			`ALTER TABLE runs_per_job RENAME TO runs`,
			`CREATE INDEX runs_open ON runs (host) WHERE ended_at IS NULL`,
			`DROP TABLE health`,
			`CREATE TABLE health (host TEXT PRIMARY KEY, written_at TIMESTAMP NOT NULL)`}},
		sourceMigration,
		// What each run cost: CPU in microseconds, peak memory in bytes; NULL
		// where not known.
		{sql: []string{`ALTER TABLE runs ADD COLUMN cpu_user_us INTEGER`, `ALTER TABLE runs ADD COLUMN cpu_system_us INTEGER`,
			`ALTER TABLE runs ADD COLUMN max_rss_bytes INTEGER`}},
		homeMigration,
	}
}

// migrationsOf gives SQLite's versions to bun's migrator, named as they
// always were.
func migrationsOf(steps []migrationStep) *migrate.Migrations {
	ms := migrate.NewMigrations()
	for i, step := range steps {
		ms.Add(migrate.Migration{
			Name: fmt.Sprintf("%014d", 20261125000001+i),
			Up: func(ctx context.Context, m *migrate.Migrator, _ *migrate.Migration) error {
				return m.DB().RunInTx(ctx, nil, step.apply)
			},
		})
	}
	return ms
}

// legacyJobRow is a job as the schema kept it before definitions were
// stored as JSON, a column per field: what definitionsAsJSON reads.
type legacyJobRow struct {
	bun.BaseModel `bun:"table:jobs"`

	Name           string            `bun:"name,pk"`
	Command        string            `bun:"command"`
	Type           string            `bun:"type"`
	Schedule       string            `bun:"schedule"`
	Dir            string            `bun:"dir"`
	Env            map[string]string `bun:"env,type:json"`
	StopSignal     string            `bun:"stop_signal"`
	StopTimeout    time.Duration     `bun:"stop_timeout"`
	BackoffInitial time.Duration     `bun:"backoff_initial"`
	BackoffMax     time.Duration     `bun:"backoff_max"`
	MinUptime      time.Duration     `bun:"min_uptime"`
	MaxRetries     int               `bun:"max_retries"`
	KeepRuns       int               `bun:"keep_runs"`
	MaxLogBytes    int64             `bun:"max_log_bytes"`
	Overlap        string            `bun:"overlap"`
	RunAs          string            `bun:"run_as"`
	EnvFile        string            `bun:"env_file"`
	MaxRunLogBytes int64             `bun:"max_run_log_bytes"`
}

// definitionsAsJSON writes every job's definition into the def column, as
// the API would write it, then drops the columns it came from.
func definitionsAsJSON(ctx context.Context, tx bun.Tx) error {
	var rows []legacyJobRow
	if err := tx.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return err
	}
	for _, r := range rows {
		def, err := json.Marshal(Job{
			Name: r.Name, Command: r.Command, Type: Type(r.Type), Schedule: r.Schedule, Dir: r.Dir,
			Env: r.Env, StopSignal: r.StopSignal, StopTimeout: Duration(r.StopTimeout),
			BackoffInitial: Duration(r.BackoffInitial), BackoffMax: Duration(r.BackoffMax),
			MinUptime: Duration(r.MinUptime), MaxRetries: r.MaxRetries, KeepRuns: r.KeepRuns,
			MaxLogBytes: r.MaxLogBytes, Overlap: Overlap(r.Overlap), User: r.RunAs, EnvFile: r.EnvFile,
			MaxRunLogBytes: r.MaxRunLogBytes,
		})
		if err != nil {
			return fmt.Errorf("job %q: %w", r.Name, err)
		}
		if _, err := tx.NewUpdate().Table("jobs").Set("def = ?", string(def)).Where("name = ?", r.Name).Exec(ctx); err != nil {
			return err
		}
	}
	for _, c := range []string{"command", "type", "schedule", "dir", "env", "stop_signal", "stop_timeout",
		"backoff_initial", "backoff_max", "min_uptime", "max_retries", "keep_runs", "max_log_bytes", "overlap",
		"run_as", "env_file", "max_run_log_bytes"} {
		if _, err := tx.ExecContext(ctx, "ALTER TABLE jobs DROP COLUMN "+c); err != nil {
			return fmt.Errorf("drop column %s: %w", c, err)
		}
	}
	return nil
}
