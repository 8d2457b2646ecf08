package httpapi_test

// Tests of the run history, log and event routes: GET /job/{name}/runs,
// /job/{name}/runs/{id}, /job/{name}/logs and /events. They reuse the helpers
// of httpapi_test.go (setup, doJSON, want, decode, errorMessage, ...).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

const (
	textType     = "text/plain; charset=utf-8" // Content-Type of a log
	eventType    = "text/event-stream"         // Content-Type of /events
	handlerLimit = 2 * time.Second             // a handler must return this soon after its client left
)

// histRuns gets GET /job/{name}/runs with the given query, requiring 200.
func (s *server) histRuns(t *testing.T, name, query string) []procman.Run {
	t.Helper()
	r := s.doJSON(t, http.MethodGet, "/job/"+name+"/runs"+query, nil)
	want(t, r, http.StatusOK)
	return decode[[]procman.Run](t, r)
}

// histRun gets GET /job/{name}/runs/{id}, requiring 200.
func (s *server) histRun(t *testing.T, name string, id int64) procman.Run {
	t.Helper()
	r := s.doJSON(t, http.MethodGet, fmt.Sprintf("/job/%s/runs/%d", name, id), nil)
	want(t, r, http.StatusOK)
	return decode[procman.Run](t, r)
}

// logText gets a log that must be served whole: 200, text/plain, the body.
func (s *server) logText(t *testing.T, path string) string {
	t.Helper()
	r := s.doJSON(t, http.MethodGet, path, nil)
	if r.code != http.StatusOK {
		t.Fatalf("%v; want 200", r)
	}
	if ct := r.header.Get("Content-Type"); ct != textType {
		t.Fatalf("%v: Content-Type %q, want %q", r, ct, textType)
	}
	return string(r.body)
}

func ids(runs []procman.Run) []int64 {
	out := make([]int64, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

// lineStream is a streaming answer read line by line in a goroutine, so the
// test can wait for a line with a deadline.
type lineStream struct {
	resp   *http.Response
	lines  chan string // closed once the body ended; err says how
	err    error       // nil at a clean end of the body
	cancel context.CancelFunc
	done   chan struct{} // closed when the reading goroutine returned
}

// openStream sends GET path with a context of its own and starts reading the
// answer. Its cleanup, or close, cancels the request and waits for the reader.
func (s *server) openStream(t *testing.T, path string) *lineStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", path, err)
	}
	ls := &lineStream{resp: resp, lines: make(chan string, 1024), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ls.done)
		defer close(ls.lines)
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				select {
				case ls.lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					ls.err = err
				}
				return
			}
		}
	}()
	t.Cleanup(ls.close)
	return ls
}

// close makes the client go away: cancel the request, wait for the reader.
func (ls *lineStream) close() {
	ls.cancel()
	<-ls.done
	ls.resp.Body.Close()
}

// next returns the next line, failing the test if none comes within timeout
// or the stream ends first.
func (ls *lineStream) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-ls.lines:
		if !ok {
			t.Fatalf("stream ended (err %v) while a line was awaited", ls.err)
		}
		return line
	case <-timer.C:
		t.Fatalf("no line within %s", timeout)
	}
	return ""
}

// rest returns every remaining line once the stream has ended by itself,
// failing the test if it has not ended within timeout.
func (ls *lineStream) rest(t *testing.T, timeout time.Duration) []string {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var out []string
	for {
		select {
		case line, ok := <-ls.lines:
			if !ok {
				if ls.err != nil {
					t.Fatalf("stream failed after %q: %v", out, ls.err)
				}
				return out
			}
			out = append(out, line)
		case <-timer.C:
			t.Fatalf("stream still open after %s; received %q", timeout, out)
		}
	}
}

// goroutinesIn returns the stacks of this process's goroutines that are
// inside fn (a fully qualified function name followed by "(").
func goroutinesIn(fn string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			out = append(out, g)
		}
	}
	return out
}

const (
	logsHandler   = "procman/httpapi.(*api).logs("
	eventsHandler = "procman/httpapi.(*api).events("
)

