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
)

// A second Manager on a database in use would take the first one's live runs
// for leftovers of a crash, kill them, and run the reboot jobs again. It must
// be refused, naming the holder, and change nothing.
func TestSecondOpenIsRefused(t *testing.T) {
	w := setup(t)
	boots := filepath.Join(w.dir, "boots")
	w.create(Job{Name: "boot", Command: "echo boot >> " + boots, Type: OneTime, Schedule: ScheduleReboot})
	w.waitFor("boot", StateExited)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	pid := w.waitFor("svc", StateRunning).PID
	if err := w.m.w.sync(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	files := func() map[string][]byte {
		out := map[string][]byte{}
		for _, suffix := range []string{"", "-wal", ".lock"} {
			b, _ := os.ReadFile(w.m.cfg.DBPath + suffix)
			out[suffix] = b
		}
		return out
	}
	before := files()

	_, err := Open(ctxT(t), w.m.cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second Open: %v, want ErrLocked naming pid %d", err, os.Getpid())
	}
	t.Log(err)
	for suffix, b := range files() {
		if !bytes.Equal(b, before[suffix]) {
			t.Errorf("the refused Open changed %s", filepath.Base(w.m.cfg.DBPath+suffix))
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

// The kernel releases the lock of a Manager that dies, however it dies: the
// next Open succeeds and recovers what it left.
func TestLockOfACrashedManagerIsReleased(t *testing.T) {
	db := filepath.Join(t.TempDir(), "procman.db")
	helper := startCrashingManager(t, db)
	cfg := Config{DBPath: db, LogDir: filepath.Join(filepath.Dir(db), "logs")}
	if _, err := Open(ctxT(t), cfg); !errors.Is(err, ErrLocked) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", helper.Process.Pid)) {
		t.Fatalf("Open beside a live Manager in another process: %v, want ErrLocked naming pid %d", err, helper.Process.Pid)
	}
	helper.Process.Signal(syscall.SIGKILL)
	helper.Wait()
	m, err := Open(ctxT(t), Config{DBPath: db, LogDir: cfg.LogDir, NoResume: true})
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	defer m.Shutdown(ctxT(t))
	if st, _ := m.State("svc"); st.State != StateUnknown {
		t.Fatalf("svc after the crash: %+v, want unknown", st)
	}
}
