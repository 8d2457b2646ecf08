// Command embed shows ProcMan as a library: it opens a Manager in a temporary
// folder, runs a continuous job, waits for it to be running, stops it and exits.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/Mk-Chan/procman"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	dir, err := os.MkdirTemp("", "procman-embed-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	m, err := procman.Open(ctx, procman.Config{
		DBPath: filepath.Join(dir, "procman.db"),
		LogDir: filepath.Join(dir, "logs"),
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer m.Shutdown(ctx)

	job := procman.Job{Name: "ticker", Command: "while true; do date; sleep 1; done", Type: procman.Continuous}
	if err := m.Create(ctx, job); err != nil {
		return err
	}
	if err := m.Start(ctx, "ticker"); err != nil {
		return err
	}
	st, err := m.WaitFor(ctx, "ticker", procman.StateRunning)
	if err != nil {
		return err
	}
	fmt.Printf("ticker is %s (pid %d), writing to %s\n", st.State, st.PID, filepath.Base(filepath.Dir(st.LogFile)))

	if err := m.Stop(ctx, "ticker"); err != nil {
		return err
	}
	st, err = m.State("ticker")
	if err != nil {
		return err
	}
	fmt.Printf("ticker is %s\n", st.State)
	return m.Shutdown(ctx)
}
