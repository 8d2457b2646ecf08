package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/pgtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(stopsPostgres{m}) }

// pg serves the tests that need PostgreSQL (fleet_test.go), started by the
// first of them; stopsPostgres stops it once the tests have run, before
// goleak looks.
var pg pgtest.Lazy

type stopsPostgres struct{ m *testing.M }

func (s stopsPostgres) Run() int {
	defer pg.Stop()
	return s.m.Run()
}

const (
	waitLimit    = 15 * time.Second      // overall deadline of every poll loop
	pollInterval = 10 * time.Millisecond // pause between two polls
	stopTimeout  = 2 * time.Second       // Config.StopTimeout of every test Manager
	clientLimit  = 30 * time.Second      // no single request may take longer
	oneMiB       = 1 << 20               // the documented limit on request bodies
	sleeper      = "sleep 100"           // a command that runs until stopped
	jsonType     = "application/json"    // Content-Type of every answer
)

// readmeBody is the body of the original README's create example, verbatim.
const readmeBody = `{
	"name": "test",
	"command": "echo hello",
	"type": "one_time",
	"schedule": "reboot"
}`

// server is a real Manager in a temporary folder, served over real HTTP.
// The tests speak to it with bare requests where they check what goes over
// the wire, and through the client package where they only take steps.
type server struct {
	m      *procman.Manager
	url    string
	client *http.Client
	api    *client.Client // over client's connections
	logDir string
}

// errorLogs fails the test on any record at error level: the Manager logs
// invalid state transitions there, and the API logs 500s and panics there.
type errorLogs struct{ t *testing.T }

func (h errorLogs) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h errorLogs) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h errorLogs) WithGroup(string) slog.Handler                { return h }
func (h errorLogs) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	r.Attrs(func(a slog.Attr) bool { sb.WriteString(" " + a.String()); return true })
	h.t.Errorf("logged at error level: %s%s", r.Message, sb.String())
	return nil
}

func setup(t *testing.T) *server {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(errorLogs{t})
	m, err := procman.Open(context.Background(), procman.Config{
		DBPath:      filepath.Join(dir, "procman.db"),
		LogDir:      filepath.Join(dir, "logs"),
		StopTimeout: stopTimeout,
		Logger:      log,
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	ts := httptest.NewServer(validated(t, httpapi.New(m, httpapi.WithLogger(log))))
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	c := ts.Client()
	c.Timeout = clientLimit
	// Show redirects instead of following them: the API never redirects.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	api, err := client.New(ts.URL, client.WithHTTPClient(c))
	if err != nil {
		t.Fatal(err)
	}
	return &server{m: m, url: ts.URL, client: c, api: api, logDir: filepath.Join(dir, "logs")}
}

// response is one answer, read in full.
type response struct {
	method, path string
	code         int
	header       http.Header
	body         []byte
}

func (r response) String() string {
	return fmt.Sprintf("%s %s: %d %s", r.method, r.path, r.code, bytes.TrimSpace(r.body))
}

// send makes one request. body is sent as is if it is a string or []byte, as
// JSON otherwise, and not at all if nil. It does not touch t, so goroutines may call it.
func (s *server) send(method, path string, body any) (response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return response{}, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", jsonType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{method: method, path: path, code: resp.StatusCode, header: resp.Header, body: raw}, nil
}

// doJSON is send for the test goroutine.
func (s *server) doJSON(t *testing.T, method, path string, body any) response {
	t.Helper()
	r, err := s.send(method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// want checks the status code and that the answer is JSON, whatever the code.
func want(t *testing.T, r response, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%v; want status %d", r, code)
	}
	if ct := r.header.Get("Content-Type"); ct != jsonType {
		t.Fatalf("%v: Content-Type %q, want %q", r, ct, jsonType)
	}
}

// decode reads the body strictly: a field the type does not have fails the test.
func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v: decode as %T: %v", r, v, err)
	}
	if dec.More() {
		t.Fatalf("%v: more than one JSON value", r)
	}
	return v
}

// errorCodes are the codes an error answer of each status code may carry.
var errorCodes = map[int][]string{
	400: {"invalid"}, 401: {"unauthorized"}, 403: {"forbidden"}, 404: {"not_found", "no_route"},
	405: {"method_not_allowed"}, 409: {"exists", "running", "in_use", "not_running"}, 413: {"too_large"}, 415: {"unsupported_media_type"}, 422: {"start_failed"},
	500: {"internal", "stop_failed"}, 502: {"unreachable"}, 503: {"closed", "locked", "unhealthy", "canceled", "elsewhere"},
}

// errorMessage checks that r is an error answer with the given code, shaped
// {"error": "...", "code": "..."} and nothing else, with a code that goes
// with its status, and returns the message.
func errorMessage(t *testing.T, r response, code int) string {
	t.Helper()
	want(t, r, code)
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%v: error body is not a JSON object: %v", r, err)
	}
	msg, ok := body["error"].(string)
	errCode, _ := body["code"].(string)
	list, hasList := body["errors"].([]any)
	if len(body) != 2 && !(len(body) == 3 && hasList && len(list) > 0) || !ok || msg == "" {
		t.Fatalf(`%v: error body is not {"error": "<message>", "code": "<code>"} (with, for a refused definition, "errors": [...])`, r)
	}
	if !slices.Contains(errorCodes[code], errCode) {
		t.Fatalf("%v: code %q, want one of %q for status %d", r, errCode, errorCodes[code], code)
	}
	return msg
}

