package procman

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"
	bundialect "github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// store persists job definitions and run history. It is the only code that
// sees bun or driver errors: everything it returns is either nil, a ProcMan
// sentinel, or a wrapped database fault.
//
// It has two handles on the database: db, a small pool for reads, and wdb,
// one connection for every write: the writer's (writer.go) and the
// definitions', whose callers wait for them. ProcMan's writes then take
// turns on that connection instead of making each other wait inside SQLite,
// whose busy handler sleeps, and a write waits for another program's lock
// for writerBusy at most.
type store struct {
	db     *bun.DB
	wdb    *bun.DB
	pg     bool        // PostgreSQL (store_pg.go); else SQLite
	path   string      // SQLite's file
	file   os.FileInfo // that file as opened: health.go notices it deleted or replaced
	closed atomic.Bool // reads that come in as the Manager shuts down get ErrClosed, not a driver error
}

// Busy timeouts: how long a statement waits for another connection's lock
// (SQLite's busy_timeout, PostgreSQL's lock_timeout). SQLite's wait ignores
// the context, so these bound it. A definition write's caller learns of a
// failure after writerBusy; the writer retries anyway, and a short wait keeps
// its shutdown drain within its bound.
const (
	poolBusy   = 5 * time.Second
	writerBusy = time.Second
	poolConns  = 4 // concurrent readers; neither SQLite in WAL mode nor PostgreSQL makes them wait for a writer
)

type jobRow struct {
	bun.BaseModel `bun:"table:jobs"`

	Name string `bun:"name,pk"`
	// ID names this incarnation of the job: a job deleted and created again
	// under its name is another job, with a history of its own. Random, so
	// that hosts sharing a database never need to agree on one.
	ID     string `bun:"id,notnull"`
	Wanted bool   `bun:"wanted,notnull"` // desired.go
	// Def is the definition as the API writes it (the Job's JSON): a new
	// field of Job needs no column and no migration.
	Def string `bun:"def,notnull"`
	// Source is who made the job: SourceAPI, or the document it was applied
	// from (Manager.Apply), whose prune may delete it.
	Source string `bun:"source,notnull"`
	// Home is the host the job was created on, which runs it unless its
	// definition names another (Job.Host); not part of the definition, so
	// that a document applied through any host stays as it was.
	Home      string    `bun:"home,notnull"`
	CreatedAt time.Time `bun:"created_at,notnull"`
	UpdatedAt time.Time `bun:"updated_at,notnull"`
}

// checkDBPath refuses, before anything is created, a database path SQLite
// would report as "out of memory" or "unable to open": it says what is wrong.
func checkDBPath(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return fmt.Errorf("open database %s: is a directory", path)
	}
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	return nil
}

// openStore opens the database d names, and brings its schema up to date.
func openStore(ctx context.Context, d database) (*store, error) {
	if d.pg != nil {
		return openPostgres(ctx, d)
	}
	return openSQLite(ctx, d.path)
}

func openSQLite(ctx context.Context, path string) (*store, error) {
	if err := checkDBPath(path); err != nil {
		return nil, err
	}
	s := &store{path: path, db: openSQLitePool(path, poolBusy, poolConns)}
	if err := s.migrateSQLite(ctx, migrationsOf(sqliteMigrations())); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	s.file, s.wdb = fi, openSQLitePool(path, writerBusy, 1)
	return s, nil
}

// openSQLitePool opens a handle of up to conns connections, each set up alike.
// Transactions begin IMMEDIATE: one that reads and then writes (retention)
// must not fail on upgrading its lock, which no busy timeout would retry.
func openSQLitePool(path string, busy time.Duration, conns int) *bun.DB {
	name := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?_txlock=immediate"
	sqldb := sql.OpenDB(connector{name: name, setup: []string{
		fmt.Sprintf("PRAGMA busy_timeout = %d", busy.Milliseconds()),
		"PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"}})
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns) // kept open: SQLite's per-connection setup and caches are not free
	return bun.NewDB(sqldb, sqlitedialect.New())
}

