package procman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/pgtest"
	"go.uber.org/goleak"
)

// pg is the PostgreSQL server of the tests that run on both databases, each
// with a database of its own; pgRestarts is another, for the tests that
// restart it (pgfaults_test.go).
var pg, pgRestarts pgtest.Lazy

func TestMain(m *testing.M) {
	if h := os.Getenv(helperVar); h != "" { // this binary re-run as a helper process (helper_test.go)
		os.Exit(runHelper(h))
	}
	code := m.Run()
	pg.Stop()
	pgRestarts.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// dialect is a kind of database the Manager keeps its records in.
type dialect string

const (
	sqliteDB   dialect = "sqlite"
	postgresDB dialect = "postgres"
)

// eachDialect runs test once on SQLite and once on PostgreSQL, as subtests.
// The PostgreSQL one is skipped, saying so, only where PostgreSQL is not
// installed (pgtest; CI requires it).
func eachDialect(t *testing.T, test func(t *testing.T, d dialect)) {
	for _, d := range []dialect{sqliteDB, postgresDB} {
		t.Run(string(d), func(t *testing.T) { test(t, d) })
	}
}

// db returns a Config naming a new, empty database of dialect d (a file in
// dir for SQLite), with its logs in dir.
func (d dialect) db(t *testing.T, dir string) Config {
	t.Helper()
	cfg := Config{LogDir: filepath.Join(dir, "logs")}
	if d == postgresDB {
		cfg.Postgres = pg.DB(t)
	} else {
		cfg.DBPath = filepath.Join(dir, "procman.db")
	}
	return cfg
}

// setupOn is setup on a new database of dialect d.
func setupOn(t *testing.T, d dialect, cfgs ...Config) *world {
	t.Helper()
	var cfg Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	if d == postgresDB {
		cfg.Postgres = pg.DB(t)
	}
	return setup(t, cfg)
}

// openTestStore opens the store of cfg's database, which no Manager holds.
func openTestStore(t *testing.T, cfg Config) *store {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	db, err := cfg.database()
	if err != nil {
		t.Fatal(err)
	}
	s, err := openStore(ctxT(t), db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// world is one Manager in a temporary folder.
type world struct {
	t    *testing.T
	dir  string
	m    *Manager
	logs *bugLog
}

// bugLog fails the test when the Manager logs an invalid state transition,
// and keeps every message for the test to look at.
type bugLog struct {
	t    *testing.T
	mu   sync.Mutex
	msgs []string // each: the message, then its attributes
}

// has reports whether a message containing text was logged.
func (b *bugLog) has(text string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.msgs {
		if strings.Contains(m, text) {
			return true
		}
	}
	return false
}

func (b *bugLog) Enabled(context.Context, slog.Level) bool { return true }
func (b *bugLog) WithAttrs([]slog.Attr) slog.Handler       { return b }
func (b *bugLog) WithGroup(string) slog.Handler            { return b }
func (b *bugLog) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	r.Attrs(func(a slog.Attr) bool { sb.WriteString(" " + a.String()); return true })
	if r.Message == "invalid state transition" {
		b.t.Errorf("invalid state transition:%s", sb.String())
	}
	b.mu.Lock()
	b.msgs = append(b.msgs, r.Message+sb.String())
	b.mu.Unlock()
	return nil
}

func setup(t *testing.T, cfgs ...Config) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	var cfg Config
	if len(cfgs) > 0 {
		cfg = cfgs[0]
	}
	if cfg.DBPath == "" && cfg.Postgres == "" {
		cfg.DBPath = filepath.Join(dir, "procman.db")
	}
	cfg.LogDir = filepath.Join(dir, "logs")
	cfg.Logger = slog.New(w.logs)
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 2 * time.Second
	}
	w.m = w.open(cfg)
	return w
}

func (w *world) open(cfg Config) *Manager {
	w.t.Helper()
	m, err := Open(context.Background(), cfg)
	if err != nil {
		w.t.Fatalf("Open: %v", err)
	}
	return w.owned(m)
}

