package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman/httpapi"
)

// TestErrorCodes: each error answer names what went wrong in its "code", so
// that a program can tell a name taken (exists) from a job running (running)
// though both are 409.
func TestErrorCodes(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("web"))
	s.control(t, http.MethodPost, "web", "start")
	for _, tc := range []struct {
		method, path, body, code string
	}{
		{"POST", "/job/create", `{"name":"x","command":"true","schedule":"rebot"}`, "invalid"},
		{"POST", "/job/create", `{"name":"x",`, "invalid"},
		{"GET", "/job/nope", "", "not_found"},
		{"GET", "/job/web/runs/12345", "", "not_found"},
		{"GET", "/job/web/logs?run=x", "", "not_found"},
		{"GET", "/nope", "", "no_route"},
		{"GET", "/job/web%2Fstop", "", "no_route"},
		{"GET", "/ui/nope.js", "", "no_route"},
		{"DELETE", "/jobs", "", "method_not_allowed"},
		{"POST", "/job/create", `{"name":"web","command":"true"}`, "exists"},
		{"POST", "/job/web/start", "", "running"},
		{"POST", "/job/nope/signal?sig=HUP", "", "not_found"},
		{"POST", "/job/web/signal?sig=FOO", "", "invalid"},
		{"POST", "/job/create", `{"name":"x","command":"true"}` + strings.Repeat(" ", httpapi.MaxBodyBytes), "too_large"},
		{"PATCH", "/job/web", "x", "unsupported_media_type"},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		r := s.doJSON(t, tc.method, tc.path, body)
		if tc.method == "PATCH" {
			r = s.patch(t, tc.path, "text/plain", tc.body)
		}
		if got := errorCode(t, r); got != tc.code {
			t.Errorf("%v: code %q, want %q", r, got, tc.code)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, s.url+"/job/web/stop", nil)
	req.Header.Set("Origin", "https://evil.example")
	if got := errorCodeOf(t, s.client, req); got != "forbidden" {
		t.Errorf("a cross-site request: code %q, want forbidden", got)
	}
	if err := s.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := errorCode(t, s.doJSON(t, http.MethodPost, "/job/web/start", nil)); got != "closed" {
		t.Errorf("a start after shutdown: code %q, want closed", got)
	}
	if got := errorCode(t, s.doJSON(t, http.MethodGet, "/healthz", nil)); got != "closed" {
		t.Errorf("GET /healthz after shutdown: code %q, want closed", got)
	}

	_, ts := tokenServer(t)
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/jobs", nil)
	if got := errorCodeOf(t, ts.Client(), req); got != "unauthorized" {
		t.Errorf("no token: code %q, want unauthorized", got)
	}
}

func errorCode(t *testing.T, r response) string {
	t.Helper()
	var body struct{ Code string }
	if err := json.Unmarshal(r.body, &body); err != nil || r.code < 400 {
		t.Fatalf("%v: not an error answer (%v)", r, err)
	}
	return body.Code
}

func errorCodeOf(t *testing.T, c *http.Client, req *http.Request) string {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s %s: %d, %v", req.Method, req.URL, resp.StatusCode, err)
	}
	return body.Code
}

// TestErrorCodesDocumented: the README's Errors section names every code the
// API answers with.
func TestErrorCodesDocumented(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n### Errors\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, code := range httpapi.ErrorCodes() {
		if !strings.Contains(section, "`"+code+"`") {
			t.Errorf("the README's Errors section does not name the code `%s`", code)
		}
	}
}
