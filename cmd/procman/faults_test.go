package main

// Fault tests: what the binary does when its database is unusable, its log
// folder cannot be written, or the disk holding the logs is full.

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// faultExitLimit is how soon the binary must give up on an unusable database.
const faultExitLimit = 10 * time.Second

// faultRun runs the binary with args in dir and waits up to faultExitLimit for it
// to exit, failing the test if it does not. It returns the exit code and stderr.
func faultRun(t *testing.T, dir string, args ...string) (int, string, time.Duration) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(faultExitLimit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("procman %v still running after %s; stderr:\n%s", args, faultExitLimit, stderr.String())
	}
	took := time.Since(start)
	if stdout.Len() != 0 {
		t.Errorf("procman %v wrote to stdout: %q", args, stdout.String())
	}
	return cmd.ProcessState.ExitCode(), stderr.String(), took
}

// faultWantRefusal checks that the binary refused to start: a non-zero exit
// and an error line on stderr that names the database path, and no listening.
func faultWantRefusal(t *testing.T, code int, stderr, dbPath string, took time.Duration) {
	t.Helper()
	t.Logf("exit %d after %s; stderr:\n%s", code, took.Round(time.Millisecond), stderr)
	if code == 0 {
		t.Errorf("exit code 0, want non-zero")
	}
	if !strings.Contains(stderr, "level=ERROR") {
		t.Errorf("stderr has no error line")
	}
	if !strings.Contains(stderr, dbPath) {
		t.Errorf("stderr does not name the database %s", dbPath)
	}
	if strings.Contains(stderr, "msg=listening") {
		t.Errorf("procman logged that it listens although it cannot use its database")
	}
}

// A database file that is not SQLite: the binary exits at once with an error
// naming the file, and does not touch it (no "repair", no truncation).
func TestCorruptDatabase(t *testing.T) {
	dir := newDir(t)
	db := filepath.Join(dir, "procman.db")
	garbage := make([]byte, 16<<10)
	for i := range garbage {
		garbage[i] = byte(i*131 + i/7) // deterministic, and no SQLite header
	}
	copy(garbage, "this is not an SQLite database\n")
	if err := os.WriteFile(db, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr, took := faultRun(t, dir, "-db", db, "-logs", filepath.Join(dir, "logs"), "0")
	faultWantRefusal(t, code, stderr, db, took)
	if !strings.Contains(stderr, "not a database") {
		t.Errorf("stderr does not say what is wrong with the file (want SQLite's %q)", "not a database")
	}
	after, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, garbage) {
		t.Errorf("the corrupt database was modified: %d bytes now, %d before", len(after), len(garbage))
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "procman.db" {
			t.Logf("left beside the database: %s", e.Name())
		}
	}
}

