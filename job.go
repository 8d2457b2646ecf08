package procman

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Type says what happens when a job's process exits.
type Type string

const (
	// OneTime jobs run once per Start (or schedule tick) and then rest in StateExited.
	OneTime Type = "one_time"
	// Continuous jobs are restarted whenever they exit, until stopped.
	Continuous Type = "continuous"
)

// Schedules besides cron expressions. Any value that is none of these and no
// valid cron schedule is rejected, so that a typo never becomes a job that
// silently never runs.
const (
	// ScheduleReboot starts the job when the Manager opens and when the job is created.
	ScheduleReboot = "reboot"
	// ScheduleManual (also "" and "none") means the job runs only when started.
	ScheduleManual = "manual"
)

// Job is a job definition. Zero optional fields mean "use the Manager's default"
// (see Config); they are stored as given, so a changed default applies to every
// job that did not set its own.
type Job struct {
	// Name identifies the job and names its log folder: 1-128 letters, digits,
	// '.', '_' or '-', not starting with '.'.
	Name string `json:"name"`
	// Command is run as /bin/sh -c Command.
	Command string `json:"command"`
	// Type is OneTime (the default, also when empty) or Continuous.
	Type Type `json:"type"`
	// Schedule is "reboot"; "", "manual" or "none" for a job started by hand; or a
	// cron schedule: "*/5 * * * *", "@hourly", "@every 90s", optionally after a
	// time zone as in "CRON_TZ=Europe/Berlin 0 3 * * *" (default: the machine's).
	Schedule string `json:"schedule"`
	// Overlap says what a one_time job's schedule tick does while the previous
	// run still goes: "skip" (default), "queue" or "restart".
	Overlap Overlap `json:"overlap,omitempty"`
	// Labels are the job's own names for the groups it belongs to
	// ({"tier": "web"}), which selectors choose jobs by (see Selector).
	// Keys and values are as Kubernetes allows (see labels.go).
	Labels map[string]string `json:"labels,omitempty"`
	// DependsOn names the jobs this one needs, each with the condition its
	// start waits for: a start first starts each of them that is not active,
	// then waits until every condition holds (see Condition). In JSON an
	// object from job name to condition, or a list of names (each "started");
	// stored and sent as an object.
	DependsOn Dependencies `json:"depends_on,omitempty"`
	// StartTimeout bounds a start's wait for DependsOn; past it the job goes
	// to StateError. 0 (default): no bound.
	StartTimeout Duration `json:"start_timeout,omitempty"`
	// Host is the host of the fleet that runs the job: "" (the default) the
	// host it was created on, a host's name, or HostAny ("*") for a job the
	// fleet places on one live host and moves when that host dies (on
	// SQLite, a fleet of one: this host).
	Host string `json:"host,omitempty"`

	// Dir is the working directory; empty means ProcMan's own.
	Dir string `json:"dir,omitempty"`
	// Env is added to ProcMan's environment (and overrides it).
	Env map[string]string `json:"env,omitempty"`
	// EnvFile is a file of KEY=VALUE lines, read by ProcMan at each start and
	// merged under Env (Env wins). Blank lines and lines starting with '#' are
	// skipped; an "export " prefix and one pair of matching quotes around the
	// value are removed. A relative path is taken from Dir. A missing, unreadable
	// or malformed file makes the run fail to start.
	EnvFile string `json:"env_file,omitempty"`
	// User runs the job as this user: a name or numeric uid, optionally followed
	// by ":group" (a name or gid; default the user's primary group). The job gets
	// the user's supplementary groups, and HOME, USER and LOGNAME for it (Env
	// may override them). Only allowed when ProcMan runs as root.
	User string `json:"user,omitempty"`
	// StopSignal is sent to the process group on stop: TERM (default), INT, HUP,
	// QUIT, KILL, USR1, USR2, with or without the SIG prefix.
	StopSignal string `json:"stop_signal,omitempty"`
	// StopTimeout is how long to wait after StopSignal before SIGKILL (default 10s).
	StopTimeout Duration `json:"stop_timeout,omitempty"`

	// Restart policy.

	// Restart says which ended runs are followed by another: RestartAlways
	// (the default for continuous jobs: every one) or RestartOnFailure (only
	// a failed one: an exit with a code neither 0 nor in SuccessExitCodes, a
	// signal, an unhealthy run; a continuous job that succeeds rests in
	// StateExited). A one_time job takes only RestartOnFailure, with
	// MaxRetries set; without it, a one_time run is never retried.
	Restart string `json:"restart,omitempty"`
	// SuccessExitCodes are exit codes (0-255) that count as success besides 0,
	// for Restart and for LastRun.Success.
	SuccessExitCodes []int `json:"success_exit_codes,omitempty"`

	// Continuous jobs, and one_time jobs with restart "on-failure" (but
	// MinUptime: continuous jobs only).

	// BackoffInitial is the first interval between the starts of a failing job
	// (default 1s). Every failed run doubles it, and the next start waits for
	// what is left of it once the run's own duration is taken off (a one_time
	// job's and an unhealthy run's wait the whole interval).
	BackoffInitial Duration `json:"backoff_initial,omitempty"`
	// BackoffMax caps that interval (default 1m).
	BackoffMax Duration `json:"backoff_max,omitempty"`
	// MinUptime: a run that lasts at least this long was healthy and is restarted
	// at once with a fresh backoff; a shorter one is a failure (default 10s).
	MinUptime Duration `json:"min_uptime,omitempty"`
	// MaxRetries: after this many consecutive failures the job goes to StateError.
	// 0 (default) retries forever; a one_time job with restart "on-failure"
	// must set it (3: three runs at most).
	MaxRetries int `json:"max_retries,omitempty"`

	// Health checks.

	// Health is the check run against the job's running run; nil: none.
	Health *HealthCheck `json:"health,omitempty"`
	// OnUnhealthy is what a run that became unhealthy gets: OnUnhealthyRestart
	// (the default for continuous jobs: it is stopped as by a stop, and counts
	// as a failed run) or OnUnhealthyIgnore (the default for one_time jobs:
	// only its health says so). Only with Health.
	OnUnhealthy string `json:"on_unhealthy,omitempty"`

	// Log retention; see Config.KeepRuns and Config.MaxLogBytes.

	// KeepRuns is how many finished runs (rows and log files) are kept. 0: the Manager's default (100).
	KeepRuns int `json:"keep_runs,omitempty"`
	// MaxLogBytes caps the job's log files in total (finished runs' files and the
	// running run's rotated parts); the oldest go first, the newest finished
	// run's last file is always kept. 0: the Manager's default (no cap).
	MaxLogBytes int64 `json:"max_log_bytes,omitempty"`
	// MaxRunLogBytes caps the running run's live log file: past it, its oldest
	// part moves to a numbered file of the run. 0: the Manager's default (100 MiB).
	MaxRunLogBytes int64 `json:"max_run_log_bytes,omitempty"`
}

