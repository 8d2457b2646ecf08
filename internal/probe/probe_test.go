//go:build linux

package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
)

// newReaper returns a Reaper that adopts orphans (as the procman binary's
// does), closed by the test's cleanup: one at a time, as an adopting Reaper
// reaps every child it did not start.
func newReaper(t *testing.T) *osproc.Reaper {
	t.Helper()
	rp, err := osproc.NewReaper(true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rp
}

// newExec returns an exec probe of command on rp.
func newExec(t *testing.T, rp *osproc.Reaper, command string) *Exec {
	return &Exec{Reaper: rp, Spec: osproc.Spec{Path: "/bin/sh", Args: []string{"-c", command}, Dir: t.TempDir(),
		Env: []string{"PATH=" + os.Getenv("PATH"), "WHO=probe"}}, KillWait: 5 * time.Second}
}

func TestExecPassesOnExitZeroAndSaysWhyOtherwise(t *testing.T) {
	rp := newReaper(t)
	ctx := context.Background()
	if err := newExec(t, rp, `test "$WHO" = probe`).Run(ctx, 5*time.Second); err != nil {
		t.Errorf("exit 0 in its env: %v", err)
	}
	err := newExec(t, rp, "echo not ready; echo db down >&2; exit 3").Run(ctx, 5*time.Second)
	if err == nil || err.Error() != "exit code 3: not ready\ndb down" {
		t.Errorf("exit 3: %v, want its code and output", err)
	}
	err = newExec(t, rp, "kill -TERM $$").Run(ctx, 5*time.Second)
	if err == nil || err.Error() != "killed by signal terminated" {
		t.Errorf("killed: %v", err)
	}
}

// A command that writes far more than MaxOutput is read to its end (it
// never blocks on the pipe), and its message keeps the first bytes.
func TestExecOutputIsCut(t *testing.T) {
	rp := newReaper(t)
	err := newExec(t, rp, "i=0; while [ $i -lt 2000 ]; do echo 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef; i=$((i+1)); done; exit 1").
		Run(context.Background(), 10*time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "exit code 1: 0123") || !strings.HasSuffix(err.Error(), "(output cut at 4096 bytes)") ||
		len(err.Error()) > MaxOutput+100 {
		t.Fatalf("message of %d bytes: %.80q...", len(err.Error()), err)
	}
}

// At its timeout the whole group is killed, a child in the background
// included, and nothing is left of it, not even a zombie.
func TestExecTimeoutKillsTheWholeGroup(t *testing.T) {
	rp := newReaper(t)
	dir := t.TempDir()
	e := newExec(t, rp, "echo $$ > "+dir+"/sh; sleep 1000 & echo $! > "+dir+"/bg; wait")
	start := time.Now()
	err := e.Run(context.Background(), 300*time.Millisecond)
	if err == nil || !strings.HasPrefix(err.Error(), "timed out after 300ms") {
		t.Fatalf("Run: %v, want a timeout", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	for _, f := range []string{"sh", "bg"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == 0 {
			t.Fatalf("pid file %s: %q, %v", f, b, err)
		}
		if st, ok := osproc.ReadStat(pid); ok {
			t.Errorf("%s (pid %d) is still there after the probe: state %c", f, pid, st.State)
		}
	}
}

// Whatever the command leaves running when its shell exits is killed then,
// without waiting for the timeout.
func TestExecKillsWhatItsShellLeaves(t *testing.T) {
	rp := newReaper(t)
	dir := t.TempDir()
	start := time.Now()
	if err := newExec(t, rp, "sleep 1000 & echo $! > "+dir+"/bg").Run(context.Background(), time.Minute); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s: the probe waited for its leftover", took)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "bg"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if _, ok := osproc.ReadStat(pid); pid == 0 || ok {
		t.Errorf("the leftover (pid %d) is still there", pid)
	}
}

func TestExecEndsWithItsContext(t *testing.T) {
	rp := newReaper(t)
	ctx, cancel := context.WithCancel(context.Background())
	e := newExec(t, rp, "echo started; exec sleep 1000")
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, time.Hour) }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a probe cut short passed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not end with its context")
	}
}

func TestHTTP(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved": // healthy as it is: the redirect is not followed
			http.Redirect(w, r, "/nowhere", http.StatusFound)
			return
		case "/nowhere":
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	c := NewHTTPClient()
	defer c.CloseIdleConnections()
	ctx := context.Background()
	for _, tc := range []struct {
		status int
		path   string
		want   string
	}{{200, "/", ""}, {204, "/", ""}, {200, "/moved", ""}, {399, "/", ""},
		{500, "/", "status 500 Internal Server Error"}, {404, "/", "status 404 Not Found"}} {
		status = tc.status
		err := HTTP(ctx, c, srv.URL+tc.path, 5*time.Second)
		if got := errText(err); got != tc.want {
			t.Errorf("status %d at %s: %q, want %q", tc.status, tc.path, got, tc.want)
		}
	}
	if err := HTTP(ctx, c, "http://"+closedAddr(t)+"/", 5*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("nothing listening: %v", err)
	}
}

func TestHTTPTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	c := NewHTTPClient()
	if err := HTTP(context.Background(), c, srv.URL, 100*time.Millisecond); errText(err) != "timed out after 100ms" {
		t.Errorf("a server that does not answer: %v", err)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := TCP(context.Background(), ln.Addr().String(), 5*time.Second); err != nil {
		t.Errorf("listening: %v", err)
	}
	if err := TCP(context.Background(), closedAddr(t), 5*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("nothing listening: %v", err)
	}
}

// closedAddr is a local address where nothing listens.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
