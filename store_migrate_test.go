package procman

import (
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// A database of the schema with a column per field: each definition, every
// field set, reads back the same once kept as JSON.
func TestDefinitionsMoveIntoJSON(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "procman.db")
	s := &store{path: db, db: openPool(db, poolBusy, 1)}
	steps := migrationSteps()
	if err := s.init(ctxT(t), migrationsOf(steps[:len(steps)-1])); err != nil {
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
