package client_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a real Manager served over real HTTP, and a client of it.
type world struct {
	t  *testing.T
	m  *procman.Manager
	ts *httptest.Server
	c  *client.Client
}

// setup serves a Manager in a temporary folder with the API's options, and
// makes a client of it with opts.
func setup(t *testing.T, api []httpapi.Option, opts ...client.Option) *world {
	t.Helper()
	m := openManager(t)
	ts := httptest.NewServer(httpapi.New(m, api...))
	c, err := client.New(ts.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.CloseIdleConnections()
		ts.Close()
	})
	return &world{t: t, m: m, ts: ts, c: c}
}

func openManager(t *testing.T) *procman.Manager {
	t.Helper()
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{DBPath: filepath.Join(dir, "procman.db"),
		LogDir: filepath.Join(dir, "logs"), StopTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// shortDir is a temporary folder with a short path: a Unix socket's path is
// limited to 108 bytes, which t.TempDir's may exceed.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pm-client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