// job gets a job definition over the API.
func (s *server) job(t *testing.T, name string) procman.Job {
	t.Helper()
	j, err := s.api.Get(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return j
}

// create creates j over the API, requiring the definition echoed.
func (s *server) create(t *testing.T, j procman.Job) {
	t.Helper()
	got, err := s.api.Create(context.Background(), j)
	if err != nil {
		t.Fatalf("create %s: %v", j.Name, err)
	}
	if !reflect.DeepEqual(got, j) {
		t.Fatalf("create echoed %+v, want %+v", got, j)
	}
}

// control calls /job/{name}/{action} with method, requiring 200 and a status for name.
func (s *server) control(t *testing.T, method, name, action string) procman.Status {
	t.Helper()
	r := s.doJSON(t, method, "/job/"+name+"/"+action, nil)
	want(t, r, http.StatusOK)
	st := decode[procman.Status](t, r)
	if st.Name != name {
		t.Fatalf("%v: status of %q, want %q", r, st.Name, name)
	}
	return st
}

// waitState polls GET /job/{name}/state until ok holds or waitLimit passes.
func (s *server) waitState(t *testing.T, name, what string, ok func(procman.Status) bool) procman.Status {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, err := s.api.State(context.Background(), name)
		if err != nil {
			t.Fatalf("state of %s: %v", name, err)
		}
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %q not %s after %s; last status %+v", name, what, waitLimit, st)
		}
		time.Sleep(pollInterval)
	}
}

func isState(want procman.State) func(procman.Status) bool {
	return func(st procman.Status) bool { return st.State == want }
}

// logFiles lists the job's log files, oldest first.
func (s *server) logFiles(t *testing.T, name string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.logDir, name))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, filepath.Join(s.logDir, name, e.Name()))
	}
	return out
}

// waitLog polls until the file holds want.
func waitLog(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q (err %v) does not contain %q after %s", path, b, err, want, waitLimit)
		}
		time.Sleep(pollInterval)
	}
}

// gone reports whether no process has this pid (a zombie counts as gone).
func gone(pid int) bool {
	st, ok := osproc.ReadStat(pid)
	return !ok || !st.Alive()
}

func sleeperJob(name string) procman.Job {
	return procman.Job{Name: name, Command: sleeper, Type: procman.Continuous}
}

// TestReadmeExample runs the example of the original README, step by step.
func TestReadmeExample(t *testing.T) {
	s := setup(t)

	// Create a job with the reboot schedule: it runs at once.
	r := s.doJSON(t, http.MethodPost, "/job/create", readmeBody)
	want(t, r, http.StatusCreated)
	echoed := decode[map[string]any](t, r)
	for k, v := range map[string]any{"name": "test", "command": "echo hello", "type": "one_time", "schedule": "reboot"} {
		if echoed[k] != v {
			t.Errorf("create echoed %s = %#v, want %#v (body %s)", k, echoed[k], v, r.body)
		}
	}
	first := s.waitState(t, "test", "exited", isState(procman.StateExited))
	if first.ExitCode == nil || *first.ExitCode != 0 || first.PID != 0 {
		t.Errorf("first run: %+v, want exit code 0 and no pid", first)
	}
	files := s.logFiles(t, "test")
	if len(files) != 1 || files[0] != first.LogFile {
		t.Fatalf("log files %v, want exactly the status's %s", files, first.LogFile)
	}
	if !regexp.MustCompile(`^[0-9]+\.log$`).MatchString(filepath.Base(files[0])) {
		t.Errorf("log file %s is not named <unix-timestamp>.log", files[0])
	}
	waitLog(t, files[0], "hello")

	// Run it again: a second log file with the same content.
	st := s.control(t, http.MethodGet, "test", "start")
	if st.State != procman.StateRunning && st.State != procman.StateExited {
		t.Errorf("start answered %+v, want running or exited", st)
	}
	second := s.waitState(t, "test", "exited from a second run", func(st procman.Status) bool {
		return st.State == procman.StateExited && st.LogFile != first.LogFile
	})
	files = s.logFiles(t, "test")
	if len(files) != 2 || !slices.Contains(files, first.LogFile) || !slices.Contains(files, second.LogFile) {
		t.Fatalf("log files %v, want %s and %s", files, first.LogFile, second.LogFile)
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err != nil || string(b) != "hello\n" {
			t.Errorf("log %s: %q (err %v), want %q", f, b, err, "hello\n")
		}
	}

	// Stopping a job that has already exited changes nothing.
	if st := s.control(t, http.MethodGet, "test", "stop"); st.State != procman.StateExited {
		t.Errorf("stop of an exited job: %+v, want exited", st)
	}
}