// waitHandlersGone polls until no goroutine is inside fn, failing the test
// with their stacks after handlerLimit.
func waitHandlersGone(t *testing.T, fn string) {
	t.Helper()
	deadline := time.Now().Add(handlerLimit)
	for {
		left := goroutinesIn(fn)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutine(s) still in %s %s after the client left:\n%s",
				len(left), fn, handlerLimit, strings.Join(left, "\n\n"))
		}
		time.Sleep(pollInterval)
	}
}

// fdsTo counts this process's open file descriptors on path.
func fdsTo(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// countingJob prints "run N" and four more lines, N counting its runs, and
// exits with N. Every run thus has its own output and exit code.
func countingJob(t *testing.T, name string) procman.Job {
	return procman.Job{Name: name, Type: procman.OneTime, Schedule: procman.ScheduleReboot, Dir: t.TempDir(),
		Command: `n=$(( $(cat count 2>/dev/null || echo 0) + 1 )); echo $n > count; echo "run $n"; ` +
			`for i in 1 2 3 4; do echo "line $i of run $n"; done; exit $n`}
}

// runText is what run n of countingJob prints.
func runText(n int) string {
	s := fmt.Sprintf("run %d\n", n)
	for i := 1; i <= 4; i++ {
		s += fmt.Sprintf("line %d of run %d\n", i, n)
	}
	return s
}

func exitedWith(code int) func(procman.Status) bool {
	return func(st procman.Status) bool {
		return st.State == procman.StateExited && st.ExitCode != nil && *st.ExitCode == code
	}
}

// histFixture runs countingJob "hist" three times (by its reboot schedule at
// create, by start, by restart) and a one-run job "other", and returns the
// runs of hist, newest first, and the run of other.
func histFixture(t *testing.T, s *server) (hist []procman.Run, other procman.Run) {
	t.Helper()
	s.create(t, countingJob(t, "hist"))
	s.waitState(t, "hist", "exited from run 1", exitedWith(1))
	s.control(t, http.MethodGet, "hist", "start")
	s.waitState(t, "hist", "exited from run 2", exitedWith(2))
	s.control(t, http.MethodPost, "hist", "restart")
	s.waitState(t, "hist", "exited from run 3", exitedWith(3))

	s.create(t, procman.Job{Name: "other", Command: "echo other", Type: procman.OneTime})
	s.control(t, http.MethodGet, "other", "start")
	s.waitState(t, "other", "exited", exitedWith(0))

	hist = s.histRuns(t, "hist", "")
	if len(hist) != 3 {
		t.Fatalf("hist has runs %+v, want 3", hist)
	}
	o := s.histRuns(t, "other", "")
	if len(o) != 1 {
		t.Fatalf("other has runs %+v, want 1", o)
	}
	return hist, o[0]
}

// TestRuns checks GET /job/{name}/runs: newest first, the limit, and refusals.
func TestRuns(t *testing.T) {
	s := setup(t)
	runs, other := histFixture(t, s)

	files := map[string]bool{}
	for i, r := range runs {
		n := 3 - i // the newest first
		wantTrigger := []procman.Trigger{procman.TriggerRestart, procman.TriggerManual, procman.TriggerReboot}[i]
		if r.Job != "hist" || r.Trigger != wantTrigger || r.Outcome != procman.OutcomeExited ||
			r.ExitCode == nil || *r.ExitCode != n || r.Signal != "" || r.Error != "" || r.PID <= 0 || r.Pruned {
			t.Errorf("run %d (newest first): %+v, want job hist, trigger %s, outcome exited, exit code %d, a pid",
				i, r, wantTrigger, n)
		}
		if r.EndedAt == nil || r.EndedAt.Before(r.StartedAt) || r.StartedAt.IsZero() {
			t.Errorf("run %d: started %v, ended %v", r.ID, r.StartedAt, r.EndedAt)
		}
		if r.LogFile == "" || files[r.LogFile] {
			t.Errorf("run %d: log file %q is empty or shared", r.ID, r.LogFile)
		}
		files[r.LogFile] = true
		if b, err := os.ReadFile(r.LogFile); err != nil || string(b) != runText(n) {
			t.Errorf("run %d: log %s holds %q (err %v), want %q", r.ID, r.LogFile, b, err, runText(n))
		}
		if i > 0 && (r.ID >= runs[i-1].ID || !r.StartedAt.Before(runs[i-1].StartedAt)) {
			t.Errorf("runs not newest first: %v", ids(runs))
		}
	}

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"?limit=1", ids(runs[:1])},
		{"?limit=2", ids(runs[:2])},
		{"?limit=3", ids(runs)},
		{"?limit=1000", ids(runs)}, // the maximum
	} {
		if got := ids(s.histRuns(t, "hist", tc.query)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("runs%s: ids %v, want %v", tc.query, got, tc.want)
		}
	}

	for _, q := range []string{"0", "-1", "abc", "1001", "100000", "1.5", ""} {
		if q == "" { // an empty value means no limit given
			if got := ids(s.histRuns(t, "hist", "?limit=")); !reflect.DeepEqual(got, ids(runs)) {
				t.Errorf("runs?limit=: ids %v, want %v", got, ids(runs))
			}
			continue
		}
		msg := errorMessage(t, s.doJSON(t, http.MethodGet, "/job/hist/runs?limit="+q, nil), http.StatusBadRequest)
		if !strings.Contains(msg, "limit") {
			t.Errorf("limit=%s: message %q does not name the parameter", q, msg)
		}
	}

	msg := errorMessage(t, s.doJSON(t, http.MethodGet, "/job/nope/runs", nil), http.StatusNotFound)
	if !strings.Contains(msg, "nope") {
		t.Errorf("runs of an unknown job: message %q does not name it", msg)
	}
	errorMessage(t, s.doJSON(t, http.MethodPost, "/job/hist/runs", nil), http.StatusMethodNotAllowed)

	// Runs are per job.
	if got := s.histRuns(t, "other", ""); len(got) != 1 || got[0].ID != other.ID || got[0].Job != "other" {
		t.Errorf("runs of other: %+v, want only its run %d", got, other.ID)
	}
	s.create(t, procman.Job{Name: "fresh", Command: "true", Type: procman.OneTime})
	r := s.doJSON(t, http.MethodGet, "/job/fresh/runs", nil)
	want(t, r, http.StatusOK)
	if got := string(bytes.TrimSpace(r.body)); got != "[]" {
		t.Errorf("%v: want [] for a job that never ran", r)
	}
}