// Duration is a time.Duration that reads and writes Go duration strings ("1m30s") in JSON.
type Duration time.Duration

// MarshalJSON writes the duration as a string such as "10s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string; null is zero (the default).
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*d = 0
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration string such as \"10s\", got %q", s)
	}
	*d = Duration(v)
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// Validate reports every problem with the definition, each a *FieldError
// (joined with errors.Join; FieldErrors lists them).
func (j Job) Validate() error {
	var errs []error
	if !nameRE.MatchString(j.Name) {
		errs = append(errs, invalid("name", "must be 1-128 letters, digits, '.', '_' or '-', not starting with '.'"))
	}
	if j.Type != "" && j.Type != OneTime && j.Type != Continuous {
		errs = append(errs, invalid("type", "must be %q or %q, got %q", OneTime, Continuous, j.Type))
	}
	if strings.ContainsRune(j.Dir, 0) {
		errs = append(errs, invalid("dir", "must not contain a NUL byte"))
	}
	if strings.ContainsRune(j.EnvFile, 0) {
		errs = append(errs, invalid("env_file", "must not contain a NUL byte"))
	}
	if err := validateJobHost(j.Host); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := splitUser(j.User); err != nil {
		errs = append(errs, err)
	}
	if j.StopSignal != "" {
		if _, err := parseSignal(j.StopSignal); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, j.validateCommand(), validateSchedule(j.Schedule), validateOverlap(j),
		j.validateDependsOn(), j.validateLabels(), j.validateEnv(), j.validateDurations(), j.validateCounts(), j.validateRestart(),
		j.Health.validate(), j.validateOnUnhealthy())...)
}