// TestRoutes calls every route of the original README (and GET /jobs/states)
// and checks each answer.
func TestRoutes(t *testing.T) {
	s := setup(t)

	for _, path := range []string{"/jobs", "/jobs/states"} {
		r := s.doJSON(t, http.MethodGet, path, nil)
		want(t, r, http.StatusOK)
		if got := string(bytes.TrimSpace(r.body)); got != "[]" {
			t.Errorf("%v: want [] with no jobs", r)
		}
	}

	web := procman.Job{
		Name: "web", Command: sleeper, Type: procman.Continuous, Schedule: procman.ScheduleManual,
		Env: map[string]string{"GREETING": "hi"}, StopSignal: "INT", StopTimeout: procman.Duration(3 * time.Second),
		BackoffInitial: procman.Duration(100 * time.Millisecond), BackoffMax: procman.Duration(2 * time.Second),
		MinUptime: procman.Duration(time.Second), MaxRetries: 3,
	}
	batch := procman.Job{Name: "batch", Command: "echo batch", Type: procman.OneTime}
	s.create(t, web)
	s.create(t, batch)

	t.Run("GET /job/{name}", func(t *testing.T) {
		if got := s.job(t, "web"); !reflect.DeepEqual(got, web) {
			t.Errorf("got %+v, want %+v", got, web)
		}
		// The wire names of the definition.
		r := s.doJSON(t, http.MethodGet, "/job/web", nil)
		raw := decode[map[string]any](t, r)
		for k, v := range map[string]any{"name": "web", "command": sleeper, "type": "continuous", "schedule": "manual",
			"stop_signal": "INT", "stop_timeout": "3s", "backoff_initial": "100ms", "backoff_max": "2s",
			"min_uptime": "1s", "max_retries": 3.0} {
			if raw[k] != v {
				t.Errorf("%s = %#v, want %#v (body %s)", k, raw[k], v, r.body)
			}
		}
	})

	t.Run("GET /jobs", func(t *testing.T) {
		r := s.doJSON(t, http.MethodGet, "/jobs", nil)
		want(t, r, http.StatusOK)
		here := s.m.Entries()[0].Host // this host runs every job
		wantList := []procman.Entry{{Job: batch, Source: procman.SourceAPI, State: procman.StateStopped, Host: here},
			{Job: web, Source: procman.SourceAPI, State: procman.StateStopped, Host: here}}
		if got := decode[[]procman.Entry](t, r); !reflect.DeepEqual(got, wantList) {
			t.Errorf("got %+v, want batch then web, stopped", got)
		}
	})

	t.Run("GET /jobs/states", func(t *testing.T) {
		r := s.doJSON(t, http.MethodGet, "/jobs/states", nil)
		want(t, r, http.StatusOK)
		got := decode[[]procman.Status](t, r)
		if len(got) != 2 || got[0].Name != "batch" || got[1].Name != "web" {
			t.Fatalf("got %+v, want batch then web", got)
		}
		for _, st := range got {
			if st.State != procman.StateStopped || st.PID != 0 || st.Since.IsZero() {
				t.Errorf("%+v, want stopped, no pid, a since time", st)
			}
		}
	})

	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method+" start|state|restart|stop", func(t *testing.T) {
			st := s.control(t, method, "web", "start")
			if st.State != procman.StateRunning || st.PID <= 0 || st.LogFile == "" {
				t.Fatalf("start: %+v, want running with a pid and a log file", st)
			}
			if got := s.control(t, http.MethodGet, "web", "state"); got.State != procman.StateRunning || got.PID != st.PID {
				t.Errorf("state: %+v, want running as pid %d", got, st.PID)
			}
			again := s.control(t, method, "web", "restart")
			if again.State != procman.StateRunning || again.PID <= 0 || again.PID == st.PID {
				t.Errorf("restart: %+v, want running with a new pid (old %d)", again, st.PID)
			}
			if !gone(st.PID) {
				t.Errorf("restart: old process %d still alive", st.PID)
			}
			stopped := s.control(t, method, "web", "stop")
			if stopped.State != procman.StateStopped || stopped.PID != 0 {
				t.Errorf("stop: %+v, want stopped with no pid", stopped)
			}
			if !gone(again.PID) {
				t.Errorf("stop: process %d still alive", again.PID)
			}
			if got := s.control(t, http.MethodGet, "web", "state"); got.State != procman.StateStopped {
				t.Errorf("state after stop: %+v", got)
			}
		})
	}

	t.Run("PUT /job/replace/{name}", func(t *testing.T) {
		repl := batch
		repl.Command = "echo replaced"
		r := s.doJSON(t, http.MethodPut, "/job/replace/batch", repl)
		want(t, r, http.StatusOK)
		if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, repl) {
			t.Errorf("echoed %+v, want %+v", got, repl)
		}
		if got := s.job(t, "batch"); !reflect.DeepEqual(got, repl) {
			t.Errorf("GET after replace: %+v, want %+v", got, repl)
		}
	})

	t.Run("DELETE /job/delete/{name}", func(t *testing.T) {
		r := s.doJSON(t, http.MethodDelete, "/job/delete/web", nil)
		want(t, r, http.StatusOK)
		if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, web) {
			t.Errorf("echoed %+v, want the deleted definition %+v", got, web)
		}
		errorMessage(t, s.doJSON(t, http.MethodGet, "/job/web", nil), http.StatusNotFound)
	})
}