// TestRunByID checks GET /job/{name}/runs/{id}.
func TestRunByID(t *testing.T) {
	s := setup(t)
	runs, other := histFixture(t, s)

	for _, r := range runs {
		got := s.histRun(t, "hist", r.ID)
		if !reflect.DeepEqual(got, r) {
			t.Errorf("run %d: got %+v, want the listed %+v", r.ID, got, r)
		}
	}
	// The wire names.
	r := s.doJSON(t, http.MethodGet, fmt.Sprintf("/job/hist/runs/%d", runs[0].ID), nil)
	raw := decode[map[string]any](t, r)
	for k, v := range map[string]any{"id": float64(runs[0].ID), "job": "hist", "trigger": "restart",
		"outcome": "exited", "exit_code": 3.0, "log_file": runs[0].LogFile} {
		if raw[k] != v {
			t.Errorf("%s = %#v, want %#v (body %s)", k, raw[k], v, r.body)
		}
	}
	for _, k := range []string{"started_at", "ended_at", "pid"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("%s missing (body %s)", k, r.body)
		}
	}

	for _, path := range []string{
		fmt.Sprintf("/job/hist/runs/%d", runs[0].ID+1000), // no such run
		"/job/hist/runs/abc",
		"/job/hist/runs/0",
		"/job/hist/runs/-1",
		"/job/hist/runs/1e3",
		fmt.Sprintf("/job/other/runs/%d", runs[0].ID), // a number only hist has reached
		"/job/nope/runs/1",                            // no such job
		"/job/hist/frobnicate/1",                      // no such route
	} {
		errorMessage(t, s.doJSON(t, http.MethodGet, path, nil), http.StatusNotFound)
	}
	// Each job numbers its runs: run 1 of other is other's, not hist's run 1.
	if got := s.histRun(t, "other", other.ID); other.ID != 1 || !reflect.DeepEqual(got, other) {
		t.Errorf("run %d of other: %+v, want %+v", other.ID, got, other)
	}
}

