// Command procman serves a procman.Manager over HTTP: procman [flags] <port>.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
	_ "time/tzdata" // CRON_TZ works on hosts and containers without a zone database

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("procman", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1", "address to listen on; the API runs shell commands, so keep it private")
	db := fs.String("db", "procman.db", "SQLite database of job definitions")
	logs := fs.String("logs", "logs", "folder for job output: <logs>/<job>/<unix-nanoseconds>.log")
	keepRuns := fs.Int("keep-runs", 100, "finished runs kept per job (rows and log files), unless the job sets keep_runs")
	maxLogBytes := fs.Int64("max-log-bytes", 0, "cap on each job's finished runs' log files in total, oldest removed first; 0: no cap")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: procman [flags] <port>\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "procman", version())
		return 0
	}
	port, err := parsePort(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "procman:", err)
		fs.Usage()
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(log, net.JoinHostPort(*addr, port), procman.Config{
		DBPath: *db, LogDir: *logs, Logger: log, KeepRuns: *keepRuns, MaxLogBytes: *maxLogBytes,
	}); err != nil {
		log.Error("procman failed", "err", err)
		return 1
	}
	return 0
}

func parsePort(args []string) (string, error) {
	if len(args) != 1 {
		return "", errors.New("want exactly one argument, the port")
	}
	if n, err := strconv.Atoi(args[0]); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("bad port %q", args[0])
	}
	return args[0], nil
}

// serve runs the Manager and its API until SIGINT or SIGTERM, then stops every
// job gracefully. A second signal cuts the grace period short.
func serve(log *slog.Logger, addr string, cfg procman.Config) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	m, err := procman.Open(context.Background(), cfg)
	if err != nil {
		ln.Close()
		return err
	}
	srv := httpapi.NewServer(addr, httpapi.New(m, httpapi.WithLogger(log)))
	// Cancelled as shutdown begins, so that log follows and event streams end
	// instead of holding the server open.
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv.BaseContext = func(net.Listener) context.Context { return streams }
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "version", version())

	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case err = <-served:
		log.Error("http server stopped", "err", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case sig := <-sigs:
			log.Warn("second signal: killing jobs now", "signal", sig.String())
			cancel()
		case <-ctx.Done():
		}
	}()
	endStreams()
	httpCtx, httpCancel := context.WithTimeout(ctx, 5*time.Second)
	srv.Shutdown(httpCtx)
	httpCancel()
	shutErr := m.Shutdown(ctx)
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, shutErr)
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}