// connector runs setup on each new connection, whichever driver sqliteshim
// picked: per-connection pragmas then hold for every statement of a pool.
type connector struct {
	name  string
	setup []string
}

func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Driver().Open(c.name)
	if err != nil {
		return nil, err
	}
	ex, ok := conn.(driver.ExecerContext)
	if !ok {
		conn.Close()
		return nil, errors.New("the SQLite driver cannot run statements on a connection")
	}
	for _, q := range c.setup {
		if _, err := ex.ExecContext(ctx, q, nil); err != nil {
			conn.Close()
			return nil, err
		}
	}
	return conn, nil
}

func (c connector) Driver() driver.Driver { return sqliteshim.Driver() }

func (s *store) close() error {
	s.closed.Store(true)
	return errors.Join(s.wdb.Close(), s.db.Close())
}

// newJobID returns a new job identity: 128 random bits, as hex.
func newJobID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// storedJob is a job as loaded at Open.
type storedJob struct {
	Job
	id     string
	source string
	home   string
	wanted bool
}

func (s *store) insert(ctx context.Context, id, home string, j Job) error {
	return insertJob(ctx, s.wdb, id, SourceAPI, home, j)
}

func insertJob(ctx context.Context, db bun.IDB, id, source, home string, j Job) error {
	row := toRow(j)
	row.ID, row.Source, row.Home = id, source, home
	row.CreatedAt = time.Now().UTC()
	row.UpdatedAt = row.CreatedAt
	if _, err := db.NewInsert().Model(&row).Exec(ctx); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("create %q: %w", j.Name, ErrExists)
		}
		return fmt.Errorf("create %q: %w", j.Name, err)
	}
	return nil
}

// update saves a new definition of job id. Its identity, source and desired
// state are not the definition's: they stay. Like every query of one job, it
// names the incarnation (name and id), never a later job of the same name.
func (s *store) update(ctx context.Context, id string, j Job) error {
	return updateJob(ctx, s.wdb, id, j)
}

