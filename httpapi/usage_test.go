package httpapi_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
)

// lines keeps every log record, as text.
type lines struct {
	mu   sync.Mutex
	text []string
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lines) WithGroup(string) slog.Handler            { return l }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { sb.WriteString(" " + a.String()); return true })
	l.mu.Lock()
	l.text = append(l.text, sb.String())
	l.mu.Unlock()
	return nil
}

func (l *lines) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.text {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}

// POST /job/{name}/signal?sig=HUP signals the running run's group and answers
// its status; the access log has the signal asked for.
func TestSignalRoute(t *testing.T) {
	s := setup(t)
	var log lines
	ts := httptest.NewServer(httpapi.New(s.m, httpapi.WithLogger(slog.New(&log))))
	defer ts.Close()
	s.create(t, procman.Job{Name: "web", Type: procman.Continuous,
		Command: `trap 'echo reloaded' HUP; echo ready; while :; do sleep 0.1; done`})
	st := s.control(t, http.MethodPost, "web", "start")
	waitLog(t, st.LogFile, "ready")
	resp, err := ts.Client().Post(ts.URL+"/job/web/signal?sig=HUP", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /job/web/signal?sig=HUP: %d", resp.StatusCode)
	}
	waitLog(t, st.LogFile, "reloaded")
	if !log.has("request", "method=POST", "path=/job/web/signal", "query=sig=HUP", "status=200") {
		t.Errorf("no access log line with the signal; the log:\n%s", strings.Join(log.text, "\n"))
	}
	// The client sends the name, and the number of a signal without one.
	if st, err := s.api.Signal(context.Background(), "web", syscall.SIGHUP); err != nil || st.Name != "web" || st.State != procman.StateRunning {
		t.Errorf("client Signal: %+v, %v", st, err)
	}
	waitCount(t, st.LogFile, "reloaded", 2)
	if _, err := s.api.Signal(context.Background(), "web", syscall.Signal(40)); err != nil {
		t.Errorf("client Signal(40): %v", err)
	}
}

// waitCount polls until the file holds want n times.
func waitCount(t *testing.T, path, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, err := os.ReadFile(path)
		if err == nil && strings.Count(string(b), want) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log %s: %q (err %v) does not hold %q %d times after %s", path, b, err, want, n, waitLimit)
		}
		time.Sleep(pollInterval)
	}
}

// A signal's bad input: each refused naming the problem.
func TestSignalBadInput(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("web"))
	s.create(t, sleeperJob("idle"))
	s.control(t, http.MethodPost, "web", "start")
	for _, tc := range []struct {
		method, path string
		code         int
		says         string
	}{
		{"POST", "/job/web/signal", 400, "sig is required"},
		{"POST", "/job/web/signal?sig=", 400, "sig is required"},
		{"POST", "/job/web/signal?sig=FOO", 400, `unknown signal "FOO"`},
		{"POST", "/job/web/signal?sig=0", 400, `unknown signal "0"`},
		{"POST", "/job/web/signal?sig=65", 400, `unknown signal "65"`},
		{"POST", "/job/idle/signal?sig=HUP", 409, "not running"},
		{"POST", "/job/nope/signal?sig=HUP", 404, `job "nope": not found`},
		{"GET", "/job/web/signal?sig=HUP", 405, "use POST"},
	} {
		r := s.doJSON(t, tc.method, tc.path, nil)
		if msg := errorMessage(t, r, tc.code); !strings.Contains(msg, tc.says) {
			t.Errorf("%v: message %q does not say %q", r, msg, tc.says)
		}
	}
	if _, err := s.api.Signal(context.Background(), "idle", syscall.SIGHUP); !errors.Is(err, procman.ErrNotRunning) {
		t.Errorf("client Signal of a job not running: %v, want procman.ErrNotRunning", err)
	}
}

// GET /job/{name}/usage and GET /jobs/usage answer what running jobs cost;
// a job that does not run is 409 for the one, absent from the other.
func TestUsageRoutes(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("b"))
	s.create(t, sleeperJob("a"))
	s.create(t, sleeperJob("idle"))
	s.control(t, http.MethodPost, "a", "start")
	s.control(t, http.MethodPost, "b", "start")
	r := s.doJSON(t, http.MethodGet, "/job/a/usage", nil)
	want(t, r, http.StatusOK)
	u := decode[procman.Usage](t, r)
	if u.Job != "a" || u.Run != 1 || u.Processes < 1 || u.RSSBytes <= 0 || u.PSSBytes == nil || u.AgeSeconds <= 0 {
		t.Errorf("%v: want a's usage, with its PSS", r)
	}
	r = s.doJSON(t, http.MethodGet, "/jobs/usage", nil)
	want(t, r, http.StatusOK)
	if us := decode[[]procman.Usage](t, r); len(us) != 2 || us[0].Job != "a" || us[1].Job != "b" || us[0].PSSBytes != nil {
		t.Errorf("%v: want a and b, without PSS", r)
	}
	b := sleeperJob("b")
	b.Labels = map[string]string{"tier": "web"}
	if _, err := s.api.Replace(context.Background(), "b", b); err != nil {
		t.Fatal(err)
	}
	r = s.doJSON(t, http.MethodGet, "/jobs/usage?selector=tier%3Dweb", nil)
	want(t, r, http.StatusOK)
	if us := decode[[]procman.Usage](t, r); len(us) != 1 || us[0].Job != "b" {
		t.Errorf("%v: want b alone, the one labelled tier=web", r)
	}
	us, err := s.api.Usages(context.Background(), procman.UsageOptions{PSS: true})
	if err != nil || len(us) != 2 || us[0].PSSBytes == nil || us[1].PSSBytes == nil {
		t.Errorf("client Usages with PSS: %+v, %v", us, err)
	}
	if u, err := s.api.Usage(context.Background(), "b"); err != nil || u.Job != "b" {
		t.Errorf("client Usage: %+v, %v", u, err)
	}
	for _, tc := range []struct {
		path string
		code int
		says string
	}{
		{"/job/idle/usage", 409, "not running"},
		{"/job/nope/usage", 404, "not found"},
		{"/jobs/usage?pss=maybe", 400, `pss must be 1 or 0, got "maybe"`},
		{"/jobs/usage?selector=a%3D%3D%3D", 400, "selector"},
	} {
		r := s.doJSON(t, http.MethodGet, tc.path, nil)
		if msg := errorMessage(t, r, tc.code); !strings.Contains(msg, tc.says) {
			t.Errorf("%v: message %q does not say %q", r, msg, tc.says)
		}
	}
	var e *client.Error
	if _, err := s.api.Usage(context.Background(), "idle"); !errors.As(err, &e) || e.Code != "not_running" || !errors.Is(err, procman.ErrNotRunning) {
		t.Errorf("client Usage of a job not running: %v", err)
	}
}
