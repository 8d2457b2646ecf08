package procman

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/uptrace/bun"
)

// The defaults of Config's fields, which the binary's flags show too.
const (
	DefaultDBPath         = "procman.db"
	DefaultLogDir         = "logs"
	DefaultStopSignal     = "TERM"
	DefaultStopTimeout    = 10 * time.Second
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = time.Minute
	DefaultMinUptime      = 10 * time.Second
	DefaultKeepRuns       = 100
	DefaultKillWait       = 5 * time.Second
	// DefaultMaxRunLogBytes is the default of Config.MaxRunLogBytes: 100 MiB.
	DefaultMaxRunLogBytes = 100 << 20
	// The defaults of a health check's interval, timeout and retries.
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 5 * time.Second
	DefaultHealthRetries  = 3
	// DefaultLease is how long a host's lease in a fleet lasts unrenewed
	// (Config.Lease); DefaultGrace what the others wait past it.
	DefaultLease = 10 * time.Second
	DefaultGrace = 5 * time.Second
)

// Config configures a Manager. Zero fields take the default named on each;
// Open applies them to a copy, so the caller's value is never modified.
type Config struct {
	// DBPath is the SQLite database holding job definitions and run history.
	// Default "procman.db", unless Postgres is set.
	DBPath string
	// Postgres, when set, keeps them in a PostgreSQL database instead: a
	// connection string, as a URL (postgres://user:password@host:5432/db?sslmode=verify-full)
	// or as keywords (host=db user=procman dbname=procman), with the libpq
	// environment (PGPASSWORD, ...) and ~/.pgpass filling what it leaves out.
	// Its password is never logged nor put in an error. Default: none (SQLite).
	Postgres string
	// LogDir holds run output as LogDir/<job>/<unix-nanoseconds>.log. Default "logs".
	LogDir string
	// Logger receives ProcMan's own logs. Default: discard them. Its
	// handler is called while a job's lock is held: one that blocks (on a
	// pipe whose reader stopped) holds up that job's stops and status, so
	// give it a destination that does not (the binary's hands its lines to
	// a goroutine of its own).
	Logger *slog.Logger

	// Defaults for job fields left empty.

	// StopSignal is sent to a job's process group to stop it. Default "TERM".
	StopSignal string
	// StopTimeout is the wait between StopSignal and SIGKILL. Default 10s.
	StopTimeout time.Duration
	// BackoffInitial is the first interval between the starts of a failing
	// continuous job (see Job.BackoffInitial). Default 1s.
	BackoffInitial time.Duration
	// BackoffMax caps that interval. Default 1m.
	BackoffMax time.Duration
	// MinUptime is how long a run must last to count as healthy. Default 10s.
	MinUptime time.Duration
	// MaxRetries is how many consecutive failures put a continuous job in
	// StateError. Default 0: retry forever.
	MaxRetries int
	// KeepRuns is how many finished runs per job are kept, rows and log files.
	// Default 100.
	KeepRuns int
	// MaxLogBytes caps each job's log files in total (every finished run's
	// files and the rotated parts of the running run), oldest removed first;
	// the newest finished run's last file and the running run's live file are
	// always kept. Default 0: no cap.
	MaxLogBytes int64
	// MaxRunLogBytes caps a running run's live log file: past it, ProcMan moves
	// the file's oldest part into a numbered file of the same run (see the
	// README's Log retention). Default 100 MiB.
	MaxRunLogBytes int64

	// Subreaper makes the process adopt the orphans of every job (Linux
	// PR_SET_CHILD_SUBREAPER) and reap them the moment they exit: no stray of a
	// job ends up a zombie under an init that reaps late, and stops return as
	// soon as the last process is gone. The Manager then reaps every child
	// process it did not start itself, so set it only in a program that starts
	// no processes of its own, with one such Manager at a time (the procman
	// binary does). Default false.
	Subreaper bool

	// NoResume turns off the desired state at Open: continuous jobs that were
	// running when the last Manager on the database ended (shut down or died)
	// are not started again, only those with the reboot schedule. Each job's
	// desired state is still recorded. Default false: they are started again,
	// with trigger resume.
	NoResume bool

	// JobsFile is a document of jobs (see Document; YAML, or JSON for a
	// .json file) that Open applies before it starts any job, with its path
	// as given for source and prune of that source's jobs it no longer has
	// (see Apply): a file with any problem fails Open, listing each. Reload
	// applies it again. Default: none.
	JobsFile string

	// KillWait is how long a group may take to vanish after SIGKILL before the
	// job goes to StateError. Default 5s.
	KillWait time.Duration

	// NoJobMetrics leaves the series of each job (procman_job_*) out of
	// Metrics: each job adds 11 series (12 with a health check), which a
	// Prometheus with many thousands of jobs may not want. Default false:
	// they are there.
	NoJobMetrics bool

	// ReturnMemory is how long the jobs must go without a state change before
	// the Manager collects garbage and returns freed memory to the OS, once
	// per quiet spell and at most every 10 ReturnMemory. After a burst (many
	// starts, a bulk stop) the heap sits at its goal, up to twice what is
	// live, until the next collection, which an idle process may not run for
	// minutes. Default 0: never, for it acts on the whole process, which an
	// embedding program may manage itself. The binary uses 1s.
	ReturnMemory time.Duration

	// Host names this ProcMan in the database: on its runs and, on
	// PostgreSQL, in the hosts table, whose lease on the name keeps a second
	// ProcMan of that name out (hosts.go). Default os.Hostname().
	Host string
	// Advertise is the URL at which the other hosts of a fleet reach this
	// one's API (http://10.0.0.5:10000), shown by Hosts. Default: none.
	Advertise string
	// Lease is how long a host holds its name in a fleet (PostgreSQL) without
	// renewing it: a heartbeat renews it every Lease/5, on the database's
	// clock; one that lapses lets another ProcMan take the name, and fences
	// this one. Default 10s; at least 1s.
	Lease time.Duration
	// Grace is how long past a dead host's lease the fleet waits before it
	// takes over that host's work. Default 5s.
	Grace time.Duration

	// queryHook (tests) sees every statement of the store's handles.
	queryHook bun.QueryHook
}