// A database that cannot be opened: its folder does not exist, or the path is
// a folder. (Root ignores permissions, so a read-only file would not do.)
func TestUnusableDatabasePath(t *testing.T) {
	for _, tc := range []struct {
		name  string
		db    func(dir string) string
		cause string // what stderr must say is wrong
		check func(t *testing.T, dir string)
	}{
		{"missing folder", func(dir string) string { return filepath.Join(dir, "no", "such", "procman.db") }, "no such file or directory",
			func(t *testing.T, dir string) {
				if _, err := os.Stat(filepath.Join(dir, "no")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("procman created the missing folder (stat: %v)", err)
				}
			}},
		{"path is a folder", func(dir string) string {
			p := filepath.Join(dir, "db.d")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a directory", func(t *testing.T, dir string) {
			if ents, err := os.ReadDir(filepath.Join(dir, "db.d")); err != nil || len(ents) != 0 {
				t.Errorf("the folder given as database was changed: %v (err %v)", ents, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := newDir(t)
			db := tc.db(dir)
			code, stderr, took := faultRun(t, dir, "-db", db, "-logs", filepath.Join(dir, "logs"), "0")
			faultWantRefusal(t, code, stderr, db, took)
			if !strings.Contains(stderr, tc.cause) {
				t.Errorf("stderr does not give the cause, %q", tc.cause)
			}
			if strings.Contains(stderr, "out of memory") {
				t.Errorf("stderr blames memory, which is not the problem")
			}
			tc.check(t, dir)
		})
	}
}

// A log folder that is a regular file: every spawn fails. A created job goes to
// state error with a reason naming the log folder, the failed run is recorded,
// and ProcMan keeps serving.
func TestLogFolderNotWritable(t *testing.T) {
	dir := newDir(t)
	logs := filepath.Join(dir, "logs")
	if err := os.WriteFile(logs, []byte("a file, not a folder\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, _ := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", logs, "0")

	createJob(t, base, map[string]any{"name": "once", "type": "one_time", "command": "echo hi"})
	startFails(t, base, "once")
	var st procman.Status
	poll(t, 10*time.Second, "job once in state error", func() bool {
		st = jobState(t, base, "once")
		return st.State == "error"
	})
	if !strings.Contains(st.Error, "log folder") {
		t.Errorf("error %q does not name the log folder", st.Error)
	}
	if st.PID != 0 {
		t.Errorf("a job that never spawned has pid %d", st.PID)
	}
	runs := jobRuns(t, base, "once")
	if len(runs) != 1 || runs[0].Outcome != "failed_to_start" || !strings.Contains(runs[0].Error, "log folder") || runs[0].LogFile != "" {
		t.Errorf("runs %+v, want one failed_to_start run naming the log folder, without a log", runs)
	}

	// A continuous job retries, then gives up with the same reason.
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "command": "sleep 100",
		"backoff_initial": "10ms", "backoff_max": "20ms", "max_retries": 3})
	startFails(t, base, "svc")
	poll(t, 10*time.Second, "job svc in state error", func() bool {
		st = jobState(t, base, "svc")
		return st.State == "error"
	})
	if !strings.Contains(st.Error, "gave up") || !strings.Contains(st.Error, "log folder") {
		t.Errorf("svc error %q, want giving up because of the log folder", st.Error)
	}

	// Still serving; the file given as log folder is untouched.
	if jobs := listJobs(t, base); len(jobs) != 2 {
		t.Errorf("GET /jobs: %+v, want once and svc", jobs)
	}
	if b, err := os.ReadFile(logs); err != nil || string(b) != "a file, not a folder\n" {
		t.Errorf("the file given as log folder changed: %q (err %v)", b, err)
	}
}

// A full disk under the log folder: a run whose writes fail ends with a
// non-zero exit code, ProcMan keeps serving and keeps recording runs, and runs
// write their output again once space is freed.
func TestLogDiskFull(t *testing.T) {
	dir := newDir(t)
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", logs).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a 1 MiB tmpfs to fill (needs root with CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	// Registered before startBinary's cleanup, so it runs after the binary is stopped.
	t.Cleanup(func() {
		if out, err := exec.Command("umount", logs).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", logs, err, out)
			exec.Command("umount", "-l", logs).Run()
		}
	})
	base, _ := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", logs, "0")

	runs := func(name string) []procman.Run { return jobRuns(t, base, name) }
	// exited starts the job and waits until it has exited; it returns its newest run.
	exited := func(name string, runsBefore int) procman.Run {
		t.Helper()
		startJob(t, base, name)
		var st procman.Status
		poll(t, 15*time.Second, "job "+name+" exited", func() bool {
			st = jobState(t, base, name)
			return st.State == "exited" || st.State == "error"
		})
		if st.State != "exited" {
			t.Fatalf("job %s: %+v, want exited", name, st)
		}
		rs := runs(name)
		if len(rs) != runsBefore+1 {
			t.Fatalf("job %s: %d runs recorded, want %d: %+v", name, len(rs), runsBefore+1, rs)
		}
		return rs[0]
	}

	createJob(t, base, map[string]any{"name": "fill", "type": "one_time", "command": "head -c 2000000 /dev/zero"})
	r := exited("fill", 0)
	if r.Outcome != "exited" || r.ExitCode == nil || *r.ExitCode == 0 {
		t.Errorf("run that filled the disk: %+v, want outcome exited with a non-zero exit code", r)
	}
	if fi, err := os.Stat(r.LogFile); err != nil || fi.Size() >= 2000000 {
		t.Errorf("log %s: %v (err %v), want it cut short by the full disk", r.LogFile, fi, err)
	} else {
		t.Logf("the full disk stopped the log at %d bytes; exit code %d", fi.Size(), *r.ExitCode)
	}

	// The disk is still full: the next run is recorded all the same.
	createJob(t, base, map[string]any{"name": "small", "type": "one_time", "command": "echo small"})
	r = exited("small", 0)
	if r.Outcome != "exited" || r.ExitCode == nil || *r.ExitCode == 0 {
		t.Errorf("run on the full disk: %+v, want outcome exited with the write error's non-zero exit code", r)
	}
	listJobs(t, base)

	// Free the space, as an operator would: runs write their output again.
	if err := os.Remove(runs("fill")[0].LogFile); err != nil {
		t.Fatal(err)
	}
	r = exited("small", 1)
	if r.Outcome != "exited" || r.ExitCode == nil || *r.ExitCode != 0 {
		t.Errorf("run after space was freed: %+v, want exit code 0", r)
	}
	if b, err := os.ReadFile(r.LogFile); err != nil || string(b) != "small\n" {
		t.Errorf("log %s after space was freed: %q (err %v), want %q", r.LogFile, b, err, "small\n")
	}
}

