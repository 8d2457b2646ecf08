// Command procman runs ProcMan, a Manager served over HTTP (procman [flags]
// <port>), and is a client of a running one (procman ls, procman logs web).
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	_ "time/tzdata" // CRON_TZ works on hosts and containers without a zone database

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/Mk-Chan/procman/internal/logwriter"
)

func main() {
	if code, ok := runAsInit(); ok { // PID 1 in a container: be its init, run ProcMan as PID 2
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line, read and checked.
type options struct {
	addr, socket, token string
	allowedHosts        []string // Host names besides IP addresses and localhost
	conns               httpapi.ConnLimits
	tlsCert, tlsKey     string // PEM files; "" for plain HTTP
	tls                 *tls.Config
	fleetTLS            *tls.Config // for requests forwarded to other hosts (-ca-file); nil: the system's CAs
	logLevel            slog.Level
	cfg                 procman.Config
	dbPasswordShown     bool // -db's URL carries a password, for any user to read in the process list
}

// runServer runs ProcMan with the server's command line (flags and the port).
func runServer(args []string, stdout, stderr io.Writer) int {
	opts, err := serverOptions(args, stdout, stderr)
	if err != nil {
		return exitCode(stderr, "procman", err, shortUsage)
	}
	// ProcMan logs while it holds a job's lock: a stderr that stops taking
	// writes (a full pipe to a stalled journal) must not hold up the jobs.
	logw := logwriter.New(stderr, 1<<20)
	defer logw.Close(2 * time.Second)
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: opts.logLevel}))
	opts.cfg.Logger = log
	if opts.dbPasswordShown {
		log.Warn("the -db URL carries a password, which every user of this machine can read in the process list; " +
			"put the URL in a file for -db-file, or in $PROCMAN_DB")
	}
	if err := serve(log, opts); err != nil {
		log.Error("procman failed", "err", err)
		return 1
	}
	return 0
}

// serverOptions reads the server's command line. Its error is errDone once
// the help or the version is printed, a usageError for a command line that
// makes no sense, or what keeps the server from starting.
func serverOptions(args []string, stdout, stderr io.Writer) (options, error) {
	fs, finish := serverFlags(stdout, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return options{}, errDone
		}
		return options{}, usageError{} // the flag package has said what is wrong
	}
	return finish()
}

