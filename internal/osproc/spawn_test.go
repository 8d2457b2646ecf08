//go:build linux

package osproc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// output is a file for a process's output, read back with read.
func output(t *testing.T) (f *os.File, read func() string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// exitCode waits for p and returns its exit code, failing the test if it
// did not exit by itself.
func exitCode(t *testing.T, p *Proc) int {
	t.Helper()
	ws, err := p.Exit()
	if err != nil || !ws.Exited() {
		t.Fatalf("process %d: status %v, err %v; want an exit", p.Pid, ws, err)
	}
	return ws.ExitStatus()
}

// The program runs in the folder, with the environment, writing into the
// file given; its exit code comes back through Exit.
func TestStartGroupRunsTheSpec(t *testing.T) {
	rp := newTestReaper(t, false)
	out, read := output(t)
	dir := t.TempDir()
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", `echo "$GREETING"; pwd; echo oops >&2; exit 7`},
		Dir: dir, Env: []string{"GREETING=hello"}, Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, p); code != 7 {
		t.Errorf("exit code %d, want 7", code)
	}
	if got, want := read(), "hello\n"+dir+"\noops\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// The leader's pid is its group's id, and Start names it as /proc does.
func TestStartGroupLeadsAGroupOfItsOwn(t *testing.T) {
	rp := newTestReaper(t, false)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000 & wait"}})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := ReadStat(p.Pid)
	if !ok || st.PGID != p.Pid || p.Start == 0 || st.Start != p.Start {
		t.Errorf("leader %d: %+v (ok %v), start %d; want its own group and the same start", p.Pid, st, ok, p.Start)
	}
	if err := SignalGroup(p.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ws, err := p.Exit(); err != nil || ws.Signal() != syscall.SIGKILL {
		t.Errorf("after SIGKILL to the group: %v, %v", ws, err)
	}
	eventually(t, "the group's sleep to be gone", func() bool { return !(&Reaper{}).GroupAlive(p.Pid, true) })
}

// A credential makes the process run as that user, with those groups.
func TestStartGroupAsAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	rp := newTestReaper(t, false)
	out, read := output(t)
	p, err := rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "id -u; id -g; id -G"}, Dir: "/",
		Output: out, Cred: &Credential{UID: 65534, GID: 65534, Groups: []uint32{65534}}})
	if err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, p); code != 0 {
		t.Fatalf("exit code %d, output %q", code, read())
	}
	if got := read(); got != "65534\n65534\n65534\n" {
		t.Errorf("ran as %q, want uid, gid and groups 65534", got)
	}
}

// A program that cannot be started is an error, and nothing is left waiting.
func TestStartGroupFailure(t *testing.T) {
	rp := newTestReaper(t, false)
	if _, err := rp.StartGroup(Spec{Path: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Fatal("started a program that does not exist")
	}
}
