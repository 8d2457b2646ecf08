package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/Mk-Chan/procman/internal/testcert"
)

// TestEveryRoute drives a job through every route and checks each answer
// against what the Manager itself says.
func TestEveryRoute(t *testing.T) {
	w := setup(t, nil)
	ctx := ctxT(t)
	c := w.c
	if err := c.Health(ctx); err != nil {
		t.Fatalf("Health: %v", err)
	}
	web := procman.Job{Name: "web", Command: "echo up; exec sleep 100", Type: procman.Continuous, Env: map[string]string{"A": "1"}}
	if got, err := c.Create(ctx, web); err != nil || !reflect.DeepEqual(got, web) {
		t.Fatalf("Create: %+v, %v", got, err)
	}
	batch, err := c.CreateJSON(ctx, []byte(`{"name":"batch","command":"echo one; echo two"}`))
	if err != nil || batch.Name != "batch" || batch.Type != procman.OneTime {
		t.Fatalf("CreateJSON: %+v, %v", batch, err)
	}
	if got, err := c.Get(ctx, "web"); err != nil || !reflect.DeepEqual(got, web) {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	if got, err := c.List(ctx); err != nil || !reflect.DeepEqual(got, stripVersions(w.m.Entries())) {
		t.Fatalf("List: %+v, %v; want %+v", got, err, w.m.Entries())
	}

	st, err := c.Start(ctx, "web")
	if err != nil || st.Name != "web" || st.State != procman.StateRunning || st.PID <= 0 {
		t.Fatalf("Start: %+v, %v", st, err)
	}
	if got, err := c.State(ctx, "web"); err != nil || got.PID != st.PID {
		t.Fatalf("State: %+v, %v; want pid %d", got, err, st.PID)
	}
	first := follow(t, c, "web") // once the run has written its line
	again, err := c.Restart(ctx, "web")
	if err != nil || again.State != procman.StateRunning || again.PID == st.PID {
		t.Fatalf("Restart: %+v, %v", again, err)
	}
	second := follow(t, c, "web")
	if st, err := c.Stop(ctx, "web"); err != nil || st.State != procman.StateStopped {
		t.Fatalf("Stop: %+v, %v", st, err)
	}
	for _, logs := range []io.ReadCloser{first, second} {
		if rest, err := io.ReadAll(logs); err != nil || len(rest) != 0 { // a follow ends with its run
			t.Fatalf("the rest of a follow: %q, %v", rest, err)
		}
		logs.Close()
	}

	runs, err := c.Runs(ctx, "web", procman.RunsOptions{})
	want, _ := w.m.Runs(ctx, "web", procman.RunsOptions{})
	if err != nil || len(runs) != 2 || !sameJSON(runs, want) {
		t.Fatalf("Runs: %+v, %v; want %+v", runs, err, want)
	}
	if one, err := c.Runs(ctx, "web", procman.RunsOptions{Limit: 1}); err != nil || len(one) != 1 || one[0].ID != runs[0].ID {
		t.Fatalf("Runs with Limit 1: %+v, %v", one, err)
	}
	if run, err := c.Run(ctx, "web", runs[1].ID); err != nil || !sameJSON(run, runs[1]) {
		t.Fatalf("Run: %+v, %v; want %+v", run, err, runs[1])
	}
	if text := readLog(t, c, "web", procman.LogOptions{Run: runs[1].ID}); text != "up\n" {
		t.Fatalf("the first run's log: %q", text)
	}

	if _, err := c.Start(ctx, "batch"); err != nil {
		t.Fatal(err)
	}
	if st, err := c.WaitFor(ctx, "batch", procman.StateExited); err != nil || *st.ExitCode != 0 {
		t.Fatalf("WaitFor batch exited: %+v, %v", st, err)
	}
	if text := readLog(t, c, "batch", procman.LogOptions{Tail: 1}); text != "two\n" {
		t.Fatalf("batch's last line: %q", text)
	}
	states, err := c.States(ctx)
	if err != nil || len(states) != 2 || states[0].Name != "batch" || states[0].State != procman.StateExited {
		t.Fatalf("States: %+v, %v", states, err)
	}

	repl := procman.Job{Command: "echo replaced", Type: procman.OneTime}
	if got, err := c.Replace(ctx, "batch", repl); err != nil || got.Name != "batch" || got.Command != repl.Command {
		t.Fatalf("Replace: %+v, %v", got, err)
	}
	got, err := c.Update(ctx, "web", []byte(`{"env":{"A":null,"B":"2"},"max_retries":3}`))
	if err != nil || !reflect.DeepEqual(got.Env, map[string]string{"B": "2"}) || got.MaxRetries != 3 || got.Command != web.Command {
		t.Fatalf("Update: %+v, %v", got, err)
	}
	if got, err := c.Delete(ctx, "web"); err != nil || got.Name != "web" || got.MaxRetries != 3 {
		t.Fatalf("Delete: %+v, %v", got, err)
	}
	if _, err := w.m.Get("web"); !errors.Is(err, procman.ErrNotFound) {
		t.Fatalf("after Delete the Manager still has web: %v", err)
	}
	metrics, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(string(metrics), "procman_runs_started_total") {
		t.Fatalf("Metrics: %.200s, %v", metrics, err)
	}
}

// follow follows the latest run's log of name, a job that prints "up", and
// returns it once the line has come.
func follow(t *testing.T, c *client.Client, name string) io.ReadCloser {
	t.Helper()
	logs, err := c.Logs(ctxT(t), name, procman.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 3)
	if _, err := io.ReadFull(logs, line); err != nil || string(line) != "up\n" {
		logs.Close()
		t.Fatalf("following %s's log: %q, %v", name, line, err)
	}
	return logs
}

// sameJSON reports whether a and b encode alike: times decoded from JSON have
// zones of their own.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func stripVersions(es []procman.Entry) []procman.Entry {
	for i := range es {
		es[i].Version = 0
	}
	return es
}

