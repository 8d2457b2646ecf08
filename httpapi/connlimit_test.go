package httpapi_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// rawConn is a client connection driven by hand, to hold it idle or busy.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

func dialFrom(t *testing.T, addr, from string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c, bufio.NewReader(c)}
}

// get sends GET path and reads the answer's head (and body, unless stream);
// it returns the status, or 0 if the server closed the connection instead.
func (c *rawConn) get(t *testing.T, path string, stream bool) int {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0
	}
	if !stream {
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode
}

// waitIdle waits until the limiter sees n connections without a request.
func waitIdle(t *testing.T, l *httpapi.ConnLimiter, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Waiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections idle, want %d", l.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// closed reports whether the server has closed the connection.
func (c *rawConn) closed() bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.br.ReadByte()
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

func TestConnLimits(t *testing.T) {
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{DBPath: filepath.Join(dir, "p.db"), LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer("", httpapi.New(m))
	limiter := httpapi.LimitConns(srv, httpapi.ConnLimits{Max: 8, PerClient: 4}, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(limiter.Listener(ln))
	t.Cleanup(func() {
		srv.Close()
		m.Shutdown(context.Background())
	})
	addr := ln.Addr().String()

	// One client: a fifth connection closes the client's longest idle one.
	var idle []*rawConn
	for i := range 4 {
		c := dialFrom(t, addr, "127.0.0.1")
		if code := c.get(t, "/healthz", false); code != 200 {
			t.Fatalf("healthz: %d", code)
		}
		waitIdle(t, limiter, i+1) // so that they wait in this order
		idle = append(idle, c)
	}
	fifth := dialFrom(t, addr, "127.0.0.1")
	if code := fifth.get(t, "/healthz", false); code != 200 {
		t.Fatalf("fifth connection: %d", code)
	}
	if !idle[0].closed() {
		t.Error("the longest idle connection was not closed to make room")
	}
	if code := idle[1].get(t, "/healthz", false); code != 200 {
		t.Errorf("another idle connection was closed too: %d", code)
	}
	waitIdle(t, limiter, 4)

	// Every connection of the client busy (event streams): a new one is refused.
	for _, c := range append(idle[1:], fifth) {
		if code := c.get(t, "/events", true); code != 200 {
			t.Fatalf("events: %d", code)
		}
	}
	if code := dialFrom(t, addr, "127.0.0.1").get(t, "/healthz", false); code != 0 {
		t.Errorf("a fifth connection beside four busy ones: %d, want it closed", code)
	}

	// Another client has its own four; at Max, a third client takes the place
	// of the longest idle connection of anyone.
	var others []*rawConn
	for i := range 4 {
		c := dialFrom(t, addr, "127.0.0.2")
		if code := c.get(t, "/healthz", false); code != 200 {
			t.Fatalf("second client: %d", code)
		}
		waitIdle(t, limiter, i+1)
		others = append(others, c)
	}
	if code := dialFrom(t, addr, "127.0.0.3").get(t, "/healthz", false); code != 200 {
		t.Errorf("third client at Max: %d", code)
	}
	if !others[0].closed() {
		t.Error("the longest idle connection of all was not closed to make room")
	}
}

func TestConnLimitsDefaults(t *testing.T) {
	limiter := httpapi.LimitConns(&http.Server{}, httpapi.ConnLimits{}, slog.New(slog.DiscardHandler))
	got := limiter.Limits()
	if got.Max < 1 || got.Max > 1024 || got.PerClient != min(128, got.Max) {
		t.Errorf("defaults %+v", got)
	}
}