// serverFlags defines the server's flags on a new flag set. Once it is
// parsed, finish checks them and returns the options (see serverOptions).
func serverFlags(stdout, stderr io.Writer) (*flag.FlagSet, func() (options, error)) {
	fs := flag.NewFlagSet("procman", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1", "address to listen on: a host (the port is then the argument) or host:port; the API runs shell commands, so keep it private")
	db := fs.String("db", "", "the database: a SQLite file, or a PostgreSQL database as a postgres:// URL (default $PROCMAN_DB, else "+procman.DefaultDBPath+")")
	dbFile := fs.String("db-file", "", "read a PostgreSQL connection string (URL or key=value) from this `file`, so that its password is on no command line")
	logs := fs.String("logs", procman.DefaultLogDir, "folder for job output: <logs>/<job>/<unix-nanoseconds>.log")
	keepRuns := fs.Int("keep-runs", procman.DefaultKeepRuns, "finished runs kept per job (rows and log files), unless the job sets keep_runs")
	maxLogBytes := fs.Int64("max-log-bytes", 0, "cap on each job's log files in total, oldest removed first; 0: no cap")
	maxRunLogBytes := fs.Int64("max-run-log-bytes", procman.DefaultMaxRunLogBytes, "cap on a running run's live log file; past it, its oldest part moves to a numbered file")
	socket := fs.String("socket", "", "also serve the API on this Unix socket (mode 0600); the port is then optional")
	tokenFile := fs.String("token-file", "", "require the token in this file (or $PROCMAN_TOKEN) as Authorization: Bearer <token>")
	insecure := fs.Bool("insecure-no-auth", false, "allow listening on a non-loopback address without a token")
	var allowedHosts []string
	fs.Func("allowed-host", "also answer requests with this `name` in their Host header (repeatable; .example.com: it and the names under it; *: any)",
		func(s string) error {
			allowedHosts = append(allowedHosts, strings.Split(s, ",")...)
			return nil
		})
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with the certificate chain in this PEM `file` (read again when it changes)")
	tlsKey := fs.String("tls-key", "", "the private key of -tls-cert, a PEM `file`")
	maxConns := fs.Int("max-conns", 0, "most connections to the API at once; 0: a quarter of the descriptor limit, at most 1024")
	maxPerClient := fs.Int("max-conns-per-client", 0, "most connections from one IP address; 0: 128, or -max-conns if lower")
	noResume := fs.Bool("no-resume", false, "do not start again the continuous jobs that were running when ProcMan last ended")
	config := fs.String("config", "", "a `file` of jobs (YAML, or JSON for .json) applied before any job starts, pruning its own jobs it no longer has; SIGHUP applies it again")
	noJobMetrics := fs.Bool("no-job-metrics", false, "leave the series of each job (procman_job_*, 11 a job) out of /metrics")
	fleet := fleetFlags(fs) // fleet.go
	logLevel := slog.LevelInfo
	fs.TextVar(&logLevel, "log-level", slog.LevelInfo, "log from this `level` up: debug (adds the requests that only read), info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {} // runServer prints the help, or a short usage after an error
	return fs, func() (options, error) {
		if *showVersion {
			fmt.Fprintln(stdout, versionLine())
			return options{}, errDone
		}
		o := options{socket: *socket, logLevel: logLevel, conns: httpapi.ConnLimits{Max: *maxConns, PerClient: *maxPerClient}, cfg: procman.Config{LogDir: *logs, KeepRuns: *keepRuns, MaxLogBytes: *maxLogBytes, MaxRunLogBytes: *maxRunLogBytes,
			NoResume: *noResume, NoJobMetrics: *noJobMetrics, JobsFile: *config,
			Subreaper:    true,        // the binary starts no process of its own but the Manager's
			ReturnMemory: time.Second, // a daemon's memory is what its operators see
		}}
		o.tlsCert, o.tlsKey = *tlsCert, *tlsKey
		if err := o.setAddr(*addr, fs.Args(), *socket != ""); err != nil {
			return options{}, usageError{err.Error()}
		}
		if *db != "" && *dbFile != "" {
			return options{}, usageError{"give -db or -db-file, not both"}
		}
		if err := o.setDB(*db, *dbFile); err != nil {
			return options{}, err
		}
		o.allowedHosts = ownNames(o.addr, allowedHosts)
		if err := o.setToken(*tokenFile, *insecure); err != nil {
			return options{}, err
		}
		if err := fleet.apply(&o); err != nil {
			return options{}, err
		}
		return o, nil
	}
}

// setAddr sets the TCP address to listen on from -addr and the arguments,
// and checks that the TLS files come in pairs.
func (o *options) setAddr(addr string, args []string, socket bool) error {
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	if len(args) > 1 {
		return errors.New("want one argument, the port (or -addr host:port, or -socket PATH)")
	}
	var err error
	o.addr, err = listenAddr(addr, strings.Join(args, ""), socket)
	return err
}

// setDB names the database: -db if given, else the connection string in
// -db-file, else $PROCMAN_DB, else procman.db. A postgres:// or postgresql://
// URL is a PostgreSQL database; any other value of -db or $PROCMAN_DB is a
// SQLite file.
func (o *options) setDB(db, file string) error {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("db file: %w", err)
		}
		if o.cfg.Postgres = strings.TrimSpace(string(b)); o.cfg.Postgres == "" {
			return fmt.Errorf("db file %s is empty", file)
		}
		return nil
	}
	fromFlag := db != ""
	db = cmp.Or(db, os.Getenv("PROCMAN_DB"), "procman.db")
	if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") { // as procman.Config reads them
		o.cfg.DBPath = db
		return nil
	}
	o.cfg.Postgres = db
	if u, err := url.Parse(db); err == nil && fromFlag {
		_, pw := u.User.Password()
		o.dbPasswordShown = pw || u.Query().Has("password")
	}
	return nil
}