// TestReplace checks PUT /job/replace/{name} beyond the happy path.
func TestReplace(t *testing.T) {
	s := setup(t)
	v1 := procman.Job{Name: "web", Command: "echo v1; exec sleep 100", Type: procman.Continuous}
	s.create(t, v1)
	st := s.control(t, http.MethodGet, "web", "start")
	waitLog(t, st.LogFile, "v1")

	v2 := procman.Job{Name: "web", Command: "echo v2; exec sleep 100", Type: procman.Continuous,
		StopTimeout: procman.Duration(time.Second)}
	r := s.doJSON(t, http.MethodPut, "/job/replace/web", v2)
	want(t, r, http.StatusOK)
	if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, v2) {
		t.Errorf("replace echoed %+v, want %+v", got, v2)
	}
	if got := s.job(t, "web"); !reflect.DeepEqual(got, v2) {
		t.Errorf("GET after replace: %+v, want %+v", got, v2)
	}
	if got := s.control(t, http.MethodGet, "web", "state"); got.State != procman.StateRunning || got.PID != st.PID {
		t.Errorf("a running job keeps running its old definition: %+v, want running as pid %d", got, st.PID)
	}
	st = s.control(t, http.MethodGet, "web", "restart")
	waitLog(t, st.LogFile, "v2")

	t.Run("name taken from the path when omitted", func(t *testing.T) {
		r := s.doJSON(t, http.MethodPut, "/job/replace/web", `{"command": "echo v3", "type": "one_time"}`)
		want(t, r, http.StatusOK)
		v3 := procman.Job{Name: "web", Command: "echo v3", Type: procman.OneTime}
		if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, v3) {
			t.Errorf("echoed %+v, want %+v", got, v3)
		}
		if got := s.job(t, "web"); !reflect.DeepEqual(got, v3) {
			t.Errorf("GET: %+v, want %+v", got, v3)
		}
	})

	before := s.job(t, "web")
	for _, tc := range []struct {
		name, path string
		body       any
		code       int
		says       []string
	}{
		{"name differs from the path", "/job/replace/web", procman.Job{Name: "other", Command: "true", Type: procman.OneTime},
			http.StatusBadRequest, []string{"name", "other", "web"}},
		{"invalid definition", "/job/replace/web", `{"command": "true", "type": "sometimes"}`,
			http.StatusBadRequest, []string{"type", "sometimes"}},
		{"malformed JSON", "/job/replace/web", `{"command": `, http.StatusBadRequest, nil},
		{"unknown job", "/job/replace/nope", `{"command": "true", "type": "one_time"}`,
			http.StatusNotFound, []string{"nope"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := errorMessage(t, s.doJSON(t, http.MethodPut, tc.path, tc.body), tc.code)
			for _, w := range tc.says {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not mention %q", msg, w)
				}
			}
			if got := s.job(t, "web"); !reflect.DeepEqual(got, before) {
				t.Errorf("a refused replace changed the job: %+v, want %+v", got, before)
			}
		})
	}
	errorMessage(t, s.doJSON(t, http.MethodGet, "/job/other", nil), http.StatusNotFound)
}

