package httpapi_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// doHost sends a request with the given Host header and other headers.
func doHost(t *testing.T, c *http.Client, method, url, host string, hdr map[string]string, body string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDNSRebindingRefused: after a DNS rebinding, a page's requests reach
// ProcMan as same-origin ones under the page's own name. Only the Host tells
// them apart, and they must change nothing.
func TestDNSRebindingRefused(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "a", Command: sleeper, Type: procman.Continuous})
	port := s.url[strings.LastIndex(s.url, ":")+1:]
	evil := "evil.example:" + port
	rebound := map[string]string{"Origin": "http://" + evil, "Sec-Fetch-Site": "same-origin"}
	for _, rt := range []struct{ method, path, body string }{
		{"POST", "/job/create", `{"name":"b","command":"touch /tmp/pwned","type":"one_time","schedule":"reboot"}`},
		{"GET", "/job/a/start", ""}, {"POST", "/job/a/start", ""}, {"GET", "/jobs", ""}, {"GET", "/job/a/logs", ""},
		{"DELETE", "/job/delete/a", ""}, {"GET", "/events", ""}, {"GET", "/ui/", ""},
	} {
		for _, host := range []string{evil, "evil.example", "EVIL.example.:" + port, "localhost.evil.example:" + port} {
			if code := doHost(t, s.client, rt.method, s.url+rt.path, host, rebound, rt.body); code != http.StatusForbidden {
				t.Errorf("%s %s with Host %s: %d, want 403", rt.method, rt.path, host, code)
			}
		}
	}
	if st := s.control(t, "GET", "a", "state"); st.State != procman.StateStopped {
		t.Errorf("a rebound request started the job: %+v", st)
	}
	if n := len(s.m.List()); n != 1 {
		t.Errorf("%d jobs: a rebound request created or deleted one", n)
	}
	// The names a page of ProcMan's own can have.
	for _, host := range []string{"localhost:" + port, "LocalHost:" + port, "localhost.:" + port, "127.0.0.1:" + port,
		"[::1]:" + port, "10.1.2.3", "dashboard.localhost:" + port, "localhost"} {
		hdr := map[string]string{"Origin": "http://" + host, "Sec-Fetch-Site": "same-origin"}
		if code := doHost(t, s.client, "GET", s.url+"/job/a/state", host, hdr, ""); code != http.StatusOK {
			t.Errorf("Host %q: %d, want 200", host, code)
		}
	}
}

func TestWithAllowedHosts(t *testing.T) {
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{DBPath: filepath.Join(dir, "p.db"), LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(context.Background())
	serve := func(t *testing.T, opts ...httpapi.Option) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: httpapi.New(m, opts...)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return "http://" + ln.Addr().String()
	}
	c := &http.Client{Timeout: clientLimit, Transport: &http.Transport{DisableKeepAlives: true}}
	base := serve(t, httpapi.WithAllowedHosts("procman.example", ".lan.", "Box"))
	for host, want := range map[string]int{
		"procman.example:10000": 200, "PROCMAN.example": 200, "x.procman.example": 403, "lan": 200, "box.lan:1": 200,
		"a.b.lan": 200, "evillan": 403, "box": 200, "box.example": 403, "evil.example": 403, "[fe80::1%25eth0]:1": 200,
	} {
		if code := doHost(t, c, "GET", base+"/jobs", host, nil, ""); code != want {
			t.Errorf("Host %s: %d, want %d", host, code, want)
		}
	}
	anyHost := serve(t, httpapi.WithAllowedHosts("*"))
	if code := doHost(t, c, "GET", anyHost+"/jobs", "evil.example", nil, ""); code != http.StatusOK {
		t.Errorf(`WithAllowedHosts("*"), Host evil.example: %d`, code)
	}

	// No browser reaches a Unix socket: its requests are not checked.
	sockDir, err := os.MkdirTemp("", "pm-sock") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	ln, err := httpapi.ListenUnix(filepath.Join(sockDir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: httpapi.New(m)}
	go srv.Serve(ln)
	defer srv.Close()
	uc := &http.Client{Timeout: clientLimit, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "unix", ln.Addr().String())
		}}}
	if code := doHost(t, uc, "GET", "http://procman/jobs", "evil.example", nil, ""); code != http.StatusOK {
		t.Errorf("over the Unix socket, Host evil.example: %d", code)
	}
}

// TestLegacyBrowserControlRefused: browsers older than Sec-Fetch-Site send
// neither it nor Origin for an <img>, a link or a form; what they send
// instead gives them away on the routes that change something.
func TestLegacyBrowserControlRefused(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "a", Command: sleeper, Type: procman.Continuous})
	host := strings.TrimPrefix(s.url, "http://")
	for _, hdr := range []map[string]string{
		{"Cookie": "session=other-app-on-localhost"},
		{"Referer": "http://evil.example/page.html"},
		{"Accept": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"},
		{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		{"Accept": "text/css,*/*;q=0.1"},
	} {
		for _, rt := range []struct{ method, path, body string }{
			{"GET", "/job/a/start", ""}, {"GET", "/job/a/restart", ""},
			{"POST", "/job/create", `{"name":"b","command":"true","type":"one_time"}`},
		} {
			if code := doHost(t, s.client, rt.method, s.url+rt.path, host, hdr, rt.body); code != http.StatusForbidden {
				t.Errorf("%s %s with %v: %d, want 403", rt.method, rt.path, hdr, code)
			}
		}
		// Reads are not what a page elsewhere can use: it cannot see the answer.
		if code := doHost(t, s.client, "GET", s.url+"/job/a/state", host, hdr, ""); code != http.StatusOK {
			t.Errorf("GET /job/a/state with %v: %d, want 200", hdr, code)
		}
	}
	if st := s.control(t, "GET", "a", "state"); st.State != procman.StateStopped {
		t.Fatalf("a legacy browser request started the job: %+v", st)
	}
	// What curl, scripts and ProcMan's own pages send.
	for _, hdr := range []map[string]string{nil, {"Accept": "*/*"}, {"Accept": "application/json"},
		{"Referer": "http://" + host + "/ui/"}} {
		if code := doHost(t, s.client, "GET", s.url+"/job/a/stop", host, hdr, ""); code != http.StatusOK {
			t.Errorf("GET /job/a/stop with %v: %d, want 200", hdr, code)
		}
	}
}