// TestStateLastRun: GET /job/{name}/state says how the last finished run ended.
func TestStateLastRun(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "fresh", Command: "true", Type: procman.OneTime})
	if st := s.control(t, http.MethodGet, "fresh", "state"); st.LastRun != nil {
		t.Errorf("a job that never ran has last_run %+v", st.LastRun)
	}

	runs, _ := histFixture(t, s)
	st := s.control(t, http.MethodGet, "hist", "state")
	lr := st.LastRun
	if lr == nil {
		t.Fatalf("state %+v has no last_run", st)
	}
	// The database keeps microseconds while last_run, built in memory, has
	// nanoseconds (reported as a doubt): compare to the microsecond.
	if lr.ID != runs[0].ID || lr.Outcome != procman.OutcomeExited || lr.ExitCode == nil || *lr.ExitCode != 3 ||
		lr.Signal != "" || lr.EndedAt.IsZero() || !lr.EndedAt.Truncate(time.Microsecond).Equal(*runs[0].EndedAt) {
		t.Errorf("last_run %+v, want run %d, exited with 3 at %v", lr, runs[0].ID, runs[0].EndedAt)
	}
	raw := decode[map[string]any](t, s.doJSON(t, http.MethodGet, "/job/hist/state", nil))
	wire, _ := raw["last_run"].(map[string]any)
	for _, k := range []string{"id", "outcome", "exit_code", "ended_at"} {
		if _, ok := wire[k]; !ok {
			t.Errorf("last_run lacks %s: %v", k, raw["last_run"])
		}
	}

	// A run killed by a signal: last_run names the signal, not an exit code.
	s.create(t, sleeperJob("web"))
	s.control(t, http.MethodGet, "web", "start")
	s.control(t, http.MethodGet, "web", "stop")
	st = s.control(t, http.MethodGet, "web", "state")
	if lr := st.LastRun; lr == nil || lr.Outcome != procman.OutcomeStopped || lr.ExitCode != nil ||
		lr.Signal != "terminated" || lr.EndedAt.IsZero() {
		t.Errorf("last_run after a stop: %+v, want outcome stopped by signal terminated", st.LastRun)
	}
}