// A second ProcMan on a database in use must refuse to start, naming the
// first one's pid, and leave its jobs alone: before, it killed them as
// leftovers of a crash and ran the reboot jobs again.
func TestSecondBinaryOnOneDatabase(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "boot", "type": "one_time", "schedule": "reboot", "command": "echo boot >> boots.txt"})
	poll(t, 10*time.Second, "boot job exited", func() bool { return jobState(t, base, "boot").State == "exited" })
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "command": "sleep 1000"})
	startJob(t, base, "svc")
	pid := waitRunning(t, base, "svc")

	db := filepath.Join(dir, "procman.db")
	code, stderr, took := faultRun(t, dir, "-db", db, "-logs", filepath.Join(dir, "logs"), "0")
	faultWantRefusal(t, code, stderr, db, took)
	if !strings.Contains(stderr, "in use by another ProcMan") || !strings.Contains(stderr, fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Errorf("stderr does not say the database is in use by pid %d", cmd.Process.Pid)
	}
	if st := jobState(t, base, "svc"); st.State != "running" || st.PID != pid || gone(pid) {
		t.Errorf("svc after the second ProcMan: %+v, want still running as pid %d", st, pid)
	}
	if got := fileLines(t, filepath.Join(dir, "boots.txt")); len(got) != 1 {
		t.Errorf("boots.txt: %q, want the reboot job to have run once", got)
	}
	if rs := jobRuns(t, base, "svc"); len(rs) != 1 || rs[0].EndedAt != nil {
		t.Errorf("runs of svc: %+v, want its one run, still open", rs)
	}
	stopAndCheck(t, cmd, dir)
}

// holdDB takes the database's write lock from this process, as another
// program holding BEGIN EXCLUSIVE would, until release (or cleanup).
func holdDB(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "PRAGMA busy_timeout = 10000")
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock the database: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

// getStatus answers GET url's status code and how long it took.
func getStatus(t *testing.T, url string) (int, time.Duration) {
	t.Helper()
	began := time.Now()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(began)
}

var startedRE = regexp.MustCompile(`(?m)^procman_runs_started_total\{trigger="\w+"\} (\d+)$`)

// runsStarted adds up procman_runs_started_total over its triggers, as
// ProcMan at base serves it.
func runsStarted(t *testing.T, base string) int {
	t.Helper()
	resp, err := httpClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	started := 0
	for _, m := range startedRE.FindAllStringSubmatch(string(text), -1) {
		n, _ := strconv.Atoi(m[1])
		started += n
	}
	return started
}

