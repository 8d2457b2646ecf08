package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/Mk-Chan/procman"
	"golang.org/x/sys/unix"
)

// spin is a shell loop that burns some 50 ms of CPU.
const spin = `i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done`

// procman signal NAME SIGNAL signals the running run; a bad signal is bad
// usage, a job that does not run an error of ProcMan's.
func TestCLISignal(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	pm(t, base, "add", "web", "-type", "continuous", "--", `trap 'echo reloaded' HUP; echo ready; while :; do sleep 0.1; done`)
	pm(t, base, "add", "idle", "--", "sleep 1000")
	pm(t, base, "start", "web")
	pid := waitRunning(t, base, "web")
	st := jobState(t, base, "web")
	poll(t, 10*time.Second, "the trap set", func() bool { b, _ := os.ReadFile(st.LogFile); return bytes.Contains(b, []byte("ready")) })
	out := pm(t, base, "signal", "web", "HUP")
	wantContains(t, "signal", out, "web: SIGHUP sent to the processes of its run (pid "+strconv.Itoa(pid)+")")
	poll(t, 10*time.Second, "the reload", func() bool { b, _ := os.ReadFile(st.LogFile); return bytes.Contains(b, []byte("reloaded")) })
	pm(t, base, "signal", "web", "sigusr2") // the trap is HUP's: USR2 ends the shell, and the job restarts
	poll(t, 10*time.Second, "a restart after USR2", func() bool { return jobState(t, base, "web").Restarts == 1 })
	pmFails(t, nil, 2, `unknown signal "FOO"`, "signal", "-addr", base, "web", "FOO")
	pmFails(t, nil, 2, "missing SIGNAL", "signal", "-addr", base, "web")
	pmFails(t, nil, 1, "job is not running (HTTP 409)", "signal", "-addr", base, "idle", "HUP")
}

// Not on a terminal, procman top prints one table, the busiest job first,
// the jobs that do not run last, and exits; -o json prints ProcMan's answer.
func TestCLITopWithoutATerminal(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	spun := filepath.Join(dir, "spun")
	pm(t, base, "add", "spinner", "-type", "continuous", "--", "("+spin+"); touch "+spun+"; exec sleep 1000")
	pm(t, base, "add", "calm", "-type", "continuous", "--", "sleep 1000")
	pm(t, base, "add", "asleep", "--", "sleep 1000")
	pm(t, base, "start", "calm")
	pm(t, base, "start", "spinner")
	poll(t, 10*time.Second, "the spin", func() bool { _, err := os.Stat(spun); return err == nil })
	out := pm(t, base, "top")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || strings.Join(strings.Fields(lines[0]), " ") != "NAME STATE PID CPU% MEM PROCS RESTARTS UPTIME" {
		t.Fatalf("top printed:\n%s\nwant a header and three jobs", out)
	}
	for i, want := range []string{"spinner", "calm", "asleep"} {
		if f := strings.Fields(lines[i+1]); f[0] != want {
			t.Errorf("top's line %d is %q, want %s's (sorted by CPU)", i+1, lines[i+1], want)
		}
	}
	if f := row(t, out, "spinner"); f[1] != "running" || f[3] == "0.0" || f[5] != "1" {
		t.Errorf("spinner: %q, want running with some CPU, one process (the shell exec'd sleep)", f)
	}
	if f := row(t, out, "asleep"); !slices.Equal(f[3:6], []string{"-", "-", "-"}) {
		t.Errorf("asleep: %q, want no usage", f)
	}
	var us []procman.Usage
	if err := json.Unmarshal([]byte(pm(t, base, "top", "-o", "json")), &us); err != nil || len(us) != 2 || us[0].Job != "calm" {
		t.Errorf("top -o json: %+v, %v", us, err)
	}
}

// On a terminal, procman top redraws every second on the alternate screen,
// as many lines as the terminal has, and q or Ctrl-C ends it with the
// terminal as it was.
func TestCLITopOnATerminal(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		pm(t, base, "add", name, "--", "sleep 1000")
	}
	for _, quit := range []string{"q", "\x03"} {
		master, slave := openPTY(t)
		ws := unix.Winsize{Row: 6, Col: 100}
		if err := ioctl(master, syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
			t.Fatal(err)
		}
		before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(binPath, "top", "-addr", base)
		cmd.Env = cliEnv()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var screen bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			buf := make([]byte, 4096)
			for {
				n, err := master.Read(buf)
				mu.Lock()
				screen.Write(buf[:n])
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
		shown := func() string { mu.Lock(); defer mu.Unlock(); return screen.String() }
		poll(t, 10*time.Second, "two frames of top", func() bool { return strings.Count(shown(), "procman top:") >= 2 })
		if _, err := master.Write([]byte(quit)); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("top ended by %q: %v", quit, err)
			}
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Fatalf("top still runs 5 s after %q", quit)
		}
		after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil || after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
			t.Errorf("the terminal after top: %+v (%v), before %+v", after, err, before)
		}
		slave.Close()
		<-read
		master.Close()
		out := shown()
		if !strings.HasPrefix(out, "\x1b[?1049h") || !strings.HasSuffix(out, "\x1b[?1049l") {
			t.Errorf("top did not use the alternate screen and leave it: %q", out)
		}
		frame := out[strings.LastIndex(out, "\x1b[H"):]
		if !strings.Contains(frame, "\x1b[K\r\nc ") || strings.Contains(frame, "\r\nd ") {
			t.Errorf("a 6-line terminal shows a title, a blank, a header and a, b, c: %q", frame)
		}
	}
}