// TestDelete deletes a running job: it is stopped, gone from every route, its
// logs are kept, and its name can be used again.
func TestDelete(t *testing.T) {
	s := setup(t)
	doomed := sleeperJob("doomed")
	s.create(t, doomed)
	st := s.control(t, http.MethodGet, "doomed", "start")

	r := s.doJSON(t, http.MethodDelete, "/job/delete/doomed", nil)
	want(t, r, http.StatusOK)
	if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, doomed) {
		t.Errorf("delete echoed %+v, want %+v", got, doomed)
	}
	if !gone(st.PID) {
		t.Errorf("process %d of the deleted job still alive", st.PID)
	}
	for _, path := range []string{"/job/doomed", "/job/doomed/state", "/job/doomed/start"} {
		msg := errorMessage(t, s.doJSON(t, http.MethodGet, path, nil), http.StatusNotFound)
		if !strings.Contains(msg, "doomed") {
			t.Errorf("GET %s: message %q does not name the job", path, msg)
		}
	}
	errorMessage(t, s.doJSON(t, http.MethodDelete, "/job/delete/doomed", nil), http.StatusNotFound)
	for _, path := range []string{"/jobs", "/jobs/states"} {
		if r := s.doJSON(t, http.MethodGet, path, nil); string(bytes.TrimSpace(r.body)) != "[]" {
			t.Errorf("%v: want [] after delete", r)
		}
	}
	if files := s.logFiles(t, "doomed"); len(files) != 1 {
		t.Errorf("log files %v, want the one run's log kept", files)
	}

	reborn := procman.Job{Name: "doomed", Command: "echo again", Type: procman.OneTime}
	s.create(t, reborn)
	if got := s.job(t, "doomed"); !reflect.DeepEqual(got, reborn) {
		t.Errorf("GET after re-create: %+v, want %+v", got, reborn)
	}
	if got := s.control(t, http.MethodGet, "doomed", "state"); got.State != procman.StateStopped {
		t.Errorf("re-created job: %+v, want stopped", got)
	}
}

