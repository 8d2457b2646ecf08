package procman

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HealthCheck is how ProcMan asks a job's running run whether it is well:
// exactly one of Exec, HTTP and TCP, tried every Interval. Retries checks
// failed in a row make the run unhealthy (see Job.OnUnhealthy); one that
// passes makes it healthy again.
type HealthCheck struct {
	// Exec is a command run as /bin/sh -c Exec as the job runs (its user,
	// environment and dir), in a process group of its own, which is killed at
	// Timeout: it passes when it exits 0. Its output is kept in memory (the
	// first 4 KiB, for Status.HealthFailure), never written to the job's log.
	Exec string `json:"exec,omitempty"`
	// HTTP is an http:// or https:// URL, fetched with a GET: any 2xx or 3xx
	// status passes; redirects are not followed, and no proxy is used.
	HTTP string `json:"http,omitempty"`
	// TCP is a host:port that passes when it accepts a connection.
	TCP string `json:"tcp,omitempty"`
	// Interval is the time from the end of one check to the start of the next
	// (default 10s); the first starts as the run begins.
	Interval Duration `json:"interval,omitempty"`
	// Timeout bounds one check (default 5s): one that takes longer fails.
	Timeout Duration `json:"timeout,omitempty"`
	// Retries is how many checks failed in a row make the run unhealthy (default 3).
	Retries int `json:"retries,omitempty"`
	// StartPeriod is how long after the run's start failed checks do not
	// count (default 0); a check that passes ends it.
	StartPeriod Duration `json:"start_period,omitempty"`
}

// What a run that became unhealthy gets (Job.OnUnhealthy).
const (
	OnUnhealthyRestart = "restart"
	OnUnhealthyIgnore  = "ignore"
)

// Bounds of the health check's durations.
const (
	MaxHealthInterval    = 24 * time.Hour // health.interval
	MaxHealthTimeout     = time.Hour      // health.timeout
	MaxHealthStartPeriod = 24 * time.Hour // health.start_period
	// MinHealthDuration is the least interval and timeout that may be set.
	MinHealthDuration = time.Millisecond
)

// validate reports every problem of the check, each a *FieldError on
// health or health.<member>.
func (h *HealthCheck) validate() error {
	if h == nil {
		return nil
	}
	var errs []error
	var kinds []string
	for _, k := range []struct{ name, v string }{{"exec", h.Exec}, {"http", h.HTTP}, {"tcp", h.TCP}} {
		if k.v != "" {
			kinds = append(kinds, k.name)
		}
	}
	switch len(kinds) {
	case 0:
		errs = append(errs, invalid("health", "needs one of exec, http or tcp"))
	case 1:
	default:
		errs = append(errs, invalid("health", "takes one of exec, http or tcp, got %s", strings.Join(kinds, " and ")))
	}
	errs = append(errs, h.validateExec(), h.validateHTTP(), h.validateTCP())
	for _, d := range []durationField{{"health.interval", time.Duration(h.Interval), MaxHealthInterval, MinHealthDuration},
		{"health.timeout", time.Duration(h.Timeout), MaxHealthTimeout, MinHealthDuration},
		{"health.start_period", time.Duration(h.StartPeriod), MaxHealthStartPeriod, 0}} {
		errs = append(errs, d.check())
	}
	if h.Retries < 0 {
		errs = append(errs, invalid("health.retries", "must not be negative"))
	}
	return errors.Join(errs...)
}

func (h *HealthCheck) validateExec() error {
	switch {
	case h.Exec == "":
	case strings.TrimSpace(h.Exec) == "":
		return invalid("health.exec", "must not be blank")
	case strings.ContainsRune(h.Exec, 0):
		return invalid("health.exec", "must not contain a NUL byte")
	case len(h.Exec) >= maxArgLen():
		return invalid("health.exec", "is %d bytes; the kernel takes at most %d in one argument", len(h.Exec), maxArgLen()-1)
	}
	return nil
}

func (h *HealthCheck) validateHTTP() error {
	if h.HTTP == "" {
		return nil
	}
	u, err := url.Parse(h.HTTP)
	switch {
	case err != nil:
		return invalid("health.http", "is not a URL: %v", errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return invalid("health.http", "must be an http:// or https:// URL, got %q", h.HTTP)
	case u.Host == "":
		return invalid("health.http", "names no host: %q", h.HTTP)
	}
	return nil
}

func (h *HealthCheck) validateTCP() error {
	if h.TCP == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(h.TCP)
	if err == nil && host == "" {
		err = errors.New("no host")
	}
	if n, perr := strconv.Atoi(port); err == nil && (perr != nil || n < 1 || n > 65535) {
		err = errors.New("the port must be a number from 1 to 65535")
	}
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			err = errors.New(ae.Err)
		}
		return invalid("health.tcp", "want host:port, such as \"localhost:5432\" or \"[::1]:80\", got %q: %v", h.TCP, err)
	}
	return nil
}

func (j Job) validateOnUnhealthy() error {
	switch j.OnUnhealthy {
	case "":
		return nil
	case OnUnhealthyRestart, OnUnhealthyIgnore:
	default:
		return invalid("on_unhealthy", "must be %q or %q, got %q", OnUnhealthyRestart, OnUnhealthyIgnore, j.OnUnhealthy)
	}
	if j.Health == nil {
		return invalid("on_unhealthy", "applies only to a job with a health check")
	}
	return nil
}

// healthSettings is a job's health check with the defaults filled in.
type healthSettings struct {
	check       HealthCheck
	interval    time.Duration
	timeout     time.Duration
	startPeriod time.Duration
	retries     int
	restart     bool // on_unhealthy restart: an unhealthy run is stopped
}

// newHealthSettings returns nil for a job without a check.
func newHealthSettings(j Job) *healthSettings {
	h := j.Health
	if h == nil {
		return nil
	}
	hs := &healthSettings{check: *h, interval: time.Duration(h.Interval), timeout: time.Duration(h.Timeout),
		startPeriod: time.Duration(h.StartPeriod), retries: h.Retries}
	if hs.interval == 0 {
		hs.interval = DefaultHealthInterval
	}
	if hs.timeout == 0 {
		hs.timeout = DefaultHealthTimeout
	}
	if hs.retries == 0 {
		hs.retries = DefaultHealthRetries
	}
	switch j.OnUnhealthy {
	case OnUnhealthyRestart:
		hs.restart = true
	case "":
		hs.restart = j.Type == Continuous
	}
	return hs
}
