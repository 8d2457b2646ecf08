package httpapi_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

const testToken = "correct-horse-battery-staple-42"

// tokenServer serves a Manager that holds one job, "a", behind testToken.
func tokenServer(t *testing.T) (*procman.Manager, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{
		DBPath: filepath.Join(dir, "procman.db"), LogDir: filepath.Join(dir, "logs"), StopTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(context.Background(), procman.Job{Name: "a", Command: "sleep 100", Type: procman.Continuous}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(validated(t, httpapi.New(m, httpapi.WithToken(testToken))))
	t.Cleanup(func() {
		ts.Close()
		m.Shutdown(context.Background())
	})
	return m, ts
}

func do(t *testing.T, method, url string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

var everyRoute = []struct{ method, path, body string }{
	{"GET", "/jobs", ""}, {"GET", "/jobs/states", ""}, {"GET", "/job/a", ""},
	{"POST", "/job/create", `{"name":"b","command":"true","type":"one_time"}`},
	{"PUT", "/job/replace/a", `{"command":"true","type":"one_time"}`}, {"DELETE", "/job/delete/a", ""},
	{"PATCH", "/job/a", `{"command":"false"}`},
	{"GET", "/job/a/start", ""}, {"POST", "/job/a/start", ""}, {"GET", "/job/a/stop", ""}, {"GET", "/job/a/restart", ""},
	{"GET", "/job/a/state", ""}, {"GET", "/job/a/runs", ""}, {"GET", "/job/a/runs/1", ""}, {"GET", "/job/a/logs", ""},
	{"GET", "/events", ""}, {"GET", "/metrics", ""}, {"GET", "/hosts", ""}, {"GET", "/nope", ""},
}

// TestTokenGuardsEveryRoute: without the right token nothing but /healthz
// answers, and nothing reaches the Manager.
func TestTokenGuardsEveryRoute(t *testing.T) {
	m, ts := tokenServer(t)
	for _, hdr := range []map[string]string{
		nil,
		{"Authorization": "Bearer wrong-token-of-enough-length"},
		{"Authorization": "Bearer " + testToken + "x"},
		{"Authorization": "Basic " + testToken},
		{"Authorization": testToken},
		{"Authorization": "Bearer"},
		{"Authorization": "Bearer "},
		{"Authorization": "Bearertoken " + testToken},
	} {
		for _, rt := range everyRoute {
			resp := do(t, rt.method, ts.URL+rt.path, hdr, rt.body)
			if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %v: %d %q", rt.method, rt.path, hdr, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if st, _ := m.State("a"); st.State != procman.StateStopped {
		t.Errorf("a refused request changed the job: %+v", st)
	}
	if len(m.List()) != 1 {
		t.Errorf("a refused request created or deleted a job: %+v", m.List())
	}
	if resp := do(t, "GET", ts.URL+"/healthz", nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz without a token: %d", resp.StatusCode)
	}
	// RFC 9110: the scheme is case-insensitive, and 1*SP follows it.
	for _, auth := range []string{"bearer " + testToken, "BEARER " + testToken, "Bearer  " + testToken} {
		if resp := do(t, "GET", ts.URL+"/jobs", map[string]string{"Authorization": auth}, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("GET /jobs with Authorization %q: %d", auth, resp.StatusCode)
		}
	}
	ok := map[string]string{"Authorization": "Bearer " + testToken}
	if resp := do(t, "GET", ts.URL+"/job/a/start", ok, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("start with the token: %d", resp.StatusCode)
	}
	if st, _ := m.State("a"); st.State != procman.StateRunning {
		t.Errorf("start with the token did not start: %+v", st)
	}
}

func TestShortTokenRefused(t *testing.T) {
	if err := httpapi.CheckToken("short"); err == nil || !strings.Contains(err.Error(), "20") {
		t.Fatalf("CheckToken(short) = %v", err)
	}
	if err := httpapi.CheckToken(testToken); err != nil {
		t.Fatal(err)
	}
}

// TestCrossSiteBrowserRequestsRefused: a web page elsewhere cannot drive the
// API through a browser on this host, even with GET control routes and no token.
func TestCrossSiteBrowserRequestsRefused(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "a", Command: "sleep 100", Type: procman.Continuous})
	for _, hdr := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"},
		{"Origin": "null"},
	} {
		for _, rt := range []struct{ method, path string }{{"GET", "/job/a/start"}, {"POST", "/job/a/start"}, {"POST", "/job/create"}, {"GET", "/jobs"}} {
			resp := do(t, rt.method, s.url+rt.path, hdr, `{"name":"b","command":"true","type":"one_time"}`)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("%s %s with %v: %d", rt.method, rt.path, hdr, resp.StatusCode)
			}
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("CORS header %q", v)
			}
		}
	}
	if st := s.control(t, "GET", "a", "state"); st.State != procman.StateStopped {
		t.Fatalf("a cross-site request started the job: %+v", st)
	}
	if resp := do(t, "OPTIONS", s.url+"/job/a/start", map[string]string{"Origin": "https://evil.example",
		"Access-Control-Request-Method": "POST"}, ""); resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.StatusCode == http.StatusOK {
		t.Errorf("preflight answered %d %v", resp.StatusCode, resp.Header)
	}
	// The same origin (a page served by ProcMan itself) and plain clients pass.
	host := strings.TrimPrefix(s.url, "http://")
	for _, hdr := range []map[string]string{nil, {"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}} {
		if resp := do(t, "GET", s.url+"/job/a/state", hdr, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("same-origin request with %v: %d", hdr, resp.StatusCode)
		}
	}
}