func updateJob(ctx context.Context, db bun.IDB, id string, j Job) error {
	row := toRow(j)
	row.UpdatedAt = time.Now().UTC()
	res, err := db.NewUpdate().Model(&row).ExcludeColumn("created_at", "id", "wanted", "source", "home").
		Where("name = ? AND id = ?", j.Name, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("replace %q: %w", j.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("replace %q: %w", j.Name, ErrNotFound)
	}
	return nil
}

func (s *store) delete(ctx context.Context, id, name string) error {
	return deleteJob(ctx, s.wdb, id, name)
}

func deleteJob(ctx context.Context, db bun.IDB, id, name string) error {
	res, err := db.NewDelete().Model((*jobRow)(nil)).Where("name = ? AND id = ?", name, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("delete %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete %q: %w", name, ErrNotFound)
	}
	if db.Dialect().Name() == bundialect.PG { // its status goes with it (mirror.go)
		if _, err := db.NewRaw("DELETE FROM job_status WHERE job_id = ?", id).Exec(ctx); err != nil {
			return fmt.Errorf("delete %q: %w", name, err)
		}
	}
	return nil
}

// changeSet is the definition writes of one Manager.Apply.
type changeSet struct {
	create []createdJob
	update []storedJob // id and the new definition
	remove []storedJob // id and name
}

// names lists the jobs cs changes.
func (cs changeSet) names() []string {
	var out []string
	for _, c := range cs.create {
		out = append(out, c.job.Name)
	}
	for _, u := range append(slices.Clone(cs.update), cs.remove...) {
		out = append(out, u.Name)
	}
	return out
}

type createdJob struct {
	id, source string
	job        Job
}

// apply writes every change of cs in one transaction: all of them, or (on
// any error, which the caller gets) none.
func (s *store) apply(ctx context.Context, home string, cs changeSet) error {
	return s.wdb.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		for _, r := range cs.remove { // first: a job deleted and created again under its name is a new one
			if err := deleteJob(ctx, tx, r.id, r.Name); err != nil {
				return err
			}
		}
		for _, c := range cs.create {
			if err := insertJob(ctx, tx, c.id, c.source, home, c.job); err != nil {
				return err
			}
		}
		for _, u := range cs.update {
			if err := updateJob(ctx, tx, u.id, u.Job); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *store) all(ctx context.Context) ([]storedJob, error) {
	var rows []jobRow
	if err := s.db.NewSelect().Model(&rows).Order("name").Scan(ctx); err != nil {
		return nil, fmt.Errorf("load jobs: %w", err)
	}
	jobs := make([]storedJob, len(rows))
	for i, r := range rows {
		j, err := r.job()
		if err != nil {
			return nil, fmt.Errorf("load jobs: %w", err)
		}
		jobs[i] = storedJob{Job: j, id: r.ID, source: r.Source, home: r.Home, wanted: r.Wanted}
	}
	return jobs, nil
}

// floatingOwners gives the owner of every floating job some other live
// host holds, by job ID (PostgreSQL; none on SQLite).
func (s *store) floatingOwners(ctx context.Context, me string) (map[string]string, error) {
	out := map[string]string{}
	if !s.pg {
		return out, nil
	}
	var rows []struct{ ID, Owner string }
	err := s.db.NewRaw(`SELECT j.id, j.owner FROM jobs j JOIN hosts h ON h.name = j.owner
		WHERE j.floating AND j.owner <> ? AND h.lease_until > now()`, me).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("load jobs: %w", err)
	}
	for _, r := range rows {
		out[r.ID] = r.Owner
	}
	return out, nil
}

// disown clears the owner of job id, whose host changed: a job that floats
// again is claimed afresh (PostgreSQL; nothing to do on SQLite).
func (s *store) disown(ctx context.Context, id string) error {
	if !s.pg {
		return nil
	}
	if _, err := s.wdb.NewRaw("UPDATE jobs SET owner = NULL, owner_epoch = 0 WHERE id = ?", id).Exec(ctx); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return nil
}

// adoptHomeless makes host the home of the jobs that have none: those of a
// schema from before hosts had jobs of their own, made by the one ProcMan
// the database then had.
func (s *store) adoptHomeless(ctx context.Context, host string) error {
	if _, err := s.wdb.NewUpdate().Model((*jobRow)(nil)).Set("home = ?", host).Where("home = ''").Exec(ctx); err != nil {
		return fmt.Errorf("load jobs: %w", err)
	}
	return nil
}

// setWanted records the desired state of job id, named name (desired.go). A
// job deleted meanwhile has no row: nothing to do.
func setWanted(ctx context.Context, db bun.IDB, name, id string, wanted bool) error {
	_, err := db.NewUpdate().Model((*jobRow)(nil)).Set("wanted = ?", wanted).Where("name = ? AND id = ?", name, id).Exec(ctx)
	if err != nil {
		return fmt.Errorf("record desired state: %w", err)
	}
	return nil
}

// writeProbe returns the write of host's health row: one that must commit
// (health.go). Each host has its row, so that hosts sharing a database do
// not take turns on one.
func writeProbe(host string) func(context.Context, bun.IDB) error {
	return func(ctx context.Context, db bun.IDB) error {
		_, err := db.NewRaw(`INSERT INTO health (host, written_at) VALUES (?, ?)
			ON CONFLICT (host) DO UPDATE SET written_at = excluded.written_at`, host, time.Now().UTC()).Exec(ctx)
		if err != nil {
			return fmt.Errorf("health probe: %w", err)
		}
		return nil
	}
}

func toRow(j Job) jobRow {
	def, _ := json.Marshal(j) // a Job always encodes
	return jobRow{Name: j.Name, Def: string(def)}
}

// job decodes the stored definition. It is ProcMan's own writing, so it is
// read leniently: a field a later version wrote and this one lacks is
// ignored, not an error that would keep the Manager from opening.
func (r jobRow) job() (Job, error) {
	var j Job
	if err := json.Unmarshal([]byte(r.Def), &j); err != nil {
		return Job{}, fmt.Errorf("job %q: stored definition: %w", r.Name, err)
	}
	j.Name = r.Name
	return j, nil
}
