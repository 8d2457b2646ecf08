package procman

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A database of the schema with a column per field: each definition, every
// field set, reads back the same once kept as JSON. (SQLite only: PostgreSQL's
// schema begins with JSON.)
func TestDefinitionsMoveIntoJSON(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "procman.db")
	s := &store{path: db, db: openSQLitePool(db, poolBusy, 1)}
	steps := sqliteMigrations()
	if err := s.migrateSQLite(ctxT(t), migrationsOf(steps[:9])); err != nil {
		t.Fatal(err)
	}
	// Every field the columns held; fields added since have no column to come from.
	want := Job{Name: "full", Command: "sleep 100", Type: Continuous, Schedule: "@every 1h", Dir: dir,
		EnvFile: "app.env", User: "nobody", StopSignal: "INT", StopTimeout: dur(3 * time.Second),
		BackoffInitial: dur(time.Second), BackoffMax: dur(time.Minute), MinUptime: dur(5 * time.Second),
		MaxRetries: 3, KeepRuns: 7, MaxLogBytes: 1 << 20, MaxRunLogBytes: 1 << 22}
	_, err := s.db.ExecContext(ctxT(t), `INSERT INTO jobs (name, id, command, type, schedule, dir, env, stop_signal,
		stop_timeout, backoff_initial, backoff_max, min_uptime, max_retries, keep_runs, max_log_bytes, overlap,
		run_as, env_file, max_run_log_bytes, created_at, updated_at)
		VALUES (?, 'abc', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		want.Name, want.Command, want.Type, want.Schedule, want.Dir, `{"A":"1","B":"two words"}`, want.StopSignal,
		time.Duration(want.StopTimeout), time.Duration(want.BackoffInitial), time.Duration(want.BackoffMax),
		time.Duration(want.MinUptime), want.MaxRetries, want.KeepRuns, want.MaxLogBytes, want.Overlap,
		want.User, want.EnvFile, want.MaxRunLogBytes, time.Now().UTC(), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	s.db.Close()
	want.Env = map[string]string{"A": "1", "B": "two words"}

	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	m := w.open(Config{DBPath: db, LogDir: filepath.Join(dir, "logs")})
	got, err := m.Get("full")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the migration:\n got %+v\nwant %+v", got, want)
	}
}

// A SQLite database of the schema with run IDs unique overall: the runs
// table is rebuilt keyed by job and ID, every run keeps its ID, and each job
// numbers its next runs after its own last one.
func TestRunIDsBecomePerJob(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "procman.db")
	s := &store{path: db, db: openSQLitePool(db, poolBusy, 1)}
	if err := s.migrateSQLite(ctxT(t), migrationsOf(sqliteMigrations()[:10])); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.db.ExecContext(ctxT(t), q, args...); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"a", "b"} {
		exec(`INSERT INTO jobs (name, id, wanted, def, created_at, updated_at) VALUES (?, ?, 0, ?, ?, ?)`,
			name, "id-"+name, `{"name":"`+name+`","command":"true","type":"one_time"}`, now, now)
	}
	// a ran 1 and 3, b 2 and 4; 5 belonged to a job since deleted, and 6 was pruned.
	for id, job := range map[int]string{1: "a", 2: "b", 3: "a", 4: "b", 5: "", 6: "b"} {
		exec(`INSERT INTO runs (id, job, job_id, trigger, started_at, ended_at, pid, pgid, proc_start, signal, outcome,
			error, log_file, log_bytes, pruned) VALUES (?, ?, ?, 'manual', ?, ?, 1, 1, 1, '', 'exited', '', '', 0, 0)`,
			id, job+"x", map[string]string{"a": "id-a", "b": "id-b", "": ""}[job], now, now)
	}
	exec(`DELETE FROM runs WHERE id = 6`)
	s.db.Close()

	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	m := w.open(Config{DBPath: db, LogDir: filepath.Join(dir, "logs")})
	for name, want := range map[string][]int64{"a": {3, 1}, "b": {4, 2}} {
		runs, err := m.Runs(ctxT(t), name, RunsOptions{})
		if err != nil || len(runs) != 2 || runs[0].ID != want[0] || runs[1].ID != want[1] || runs[0].Host != "" {
			t.Fatalf("runs of %s after the migration: %+v %v, want IDs %v and no host", name, runs, err, want)
		}
	}
	for name, want := range map[string]int64{"a": 4, "b": 5} {
		if err := m.Start(ctxT(t), name); err != nil {
			t.Fatal(err)
		}
		st, _ := m.WaitFor(ctxT(t), name, StateExited)
		run, err := m.Run(ctxT(t), name, st.LastRun.ID)
		if err != nil || run.ID != want || run.Host != thisHost() {
			t.Fatalf("the next run of %s: %+v %v, want ID %d on host %s", name, run, err, want, thisHost())
		}
	}
}

// ProcMans opening a new PostgreSQL database at once take turns migrating
// it: each finds the schema as the one before left it.
func TestPostgresMigrationsTakeTurns(t *testing.T) {
	d, err := Config{Postgres: pg.DB(t)}.database()
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error)
	for range 4 {
		go func() {
			db := openPGPool(d.pg, poolBusy, 1)
			defer db.Close()
			errs <- migratePostgres(ctxT(t), db, postgresMigrations())
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent migration: %v", err)
		}
	}
	db := openPGPool(d.pg, poolBusy, 1)
	defer db.Close()
	var versions []int
	if err := db.NewRaw("SELECT version FROM procman_schema ORDER BY version").Scan(ctxT(t), &versions); err != nil {
		t.Fatal(err)
	}
	if len(versions) != len(postgresMigrations()) {
		t.Fatalf("schema versions recorded: %v, want each once", versions)
	}
}

// A migration's lock is its transaction's: a ProcMan that dies holding it
// (here a connection that ends without a word in the middle of it) leaves
// nothing locked, and the next one migrates. A version that fails leaves the
// schema as it was.
func TestPostgresMigrationLockDiesWithItsHolder(t *testing.T) {
	dsn := pg.DB(t)
	d, err := Config{Postgres: dsn}.database()
	if err != nil {
		t.Fatal(err)
	}
	db := openPGPool(d.pg, poolBusy, 1)
	defer db.Close()
	broken := append(postgresMigrations(), migrationStep{sql: []string{"SELECT no_such_column FROM jobs"}})
	if err := migratePostgres(ctxT(t), db, broken); err == nil {
		t.Fatal("a failing version was applied")
	}
	var tables int
	if err := db.NewRaw("SELECT count(*) FROM pg_tables WHERE tablename IN ('jobs', 'procman_schema')").Scan(ctxT(t), &tables); err != nil || tables != 0 {
		t.Fatalf("%d tables left by the failed migration (%v), want none", tables, err)
	}

	holder, err := pgx.Connect(ctxT(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := holder.Begin(ctxT(t))
	if err == nil {
		_, err = tx.Exec(ctxT(t), "SELECT pg_advisory_xact_lock($1)", advisoryKey(migrationLockName))
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- migratePostgres(ctxT(t), db, postgresMigrations()) }()
	eventually(t, "the migration waiting for the lock", func() bool {
		var waiting int
		tx.QueryRow(ctxT(t), "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").Scan(&waiting)
		return waiting == 1
	})
	holder.PgConn().Conn().Close() // the socket closes as the process dies: no ROLLBACK, no unlock
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the migration still waits for the lock of a connection that is gone")
	}
}

// A database of the schema before runs kept their cost gets the columns;
// its runs read back with no cost, and a new run records one.
func TestRunsGainTheirCost(t *testing.T) { eachDialect(t, testRunsGainTheirCost) }

func testRunsGainTheirCost(t *testing.T, d dialect) {
	dir := t.TempDir()
	cfg := d.db(t, dir)
	var s *store
	if d == postgresDB {
		db, err := Config{Postgres: cfg.Postgres}.database()
		if err != nil {
			t.Fatal(err)
		}
		s = &store{pg: true, db: openPGPool(db.pg, poolBusy, 1)}
		steps := postgresMigrations()
		err = migratePostgres(ctxT(t), s.db, steps[:len(steps)-1])
		if err != nil {
			t.Fatal(err)
		}
	} else {
		s = &store{path: cfg.DBPath, db: openSQLitePool(cfg.DBPath, poolBusy, 1)}
		steps := sqliteMigrations()
		if err := s.migrateSQLite(ctxT(t), migrationsOf(steps[:len(steps)-1])); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for _, q := range []string{
		`INSERT INTO jobs (name, id, wanted, def, created_at, updated_at) VALUES ('old', 'id-old', false, '{"name":"old","command":"true","type":"one_time"}', ?, ?)`,
		`INSERT INTO runs (job_id, id, job, host, trigger, started_at, ended_at, pid, pgid, proc_start, signal, outcome,
			error, log_file, log_bytes, pruned) VALUES ('id-old', 1, 'old', '', 'manual', ?, ?, 1, 1, 1, '', 'exited', '', '', 0, false)`,
	} {
		if _, err := s.db.ExecContext(ctxT(t), q, now, now); err != nil {
			t.Fatal(err)
		}
	}
	s.db.Close()
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	m := w.open(cfg)
	w.m = m
	if r := w.runs("old")[0]; r.CPUUserSeconds != nil || r.MaxRSSBytes != nil {
		t.Errorf("a run of the old schema has a cost: %+v", r)
	}
	w.start("old")
	w.waitFor("old", StateExited)
	if r := w.runs("old")[0]; r.ID != 2 || r.CPUUserSeconds == nil || r.MaxRSSBytes == nil || *r.MaxRSSBytes <= 0 {
		t.Errorf("a new run: %+v, want its cost", r)
	}
}
