//go:build linux

package osproc

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// asSubreaper makes the test process the subreaper of its descendants until
// the test ends: their orphans come to it, as they come to PID 1.
func asSubreaper(t *testing.T) {
	t.Helper()
	if err := setSubreaper(true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { setSubreaper(false) })
}

// waitInit runs in.Wait on a goroutine; the result comes on the channel.
func waitInit(in *Init) <-chan int {
	done := make(chan int, 1)
	go func() {
		code, _ := in.Wait()
		done <- code
	}()
	return done
}

// The init reaps the orphans its child leaves (the kernel hands them to it),
// passes signals on to the child, in a group of its own, and returns the
// child's exit code.
func TestInitReapsOrphansAndForwardsSignals(t *testing.T) {
	asSubreaper(t)
	dir := t.TempDir()
	// The subshell exits at once: its sh is orphaned, writes its pid and exits.
	script := `cd "$DIR" && (sh -c 'echo $$ > orphan.pid' &); trap 'exit 3' USR1; : > ready; while :; do sleep 0.01; done`
	in, err := StartInit("/bin/sh", []string{"sh", "-c", script}, append(os.Environ(), "DIR="+dir), syscall.SIGUSR1)
	if err != nil {
		t.Fatal(err)
	}
	done := waitInit(in)
	eventually(t, "the child's trap", func() bool { _, err := os.Stat(filepath.Join(dir, "ready")); return err == nil })
	var orphan int
	eventually(t, "the orphan's pid", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "orphan.pid"))
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && orphan > 0
	})
	eventually(t, "the orphan reaped, not left a zombie", func() bool {
		_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(orphan)))
		return err != nil
	})
	if st, ok := ReadStat(in.child.Pid); !ok || st.PGID != in.child.Pid {
		t.Errorf("the child %d: %+v, want a group of its own", in.child.Pid, st)
	}
	syscall.Kill(os.Getpid(), syscall.SIGUSR1) // as a container runtime signals PID 1
	if code := <-done; code != 3 {
		t.Errorf("exit code %d, want the child's 3", code)
	}
}

// A child killed by a signal makes the init's code 128 plus the signal's number.
func TestInitReturns128PlusTheSignal(t *testing.T) {
	in, err := StartInit("/bin/sh", []string{"sh", "-c", "kill -KILL $$"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code := <-waitInit(in); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d", code, 128+int(syscall.SIGKILL))
	}
}
