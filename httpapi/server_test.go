package httpapi_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// shortWriteServer serves a Manager through NewServer with its WriteTimeout
// cut to d, so that tests need not wait out the real one.
func shortWriteServer(t *testing.T, d time.Duration) (*procman.Manager, *httptest.Server) {
	t.Helper()
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{DBPath: filepath.Join(dir, "p.db"), LogDir: filepath.Join(dir, "logs"),
		StopTimeout: stopTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.Config = httpapi.NewServer("", httpapi.New(m))
	ts.Config.WriteTimeout = d
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		m.Shutdown(context.Background())
	})
	return m, ts
}

// TestLongStopIsAnswered: a stop that takes longer than the server's write
// timeout is answered, not cut off with an empty reply.
func TestLongStopIsAnswered(t *testing.T) {
	m, ts := shortWriteServer(t, 200*time.Millisecond)
	ctx := context.Background()
	dir := t.TempDir()
	job := procman.Job{Name: "stubborn", Command: `trap "" TERM; : > ready; while :; do sleep 0.05; done`, Type: procman.Continuous,
		Dir: dir, StopTimeout: procman.Duration(time.Second)}
	if err := m.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "stubborn"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(pollInterval) { // until SIGTERM is ignored
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the job never got ready")
		}
	}
	c := &http.Client{Timeout: clientLimit}
	began := time.Now()
	resp, err := c.Post(ts.URL+"/job/stubborn/stop", "", nil)
	if err != nil {
		t.Fatalf("stop after %s: %v", time.Since(began).Round(time.Millisecond), err)
	}
	defer resp.Body.Close()
	var st procman.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK || st.State != procman.StateStopped {
		t.Fatalf("stop: %d %+v %v", resp.StatusCode, st, err)
	}
	if took := time.Since(began); took < time.Second {
		t.Fatalf("the stop took %s: shorter than its stop_timeout, so it proves nothing", took)
	}
}

// TestClientThatStopsReadingIsDropped: the write timeout still protects the
// server from a client that asks for a large answer and never reads it.
func TestClientThatStopsReadingIsDropped(t *testing.T) {
	m, ts := shortWriteServer(t, 200*time.Millisecond)
	ctx := context.Background()
	if err := m.Create(ctx, procman.Job{Name: "big", Command: "head -c 67108864 /dev/zero", Type: procman.OneTime}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.WaitFor(ctx, "big", procman.StateExited); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := conn.Write([]byte("GET /job/big/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	poll := time.Now().Add(waitLimit)
	for len(goroutinesIn(logsHandler)) == 0 { // the handler has begun
		if time.Now().After(poll) {
			t.Fatal("the logs handler never ran")
		}
		time.Sleep(pollInterval)
	}
	waitHandlersGone(t, logsHandler) // its write timed out; without a deadline it would wait for good
}