// TestErrors checks every error code of the API, and that every error answer
// is {"error": "...", "code": "..."} as application/json.
func TestErrors(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "idle", Command: "true", Type: procman.OneTime})
	s.create(t, sleeperJob("busy"))
	s.control(t, http.MethodGet, "busy", "start")
	s.create(t, procman.Job{Name: "once", Command: sleeper, Type: procman.OneTime})
	s.control(t, http.MethodGet, "once", "start")

	// job returns a valid definition as JSON text with extra fields spliced in.
	job := func(name, extra string) string {
		return fmt.Sprintf(`{"name": %q, "command": "true", "type": "one_time"%s}`, name, extra)
	}
	const (
		get, post, put, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete
	)
	type errCase struct {
		method, path string
		body         string
		code         int
		says         []string // the message contains each
		allow        []string // the Allow header lists each (405 only)
		knownBug     string   // skip the case, saying why
	}
	cases := map[string]errCase{
		// 400: the body is not one job definition.
		"malformed JSON": {post, "/job/create", `{"name": "a",`, 400, nil, nil, ""},
		"not JSON":       {post, "/job/create", `hello`, 400, nil, nil, ""},
		"empty body":     {post, "/job/create", ``, 400, nil, nil, ""},
		"JSON array":     {post, "/job/create", `[]`, 400, nil, nil, ""},
		"JSON null":      {post, "/job/create", `null`, 400, []string{"object"}, nil, ""},
		"unknown field":  {post, "/job/create", job("a", `, "colour": "red"`), 400, []string{"colour"}, nil, ""},
		"field of wrong JSON type": {post, "/job/create", `{"name": "a", "command": 5, "type": "one_time"}`, 400,
			[]string{"command"}, nil, ""},
		"bad type": {post, "/job/create", `{"name": "a", "command": "true", "type": "sometimes"}`, 400,
			[]string{"type", "sometimes", "one_time", "continuous"}, nil, ""},
		"bad schedule": {post, "/job/create", job("a", `, "schedule": "rebot"`), 400,
			[]string{"schedule", `"rebot"`, `"reboot"`, `"manual"`, `"none"`}, nil, ""},
		"bad name ../x":         {post, "/job/create", job("../x", ""), 400, []string{"name"}, nil, ""},
		"empty name":            {post, "/job/create", job("", ""), 400, []string{"name"}, nil, ""},
		"name starting with .":  {post, "/job/create", job(".hidden", ""), 400, []string{"name"}, nil, ""},
		"name of 129 chars":     {post, "/job/create", job(strings.Repeat("n", 129), ""), 400, []string{"name"}, nil, ""},
		"empty command":         {post, "/job/create", `{"name": "a", "command": " ", "type": "one_time"}`, 400, []string{"command"}, nil, ""},
		"bad duration":          {post, "/job/create", job("a", `, "stop_timeout": "10 parsecs"`), 400, []string{"stop_timeout", "10 parsecs"}, nil, ""},
		"duration as a number":  {post, "/job/create", job("a", `, "stop_timeout": 10`), 400, []string{"stop_timeout"}, nil, ""},
		"negative duration":     {post, "/job/create", job("a", `, "stop_timeout": "-1s"`), 400, []string{"stop_timeout"}, nil, ""},
		"bad stop signal":       {post, "/job/create", job("a", `, "stop_signal": "STAHP"`), 400, []string{"stop_signal", "STAHP"}, nil, ""},
		"backoff on a one_time": {post, "/job/create", job("a", `, "backoff_initial": "1s"`), 400, []string{"backoff_initial"}, nil, ""},
		"bad env name":          {post, "/job/create", job("a", `, "env": {"A=B": "c"}`), 400, []string{"env"}, nil, ""},
		"trailing garbage":      {post, "/job/create", job("a", "") + " garbage", 400, []string{"trailing"}, nil, ""},
		"two objects":           {post, "/job/create", job("a", "") + job("b", ""), 400, []string{"trailing"}, nil, ""},
		"trailing }":            {post, "/job/create", job("a", "") + "}", 400, []string{"trailing"}, nil, ""},
		"trailing ]":            {post, "/job/create", job("a", "") + "]", 400, []string{"trailing"}, nil, ""},

		// 404: no such job, on every job route.
		"unknown job: GET /job/{name}":           {get, "/job/nope", "", 404, []string{"nope"}, nil, ""},
		"unknown job: PUT /job/replace/{name}":   {put, "/job/replace/nope", job("nope", ""), 404, []string{"nope"}, nil, ""},
		"unknown job: DELETE /job/delete/{name}": {del, "/job/delete/nope", "", 404, []string{"nope"}, nil, ""},
		"unknown job: GET start":                 {get, "/job/nope/start", "", 404, []string{"nope"}, nil, ""},
		"unknown job: POST start":                {post, "/job/nope/start", "", 404, []string{"nope"}, nil, ""},
		"unknown job: GET stop":                  {get, "/job/nope/stop", "", 404, []string{"nope"}, nil, ""},
		"unknown job: POST stop":                 {post, "/job/nope/stop", "", 404, []string{"nope"}, nil, ""},
		"unknown job: GET restart":               {get, "/job/nope/restart", "", 404, []string{"nope"}, nil, ""},
		"unknown job: POST restart":              {post, "/job/nope/restart", "", 404, []string{"nope"}, nil, ""},
		"unknown job: GET state":                 {get, "/job/nope/state", "", 404, []string{"nope"}, nil, ""},

		// 404: no such route.
		"unknown route /nope":                  {get, "/nope", "", 404, nil, nil, ""},
		"unknown route POST /nope":             {post, "/nope", "{}", 404, nil, nil, ""},
		"unknown route /jobs/nope":             {get, "/jobs/nope", "", 404, nil, nil, ""},
		"unknown route /job/{name}/state/more": {get, "/job/idle/state/more", "", 404, nil, nil, ""},
		"unknown action GET frobnicate":        {get, "/job/idle/frobnicate", "", 404, []string{"frobnicate"}, nil, ""},
		"unknown action POST frobnicate":       {post, "/job/idle/frobnicate", "", 404, []string{"frobnicate"}, nil, ""},
		"unknown action of unknown job":        {get, "/job/nope/frobnicate", "", 404, nil, nil, ""},

		// 405: the path exists for another method.
		"DELETE /jobs":               {del, "/jobs", "", 405, nil, []string{"GET"}, ""},
		"POST /jobs":                 {post, "/jobs", "{}", 405, nil, []string{"GET"}, ""},
		"PUT /jobs/states":           {put, "/jobs/states", "{}", 405, nil, []string{"GET"}, ""},
		"PUT /job/create":            {put, "/job/create", job("a", ""), 405, nil, []string{"POST"}, ""},
		"DELETE /job/create":         {del, "/job/create", "", 405, nil, []string{"POST"}, ""},
		"DELETE /job/{name}":         {del, "/job/idle", "", 405, nil, []string{"GET"}, ""},
		"POST /job/{name}":           {post, "/job/idle", job("idle", ""), 405, nil, []string{"GET"}, ""},
		"GET /job/replace/{name}":    {get, "/job/replace/idle", "", 405, nil, []string{"PUT"}, ""},
		"POST /job/replace/{name}":   {post, "/job/replace/idle", job("idle", ""), 405, nil, []string{"PUT"}, ""},
		"DELETE /job/replace/{name}": {del, "/job/replace/idle", "", 405, nil, []string{"PUT"}, ""},
		"GET /job/delete/{name}":     {get, "/job/delete/idle", "", 405, nil, []string{"DELETE"}, ""},
		"POST /job/delete/{name}":    {post, "/job/delete/idle", "", 405, nil, []string{"DELETE"}, ""},
		"PUT /job/delete/{name}":     {put, "/job/delete/idle", job("idle", ""), 405, nil, []string{"DELETE"}, ""},
		"POST /job/{name}/state":     {post, "/job/idle/state", "", 405, nil, []string{"GET"}, ""},
		"PUT /job/{name}/start":      {put, "/job/idle/start", "", 405, nil, []string{"GET", "POST"}, ""},
		"DELETE /job/{name}/state":   {del, "/job/idle/state", "", 405, nil, []string{"GET"}, ""},

		// 409: a conflict with the job's existence or state.
		"duplicate create":            {post, "/job/create", job("idle", ""), 409, []string{"idle"}, nil, ""},
		"GET start of a running job":  {get, "/job/busy/start", "", 409, []string{"busy"}, nil, ""},
		"POST start of a running job": {post, "/job/busy/start", "", 409, []string{"busy"}, nil, ""},
		"start of a running one_time": {get, "/job/once/start", "", 409, []string{"once"}, nil, ""},

		// 413: a body over 1 MiB.
		"create body too large":  {post, "/job/create", job("a", "") + strings.Repeat(" ", oneMiB), 413, nil, nil, ""},
		"replace body too large": {put, "/job/replace/idle", job("idle", "") + strings.Repeat(" ", oneMiB), 413, nil, nil, ""},
	}
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		tc := cases[name]
		t.Run(name, func(t *testing.T) {
			if tc.knownBug != "" {
				t.Skip("known bug: " + tc.knownBug)
			}
			var body any
			if tc.body != "" {
				body = tc.body
			}
			r := s.doJSON(t, tc.method, tc.path, body)
			msg := errorMessage(t, r, tc.code)
			for _, w := range tc.says {
				if !strings.Contains(msg, w) {
					t.Errorf("%v: message does not mention %q", r, w)
				}
			}
			allowed := strings.Split(r.header.Get("Allow"), ", ")
			for _, m := range tc.allow {
				if !slices.Contains(allowed, m) {
					t.Errorf("%v: Allow %q does not list %s", r, r.header.Get("Allow"), m)
				}
			}
		})
	}

	// No refused request created, changed or stopped anything.
	r := s.doJSON(t, http.MethodGet, "/jobs/states", nil)
	var got []string
	for _, st := range decode[[]procman.Status](t, r) {
		got = append(got, st.Name+"="+string(st.State))
	}
	if want := []string{"busy=running", "idle=stopped", "once=running"}; !slices.Equal(got, want) {
		t.Errorf("after the refused requests: %v, want %v", got, want)
	}
}