// setToken reads the token and refuses an API open beyond this host without
// one, unless insecure.
func (o *options) setToken(file string, insecure bool) error {
	token, err := readToken(file)
	if err != nil {
		return err
	}
	o.token = token
	if o.addr != "" && token == "" && !httpapi.Loopback(o.addr) && !insecure {
		return fmt.Errorf("refusing to serve an API that runs shell commands on %s without a token: "+
			"give -token-file or PROCMAN_TOKEN, listen on 127.0.0.1, or pass -insecure-no-auth if you really mean it", o.addr)
	}
	return nil
}

// ownNames are the Host names the API answers to besides IP addresses and
// localhost: the listening address's name, the machine's, and the ones given.
func ownNames(addr string, given []string) []string {
	names := slices.Clone(given)
	if host, _, err := net.SplitHostPort(addr); err == nil {
		names = append(names, host)
	}
	if h, err := os.Hostname(); err == nil {
		names = append(names, h)
	}
	return names
}

// listenAddr is the TCP address to listen on, from -addr (a host, or
// host:port) and the port argument; "" when only the socket is served.
func listenAddr(addr, port string, socket bool) (string, error) {
	if host, p, err := net.SplitHostPort(addr); err == nil {
		if port != "" && port != p {
			return "", fmt.Errorf("two ports: -addr %s and %s", addr, port)
		}
		if _, err := parsePort(p); err != nil {
			return "", err
		}
		return net.JoinHostPort(host, p), nil
	}
	switch {
	case port != "":
		if _, err := parsePort(port); err != nil {
			return "", err
		}
		host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]") // -addr [::1]
		return net.JoinHostPort(host, port), nil
	case socket:
		return "", nil
	}
	return "", errors.New("want the port to listen on (or -addr host:port, or -socket PATH)")
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
	forgetSecrets(log)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)

	if o.tlsCert != "" {
		var err error
		if o.tls, err = httpapi.TLSConfig(o.tlsCert, o.tlsKey, log); err != nil {
			return err
		}
		o.allowedHosts = append(o.allowedHosts, httpapi.CertificateNames(o.tls)...)
	}
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
	srv, served, endStreams := startAPI(log, o, m, lns)
	defer endStreams()
	reload, endReloads := reloader(m, o.cfg.JobsFile)
	defer endReloads()
	err = awaitStop(log, sigs, hups, served, reload)
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
	endReloads() // one under way ends with the Manager
	shutErr := m.Shutdown(ctx)
	srv.Close()
	<-httpDone
	cancel()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, shutErr)
}

// secretVars are the variables ProcMan reads that may hold a secret (a
// token, a database password), with the flag that keeps each out of the
// environment.
func secretVars() [][2]string {
	return [][2]string{{"PROCMAN_TOKEN", "-token-file"}, {"PROCMAN_DB", "-db-file"}}
}

// forgetSecrets drops $PROCMAN_TOKEN and $PROCMAN_DB, once read, from
// ProcMan's environment, which every job would inherit and where jobs of the
// same user could read them (/proc/<pid>/environ).
func forgetSecrets(log *slog.Logger) {
	for _, v := range secretVars() {
		if _, ok := os.LookupEnv(v[0]); !ok {
			continue
		}
		if err := dropFromEnviron(v[0]); err != nil {
			log.Warn(v[0]+" stays readable in /proc/<pid>/environ by processes of this user; use "+v[1],
				"pid", os.Getpid(), "err", err)
		}
	}
}

