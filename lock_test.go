package procman

import (
	"bytes"
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
	// A live host's heartbeat rewrites its row's heartbeat and lease: the
	// rest of the row is what a refused Open must leave.
	for table, cols := range map[string]string{"jobs": "*", "runs": "*", "health": "*", "procman_schema": "*",
		"hosts": "name, epoch, advertise, version, pid, started_at"} {
		var rows string
		err := conn.QueryRow(ctx, "SELECT coalesce(json_agg(t ORDER BY t::text)::text, '') FROM (SELECT "+cols+" FROM "+table+") t").Scan(&rows)
		if err != nil {
			t.Fatal(err)
		}
		out["table "+table] = []byte(rows)
	}
	return out
}

// The lock of a Manager that dies, however it dies, is released (by the
// kernel; on PostgreSQL, the next ProcMan on its machine sees its process
// gone, long before its lease ends): the next Open succeeds and recovers what
// it left.
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
		return Open(ctxT(t), Config{Postgres: dsn, LogDir: filepath.Join(dir, host), Host: host})
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
