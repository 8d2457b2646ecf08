package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
)

// Example steers a ProcMan through its API, as a program on another host
// would. The ProcMan here is served by the example itself, on a port of its
// own; elsewhere it is the procman binary, reached with, for instance,
//
//	client.New("https://host:10000", client.WithToken(token), client.WithCAFile("ca.pem"))
func Example() {
	addr, stop := serveProcMan()
	defer stop()
	ctx := context.Background()

	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	if _, err := c.Create(ctx, procman.Job{Name: "hello", Command: "echo hello", Type: procman.OneTime}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Start(ctx, "hello"); err != nil {
		log.Fatal(err)
	}
	st, err := c.WaitFor(ctx, "hello", procman.StateExited)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("hello", st.State, "with exit code", *st.ExitCode)

	logs, err := c.Logs(ctx, "hello", procman.LogOptions{})
	if err != nil {
		log.Fatal(err)
	}
	io.Copy(os.Stdout, logs)
	logs.Close()

	// Errors are procman's sentinels, as with a Manager of one's own.
	_, err = c.Start(ctx, "nope")
	fmt.Println(errors.Is(err, procman.ErrNotFound), err)
	// Output:
	// hello exited with exit code 0
	// hello
	// true job "nope": not found (HTTP 404)
}

// ExampleClient_Events follows every state change as it happens, each with
// the job's whole status.
func ExampleClient_Events() {
	addr, stop := serveProcMan()
	defer stop()
	ctx := context.Background()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()

	events, err := c.Events(ctx) // once it returns, no change is missed
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Create(ctx, procman.Job{Name: "once", Command: "exit 3"}); err != nil {
		log.Fatal(err)
	}
	if _, err := c.Start(ctx, "once"); err != nil {
		log.Fatal(err)
	}
	for ev, err := range events.All() {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Job, ev.From, "->", ev.To)
		if ev.To == procman.StateExited {
			fmt.Println("exit code", *ev.Status.ExitCode, "of run", ev.Status.LastRun.ID)
			break // and All closes the stream
		}
	}
	// Output:
	// once stopped -> starting
	// once starting -> running
	// once running -> exited
	// exit code 3 of run 1
}

// serveProcMan runs a Manager in a temporary folder and serves its API on a
// free port of 127.0.0.1, as the procman binary would; stop ends it all.
func serveProcMan() (addr string, stop func()) {
	dir, err := os.MkdirTemp("", "procman-example-")
	if err != nil {
		log.Fatal(err)
	}
	m, err := procman.Open(context.Background(), procman.Config{DBPath: filepath.Join(dir, "procman.db"),
		LogDir: filepath.Join(dir, "logs"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := httpapi.NewServer("", httpapi.New(m))
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		srv.Close()
		<-served
		m.Shutdown(context.Background())
		os.RemoveAll(dir)
	}
}