// maxArgLen is the most bytes the kernel takes in one argument or
// environment string, its NUL included (MAX_ARG_STRLEN in linux/binfmts.h:
// 32 pages). A longer command cannot even be passed to the shell.
func maxArgLen() int { return 32 * os.Getpagesize() }

func (j Job) validateCommand() error {
	switch {
	case strings.TrimSpace(j.Command) == "":
		return invalid("command", "must not be empty")
	case strings.ContainsRune(j.Command, 0):
		return invalid("command", "must not contain a NUL byte")
	case len(j.Command) >= maxArgLen():
		return invalid("command", "is %d bytes; the kernel takes at most %d in one argument: put a longer script in a file and run that",
			len(j.Command), maxArgLen()-1)
	}
	return nil
}

// reservedEnv are set by ProcMan for every run: a run, and a later ProcMan
// after a crash, recognise the run's processes by them.
var reservedEnv = []string{"PROCMAN_JOB", "PROCMAN_INVOCATION"}

func (j Job) validateEnv() error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(j.Env)) {
		v := j.Env[k]
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0):
			errs = append(errs, invalid("env", "bad variable %q: names must be non-empty without '=', values without NUL", k))
		case slices.Contains(reservedEnv, k):
			errs = append(errs, invalid("env", "%s is set by ProcMan for every run and cannot be overridden", k))
		case len(k)+1+len(v) >= maxArgLen():
			errs = append(errs, invalid("env", "%s is %d bytes; the kernel takes at most %d in one variable", k, len(k)+1+len(v), maxArgLen()-1))
		}
	}
	return errors.Join(errs...)
}

// Bounds of the duration fields (and of the Config defaults they stand in
// for): a larger value is a mistake, and would overflow the backoff's arithmetic.
const (
	MaxStopTimeout  = time.Hour      // stop_timeout
	MaxBackoff      = 24 * time.Hour // backoff_initial, backoff_max
	MaxMinUptime    = 24 * time.Hour // min_uptime
	MaxStartTimeout = 24 * time.Hour // start_timeout
)

type durationField struct {
	field string
	v     time.Duration
	max   time.Duration
	min   time.Duration // of a value that is set; 0: any
}

func (j Job) durations() []durationField {
	return []durationField{{"stop_timeout", time.Duration(j.StopTimeout), MaxStopTimeout, 0},
		{"backoff_initial", time.Duration(j.BackoffInitial), MaxBackoff, 0},
		{"backoff_max", time.Duration(j.BackoffMax), MaxBackoff, 0},
		{"min_uptime", time.Duration(j.MinUptime), MaxMinUptime, 0},
		{"start_timeout", time.Duration(j.StartTimeout), MaxStartTimeout, 0}}
}

func (d durationField) check() error {
	switch {
	case d.v < 0 || d.v > d.max:
	case d.v != 0 && d.v < d.min:
	default:
		return nil
	}
	if d.min > 0 {
		return invalid(d.field, "must be 0 (the default), or %s up to %s, got %s", d.min, fmtDuration(d.max), d.v)
	}
	return invalid(d.field, "must be 0 (the default) up to %s, got %s", fmtDuration(d.max), d.v)
}

// fmtDuration writes 24h0m0s as 24h.
func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

func (j Job) validateDurations() error {
	var errs []error
	for _, d := range j.durations() {
		errs = append(errs, d.check())
	}
	if j.oneTime() {
		retried := j.Restart == RestartOnFailure
		for _, f := range []struct {
			field string
			set   bool
		}{{"backoff_initial", j.BackoffInitial != 0 && !retried}, {"backoff_max", j.BackoffMax != 0 && !retried},
			{"min_uptime", j.MinUptime != 0}, {"max_retries", j.MaxRetries != 0 && !retried}} {
			switch {
			case !f.set:
			case f.field == "min_uptime":
				errs = append(errs, invalid(f.field, "applies only to continuous jobs"))
			default:
				errs = append(errs, invalid(f.field, "applies only to continuous jobs, and to one_time jobs with restart %q", RestartOnFailure))
			}
		}
	}
	if j.BackoffInitial > 0 && j.BackoffMax > 0 && j.BackoffMax < j.BackoffInitial {
		errs = append(errs, invalid("backoff_max", "must not be less than backoff_initial"))
	}
	return errors.Join(errs...)
}