// startAPI serves the API of m on every listener, with the connection
// limits applied. endStreams ends the log follows and event streams, so that
// they do not hold the server open once shutdown begins.
func startAPI(log *slog.Logger, o options, m *procman.Manager, lns []net.Listener) (*http.Server, <-chan error, func()) {
	h := httpapi.New(m, httpapi.WithLogger(log), httpapi.WithToken(o.token), httpapi.WithAllowedHosts(o.allowedHosts...),
		httpapi.WithFleetTLS(o.fleetTLS))
	srv := httpapi.NewServer(o.addr, h)
	srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn) // accept errors, failed TLS handshakes
	streams, endStreams := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return streams }
	limiter := httpapi.LimitConns(srv, o.conns, log)
	srv.TLSConfig = o.tls
	served := make(chan error, len(lns))
	for _, ln := range lns {
		_, tcp := ln.Addr().(*net.TCPAddr)
		secure := tcp && o.tls != nil // the Unix socket needs no TLS: only its owner can use it
		go func() {
			if secure {
				served <- srv.ServeTLS(limiter.Listener(ln), "", "")
			} else {
				served <- srv.Serve(limiter.Listener(ln))
			}
		}()
		log.Info("listening", "addr", ln.Addr().String(), "tls", secure, "auth", o.token != "", "max_conns", limiter.Limits().Max,
			"max_conns_per_client", limiter.Limits().PerClient, "version", version())
		if tcp && !secure && !httpapi.Loopback(ln.Addr().String()) {
			log.Warn("serving plain HTTP beyond this host: the token and every command travel in clear text; " +
				"use -tls-cert and -tls-key, or a TLS proxy in front")
		}
	}
	return srv, served, endStreams
}

// reloader runs the reloads of the jobs file that SIGHUP asks for, one at a
// time, on a goroutine of its own: a reload that stops pruned jobs must not
// keep SIGTERM waiting. reload asks for one (one more waits at most, as
// signals come); end cancels what is under way and waits for it. Without a
// jobs file, reload is nil.
func reloader(m *procman.Manager, file string) (reload func(), end func()) {
	if file == "" {
		return nil, func() {}
	}
	asks := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-asks:
				m.Reload(ctx) // logs the plan, or why nothing changed
			case <-ctx.Done():
				return
			}
		}
	})
	reload = func() {
		select {
		case asks <- struct{}{}:
		default: // one is waiting already: it will read the file as it is then
		}
	}
	var once sync.Once
	return reload, func() { once.Do(func() { cancel(); wg.Wait() }) }
}

// awaitStop waits for SIGINT or SIGTERM, or for a server to fail. SIGHUP
// reloads the jobs file (-config); without one, it is logged and otherwise
// ignored. It is caught rather than ignored: an ignored signal would stay
// ignored in every job ProcMan starts, a caught one is reset to its default
// at exec.
func awaitStop(log *slog.Logger, sigs, hups <-chan os.Signal, served <-chan error, reload func()) error {
	for {
		select {
		case <-hups:
			if reload == nil {
				log.Warn("SIGHUP ignored: ProcMan was started without -config, which SIGHUP reads again; SIGTERM or SIGINT stop ProcMan")
				continue
			}
			log.Info("SIGHUP: applying the jobs file again")
			reload()
		case sig := <-sigs:
			log.Info("shutting down", "signal", sig.String())
			return nil
		case err := <-served:
			log.Error("http server stopped", "err", err)
			return err
		}
	}
}

// version is the module's version and the VCS revision it was built from,
// for the listening log line.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if rev := buildSetting(bi, "vcs.revision"); len(rev) >= 12 {
		v += " " + rev[:12]
	}
	return v
}

// versionLine is what -version prints: "procman v1.2.0 (revision
// 0123456789ab, modified; go1.26.8 linux/amd64)".
func versionLine() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "procman unknown version (built without module information)"
	}
	return versionOf(bi)
}

func versionOf(bi *debug.BuildInfo) string {
	var notes []string
	if rev := buildSetting(bi, "vcs.revision"); rev != "" {
		note := "revision " + rev[:min(12, len(rev))]
		if buildSetting(bi, "vcs.modified") == "true" {
			note += ", modified"
		}
		notes = append(notes, note)
	} else {
		notes = append(notes, "no VCS revision")
	}
	notes = append(notes, strings.TrimSpace(bi.GoVersion+" "+buildSetting(bi, "GOOS")+"/"+buildSetting(bi, "GOARCH")))
	return fmt.Sprintf("procman %s (%s)", bi.Main.Version, strings.Join(notes, "; "))
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}
