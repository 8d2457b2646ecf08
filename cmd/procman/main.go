// Command procman serves a procman.Manager over HTTP: procman [flags] [port].
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
	"strings"
	"syscall"
	_ "time/tzdata" // CRON_TZ works on hosts and containers without a zone database

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

func main() {
	if code, ok := runAsInit(); ok { // PID 1 in a container: be its init, run ProcMan as PID 2
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stderr))
}

// options are the command line, read and checked.
type options struct {
	addr, socket, token string
	cfg                 procman.Config
}

func run(args []string, stderr io.Writer) int {
	if len(args) > 0 && isClientCommand(args[0]) { // procman ls, procman logs web, ...: the client (client.go)
		return runClient(args, os.Stdout, stderr)
	}
	if len(args) > 0 && args[0] == "serve" { // procman serve [flags] <port> is procman [flags] <port>
		args = args[1:]
	}
	opts, code := parseFlags(args, stderr)
	if code >= 0 {
		return code
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	opts.cfg.Logger = log
	if err := serve(log, opts); err != nil {
		log.Error("procman failed", "err", err)
		return 1
	}
	return 0
}

// parseFlags returns the options, or an exit code (>= 0) when the program
// should end at once.
func parseFlags(args []string, stderr io.Writer) (options, int) {
	fs := flag.NewFlagSet("procman", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1", "address to listen on; the API runs shell commands, so keep it private")
	db := fs.String("db", "procman.db", "SQLite database of job definitions")
	logs := fs.String("logs", "logs", "folder for job output: <logs>/<job>/<unix-nanoseconds>.log")
	keepRuns := fs.Int("keep-runs", 100, "finished runs kept per job (rows and log files), unless the job sets keep_runs")
	maxLogBytes := fs.Int64("max-log-bytes", 0, "cap on each job's log files in total, oldest removed first; 0: no cap")
	maxRunLogBytes := fs.Int64("max-run-log-bytes", procman.DefaultMaxRunLogBytes, "cap on a running run's live log file; past it, its oldest part moves to a numbered file")
	socket := fs.String("socket", "", "also serve the API on this Unix socket (mode 0600); the port is then optional")
	tokenFile := fs.String("token-file", "", "require the token in this file (or $PROCMAN_TOKEN) as Authorization: Bearer <token>")
	insecure := fs.Bool("insecure-no-auth", false, "allow listening on a non-loopback address without a token")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: procman [flags] <port>\n       procman [flags] -socket PATH [port]\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return options{}, 2
	}
	if *showVersion {
		fmt.Fprintln(stderr, "procman", version())
		return options{}, 0
	}
	usage := func(err error) (options, int) {
		fmt.Fprintln(stderr, "procman:", err)
		fs.Usage()
		return options{}, 2
	}
	o := options{socket: *socket, cfg: procman.Config{DBPath: *db, LogDir: *logs, KeepRuns: *keepRuns, MaxLogBytes: *maxLogBytes, MaxRunLogBytes: *maxRunLogBytes,
		Subreaper: true}} // the binary starts no process of its own but the Manager's
	switch {
	case fs.NArg() == 0 && *socket != "":
	case fs.NArg() == 1:
		port, err := parsePort(fs.Arg(0))
		if err != nil {
			return usage(err)
		}
		o.addr = net.JoinHostPort(*addr, port)
	default:
		return usage(errors.New("want exactly one argument, the port (or -socket PATH)"))
	}
	token, err := readToken(*tokenFile)
	if err != nil {
		fmt.Fprintln(stderr, "procman:", err)
		return options{}, 1
	}
	o.token = token
	if o.addr != "" && token == "" && !httpapi.Loopback(o.addr) && !*insecure {
		fmt.Fprintf(stderr, "procman: refusing to serve an API that runs shell commands on %s without a token: "+
			"give -token-file or PROCMAN_TOKEN, listen on 127.0.0.1, or pass -insecure-no-auth if you really mean it\n", o.addr)
		return options{}, 1
	}
	return o, -1
}

func parsePort(s string) (string, error) {
	if n, err := strconv.Atoi(s); err != nil || n < 0 || n > 65535 || strings.HasPrefix(s, "+") {
		return "", fmt.Errorf("bad port %q", s)
	}
	return s, nil
}

// readToken reads the token from file, else from $PROCMAN_TOKEN; "" means none.
func readToken(file string) (string, error) {
	token := os.Getenv("PROCMAN_TOKEN")
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("token file: %w", err)
		}
		token = string(b)
		if token = strings.TrimSpace(token); token == "" {
			return "", fmt.Errorf("token file %s is empty", file)
		}
	}
	if token != "" {
		if err := httpapi.CheckToken(token); err != nil {
			return "", err
		}
	}
	return token, nil
}

// listen opens the TCP and Unix socket listeners asked for.
func listen(o options) ([]net.Listener, error) {
	var lns []net.Listener
	if o.socket != "" {
		ln, err := httpapi.ListenUnix(o.socket)
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
	}
	if o.addr != "" {
		ln, err := net.Listen("tcp", o.addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// serve runs the Manager and its API until SIGINT or SIGTERM, then stops every
// job gracefully. A second signal cuts the grace period short.
func serve(log *slog.Logger, o options) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	lns, err := listen(o)
	if err != nil {
		return err
	}
	m, err := procman.Open(context.Background(), o.cfg)
	if err != nil {
		for _, ln := range lns {
			ln.Close()
		}
		return err
	}
	h := httpapi.New(m, httpapi.WithLogger(log), httpapi.WithToken(o.token))
	srv := httpapi.NewServer(o.addr, h)
	// Cancelled as shutdown begins, so that log follows and event streams end
	// instead of holding the server open.
	streams, endStreams := context.WithCancel(context.Background())
	defer endStreams()
	srv.BaseContext = func(net.Listener) context.Context { return streams }
	served := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { served <- srv.Serve(ln) }()
		log.Info("listening", "addr", ln.Addr().String(), "auth", o.token != "", "version", version())
	}

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
	// Requests under way finish while the jobs stop. Then the server closes:
	// http.Server.Shutdown would wait 5 s for a connection that never sent a
	// request (clients and browsers open them ahead of time).
	httpDone := make(chan struct{})
	go func() {
		srv.Shutdown(ctx)
		close(httpDone)
	}()
	shutErr := m.Shutdown(ctx)
	srv.Close()
	<-httpDone
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
