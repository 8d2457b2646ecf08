// Command fleet measures a fleet of ProcMan hosts sharing one PostgreSQL
// database: for each N of -hosts, N simulated hosts (Managers in this one
// process, each with its own host name and log folder, each reaching the
// database through a link of its own) run -jobs continuous jobs each
// (sleep, schedule reboot), and it measures:
//
//   - join: how long each host's Open takes, the others running;
//   - the database's load while the fleet is idle, per host: statements a
//     second (pg_stat_statements) and transactions a second
//     (pg_stat_database); the target is the heartbeats alone, at most one a
//     host a second (see server.go for what each counts);
//   - the sessions each host holds on the database, and what each adds to
//     this process's resident memory and goroutines;
//   - GET /jobs p50 and p99 on one host, through its REST API on a real
//     HTTP server: its own jobs until hosts mirror each other's, then every
//     job of the fleet (the "listed" column says which; 100 hosts with
//     -jobs 10 -defs 90 list 10,000);
//   - a kill of -kill hosts at once: until the others list each not alive,
//     until its lease plus grace has ended (when its floating jobs may be
//     claimed), and until its floating jobs (-floating a host, created
//     before the kill) run elsewhere (failover.go).
//
// It prints a Markdown table for the README, and the statements the
// database ran while idle. Without -db it starts a throwaway PostgreSQL
// (Debian's postgresql package: initdb and pg_ctl) with pg_stat_statements
// loaded. With -db it creates a database per round on that server (the
// role needs CREATEDB) and drops it after.
//
//	go run ./bench/fleet
//	go run ./bench/fleet -hosts 10,50,100 -jobs 10 -idle 20s
//	go run ./bench/fleet -db postgres://procman@db.example:5432/postgres
//
// It is a measuring program, not a test: it exits 1 only when something
// fails (a host that cannot join, a job that does not start).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Mk-Chan/procman"
)

// config is the command line.
type config struct {
	hosts        []int
	jobs, defs   int
	idle, settle time.Duration
	lease, grace time.Duration
	requests     int
	floating     int
	killPct      int
	dsn          string
	verbose      bool
}

// kill is how many of n hosts a round kills.
func (c config) kill(n int) int { return max(1, n*c.killPct/100) }

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(2)
	}
	// Not SIGPIPE: asked for, it would come of every write to a session a
	// killed host's link has ended.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	err = run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet: FAILED:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	hosts := fs.String("hosts", "10,50,100", "fleet sizes to measure, one round each")
	fs.IntVar(&c.jobs, "jobs", 10, "continuous jobs each host runs")
	fs.IntVar(&c.defs, "defs", 0, "one-time jobs each host defines that never run (for the size of GET /jobs)")
	fs.DurationVar(&c.idle, "idle", 10*time.Second, "how long the idle load is counted")
	fs.DurationVar(&c.settle, "settle", 11*time.Second, "how long after the last start the count begins (transactions are reported within 10 s)")
	fs.DurationVar(&c.lease, "lease", procman.DefaultLease, "each host's lease")
	fs.DurationVar(&c.grace, "grace", procman.DefaultGrace, "the grace past a dead host's lease")
	fs.IntVar(&c.requests, "requests", 200, "GET /jobs samples")
	fs.IntVar(&c.floating, "floating", 2, "floating jobs per host, created through the first host before the kill")
	fs.IntVar(&c.killPct, "kill", 10, "`percent` of the hosts killed at once (at least one)")
	fs.StringVar(&c.dsn, "db", "", "a PostgreSQL server's URL (postgres://user@host:port/db); empty: start a throwaway one")
	fs.BoolVar(&c.verbose, "v", false, "show the hosts' warnings and errors")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for f := range strings.SplitSeq(*hosts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			return c, fmt.Errorf("-hosts: %q: want sizes of 2 hosts or more", f)
		}
		c.hosts = append(c.hosts, n)
	}
	switch {
	case fs.NArg() > 0:
		return c, errors.New("no arguments expected, only flags")
	case c.jobs < 0 || c.defs < 0 || c.floating < 1 || c.requests < 1 || c.idle < time.Second || c.settle < 0 || c.killPct < 0 || c.killPct > 100:
		return c, errors.New("want -floating >= 1, -jobs, -defs, -settle >= 0, -requests >= 1, -idle >= 1s, -kill 0 to 100")
	case c.grace <= 0: // a Config's zero Grace is the default
		return c, errors.New("want -grace > 0")
	}
	return c, nil
}

func run(ctx context.Context, cfg config, out, log io.Writer) error {
	srv, err := openServer(ctx, cfg.dsn, slices.Max(cfg.hosts))
	if err != nil {
		return err
	}
	defer srv.close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "machine: %d CPUs, %s/%s, %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(out, "%s; lease %s, grace %s, %d jobs and %d definitions a host, idle counted over %s\n\n",
		srv, cfg.lease, cfg.grace, cfg.jobs, cfg.defs, cfg.idle)
	var results []result
	for _, n := range cfg.hosts {
		res, err := runRound(ctx, cfg, srv, n, log)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	printTable(out, cfg, srv, results)
	printStatements(out, results[len(results)-1])
	return nil
}
