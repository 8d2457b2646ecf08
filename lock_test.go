package procman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A second Manager on a database in use would take the first one's live runs
// for leftovers of a crash, kill them, and run the reboot jobs again. It must
// be refused, naming the holder, and change nothing.
func TestSecondOpenIsRefused(t *testing.T) { eachDialect(t, testSecondOpenIsRefused) }

func testSecondOpenIsRefused(t *testing.T, d dialect) {
	w := setupOn(t, d)
	boots := filepath.Join(w.dir, "boots")
	w.create(Job{Name: "boot", Command: "echo boot >> " + boots, Type: OneTime, Schedule: ScheduleReboot})
	w.waitFor("boot", StateExited)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	pid := w.waitFor("svc", StateRunning).PID
	if err := w.m.w.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	before := dbSnapshot(t, w.m.cfg)

	_, err := Open(ctxT(t), w.m.cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	t.Log(err)
	for what, b := range dbSnapshot(t, w.m.cfg) {
		if !bytes.Equal(b, before[what]) {
			t.Errorf("the refused Open changed %s", what)
		}
	}
	if st := w.waitFor("svc", StateRunning); st.PID != pid || gone(pid) {
		t.Fatalf("svc after the refused Open: %+v, want still pid %d", st, pid)
	}
	if got := readFile(t, boots); got != "boot\n" {
		t.Fatalf("the reboot job ran again: %q", got)
	}
	if runs := w.runs("svc"); len(runs) != 1 || runs[0].EndedAt != nil {
		t.Fatalf("svc's runs after the refused Open: %+v", runs)
	}

	// Shutdown releases the database.
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	w.open(w.m.cfg)
}

// dbSnapshot is what a refused Open must not change: SQLite's files, or
// every row of PostgreSQL's tables.
func dbSnapshot(t *testing.T, cfg Config) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if cfg.Postgres == "" {
		for _, suffix := range []string{"", "-wal", ".lock"} {
			b, _ := os.ReadFile(cfg.DBPath + suffix)
			out[filepath.Base(cfg.DBPath+suffix)] = b
		}
		return out
	}
	ctx := ctxT(t)
	conn, err := pgx.Connect(ctx, cfg.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, table := range []string{"jobs", "runs", "health", "procman_schema"} {
		var rows string
		err := conn.QueryRow(ctx, "SELECT coalesce(json_agg(t ORDER BY t::text)::text, '') FROM "+table+" t").Scan(&rows)
		if err != nil {
			t.Fatal(err)
		}
		out["table "+table] = []byte(rows)
	}
	return out
}

// The lock of a Manager that dies, however it dies, is released (by the
// kernel, or by PostgreSQL once the connection closes): the next Open
// succeeds and recovers what it left.
func TestLockOfACrashedManagerIsReleased(t *testing.T) {
	eachDialect(t, testLockOfACrashedManagerIsReleased)
}

func testLockOfACrashedManagerIsReleased(t *testing.T, d dialect) {
	w := &world{t: t, dir: t.TempDir(), logs: &bugLog{t: t}}
	cfg := d.db(t, w.dir)
	helper := startCrashingManager(t, cfg)
	if _, err := Open(ctxT(t), cfg); !errors.Is(err, ErrLocked) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", helper.Process.Pid)) {
		t.Fatalf("Open beside a live Manager in another process: %v, want ErrLocked naming pid %d", err, helper.Process.Pid)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	cfg.NoResume = true
	m := w.openAfterCrash(cfg)
	if st, _ := m.State("svc"); st.State != StateUnknown {
		t.Fatalf("svc after the crash: %+v, want unknown", st)
	}
}

// On PostgreSQL the lock is the host's: Managers of two hosts share a
// database, two of one host do not.
func TestPostgresLockIsPerHost(t *testing.T) {
	dsn := pg.DB(t)
	dir := t.TempDir()
	w := &world{t: t, dir: dir, logs: &bugLog{t: t}}
	open := func(host string) (*Manager, error) {
		return Open(ctxT(t), Config{Postgres: dsn, LogDir: filepath.Join(dir, host), host: host})
	}
	a, err := open("host-a")
	if err != nil {
		t.Fatal(err)
	}
	w.owned(a)
	b, err := open("host-b")
	if err != nil {
		t.Fatalf("Open as another host: %v", err)
	}
	w.owned(b)
	if _, err := open("host-a"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "host-a") {
		t.Fatalf("a second Open as host-a: %v, want ErrLocked naming host-a", err)
	}
}

// The connection holding the lock is lost (here its session is ended, and
// another session takes the lock before ProcMan can): ProcMan goes on, Ping
// says the lock is not held and by whom, and once the other lets go ProcMan
// holds it again.
func TestPostgresLockLostAndTakenAgain(t *testing.T) {
	w := setupOn(t, postgresDB)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	cfg, err := pgx.ParseConfig(w.m.cfg.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["application_name"] = "a test that took the lock"
	thief, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Close(context.Background())
	// Ends ProcMan's lock session, and waits for its lock, which is granted as
	// that session ends: before ProcMan, which learns of it from its socket,
	// can ask again.
	_, err = thief.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, fmt.Sprintf("procman pid %d on %s", os.Getpid(), w.m.cfg.host))
	if err == nil {
		_, err = thief.Exec(ctx, "SELECT pg_advisory_lock($1)", hostLockKey(w.m.cfg.host))
	}
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ping naming the other holder", func() bool {
		err := w.m.Ping(ctxT(t))
		return err != nil && errors.Is(err, ErrLocked) && strings.Contains(err.Error(), "a test that took the lock")
	})
	t.Log(w.m.Ping(ctxT(t)))
	if st, _ := w.m.State("svc"); st.State != StateRunning {
		t.Fatalf("svc while the lock is lost: %+v", st)
	}
	if _, err := thief.Exec(ctx, "SELECT pg_advisory_unlock($1)", hostLockKey(w.m.cfg.host)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ping healthy once the lock is held again", func() bool { return w.m.Ping(ctxT(t)) == nil })
	if !w.logs.has("database lock lost") || !w.logs.has("database lock held again") {
		t.Error("the lost and regained lock was not logged")
	}
}