// TestLogs checks GET /job/{name}/logs without follow: which run, tail, refusals.
func TestLogs(t *testing.T) {
	s := setup(t)
	runs, _ := histFixture(t, s)
	oldest := runs[2].ID

	for _, tc := range []struct{ query, want string }{
		{"", runText(3)},
		{fmt.Sprintf("?run=%d", runs[0].ID), runText(3)},
		{fmt.Sprintf("?run=%d", runs[1].ID), runText(2)},
		{fmt.Sprintf("?run=%d", oldest), runText(1)},
		{"?tail=1", "line 4 of run 3\n"},
		{"?tail=2", "line 3 of run 3\nline 4 of run 3\n"},
		{"?tail=4", strings.TrimPrefix(runText(3), "run 3\n")},
		{"?tail=5", runText(3)},
		{"?tail=6", runText(3)},
		{"?tail=100000", runText(3)}, // the maximum
		{fmt.Sprintf("?run=%d&tail=2", oldest), "line 3 of run 1\nline 4 of run 1\n"},
		// Following a run that is over gives its whole log and ends.
		{"?follow=1", runText(3)},
		{fmt.Sprintf("?follow=1&run=%d&tail=1", oldest), "line 4 of run 1\n"},
	} {
		if got := s.logText(t, "/job/hist/logs"+tc.query); got != tc.want {
			t.Errorf("logs%s: %q, want %q", tc.query, got, tc.want)
		}
	}
	if got := s.logText(t, "/job/other/logs"); got != "other\n" {
		t.Errorf("logs of other: %q", got)
	}

	for _, q := range []string{"0", "-3", "x", "1000000", "100001", "2.5"} {
		msg := errorMessage(t, s.doJSON(t, http.MethodGet, "/job/hist/logs?tail="+q, nil), http.StatusBadRequest)
		if !strings.Contains(msg, "tail") {
			t.Errorf("tail=%s: message %q does not name the parameter", q, msg)
		}
	}
	for _, q := range []string{
		fmt.Sprintf("run=%d", runs[0].ID+1000), "run=abc", "run=0", "run=-1",
		fmt.Sprintf("run=%d", runs[0].ID+1), fmt.Sprintf("run=%d&follow=1", runs[0].ID+1), // not yet
	} {
		errorMessage(t, s.doJSON(t, http.MethodGet, "/job/hist/logs?"+q, nil), http.StatusNotFound)
	}
	for _, q := range []string{"", "?follow=1", "?tail=2"} {
		msg := errorMessage(t, s.doJSON(t, http.MethodGet, "/job/nope/logs"+q, nil), http.StatusNotFound)
		if !strings.Contains(msg, "nope") {
			t.Errorf("logs%s of an unknown job: message %q does not name it", q, msg)
		}
	}

	// A job that never ran has no log, followed or not: said plainly.
	s.create(t, procman.Job{Name: "fresh", Command: "true", Type: procman.OneTime})
	for _, q := range []string{"", "?follow=1"} {
		msg := errorMessage(t, s.doJSON(t, http.MethodGet, "/job/fresh/logs"+q, nil), http.StatusNotFound)
		if !strings.Contains(msg, `"fresh"`) || !strings.Contains(msg, "not run yet") || !strings.Contains(msg, "no log") {
			t.Errorf("logs%s of a job that never ran: message %q, want it to say the job has not run yet, so no log", q, msg)
		}
	}
	errorMessage(t, s.doJSON(t, http.MethodPost, "/job/hist/logs", nil), http.StatusMethodNotAllowed)
}

// TestLogsFollowStreams follows a run as it writes: the first line arrives
// while the run goes on, and the answer ends by itself when the run ends,
// with every line.
func TestLogsFollowStreams(t *testing.T) {
	s := setup(t)
	dir := t.TempDir()
	// A line, then (once the test has seen it) four more, one every 100ms. The
	// gate makes "the run is still going" certain rather than a race.
	s.create(t, procman.Job{Name: "ticker", Type: procman.OneTime, Dir: dir,
		Command: `echo tick 1; while [ ! -e gate ]; do sleep 0.05; done; ` +
			`for i in 2 3 4 5; do sleep 0.1; echo tick $i; done`})
	st := s.control(t, http.MethodGet, "ticker", "start")
	if st.State != procman.StateRunning {
		t.Fatalf("start: %+v, want running", st)
	}

	ls := s.openStream(t, "/job/ticker/logs?follow=1")
	if ls.resp.StatusCode != http.StatusOK {
		t.Fatalf("follow: status %d, want 200", ls.resp.StatusCode)
	}
	if ct := ls.resp.Header.Get("Content-Type"); ct != textType {
		t.Errorf("follow: Content-Type %q, want %q", ct, textType)
	}
	if line := ls.next(t, waitLimit); line != "tick 1\n" {
		t.Fatalf("first line %q, want %q", line, "tick 1\n")
	}
	// Received while the run goes on: it cannot end before the gate exists.
	run := s.histRuns(t, "ticker", "?limit=1")[0]
	if run.EndedAt != nil || run.Outcome != "" {
		t.Fatalf("run %+v has ended before the gate was opened", run)
	}
	if st := s.control(t, http.MethodGet, "ticker", "state"); st.State != procman.StateRunning {
		t.Fatalf("state %+v while following, want running", st)
	}

	if err := os.WriteFile(filepath.Join(dir, "gate"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rest := ls.rest(t, waitLimit)
	if want := []string{"tick 2\n", "tick 3\n", "tick 4\n", "tick 5\n"}; !reflect.DeepEqual(rest, want) {
		t.Errorf("after the first line: %q, want %q", rest, want)
	}
	// It ended because the run did, not before.
	if got := s.histRun(t, "ticker", run.ID); got.EndedAt == nil || got.Outcome != procman.OutcomeExited {
		t.Errorf("the follow ended but run %+v has not", got)
	}
	waitHandlersGone(t, logsHandler)
	if n := fdsTo(t, run.LogFile); n != 0 {
		t.Errorf("%d descriptors still open on %s after the follow ended", n, run.LogFile)
	}
	s.waitState(t, "ticker", "exited", exitedWith(0))
}

// TestLogsFollowClientLeaves: a client that goes away mid-follow frees the
// handler and the log file at once, though the run goes on writing nothing.
func TestLogsFollowClientLeaves(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "quiet", Command: "echo hello; exec sleep 100", Type: procman.OneTime})
	st := s.control(t, http.MethodGet, "quiet", "start")
	// Should the handler hang, ending the run lets setup's cleanup finish.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		s.m.Stop(ctx, "quiet")
	})

	ls := s.openStream(t, "/job/quiet/logs?follow=1")
	if line := ls.next(t, waitLimit); line != "hello\n" {
		t.Fatalf("first line %q, want %q", line, "hello\n")
	}
	// The handler is now waiting for more output that will not come.
	if n := len(goroutinesIn(logsHandler)); n != 1 {
		t.Fatalf("%d goroutines in the logs handler while following, want 1", n)
	}
	// The follower's, and ProcMan's own while the run goes on (it keeps the
	// file under max_run_log_bytes).
	if n := fdsTo(t, st.LogFile); n != 2 {
		t.Fatalf("%d descriptors open on %s while following, want 2", n, st.LogFile)
	}

	left := time.Now()
	ls.close()
	waitHandlersGone(t, logsHandler)
	t.Logf("handler returned %s after the client left", time.Since(left).Round(time.Millisecond))
	if n := fdsTo(t, st.LogFile); n != 1 {
		t.Errorf("%d descriptors open on %s after the client left, want ProcMan's own", n, st.LogFile)
	}
	// Only the follow ended: the run goes on.
	if got := s.control(t, http.MethodGet, "quiet", "state"); got.State != procman.StateRunning || got.PID != st.PID {
		t.Errorf("state after the client left: %+v, want still running as %d", got, st.PID)
	}
	if got := s.control(t, http.MethodGet, "quiet", "stop"); got.State != procman.StateStopped {
		t.Errorf("stop: %+v", got)
	}
}

