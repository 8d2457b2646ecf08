package httpapi_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
)

// A fleet of hosts in one test: Managers on one PostgreSQL database, each
// behind its own HTTP server at the URL it advertises.

// fleetHost is one host of a test fleet.
type fleetHost struct {
	*server
	name string
	ts   *httptest.Server
}

// hostOptions change how a test host is opened and served.
type hostOptions struct {
	noAdvertise bool        // advertise no URL
	token       string      // require this token
	tls         bool        // serve HTTPS, with httptest's certificate
	fleetTLS    *tls.Config // for requests to other hosts
}

// openFleetHost opens host name on dsn, served on a loopback port that it
// advertises (unless o.noAdvertise).
func openFleetHost(t *testing.T, dsn, name string, o hostOptions) *fleetHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	if o.tls {
		url = "https://" + ln.Addr().String()
	}
	cfg := procman.Config{Postgres: dsn, Host: name, Advertise: url, LogDir: filepath.Join(t.TempDir(), "logs"),
		StopTimeout: stopTimeout, Logger: testLogger(t)}
	if o.noAdvertise {
		cfg.Advertise = ""
	}
	m, err := procman.Open(context.Background(), cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("Open %s: %v", name, err)
	}
	opts := []httpapi.Option{httpapi.WithLogger(testLogger(t))} // a fault (a 500, a panic) fails the test
	if o.token != "" {
		opts = append(opts, httpapi.WithToken(o.token))
	}
	if o.fleetTLS != nil {
		opts = append(opts, httpapi.WithFleetTLS(o.fleetTLS))
	}
	ts := httptest.NewUnstartedServer(validated(t, httpapi.New(m, opts...)))
	ts.Listener.Close()
	ts.Listener = ln
	if o.tls {
		ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes a test refuses on purpose
		ts.StartTLS()
	} else {
		ts.Start()
	}
	t.Cleanup(func() {
		ts.Close()
		shutdown(t, m)
	})
	c := ts.Client()
	c.Timeout = clientLimit
	api, err := client.New(url, client.WithHTTPClient(c), client.WithToken(o.token))
	if err != nil {
		t.Fatal(err)
	}
	return &fleetHost{server: &server{m: m, url: url, client: c, api: api}, name: name, ts: ts}
}

// forwardJob is a job that writes a line, says when it gets SIGUSR1, and runs until stopped.
func forwardJob(name string) procman.Job {
	return procman.Job{Name: name, Type: procman.Continuous,
		Command: `trap 'echo got-usr1' USR1; echo started-$$; while true; do sleep 0.05; done`}
}

// twoHosts opens hosts a and b, with bJobs on b and aJobs on a, each
// known to both (created before the other host opened).
func twoHosts(t *testing.T, bOpts hostOptions, bJobs ...procman.Job) (a, b *fleetHost) {
	return fleetOf(t, bOpts, nil, bJobs)
}

