package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// fuzzMethods are the methods FuzzRouterPath picks from by index.
var fuzzMethods = []string{
	http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete,
	http.MethodHead, http.MethodOptions, http.MethodPatch, "PROPFIND",
}

// fuzzStatuses are the only codes the API may answer a body-less request with.
// 500 is not among them: with a healthy database and no stubborn process, an
// answer of 500 is a bug.
var fuzzStatuses = []int{200, 201, 301, 307, 308, 400, 403, 404, 405, 409, 413} // 403: a target naming another host

// recordedErrors collects the records logged at error level: invalid state
// transitions from the Manager, 500s and panics from the API.
type recordedErrors struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordedErrors) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *recordedErrors) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordedErrors) WithGroup(string) slog.Handler                { return h }
func (h *recordedErrors) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { sb.WriteString(" " + a.String()); return true })
	h.mu.Lock()
	h.msgs = append(h.msgs, sb.String())
	h.mu.Unlock()
	return nil
}

func (h *recordedErrors) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	msgs := h.msgs
	h.msgs = nil
	return msgs
}

// FuzzRouterPath sends body-less requests with arbitrary methods and targets
// straight to the handler of a real Manager. The handler must not panic, must
// answer with one of fuzzStatuses (never 500), must answer every 4xx with a
// JSON {"error": "...", "code": "..."}, and may redirect only within this server. The only
// job, "j", runs `true`, so whatever the fuzzer starts ends at once. Fuzz with
//
//	go test -run '^$' -fuzz '^FuzzRouterPath$' -fuzztime 20s ./httpapi/
func FuzzRouterPath(f *testing.F) {
	dir := f.TempDir()
	logs := &recordedErrors{}
	log := slog.New(logs)
	m, err := procman.Open(context.Background(), procman.Config{
		DBPath: filepath.Join(dir, "procman.db"), LogDir: filepath.Join(dir, "logs"),
		StopTimeout: stopTimeout, Logger: log,
	})
	if err != nil {
		f.Fatalf("Open: %v", err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			f.Errorf("Shutdown: %v", err)
		}
	})
	h := httpapi.New(m, httpapi.WithLogger(log), httpapi.WithAllowedHosts("procman.test"))
	job := procman.Job{Name: "j", Command: "true", Type: procman.OneTime}
	ensureJob := func(t testing.TB) {
		t.Helper()
		if _, err := m.Get("j"); errors.Is(err, procman.ErrNotFound) {
			if err := m.Create(context.Background(), job); err != nil {
				t.Fatalf("re-creating j: %v", err)
			}
		}
	}
	ensureJob(f)
	if err := m.Start(context.Background(), "j"); err != nil { // so that runs/1 and logs exist
		f.Fatalf("Start j: %v", err)
	}
	if _, err := m.WaitFor(context.Background(), "j", procman.StateExited); err != nil {
		f.Fatalf("WaitFor j: %v", err)
	}

	long := strings.Repeat("n", 128)
	// A huge path is worth a seed, but not a 70 kB one: each exec of it took
	// milliseconds, and the fuzzer's minimisation of a new input grown from it
	// ran tens of thousands of them, holding a worker for up to
	// -fuzzminimizetime (60 s) at 0 execs/s.
	for _, seed := range []struct {
		method uint8
		target string
	}{
		// The README routes, each with its method.
		{0, "/jobs"}, {0, "/jobs/states"}, {0, "/job/j"}, {1, "/job/create"}, {2, "/job/replace/j"},
		{0, "/job/j/start"}, {1, "/job/j/start"}, {0, "/job/j/stop"}, {1, "/job/j/stop"},
		{0, "/job/j/restart"}, {1, "/job/j/restart"}, {0, "/job/j/state"}, {0, "/job/j/runs?limit=2"},
		{0, "/job/j/runs/1"}, {0, "/job/j/logs"}, {0, "/job/j/logs?run=1&tail=2"}, {0, "/job/j/logs?follow=1"},
		{0, "/events"}, {0, "/healthz"}, {0, "/metrics"}, {3, "/job/delete/j"}, {3, "/job/delete/nope"},
		// Wrong methods.
		{0, "/job/replace/j"}, {0, "/job/delete/j"}, {2, "/job/j/start"}, {1, "/job/j/state"}, {1, "/job/j/runs"},
		{1, "/jobs"}, {4, "/jobs"}, {5, "/jobs"}, {5, "/job/j/start"}, {6, "/job/j"}, {7, "/job/j"}, {1, "/events"},
		// Odd paths.
		{0, "/job/../jobs"}, {0, "//jobs"}, {0, "/job/%2e%2e/state"}, {0, "/job/a%2Fb/start"}, {0, "/job/..%2F..%2Fetc/logs"},
		{0, "/job/" + long + "/state"}, {0, "/job/" + long + "x/start"}, {0, "/job/" + strings.Repeat("a", 4096)},
		{0, "/job/héllo/state"}, {0, "/job/%F0%9F%98%80/start"}, {0, "/job/\xff/state"}, {0, "/job/%00/state"},
		{0, "/job/j/runs/0"}, {0, "/job/j/runs/-1"}, {0, "/job/j/runs/99999999999999999999"}, {0, "/job/j/runs/1/x"},
		{0, "/job/j/runs/abc"}, {0, "/job/j/logs?tail=-1"}, {0, "/job/j/logs?tail=100001"}, {0, "/job/j/logs?tail=x"},
		{0, "/job/j/logs?run=0"}, {0, "/job/j/logs?run=-1"}, {0, "/job/j/logs?run=999"}, {0, "/job/j/logs?tail=1&run=1&follow=true"},
		{0, "/job/j/runs?limit=0"}, {0, "/job/j/runs?limit=1001"}, {0, "/job/j/runs?limit=1e3"}, {0, "/job/j/runs?limit=%zz"},
		{0, "/jobs/"}, {0, "/JOBS"}, {0, "/Job/J/State"}, {0, "/job/j/"}, {0, "/job/j/start/"}, {0, "/job/j/bogus"},
		{0, "/"}, {0, "*"}, {5, "*"}, {0, "/job/"}, {0, "/job//start"}, {0, "/job/j//"}, {0, "/events/"},
		{0, "http://example.com/jobs"}, {0, "http://example.com"}, {3, "A:"}, {0, "http://example.com/jobs/"}, {0, "/\\evil.example/"}, {0, "/%5Cevil.example/jobs/"},
		{0, "///evil.example/jobs/"}, {0, "/./jobs"}, {0, "/jobs?x=1#frag"}, {0, "/job/j/state;x=1"},
		{2, "/job/replace/"}, {3, "/job/delete/"}, {1, "/job/j/restart"},
	} {
		f.Add(seed.method, seed.target)
	}

	f.Fuzz(func(t *testing.T, mi uint8, target string) {
		method := fuzzMethods[int(mi)%len(fuzzMethods)]
		// Build the request as net/http's server would from the wire: a target
		// it would refuse never reaches the handler.
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(
			method + " " + target + " HTTP/1.1\r\nHost: procman.test\r\n\r\n")))
		if err != nil || req.URL == nil {
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if req.URL.Path == "/events" {
			cancel() // the event stream then ends at once instead of waiting for events
		}
		req = req.WithContext(ctx)
		rec := httptest.NewRecorder()
		done := make(chan any, 1)
		go func() {
			defer func() { done <- recover() }()
			h.ServeHTTP(rec, req)
		}()
		select {
		case p := <-done:
			if p != nil {
				t.Fatalf("%s %q panicked: %v", method, target, p)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s %q: no answer within 20s", method, target)
		}
		desc := fmt.Sprintf("%s %q (path %q): %d %s", method, target, req.URL.Path, rec.Code, strings.TrimSpace(rec.Body.String()))
		if msgs := logs.take(); len(msgs) > 0 {
			t.Errorf("%s: logged at error level: %q", desc, msgs)
		}
		if !slices.Contains(fuzzStatuses, rec.Code) {
			t.Fatalf("%s: unexpected status", desc)
		}
		switch {
		case rec.Code >= 300 && rec.Code < 400:
			// A browser sends a path (origin form): the redirect must stay a path
			// on this server, or a link to ProcMan could send the browser
			// elsewhere. The absolute form ("GET http://host/x") is sent only to
			// proxies, and its redirect names whatever the request named.
			loc := rec.Header().Get("Location")
			if strings.HasPrefix(target, "/") &&
				(!strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") || strings.HasPrefix(loc, "/\\")) {
				t.Errorf("%s: redirect to %q leaves the server", desc, loc)
			}
		case rec.Code >= 400:
			if ct := rec.Header().Get("Content-Type"); ct != jsonType {
				t.Errorf("%s: Content-Type %q, want %q", desc, ct, jsonType)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: error body is not JSON: %v", desc, err)
			}
			msg, ok := body["error"].(string)
			code, hasCode := body["code"].(string)
			if len(body) != 2 || !ok || msg == "" || !hasCode || code == "" {
				t.Errorf(`%s: error body is not {"error": "<message>", "code": "<code>"}`, desc)
			}
		}
		ensureJob(t)
	})
}