// TestEvents reads GET /events as Server-Sent Events while a one_time job is
// created and run, then leaves and checks the handler ended.
func TestEvents(t *testing.T) {
	s := setup(t)
	ls := s.openStream(t, "/events")
	if ls.resp.StatusCode != http.StatusOK {
		t.Fatalf("events: status %d, want 200", ls.resp.StatusCode)
	}
	if ct := ls.resp.Header.Get("Content-Type"); ct != eventType {
		t.Errorf("events: Content-Type %q, want %q", ct, eventType)
	}
	if cc := ls.resp.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("events: Cache-Control %q, want no-cache", cc)
	}
	// The headers arrive once the handler has subscribed, so no event of what
	// follows can be missed.
	s.create(t, procman.Job{Name: "ev", Command: "echo hi", Type: procman.OneTime})
	s.control(t, http.MethodPost, "ev", "start")

	type move struct{ from, to procman.State }
	var (
		got    []move
		evs    []procman.Event
		field  string // the event: line of the event being read
		seen   []string
		latest time.Time
	)
	deadline := time.Now().Add(waitLimit)
	for len(got) == 0 || got[len(got)-1].to != procman.StateExited {
		line := ls.next(t, time.Until(deadline))
		seen = append(seen, line)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "", strings.HasPrefix(line, ":"): // end of an event; a comment
			field = ""
		case strings.HasPrefix(line, "event: "):
			field = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var ev procman.Event
			dec := json.NewDecoder(strings.NewReader(strings.TrimPrefix(line, "data: ")))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
			if string(ev.Type) != field {
				t.Errorf("event of type %q announced as %q", ev.Type, field)
			}
			if ev.Type == "lagged" {
				t.Errorf("lagged event: %+v", ev)
			}
			if ev.Job != "ev" {
				continue
			}
			if ev.Time.Before(latest) {
				t.Errorf("event %+v is older than the one before it", ev)
			}
			latest = ev.Time
			evs = append(evs, ev)
			got = append(got, move{ev.From, ev.To})
		default:
			t.Fatalf("unexpected line %q in the event stream", line)
		}
	}
	if !strings.HasPrefix(seen[0], ":") {
		t.Errorf("the stream does not open with a comment: %q", seen[0])
	}
	wantMoves := []move{
		{procman.StateStopped, procman.StateStarting},
		{procman.StateStarting, procman.StateRunning},
		{procman.StateRunning, procman.StateExited},
	}
	if !reflect.DeepEqual(got, wantMoves) {
		t.Fatalf("transitions of ev %v, want %v; stream:\n%s", got, wantMoves, strings.Join(seen, ""))
	}
	if evs[1].PID <= 0 {
		t.Errorf("running event %+v has no pid", evs[1])
	}
	if evs[2].ExitCode == nil || *evs[2].ExitCode != 0 {
		t.Errorf("exited event %+v, want exit code 0", evs[2])
	}
	if n := len(goroutinesIn(eventsHandler)); n != 1 {
		t.Errorf("%d goroutines in the events handler while streaming, want 1", n)
	}

	ls.close()
	waitHandlersGone(t, eventsHandler)
}