func fleetOf(t *testing.T, bOpts hostOptions, aJobs, bJobs []procman.Job) (a, b *fleetHost) {
	t.Helper()
	ctx := context.Background()
	dsn := pg.DB(t)
	if len(aJobs) > 0 { // a joins once, so that jobs may be pinned to it
		first := openFleetHost(t, dsn, "a", hostOptions{})
		first.ts.Close()
		shutdown(t, first.m)
	}
	b = openFleetHost(t, dsn, "b", bOpts)
	for _, j := range bJobs {
		if err := b.m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	for _, j := range aJobs {
		j.Host = "a"
		if err := b.m.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	a = openFleetHost(t, dsn, "a", hostOptions{token: bOpts.token})
	for _, j := range append(aJobs, bJobs...) {
		if _, err := a.m.Get(j.Name); err != nil {
			t.Fatalf("a does not know job %s: %v", j.Name, err)
		}
	}
	return a, b
}

// TestForwardedToTheOwner: start, signal, usage, logs (read and followed),
// restart, stop and delete of a job on b, asked of a, reach b and answer
// b's result; b's own refusals come back as they are.
func TestForwardedToTheOwner(t *testing.T) {
	a, b := twoHosts(t, hostOptions{}, forwardJob("w"))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := a.m.Start(ctx, "w"); !errors.Is(err, procman.ErrElsewhere) {
		t.Fatalf("a's Manager starts b's job: %v, want ErrElsewhere", err)
	}

	st := a.control(t, http.MethodPost, "w", "start")
	onB, err := b.m.WaitFor(ctx, "w", procman.StateRunning)
	if err != nil || st.PID == 0 || onB.PID != st.PID {
		t.Fatalf("start through a answered %+v; b has %+v, %v", st, onB, err)
	}
	if st.Host != "b" {
		t.Errorf("start through a: host %q, want b", st.Host)
	}

	// A follow streams from b as the run writes.
	follow := a.follow(t, "w")
	follow.waitFor(t, fmt.Sprintf("started-%d", st.PID))

	r := a.doJSON(t, http.MethodPost, "/job/w/signal?sig=USR1", nil)
	want(t, r, http.StatusOK)
	follow.waitFor(t, "got-usr1")
	follow.close()

	r = a.doJSON(t, http.MethodGet, "/job/w/usage", nil)
	want(t, r, http.StatusOK)
	if u := decode[procman.Usage](t, r); u.PID != st.PID || u.Job != "w" {
		t.Fatalf("usage through a: %+v, want b's run %d", u, st.PID)
	}
	r = a.doJSON(t, http.MethodGet, "/job/w/logs", nil)
	if r.code != http.StatusOK || !strings.Contains(string(r.body), "got-usr1") {
		t.Fatalf("logs through a: %v", r)
	}

	restarted := a.control(t, http.MethodPost, "w", "restart")
	if restarted.PID == st.PID || restarted.PID == 0 {
		t.Fatalf("restart through a: %+v, want a new run", restarted)
	}
	if onB, _ := b.m.State("w"); onB.PID != restarted.PID {
		t.Fatalf("after the restart through a, b runs %+v, a answered %+v", onB, restarted)
	}

	stopped := a.control(t, http.MethodGet, "w", "stop")
	if onB, _ := b.m.State("w"); stopped.State != procman.StateStopped || onB.State != procman.StateStopped {
		t.Fatalf("stop through a: answered %+v, b has %+v", stopped, onB)
	}
	r = a.doJSON(t, http.MethodPost, "/job/w/signal?sig=HUP", nil) // b's refusal, as b gives it
	if msg := errorMessage(t, r, http.StatusConflict); errorCode(t, r) != "not_running" || !strings.Contains(msg, "not running") {
		t.Fatalf("signal to the stopped job through a: %v", r)
	}

	r = a.doJSON(t, http.MethodDelete, "/job/delete/w", nil)
	want(t, r, http.StatusOK)
	if j := decode[procman.Job](t, r); j.Name != "w" || j.Command != forwardJob("w").Command {
		t.Fatalf("delete through a answered %+v", j)
	}
	if _, err := b.m.Get("w"); !errors.Is(err, procman.ErrNotFound) {
		t.Fatalf("after the delete through a, b's Get: %v", err)
	}
}

// TestForwardedFollowBroken: a follow through a whose stream from b breaks
// off breaks off too, rather than ending as if the run had ended, and a
// logs no fault for it.
func TestForwardedFollowBroken(t *testing.T) {
	a, b := twoHosts(t, hostOptions{}, forwardJob("w"))
	st := a.control(t, http.MethodPost, "w", "start")
	follow := a.follow(t, "w")
	follow.waitFor(t, fmt.Sprintf("started-%d", st.PID))
	b.ts.CloseClientConnections()
	select {
	case <-follow.done:
	case <-time.After(waitLimit):
		t.Fatalf("the follow through a goes on after b's connections were cut")
	}
	if follow.err == nil {
		t.Fatal("the follow through a ended cleanly when b's stream broke off")
	}
}

// TestForwardedOnce: a request already forwarded by a host is not sent on
// again: it answers 503 elsewhere, naming the owner, and b's job stays put.
func TestForwardedOnce(t *testing.T) {
	a, b := twoHosts(t, hostOptions{}, forwardJob("w"))
	req, _ := http.NewRequest(http.MethodPost, a.url+"/job/w/start", nil)
	req.Header.Set(httpapi.ForwardedBy, "c")
	r := a.do(t, req)
	msg := errorMessage(t, r, http.StatusServiceUnavailable)
	if errorCode(t, r) != "elsewhere" || !strings.Contains(msg, `host "b"`) || !strings.Contains(msg, `host "c" sent`) {
		t.Fatalf("a forwarded request for b's job, at a: %v", r)
	}
	if st, _ := b.m.State("w"); st.State != procman.StateStopped {
		t.Fatalf("b's job after the refusal: %+v", st)
	}
	if _, err := a.api.Start(context.Background(), "w"); err != nil { // the same request, not forwarded yet, goes
		t.Fatal(err)
	}
}

// TestForwardWithoutAdvertise: a job whose host advertises no URL cannot be
// reached: 503 elsewhere, saying so.
func TestForwardWithoutAdvertise(t *testing.T) {
	a, _ := twoHosts(t, hostOptions{noAdvertise: true}, forwardJob("w"))
	r := a.doJSON(t, http.MethodPost, "/job/w/start", nil)
	msg := errorMessage(t, r, http.StatusServiceUnavailable)
	if errorCode(t, r) != "elsewhere" || !strings.Contains(msg, "advertises no URL") {
		t.Fatalf("start of a job whose host advertises nothing: %v", r)
	}
	if _, err := a.api.Start(context.Background(), "w"); !errors.Is(err, procman.ErrElsewhere) {
		t.Fatalf("the client's error: %v, want ErrElsewhere", err)
	}
}

// TestForwardToADeadAPI: b holds its lease, but its API does not answer: 502
// unreachable, naming b and its URL.
func TestForwardToADeadAPI(t *testing.T) {
	a, b := twoHosts(t, hostOptions{}, forwardJob("w"))
	b.ts.Close()
	for _, path := range []string{"/job/w/start", "/job/w/logs?follow=1"} {
		method := http.MethodPost
		if strings.Contains(path, "logs") {
			method = http.MethodGet
		}
		r := a.doJSON(t, method, path, nil)
		msg := errorMessage(t, r, http.StatusBadGateway)
		if errorCode(t, r) != "unreachable" || !strings.Contains(msg, `"b"`) || !strings.Contains(msg, b.url) {
			t.Fatalf("%s to a job whose host is down: %v", path, r)
		}
	}
}

// TestForwardOverTLS: an https:// advertised URL is reached when its
// certificate's CA is trusted (WithFleetTLS, the server's -ca-file), and
// refused (502 unreachable, saying why) when it is not.
func TestForwardOverTLS(t *testing.T) {
	dsn := pg.DB(t)
	b := openFleetHost(t, dsn, "b", hostOptions{tls: true})
	if err := b.m.Create(context.Background(), forwardJob("w")); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(b.ts.Certificate())
	trusting := openFleetHost(t, dsn, "a", hostOptions{fleetTLS: &tls.Config{RootCAs: pool}})
	if _, err := trusting.api.Start(context.Background(), "w"); err != nil {
		t.Fatalf("start through a host that trusts b's CA: %v", err)
	}
	shutdown(t, trusting.m)
	trusting.ts.Close()

	doubting := openFleetHost(t, dsn, "a", hostOptions{})
	r := doubting.doJSON(t, http.MethodPost, "/job/w/stop", nil)
	msg := errorMessage(t, r, http.StatusBadGateway)
	if errorCode(t, r) != "unreachable" || !strings.Contains(msg, "certificate") {
		t.Fatalf("stop through a host that does not trust b's CA: %v", r)
	}
	if st, _ := b.m.State("w"); st.State != procman.StateRunning && st.State != procman.StateStarting {
		t.Fatalf("b's job after a refused stop: %+v", st)
	}
}

// TestForwardedToken: the caller's token goes with the request: hosts that
// share a token steer each other's jobs; a token b does not take is
// refused by b, and that refusal is the answer.
func TestForwardedToken(t *testing.T) {
	a, b := twoHosts(t, hostOptions{token: testToken}, forwardJob("w"))
	if _, err := a.api.Start(context.Background(), "w"); err != nil {
		t.Fatalf("start through a with the fleet's token: %v", err)
	}
	if st, _ := b.m.State("w"); st.State != procman.StateRunning && st.State != procman.StateStarting {
		t.Fatalf("b's job after a start through a: %+v", st)
	}
	req, _ := http.NewRequest(http.MethodGet, a.url+"/job/w/stop", nil)
	if r := a.do(t, req); r.code != http.StatusUnauthorized {
		t.Fatalf("no token, at a: %v", r)
	}
}

// TestBulkAcrossTheFleet: a bulk stop through a stops the jobs of a and of
// b, with a result for each, each with its host; with b's API down, b's
// jobs are answered unreachable; a bulk request forwarded to b acts on b's
// jobs only.
func TestBulkAcrossTheFleet(t *testing.T) {
	a, b := fleetOf(t, hostOptions{}, []procman.Job{sleeperJob("a1"), sleeperJob("a2")}, []procman.Job{sleeperJob("b1"), sleeperJob("b2")})
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := b.m.Get("a1"); err != nil {
		t.Fatalf("b does not know a's job: %v", err)
	}
	res, err := a.api.StartJobs(ctx, procman.AllJobs())
	if err != nil {
		t.Fatal(err)
	}
	if got := resultHosts(res); got != "a1@a a2@a b1@b b2@b" {
		t.Fatalf("bulk start through a: %s (%+v)", got, res)
	}
	for _, x := range res {
		if x.Err != nil {
			t.Fatalf("bulk start through a, %s: %v", x.Name, x.Err)
		}
	}
	for _, n := range []string{"b1", "b2"} {
		if _, err := b.m.WaitFor(ctx, n, procman.StateRunning); err != nil {
			t.Fatal(err)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, b.url+"/jobs/start?all=1", nil)
	req.Header.Set(httpapi.ForwardedBy, "a")
	r := b.do(t, req)
	want(t, r, http.StatusOK)
	if lines := decode[[]bulkLine](t, r); len(lines) != 2 || lines[0].Name != "b1" || lines[1].Name != "b2" ||
		lines[0].Status.Host != "b" || lines[0].Error != "" {
		t.Fatalf("a bulk start forwarded to b: %+v, want b's two jobs alone", lines)
	}

	res, err = a.api.StopJobs(ctx, procman.AllJobs())
	if err != nil {
		t.Fatal(err)
	}
	if got := resultHosts(res); got != "a1@a a2@a b1@b b2@b" {
		t.Fatalf("bulk stop through a: %s (%+v)", got, res)
	}
	for _, x := range res {
		if x.Err != nil || x.Status.State != procman.StateStopped {
			t.Errorf("bulk stop through a, %s: %+v", x.Name, x)
		}
		if m := map[string]*procman.Manager{"a": a.m, "b": b.m}[x.Status.Host]; m != nil {
			if st, _ := m.State(x.Name); st.State != procman.StateStopped {
				t.Errorf("after the bulk stop, %s on %s: %+v", x.Name, x.Status.Host, st)
			}
		}
	}

	b.ts.Close()
	res, err = a.api.StartJobs(ctx, procman.AllJobs())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range res {
		code := ""
		if ce, ok := errors.AsType[*client.Error](x.Err); ok {
			code = ce.Code
		}
		if wantCode := map[string]string{"a1": "", "a2": "", "b1": "unreachable", "b2": "unreachable"}[x.Name]; code != wantCode {
			t.Errorf("bulk start with b's API down, %s: code %q (%v), want %q", x.Name, code, x.Err, wantCode)
		}
	}
}

// resultHosts is "name@host ..." of results, sorted.
func resultHosts(res []procman.Result) string {
	var s []string
	for _, x := range res {
		s = append(s, x.Name+"@"+x.Status.Host)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// do sends req as it is, and reads the answer.
func (s *server) do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{method: req.Method, path: req.URL.Path, code: resp.StatusCode, header: resp.Header, body: body}
}

// followed is a log follow being read.
type followed struct {
	lines  chan string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // why the stream ended, once done is closed: nil at its end
}

// follow follows the job's log through the API.
func (s *server) follow(t *testing.T, name string) *followed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/job/"+name+"/logs?follow=1", nil)
	resp, err := s.client.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("follow %s: %v %v", name, resp, err)
	}
	f := &followed{lines: make(chan string, 100), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case f.lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
		f.err = sc.Err()
	}()
	t.Cleanup(f.close)
	return f
}

// waitFor reads lines until one holds s.
func (f *followed) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case l := <-f.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-f.done:
			t.Fatalf("the follow ended before a line with %q", s)
		case <-deadline:
			t.Fatalf("no line with %q followed within %s", s, waitLimit)
		}
	}
}

func (f *followed) close() {
	f.cancel()
	<-f.done
}