// A start or restart whose first run fails to start answers 422 with the
// reason; the job still goes where a failed run takes it.
func TestStartThatFailsIs422(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "nodir", Command: "true", Type: procman.OneTime, Dir: "/nonexistent/dir"})
	s.create(t, procman.Job{Name: "nodir-svc", Command: "true", Type: procman.Continuous, Dir: "/nonexistent/dir",
		BackoffInitial: procman.Duration(time.Hour)})
	for _, c := range []struct{ method, job, action string }{
		{http.MethodGet, "nodir", "start"}, {http.MethodPost, "nodir", "start"}, {http.MethodPost, "nodir", "restart"},
		{http.MethodPost, "nodir-svc", "start"}, {http.MethodPost, "nodir-svc", "restart"},
	} {
		r := s.doJSON(t, c.method, "/job/"+c.job+"/"+c.action, nil)
		if msg := errorMessage(t, r, http.StatusUnprocessableEntity); !strings.Contains(msg, "not a usable directory") {
			t.Errorf("%v: message does not say why", r)
		}
	}
	if st := s.control(t, http.MethodGet, "nodir", "state"); st.State != procman.StateError {
		t.Errorf("one_time job: %+v, want error", st)
	}
	if st := s.control(t, http.MethodGet, "nodir-svc", "state"); st.State != procman.StateRetrying {
		t.Errorf("continuous job: %+v, want retrying", st)
	}
}

// TestBodyLimit checks both sides of the 1 MiB limit on request bodies.
func TestBodyLimit(t *testing.T) {
	if httpapi.MaxBodyBytes != oneMiB {
		t.Errorf("MaxBodyBytes = %d, want %d", httpapi.MaxBodyBytes, oneMiB)
	}
	s := setup(t)
	pad := func(j string, size int) string { return j + strings.Repeat(" ", size-len(j)) }

	fits := pad(`{"name": "fits", "command": "true", "type": "one_time"}`, oneMiB)
	want(t, s.doJSON(t, http.MethodPost, "/job/create", fits), http.StatusCreated)
	want(t, s.doJSON(t, http.MethodPut, "/job/replace/fits", fits), http.StatusOK)

	over := pad(`{"name": "over", "command": "true", "type": "one_time"}`, oneMiB+1)
	errorMessage(t, s.doJSON(t, http.MethodPost, "/job/create", over), http.StatusRequestEntityTooLarge)
	errorMessage(t, s.doJSON(t, http.MethodGet, "/job/over", nil), http.StatusNotFound)
	tooBig := pad(`{"name": "fits", "command": "false", "type": "one_time"}`, oneMiB+1)
	errorMessage(t, s.doJSON(t, http.MethodPut, "/job/replace/fits", tooBig), http.StatusRequestEntityTooLarge)
	if got := s.job(t, "fits"); got.Command != "true" {
		t.Errorf("a refused replace changed the job: %+v", got)
	}
}