func readLog(t *testing.T, c *client.Client, name string, opts procman.LogOptions) string {
	t.Helper()
	rc, err := c.Logs(ctxT(t), name, opts)
	if err != nil {
		t.Fatalf("Logs %s %+v: %v", name, opts, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestErrorsMapBack: an error answer keeps its message and status, and is
// the sentinel its code stands for, as the Manager's own error would be.
func TestErrorsMapBack(t *testing.T) {
	w := setup(t, nil)
	ctx := ctxT(t)
	c := w.c
	if _, err := c.Create(ctx, procman.Job{Name: "web", Command: "sleep 100", Type: procman.Continuous}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	check := func(what string, err error, sentinel error, status int, code, says string) {
		t.Helper()
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != status || ce.Code != code || !strings.Contains(ce.Message, says) {
			t.Errorf("%s: %#v, want an *Error %d %s saying %q", what, err, status, code, says)
			return
		}
		if sentinel != nil && !errors.Is(err, sentinel) {
			t.Errorf("%s: %v is not %v", what, err, sentinel)
		}
		if want := fmt.Sprintf("%s (HTTP %d)", ce.Message, status); err.Error() != want {
			t.Errorf("%s: %q, want %q", what, err, want)
		}
		for _, other := range []error{procman.ErrNotFound, procman.ErrExists, procman.ErrRunning, procman.ErrInUse, procman.ErrInvalid, procman.ErrClosed} {
			if other != sentinel && errors.Is(err, other) {
				t.Errorf("%s: %v is also %v", what, err, other)
			}
		}
	}
	_, err := c.State(ctx, "nope")
	check("State of an unknown job", err, procman.ErrNotFound, 404, "not_found", `job "nope"`)
	_, err = c.Create(ctx, procman.Job{Name: "web", Command: "true"})
	check("a second web", err, procman.ErrExists, 409, "exists", "web")
	_, err = c.Start(ctx, "web")
	check("Start of a running job", err, procman.ErrRunning, 409, "running", "web")
	if _, err := c.Create(ctx, procman.Job{Name: "api", Command: "true", DependsOn: procman.Dependencies{"web": procman.ConditionStarted}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Delete(ctx, "web")
	check("Delete of a job another depends on", err, procman.ErrInUse, 409, "in_use", "api")
	_, err = c.Runs(ctx, "web", procman.RunsOptions{Limit: -1})
	check("Runs with a bad limit", err, procman.ErrInvalid, 400, "invalid", "limit")
	_, err = c.Run(ctx, "web", 12345)
	check("an unknown run", err, procman.ErrNotFound, 404, "not_found", "12345")

	_, err = c.CreateJSON(ctx, []byte(`{"name":"bad","command":" ","schedule":"rebot","colour":"red"}`))
	check("an unknown field", err, procman.ErrInvalid, 400, "invalid", "colour")
	_, err = c.Create(ctx, procman.Job{Name: "bad", Command: " ", Schedule: "rebot"})
	check("a bad definition", err, procman.ErrInvalid, 400, "invalid", "schedule")
	var fields []string
	for _, fe := range procman.FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if want := []string{"command", "schedule"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("FieldErrors of a refused definition: %q, want %q", fields, want)
	}

	if err := w.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = c.Start(ctx, "web")
	check("Start after shutdown", err, procman.ErrClosed, 503, "closed", "shut down")
	check("Health after shutdown", c.Health(ctx), procman.ErrClosed, 503, "closed", "shut down")
}

// TestTokenAndSocket: WithToken reaches a ProcMan that wants a token, over
// TCP and over its Unix socket; without it the answer is 401, unauthorized.
func TestTokenAndSocket(t *testing.T) {
	const token = "correct-horse-battery-staple-42"
	w := setup(t, []httpapi.Option{httpapi.WithToken(token)}, client.WithToken(token))
	ctx := ctxT(t)
	if _, err := w.c.Create(ctx, procman.Job{Name: "a", Command: "true"}); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	without, err := client.New(w.ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer without.CloseIdleConnections()
	var ce *client.Error
	if _, err := without.List(ctx); !errors.As(err, &ce) || ce.Status != 401 || ce.Code != "unauthorized" {
		t.Errorf("without the token: %v", err)
	}

	path := filepath.Join(shortDir(t), "pm.sock")
	ln, err := httpapi.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(httpapi.New(w.m, httpapi.WithToken(token)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	uc, err := client.NewUnix(path, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.CloseIdleConnections()
	if got, err := uc.List(ctx); err != nil || len(got) != 1 || got[0].Name != "a" {
		t.Errorf("List over the socket: %+v, %v", got, err)
	}
	if uc.Addr() != "unix socket "+path {
		t.Errorf("Addr over the socket: %q", uc.Addr())
	}
	if _, err := client.NewUnix(path, client.WithCAFile("ca.pem")); err == nil {
		t.Error("NewUnix took a CA file")
	}
	if _, err := client.NewUnix(path, client.WithHTTPClient(http.DefaultClient)); err == nil {
		t.Error("NewUnix took an http.Client, whose transport would not dial the socket")
	}
}

// TestHTTPSWithCAFile: an https:// ProcMan whose certificate a CA of its own
// signed is reached with that CA's file, and refused without it.
func TestHTTPSWithCAFile(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.Issue(certFile, keyFile, 2, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	cfg, err := httpapi.TLSConfig(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := openManager(t)
	ts := httptest.NewUnstartedServer(httpapi.New(m))
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake refused below
	ts.Listener = tls.NewListener(ts.Listener, cfg) // httptest's StartTLS would serve a certificate of its own
	ts.Start()
	defer ts.Close()
	ts.URL = strings.Replace(ts.URL, "http://", "https://", 1)
	ctx := ctxT(t)

	c, err := client.New(ts.URL, client.WithCAFile(ca.File))
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if err := c.Health(ctx); err != nil {
		t.Fatalf("over https with the CA: %v", err)
	}
	system, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer system.CloseIdleConnections()
	if err := system.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("over https trusting the system's CAs: %v, want a certificate error", err)
	}
	if _, err := client.New(strings.Replace(ts.URL, "https", "http", 1), client.WithCAFile(ca.File)); err == nil {
		t.Error("New took a CA file for an http:// address")
	}
	if _, err := client.New(ts.URL, client.WithCAFile(filepath.Join(dir, "none.pem"))); err == nil {
		t.Error("New took a CA file that does not exist")
	}
	if err := os.WriteFile(filepath.Join(dir, "empty.pem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(ts.URL, client.WithCAFile(filepath.Join(dir, "empty.pem"))); err == nil {
		t.Error("New took a CA file with no certificate")
	}
}

// TestAddresses: New reads an address as the binary's -addr does.
func TestAddresses(t *testing.T) {
	for addr, want := range map[string]string{
		"": "127.0.0.1:10000", "10001": "127.0.0.1:10001", "host:1": "host:1", "http://host:2": "host:2",
		"https://host:3/procman/": "host:3", "[::1]:4": "[::1]:4",
	} {
		c, err := client.New(addr)
		if err != nil || c.Addr() != want {
			t.Errorf("New(%q): Addr %q, %v; want %q", addr, c.Addr(), err, want)
		}
	}
	for _, addr := range []string{"ftp://host:1", "http://", "http://[::1", "unix:///run/procman.sock"} {
		if _, err := client.New(addr); err == nil {
			t.Errorf("New(%q) took it", addr)
		}
	}
	if _, err := client.New("https://host:1", client.WithCAFile("ca.pem"), client.WithHTTPClient(http.DefaultClient)); err == nil {
		t.Error("New took both a CA file and an http.Client")
	}
}

// TestEvents: the stream holds every change from the moment Events returns,
// each with the job's status, and ends with io.EOF when ProcMan shuts down.
func TestEvents(t *testing.T) {
	w := setup(t, nil)
	ctx := ctxT(t)
	events, err := w.c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	if _, err := w.c.Create(ctx, procman.Job{Name: "e", Command: "exit 3"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.c.Start(ctx, "e"); err != nil {
		t.Fatal(err)
	}
	var got []procman.State
	for ev, err := range events.All() {
		if err != nil {
			t.Fatal(err)
		}
		if ev.Job != "e" || ev.Status.State != ev.To {
			t.Fatalf("event %+v", ev)
		}
		got = append(got, ev.To)
		if ev.To == procman.StateExited {
			if ev.Status.ExitCode == nil || *ev.Status.ExitCode != 3 || ev.Status.LastRun == nil {
				t.Errorf("exited event's status %+v, want exit code 3 and its last run", ev.Status)
			}
			break
		}
	}
	if want := []procman.State{procman.StateStarting, procman.StateRunning, procman.StateExited}; !reflect.DeepEqual(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}

	late, err := w.c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	done := make(chan error, 1)
	go func() {
		_, err := w.c.WaitFor(ctx, "e", procman.StateRunning)
		done <- err
	}()
	if err := w.m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next after Shutdown: %v, want io.EOF", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, procman.ErrClosed) {
			t.Errorf("WaitFor while ProcMan shuts down: %v, want ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor did not end when ProcMan shut down")
	}
}

// TestEventsEndWithTheContext: ending the context ends a stream at once.
func TestEventsEndWithTheContext(t *testing.T) {
	w := setup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	events, err := w.c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	cancel()
	if _, err := events.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after the context ended: %v, want context.Canceled", err)
	}
}
