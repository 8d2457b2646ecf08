package procman

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// pingFails checks that Ping reports the database unwritable, saying why.
func (w *world) pingFails(why string) {
	w.t.Helper()
	err := w.m.Ping(ctxT(w.t))
	if err == nil || !strings.Contains(err.Error(), why) {
		w.t.Fatalf("Ping: %v, want an error saying %q", err, why)
	}
	w.t.Log(err)
}

// SQLite goes on writing to a database file deleted or replaced under it, and
// all of that is lost when ProcMan stops: Ping must say so.
func TestPingNoticesDeletedOrReplacedDatabase(t *testing.T) {
	w := setup(t)
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	db := w.m.cfg.DBPath
	if err := os.Rename(db, db+".moved"); err != nil {
		t.Fatal(err)
	}
	w.pingFails("was deleted")
	if err := os.WriteFile(db, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.pingFails("was replaced")
	if err := os.Rename(db+".moved", db); err != nil {
		t.Fatal(err)
	}
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping with the file back: %v", err)
	}
}

// A database made read-only (here: immutable) can no longer be opened for
// writing, so the next ProcMan would fail to start: Ping must say so now.
func TestPingNoticesReadOnlyDatabase(t *testing.T) {
	w := setup(t)
	db := w.m.cfg.DBPath
	if out, err := exec.Command("chattr", "+i", db).CombinedOutput(); err != nil {
		t.Skipf("cannot make the database immutable (needs root and a file system that supports it): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { exec.Command("chattr", "-i", db).Run() }) // before the folder is removed
	w.pingFails("cannot be written")
	if out, err := exec.Command("chattr", "-i", db).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v: %s", err, out)
	}
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping once writable again: %v", err)
	}
}

// On a full disk Ping fails, runs go on, and their records are written once
// there is room again.
func TestFullDiskUnderTheDatabase(t *testing.T) {
	mnt := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root with CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { // registered first, so it runs after the Manager's shutdown
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	w := setup(t, Config{DBPath: filepath.Join(mnt, "procman.db")})
	w.create(Job{Name: "a", Command: "true", Type: OneTime})
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	w.pingFails("disk is full")
	for range 3 {
		w.start("a")
		w.waitFor("a", StateExited)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Ping healthy with room again", func() bool { return w.m.Ping(ctxT(t)) == nil })
	w.allRecorded("a")
}