func (j Job) validateCounts() error {
	var errs []error
	if j.MaxRetries < 0 {
		errs = append(errs, invalid("max_retries", "must not be negative"))
	}
	if j.KeepRuns < 0 {
		errs = append(errs, invalid("keep_runs", "must not be negative"))
	}
	if j.MaxLogBytes < 0 {
		errs = append(errs, invalid("max_log_bytes", "must not be negative"))
	}
	if j.MaxRunLogBytes < 0 {
		errs = append(errs, invalid("max_run_log_bytes", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Restart policies (Job.Restart).
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
)

func (j Job) oneTime() bool { return j.Type == OneTime || j.Type == "" }

func (j Job) validateRestart() error {
	var errs []error
	switch j.Restart {
	case "", RestartOnFailure:
	case RestartAlways:
		if j.oneTime() {
			errs = append(errs, invalid("restart", "%q applies only to continuous jobs; a one_time job is retried with %q (and max_retries)",
				RestartAlways, RestartOnFailure))
		}
	default:
		errs = append(errs, invalid("restart", "must be %q or %q, got %q", RestartAlways, RestartOnFailure, j.Restart))
	}
	if j.oneTime() && j.Restart == RestartOnFailure && j.MaxRetries == 0 {
		errs = append(errs, invalid("max_retries", "must be set for a one_time job with restart %q: it is how many failed runs in a row end the retries",
			RestartOnFailure))
	}
	for _, c := range j.SuccessExitCodes {
		if c < 0 || c > 255 {
			errs = append(errs, invalid("success_exit_codes", "exit codes are 0 to 255, got %d", c))
			break
		}
	}
	return errors.Join(errs...)
}

// succeeded reports whether a run that ended with outcome and exit code
// succeeded: it exited by itself with 0 or one of the job's success codes.
func succeeded(outcome Outcome, code *int, successCodes []int) bool {
	return outcome == OutcomeExited && code != nil && (*code == 0 || slices.Contains(successCodes, *code))
}

// clone is j with nothing shared with it: an edit may change what it is given.
func (j Job) clone() Job {
	j.Env = maps.Clone(j.Env)
	j.Labels = maps.Clone(j.Labels)
	j.SuccessExitCodes = slices.Clone(j.SuccessExitCodes)
	j.DependsOn = maps.Clone(j.DependsOn)
	if j.Health != nil {
		h := *j.Health
		j.Health = &h
	}
	return j
}

// fillDefaults sets the defaults a definition is stored with: the type, and
// no dependencies rather than an empty set of them. Every other empty field
// takes the Manager's default when the job starts.
func (j *Job) fillDefaults() {
	if j.Type == "" {
		j.Type = OneTime
	}
	if len(j.DependsOn) == 0 {
		j.DependsOn = nil
	}
	if len(j.Labels) == 0 {
		j.Labels = nil
	}
}

func validateSchedule(s string) error {
	if !isCron(s) {
		return nil
	}
	if err := checkCron(s); err != nil {
		return invalid("schedule", "%q is not a schedule (%v): use \"reboot\", \"manual\", \"none\", empty, "+
			"a 5-field cron expression such as \"*/5 * * * *\", a descriptor such as \"@daily\", "+
			"or an interval such as \"@every 90s\"", s, err)
	}
	return nil
}

func (j Job) startsOnBoot() bool { return j.Schedule == ScheduleReboot }

// splitUser splits the user field "user[:group]" into its parts; both empty
// for an empty field. It checks only the form: see lookupUser.
func splitUser(s string) (usr, group string, err error) {
	if s == "" {
		return "", "", nil
	}
	usr, group, hasGroup := strings.Cut(s, ":")
	if usr == "" || (hasGroup && group == "") || strings.Contains(group, ":") ||
		strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return "", "", invalid("user", "want a user name or uid, optionally followed by :group or :gid "+
			"(e.g. \"nobody\", \"65534\", \"www-data:www-data\"), got %q", s)
	}
	return usr, group, nil
}

func parseSignal(s string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "TERM":
		return syscall.SIGTERM, nil
	case "INT":
		return syscall.SIGINT, nil
	case "HUP":
		return syscall.SIGHUP, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "KILL":
		return syscall.SIGKILL, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	}
	return 0, invalid("stop_signal", "unknown signal %q: accepted are TERM, INT, HUP, QUIT, KILL, USR1, USR2", s)
}
