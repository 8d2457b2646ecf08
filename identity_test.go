package procman

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A job created under the name of a deleted one is a new job: none of the
// old one's runs or logs are its own, now or after a restart.
func TestRecreatedJobHasNoHistory(t *testing.T) { eachDialect(t, testRecreatedJobHasNoHistory) }

func testRecreatedJobHasNoHistory(t *testing.T, d dialect) {
	w := setupOn(t, d)
	w.create(Job{Name: "j", Command: "echo old", Type: OneTime})
	w.start("j")
	w.waitFor("j", StateExited)
	if err := w.m.Delete(ctxT(t), "j"); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "j", Command: "echo new", Type: OneTime})
	noHistory := func(m *Manager) {
		t.Helper()
		if runs, err := m.Runs(ctxT(t), "j", RunsOptions{}); err != nil || len(runs) != 0 {
			t.Fatalf("runs of the new job: %+v %v, want none", runs, err)
		}
		if _, err := m.Logs(ctxT(t), "j", LogOptions{}); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not run yet") {
			t.Fatalf("logs of the never-run new job: %v, want not found", err)
		}
		if st, _ := m.State("j"); st.LastRun != nil {
			t.Fatalf("last_run of the new job: %+v", st.LastRun)
		}
	}
	noHistory(w.m)
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m := w.open(w.m.cfg)
	noHistory(m)
	if err := m.Start(ctxT(t), "j"); err != nil {
		t.Fatal(err)
	}
	m.WaitFor(ctxT(t), "j", StateExited)
	rc, err := m.Logs(ctxT(t), "j", LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, rc); got != "new\n" {
		t.Fatalf("log of the new job: %q", got)
	}
}

// A database of the schema before job identities: its runs go to the job of
// their name created before they started, so a re-created job's history is
// told from its predecessor's there too. (SQLite only: PostgreSQL's schema
// begins after identities.)
func TestMigrationGivesRunsToTheirJob(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "procman.db")
	s := &store{path: db, db: openSQLitePool(db, poolBusy, 1)}
	if err := s.migrateSQLite(ctxT(t), migrationsOf(sqliteMigrations()[:5])); err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) time.Time { return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC).Add(d) }
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO jobs (name, command, type, schedule, dir, stop_signal, stop_timeout, backoff_initial,
			backoff_max, min_uptime, max_retries, created_at, updated_at) VALUES ('j', 'true', 'one_time', '', '', '', 0, 0, 0, 0, 0, ?, ?)`,
			[]any{at(time.Hour), at(time.Hour)}},
		{`INSERT INTO runs (id, job, trigger, started_at, ended_at, pid, pgid, proc_start, signal, outcome, error,
			log_file, log_bytes, pruned) VALUES (?, 'j', 'manual', ?, ?, 1, 1, 1, '', 'exited', '', '', 0, 0)`,
			[]any{1, at(time.Minute), at(2 * time.Minute)}},
		{`INSERT INTO runs (id, job, trigger, started_at, ended_at, pid, pgid, proc_start, signal, outcome, error,
			log_file, log_bytes, pruned) VALUES (?, 'j', 'manual', ?, ?, 1, 1, 1, '', 'exited', '', '', 0, 0)`,
			[]any{2, at(2 * time.Hour), at(3 * time.Hour)}},
	} {
		if _, err := s.db.ExecContext(ctxT(t), q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	s.db.Close()

	m, err := Open(ctxT(t), Config{DBPath: db, LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctxT(t))
	runs, err := m.Runs(ctxT(t), "j", RunsOptions{})
	if err != nil || len(runs) != 1 || runs[0].ID != 2 {
		t.Fatalf("runs of j after the migration: %+v %v, want only run 2 (run 1 is an earlier j's)", runs, err)
	}
	if st, _ := m.State("j"); st.LastRun == nil || st.LastRun.ID != 2 {
		t.Fatalf("last_run of j: %+v", st.LastRun)
	}
	if err := m.Start(ctxT(t), "j"); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.WaitFor(ctxT(t), "j", StateExited); st.LastRun.ID != 3 {
		t.Fatalf("the next run is %d, want 3", st.LastRun.ID)
	}
}