// TestEventsEndAtShutdown: an event stream ends by itself when the Manager
// shuts down, and a stream opened afterwards ends at once.
func TestEventsEndAtShutdown(t *testing.T) {
	s := setup(t)
	ls := s.openStream(t, "/events")
	if line := ls.next(t, waitLimit); !strings.HasPrefix(line, ":") {
		t.Fatalf("first line %q, want a comment", line)
	}
	if err := s.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ls.rest(t, waitLimit)
	waitHandlersGone(t, eventsHandler)

	late := s.openStream(t, "/events")
	if late.resp.StatusCode != http.StatusOK {
		t.Fatalf("events after shutdown: status %d", late.resp.StatusCode)
	}
	late.rest(t, waitLimit)
	waitHandlersGone(t, eventsHandler)
}

// TestEventsOfHealth: a job's health check comes over the API: the job's
// definition as given, its status's health, and each change of health as an
// event of type health on /events, with the job's whole status.
func TestEventsOfHealth(t *testing.T) {
	s := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ls := s.openStream(t, "/events")
	defer ls.close()
	s.create(t, procman.Job{Name: "db", Command: "sleep 1000", Type: procman.Continuous, OnUnhealthy: procman.OnUnhealthyIgnore,
		Health: &procman.HealthCheck{TCP: ln.Addr().String(), Interval: procman.Duration(20 * time.Millisecond), Retries: 1}})
	r := s.doJSON(t, http.MethodGet, "/job/db", nil)
	want(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"health":{"tcp":"`+ln.Addr().String()+`","interval":"20ms","retries":1},"on_unhealthy":"ignore"`) {
		t.Errorf("definition %s", r.body)
	}
	s.control(t, http.MethodPost, "db", "start")
	st := s.waitState(t, "db", "healthy", func(st procman.Status) bool { return st.Health == procman.HealthHealthy })
	if st.HealthCheckedAt == nil || st.HealthFailure != "" {
		t.Errorf("status %+v", st)
	}
	ln.Close()
	deadline := time.Now().Add(waitLimit)
	var got []procman.Health
	for len(got) < 2 {
		line := strings.TrimSuffix(ls.next(t, time.Until(deadline)), "\n")
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev procman.Event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type != procman.EventHealth {
			continue
		}
		if ev.Job != "db" || ev.Status.State != procman.StateRunning || ev.Status.PID != st.PID {
			t.Errorf("health event %s", data)
		}
		if ev.Status.Health == procman.HealthUnhealthy && (ev.Reason == "" || ev.Reason != ev.Status.HealthFailure) {
			t.Errorf("unhealthy event without its reason: %s", data)
		}
		got = append(got, ev.Status.Health)
	}
	if !reflect.DeepEqual(got, []procman.Health{procman.HealthHealthy, procman.HealthUnhealthy}) {
		t.Errorf("health events %v", got)
	}
}