// TestAfterShutdown: once the Manager is shut down, control answers 503 and
// reads keep working.
func TestAfterShutdown(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("web"))
	s.control(t, http.MethodGet, "web", "start")
	if err := s.m.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{http.MethodPost, "/job/create", sleeperJob("late")},
		{http.MethodGet, "/job/web/start", nil},
		{http.MethodPost, "/job/web/restart", nil},
		{http.MethodPut, "/job/replace/web", sleeperJob("web")},
		{http.MethodDelete, "/job/delete/web", nil},
	} {
		errorMessage(t, s.doJSON(t, tc.method, tc.path, tc.body), http.StatusServiceUnavailable)
	}
	if st := s.control(t, http.MethodGet, "web", "state"); st.State != procman.StateStopped {
		t.Errorf("state after shutdown: %+v, want stopped", st)
	}
	want(t, s.doJSON(t, http.MethodGet, "/jobs", nil), http.StatusOK)
}

// TestConcurrentCreateAndStart creates and starts 50 continuous jobs from 50
// goroutines at once, then stops them all at once.
func TestConcurrentCreateAndStart(t *testing.T) {
	s := setup(t)
	const n = 50
	name := func(i int) string { return fmt.Sprintf("job-%02d", i) }

	// each runs f(i) in n goroutines released together.
	each := func(f func(i int)) {
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-gate
				f(i)
			})
		}
		close(gate)
		wg.Wait()
	}
	// call is doJSON for goroutines: errors are reported with t.Errorf.
	call := func(method, path string, body any, code int) (procman.Status, bool) {
		r, err := s.send(method, path, body)
		if err != nil || r.code != code {
			t.Errorf("%s %s: %v (err %v), want %d", method, path, r, err, code)
			return procman.Status{}, false
		}
		var st procman.Status
		if code == http.StatusOK {
			if err := json.Unmarshal(r.body, &st); err != nil {
				t.Errorf("%v: %v", r, err)
			}
		}
		return st, true
	}

	pids := make([]int, n)
	each(func(i int) {
		if _, ok := call(http.MethodPost, "/job/create", sleeperJob(name(i)), http.StatusCreated); !ok {
			return
		}
		if st, ok := call(http.MethodPost, "/job/"+name(i)+"/start", nil, http.StatusOK); ok {
			if st.State != procman.StateRunning || st.PID <= 0 {
				t.Errorf("start %s: %+v, want running", name(i), st)
			}
			pids[i] = st.PID
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	r := s.doJSON(t, http.MethodGet, "/jobs/states", nil)
	states := decode[[]procman.Status](t, r)
	if len(states) != n {
		t.Fatalf("%d jobs listed, want %d", len(states), n)
	}
	seen := map[int]bool{}
	for i, st := range states {
		if st.Name != name(i) || st.State != procman.StateRunning || st.PID != pids[i] || seen[st.PID] {
			t.Errorf("job %d: %+v, want %s running as its own pid %d", i, st, name(i), pids[i])
		}
		seen[st.PID] = true
	}

	each(func(i int) {
		if st, ok := call(http.MethodGet, "/job/"+name(i)+"/stop", nil, http.StatusOK); ok && st.State != procman.StateStopped {
			t.Errorf("stop %s: %+v, want stopped", name(i), st)
		}
	})
	r = s.doJSON(t, http.MethodGet, "/jobs/states", nil)
	for _, st := range decode[[]procman.Status](t, r) {
		if st.State != procman.StateStopped {
			t.Errorf("after stopping all: %+v", st)
		}
	}
	for _, pid := range pids {
		if pid > 0 && !gone(pid) {
			t.Errorf("process %d still alive after stop", pid)
		}
	}
}

// TestConcurrentConflicts races requests that only one may win.
func TestConcurrentConflicts(t *testing.T) {
	s := setup(t)
	const n = 20
	race := func(method, path string, body any) map[int]int {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[int]int{}
		)
		gate := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-gate
				r, err := s.send(method, path, body)
				if err != nil {
					t.Errorf("%s %s: %v", method, path, err)
					return
				}
				mu.Lock()
				codes[r.code]++
				mu.Unlock()
			})
		}
		close(gate)
		wg.Wait()
		return codes
	}

	codes := race(http.MethodPost, "/job/create", sleeperJob("web"))
	if want := map[int]int{http.StatusCreated: 1, http.StatusConflict: n - 1}; !reflect.DeepEqual(codes, want) {
		t.Errorf("%d concurrent creates of one name: status counts %v, want %v", n, codes, want)
	}
	codes = race(http.MethodGet, "/job/web/start", nil)
	if want := map[int]int{http.StatusOK: 1, http.StatusConflict: n - 1}; !reflect.DeepEqual(codes, want) {
		t.Errorf("%d concurrent starts of one job: status counts %v, want %v", n, codes, want)
	}
	if st := s.control(t, http.MethodGet, "web", "stop"); st.State != procman.StateStopped {
		t.Errorf("stop: %+v", st)
	}
}