// With another program holding the database's write lock, supervision goes
// on at its own pace, /healthz says 503 at once, a stop answers at once, and
// once the lock goes every run started meanwhile is in the history.
func TestLockedDatabaseKeepsSupervising(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "crash", "type": "continuous", "command": "exit 1",
		"backoff_initial": "50ms", "backoff_max": "50ms", "min_uptime": "1h"})
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "command": "sleep 1000"})
	startJob(t, base, "svc")
	startJob(t, base, "crash")
	if code, _ := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz before the lock: %d", code)
	}
	release := holdDB(t, filepath.Join(dir, "procman.db"))

	restarts := func() int { return jobState(t, base, "crash").Restarts }
	before := restarts()
	poll(t, 4*time.Second, "5 restarts of crash while the database is locked", func() bool { return restarts() >= before+5 })
	if code, took := getStatus(t, base+"/healthz"); code != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Errorf("healthz while the database is locked: %d after %s, want 503 within 2s", code, took.Round(time.Millisecond))
	}
	if code, took := getStatus(t, base+"/job/svc/stop"); code != http.StatusOK || took > 2*time.Second {
		t.Errorf("stop while the database is locked: %d after %s, want 200 within 2s", code, took.Round(time.Millisecond))
	}
	if code, took := getStatus(t, base+"/job/crash/stop"); code != http.StatusOK || took > 2*time.Second {
		t.Errorf("stop while the database is locked: %d after %s, want 200 within 2s", code, took.Round(time.Millisecond))
	}

	release()
	poll(t, 10*time.Second, "healthz 200 once the lock is gone", func() bool {
		code, _ := getStatus(t, base+"/healthz")
		return code == http.StatusOK
	})
	started := runsStarted(t, base)
	recorded := 0
	for _, name := range []string{"crash", "svc"} {
		rs := jobRuns(t, base, name)
		for _, r := range rs {
			if r.EndedAt == nil {
				t.Errorf("run %d of %s has no end recorded", r.ID, name)
			}
		}
		recorded += len(rs)
	}
	if recorded != started || started < 7 {
		t.Errorf("%d runs in the history, %d started", recorded, started)
	}
	stopAndCheck(t, cmd, dir)
}

// startFails starts a job whose first run must fail to start: 422, start_failed.
func startFails(t *testing.T, base, name string) {
	t.Helper()
	_, err := api(t, base).Start(context.Background(), name)
	var ce *client.Error
	if !errors.Is(err, procman.ErrStartFailed) || !errors.As(err, &ce) || ce.Status != http.StatusUnprocessableEntity {
		t.Fatalf("start %s: %v, want 422 start_failed", name, err)
	}
}

// A stderr that takes nothing (a pipe whose reader stopped, a terminal
// paused with Ctrl-S) holds up neither the jobs nor the API: ProcMan logs
// while it holds a job's lock, and a full pipe used to stop everything
// after some 800 lines. What the pipe could not take in time waits, and
// comes through once it is read again.
func TestStalledStderrDoesNotHoldUpJobs(t *testing.T) {
	dir := newDir(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(binPath, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"), "0")
	cmd.Dir, cmd.Stderr = dir, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	br := bufio.NewReader(r)
	var base string
	for base == "" { // then the pipe is read no more
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("procman ended before listening: %v", err)
		}
		if m := listeningRE.FindStringSubmatch(line); m != nil {
			base = "http://" + m[1]
		}
	}
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s with stderr not read: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %s", method, path, resp.Status)
		}
	}
	do("POST", "/job/create", `{"name":"svc","command":"sleep 60","type":"continuous"}`)
	const cycles = 200 // some 1,200 lines, 150 KB: twice what the pipe holds
	for range cycles {
		do("GET", "/job/svc/start", "")
		do("GET", "/job/svc/stop", "")
	}
	do("GET", "/job/svc/state", "")

	rest := make(chan string)
	go func() {
		b, _ := io.ReadAll(br)
		rest <- string(b)
	}()
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("procman: %v", err)
	}
	out := <-rest
	if n := strings.Count(out, "to=stopped"); n != cycles {
		t.Errorf("%d lines of a stop in the log, want %d", n, cycles)
	}
	if strings.Contains(out, "log lines dropped") {
		t.Errorf("lines dropped, though fewer than a megabyte waited:\n%s", out)
	}
}
