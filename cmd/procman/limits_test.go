package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLimited starts procman through sh with its descriptor limits set by
// ulimit (the shell execs procman, so the pid is procman's).
func startLimited(t *testing.T, dir, ulimits string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", ulimits+` && exec "$0" "$@"`, binPath,
		"-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
	cmd.Env, cmd.Dir = os.Environ(), dir
	return startCommand(t, cmd), cmd
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// TestIdleConnectionsCannotStopSupervision: with 256 descriptors, 400 idle
// keep-alive connections once took them all, and the next start failed with
// "too many open files". Now the connections are capped below the limit and
// the longest idle make room: a job still starts, over a new connection.
func TestIdleConnectionsCannotStopSupervision(t *testing.T) {
	dir := newDir(t)
	base, cmd := startLimited(t, dir, "ulimit -n 256")
	createJob(t, base, map[string]any{"name": "web", "type": "continuous", "command": "exec sleep 1000"})
	addr := strings.TrimPrefix(base, "http://")
	conns := make(chan net.Conn, 400)
	var wg sync.WaitGroup
	for range 400 { // at once, as a client flooding ProcMan would
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return
			}
			conns <- c
			c.SetDeadline(time.Now().Add(3 * time.Second))
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	close(conns)
	t.Cleanup(func() { // held open, idle, until the test ends
		for c := range conns {
			c.Close()
		}
	})
	if n := openFDs(t, cmd.Process.Pid); n > 128 {
		t.Errorf("with 400 idle connections open, procman holds %d of its 256 descriptors", n)
	}
	startJob(t, base, "web")
	waitRunning(t, base, "web")
}

// TestJobsGetTheOriginalDescriptorLimit: Go raises its own soft limit to the
// hard one (since Go 1.19), and gives the processes it starts the original
// soft limit back. A job must see the limit ProcMan was started with.
func TestJobsGetTheOriginalDescriptorLimit(t *testing.T) {
	dir := newDir(t)
	base, cmd := startLimited(t, dir, "ulimit -Sn 256 && ulimit -Hn 4096")
	limits, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(limits), "\n") {
		if f := strings.Fields(line); strings.HasPrefix(line, "Max open files") && (len(f) < 5 || f[3] != "4095" || f[4] != "4096") {
			t.Errorf("procman's own limit: %q, want soft 4095 (hard - 1, as Go sets it), hard 4096", line)
		}
	}
	createJob(t, base, map[string]any{"name": "limits", "type": "one_time",
		"command": "echo $(ulimit -Sn) $(ulimit -Hn) > nofile"})
	startJob(t, base, "limits")
	var got []byte
	poll(t, 10*time.Second, "the job's limits", func() bool {
		got, _ = os.ReadFile(filepath.Join(dir, "nofile"))
		return strings.HasSuffix(string(got), "\n")
	})
	if string(got) != "256 4096\n" {
		t.Errorf("the job's descriptor limits: %q, want \"256 4096\"", got)
	}
}