// owned shuts m down when the test ends.
func (w *world) owned(m *Manager) *Manager {
	w.t.Cleanup(func() {
		// A test that forced a shutdown already saw its deadline error.
		if err := m.Shutdown(context.Background()); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			w.t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

// openAfterCrash is open after the database's last holder was killed. On
// PostgreSQL its lock goes once the server sees the dead process's connection
// close, a moment later: Open is tried again while it is refused for that.
func (w *world) openAfterCrash(cfg Config) *Manager {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, err := Open(context.Background(), cfg)
		if err == nil {
			return w.owned(m)
		}
		if !errors.Is(err, ErrLocked) || time.Now().After(deadline) {
			w.t.Fatalf("Open after the holder was killed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (w *world) create(j Job) {
	w.t.Helper()
	if err := w.m.Create(ctxT(w.t), j); err != nil {
		w.t.Fatalf("Create %s: %v", j.Name, err)
	}
}

func (w *world) start(name string) {
	w.t.Helper()
	if err := w.m.Start(ctxT(w.t), name); err != nil {
		w.t.Fatalf("Start %s: %v", name, err)
	}
}

// startFails starts a job whose first run must fail to start.
func (w *world) startFails(name string) {
	w.t.Helper()
	if err := w.m.Start(ctxT(w.t), name); !errors.Is(err, ErrStartFailed) {
		w.t.Fatalf("Start %s: %v, want ErrStartFailed", name, err)
	}
}

func (w *world) stop(name string) {
	w.t.Helper()
	if err := w.m.Stop(ctxT(w.t), name); err != nil {
		w.t.Fatalf("Stop %s: %v", name, err)
	}
}

func (w *world) waitFor(name string, states ...State) Status {
	w.t.Helper()
	st, err := w.m.WaitFor(ctxT(w.t), name, states...)
	if err != nil {
		w.t.Fatalf("WaitFor %s %v: %v", name, states, err)
	}
	return st
}

func (w *world) until(name string, what string, ok func(Status) bool) Status {
	w.t.Helper()
	st, err := w.m.waitUntil(ctxT(w.t), name, ok)
	if err != nil {
		w.t.Fatalf("waiting for %s: %s: %v", name, what, err)
	}
	return st
}

// logFiles lists the job's log files, oldest first.
func (w *world) logFiles(name string) []string {
	w.t.Helper()
	ents, err := os.ReadDir(filepath.Join(w.dir, "logs", name))
	if err != nil && !os.IsNotExist(err) {
		w.t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(w.dir, "logs", name, e.Name()))
	}
	return out
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gone reports whether pid has exited. A zombie counts as gone: an init that
// does not reap leaves killed orphans as zombies.
func gone(pid int) bool {
	st, ok := osproc.ReadStat(pid)
	return !ok || !st.Alive()
}

// waitGone polls until pid is gone or the deadline passes.
func waitGone(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive after %s", pid, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readPid polls for a pid file written by a job and returns its pid.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if s := strings.TrimSpace(string(b)); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("pid file %s: %v", path, err)
			}
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file %s not written", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// insertOpenRun records a run of the job named row.Job in cfg's database,
// which no Manager holds, as a ProcMan of this host that died would have left it.
func insertOpenRun(t *testing.T, cfg Config, row runRow) {
	t.Helper()
	ctx := ctxT(t)
	s := openTestStore(t, cfg)
	defer s.close()
	if err := s.db.NewRaw("SELECT id FROM jobs WHERE name = ?", row.Job).Scan(ctx, &row.JobID); err != nil {
		t.Fatalf("job %s: %v", row.Job, err)
	}
	last, err := s.lastRunIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	row.ID, row.Host = last[row.JobID]+1, thisHost()
	if err := insertRun(ctx, s.db, &row); err != nil {
		t.Fatal(err)
	}
}