func TestHealthz(t *testing.T) {
	m, ts := tokenServer(t)
	if resp := do(t, "GET", ts.URL+"/healthz", nil, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	m.Shutdown(context.Background())
	if resp := do(t, "GET", ts.URL+"/healthz", nil, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz with the store closed: %d", resp.StatusCode)
	}
}

func TestListenUnix(t *testing.T) {
	dir, err := os.MkdirTemp("", "pm-sock") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s")
	ln, err := httpapi.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v", fi.Mode().Perm())
	}
	if _, err := httpapi.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "listening") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	// A crash leaves the file behind: simulate with a listener that does not unlink.
	ln.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatal("stale socket file missing")
	}
	ln2, err := httpapi.ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln2.Close()
	plain := filepath.Join(dir, "file")
	os.WriteFile(plain, []byte("keep me"), 0o644)
	if _, err := httpapi.ListenUnix(plain); err == nil {
		t.Error("a regular file was replaced by a socket")
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Error("regular file changed")
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "127.1.2.3:1": true,
		"0.0.0.0:1": false, ":1": false, "[::]:1": false, "10.0.0.1:1": false, "example.com:1": false} {
		if httpapi.Loopback(addr) != want {
			t.Errorf("Loopback(%s) = %v", addr, !want)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	_, ts := tokenServer(t)
	req, _ := http.NewRequest("GET", ts.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{`procman_jobs{state="stopped"} 1`, "procman_runs_started_total", "go_goroutines"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("content type %q", ct)
	}
}

// TestUnauthorizedSaysWhatToSend: the 401 body reads as the README writes it,
// "<token>", not "\u003ctoken\u003e" (JSON needs no HTML escaping).
func TestUnauthorizedSaysWhatToSend(t *testing.T) {
	_, ts := tokenServer(t)
	resp, err := http.Get(ts.URL + "/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want := `{"error":"missing or wrong token: send Authorization: Bearer <token>","code":"unauthorized"}` + "\n"; resp.StatusCode != 401 || string(body) != want {
		t.Errorf("GET /jobs without a token: %d %q, want 401 %q", resp.StatusCode, body, want)
	}
}