func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	switch {
	case c.DBPath != "" && c.Postgres != "":
		return c, fmt.Errorf("config: DBPath (SQLite) and Postgres name two databases; set one: %w", ErrInvalid)
	case isPostgresURL(c.DBPath):
		return c, fmt.Errorf("config: DBPath is the path of a SQLite file; a PostgreSQL URL goes in Postgres: %w", ErrInvalid)
	case c.DBPath == "" && c.Postgres == "":
		c.DBPath = DefaultDBPath
	}
	c.Host = cmp.Or(c.Host, thisHost())
	def(&c.Lease, DefaultLease)
	def(&c.Grace, DefaultGrace)
	if err := c.checkHost(); err != nil {
		return c, err
	}
	c.LogDir = cmp.Or(c.LogDir, DefaultLogDir)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler) // disabled: no record is even formatted
	}
	c.StopSignal = cmp.Or(c.StopSignal, DefaultStopSignal)
	def(&c.StopTimeout, DefaultStopTimeout)
	def(&c.BackoffInitial, DefaultBackoffInitial)
	def(&c.BackoffMax, DefaultBackoffMax)
	def(&c.MinUptime, DefaultMinUptime)
	def(&c.KillWait, DefaultKillWait)
	c.KeepRuns = cmp.Or(c.KeepRuns, DefaultKeepRuns)
	c.MaxRunLogBytes = cmp.Or(c.MaxRunLogBytes, DefaultMaxRunLogBytes)
	if _, err := parseSignal(c.StopSignal); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	for _, d := range []struct {
		name   string
		v, max time.Duration
	}{{"StopTimeout", c.StopTimeout, MaxStopTimeout}, {"BackoffInitial", c.BackoffInitial, MaxBackoff},
		{"BackoffMax", c.BackoffMax, MaxBackoff}, {"MinUptime", c.MinUptime, MaxMinUptime}, {"KillWait", c.KillWait, time.Hour}} {
		if d.v < 0 || d.v > d.max {
			return c, fmt.Errorf("config: %s must be 0 (the default) up to %s, got %s: %w", d.name, fmtDuration(d.max), d.v, ErrInvalid)
		}
	}
	if c.KeepRuns < 0 || c.MaxLogBytes < 0 || c.MaxRunLogBytes < 0 {
		return c, fmt.Errorf("config: KeepRuns, MaxLogBytes and MaxRunLogBytes must not be negative: %w", ErrInvalid)
	}
	if c.MaxRetries < 0 {
		return c, fmt.Errorf("config: MaxRetries must not be negative: %w", ErrInvalid)
	}
	return c, nil
}

// settings fills a job's empty fields from the Manager's defaults.
func (c Config) settings(j Job) settings {
	pick := func(v Duration, def time.Duration) time.Duration {
		if v != 0 {
			return time.Duration(v)
		}
		return def
	}
	sigName := j.StopSignal
	if sigName == "" {
		sigName = c.StopSignal
	}
	sig, _ := parseSignal(sigName) // both were validated
	maxRetries := j.MaxRetries
	if maxRetries == 0 {
		maxRetries = c.MaxRetries
	}
	return settings{
		stopSignal:     sig,
		stopTimeout:    pick(j.StopTimeout, c.StopTimeout),
		backoffInitial: pick(j.BackoffInitial, c.BackoffInitial),
		backoffMax:     max(pick(j.BackoffMax, c.BackoffMax), pick(j.BackoffInitial, c.BackoffInitial)),
		minUptime:      pick(j.MinUptime, c.MinUptime),
		maxRetries:     maxRetries,
		killWait:       c.KillWait,
		keepRuns:       cmp.Or(j.KeepRuns, c.KeepRuns),
		maxLogBytes:    cmp.Or(j.MaxLogBytes, c.MaxLogBytes),
		maxRunLogBytes: cmp.Or(j.MaxRunLogBytes, c.MaxRunLogBytes),
		onFailure:      j.Restart == RestartOnFailure,
		successCodes:   j.SuccessExitCodes,
		health:         newHealthSettings(j),
	}
}

// thisHost names this machine for Config.Host.
func thisHost() string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "localhost"
}
