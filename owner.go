package procman

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Jobs in a fleet. Every host sharing a PostgreSQL database sees every job,
// for the definitions are in the database, and runs only the jobs it owns: a
// pinned job's host (Job.Host, or the host it was created on), a floating
// job's claimer. A job owned elsewhere is never started here, by hand, at
// Open, by its schedule or as a dependency; its controls answer an
// *OwnerError that names the owner, so that a caller (the HTTP API) can take
// the request there. On SQLite there is one host, and it owns every job.

// HostAny is Job.Host of a floating job: the fleet runs it on one live host.
const HostAny = "*"

// OwnerError is the error of a control of a job that another host owns. It
// wraps ErrElsewhere.
type OwnerError struct {
	Job string
	// Host is the owner; "" for a floating job that no live host holds now.
	Host string
	// URL is the owner's advertised URL (Config.Advertise); "" if it has none.
	URL string
}

func (e *OwnerError) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("job %q is floating and on no live host now", e.Job)
	}
	return fmt.Sprintf("job %q runs on host %q", e.Job, e.Host)
}

// Unwrap makes errors.Is(err, ErrElsewhere) hold.
func (e *OwnerError) Unwrap() error { return ErrElsewhere }

// Location is where a job runs: on this host (Local), or on Host, reached at URL.
type Location struct {
	Host, URL string
	Local     bool
}

// Locate says which host runs the job, and how to reach it.
func (m *Manager) Locate(name string) (Location, error) {
	r, err := m.runner(name)
	if err != nil {
		return Location{}, err
	}
	host := r.owner()
	if host == m.cfg.Host {
		return Location{Host: host, URL: m.cfg.Advertise, Local: true}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), poolBusy)
	defer cancel()
	url, err := m.hostURL(ctx, host)
	return Location{Host: host, URL: url}, err
}

// validateJobHost checks the form of Job.Host; checkJobHost, that it names a host.
func validateJobHost(host string) error {
	if host == HostAny {
		return nil
	}
	if why := hostNameProblem(host); why != "" {
		return invalid("host", "%s", why)
	}
	return nil
}

// checkJobHost refuses a job pinned to a host that has never joined the
// fleet on this database: on SQLite, any host but this one.
func (m *Manager) checkJobHost(ctx context.Context, j Job) error {
	if j.Host == "" || j.Host == HostAny || j.Host == m.cfg.Host {
		return nil
	}
	if !m.store.pg {
		return invalid("host", "is %q, but on SQLite the one host is this one, %q", j.Host, m.cfg.Host)
	}
	var n int
	if err := m.store.db.NewRaw("SELECT count(*) FROM hosts WHERE name = ?", j.Host).Scan(ctx, &n); err != nil {
		return fmt.Errorf("check host %q: %w", j.Host, err)
	}
	if n == 0 {
		return invalid("host", "no host %q has joined the fleet on this database", j.Host)
	}
	return nil
}

// hostURL is the advertised URL of host, "" if it has none.
func (m *Manager) hostURL(ctx context.Context, host string) (string, error) {
	if host == m.cfg.Host {
		return m.cfg.Advertise, nil
	}
	if host == "" || !m.store.pg {
		return "", nil
	}
	var url string
	err := m.store.db.NewRaw("SELECT advertise FROM hosts WHERE name = ?", host).Scan(ctx, &url)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("host %q: %w", host, err)
	}
	return url, nil
}

// ownerOf is the host that owns a job of definition j created on home, that
// a floating job's claim gave to claimer.
func (m *Manager) ownerOf(j Job, home, claimer string) string {
	switch {
	case !m.store.pg: // a fleet of one
		return m.cfg.Host
	case j.Host == "":
		return home
	case j.Host == HostAny:
		return claimer
	}
	return j.Host
}

// ownerLocked is the host that owns the job. The caller holds r.mu.
func (r *runner) ownerLocked() string { return r.m.ownerOf(r.job, r.home, r.claimer) }

func (r *runner) owner() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ownerLocked()
}

// localLocked reports whether this host owns the job. The caller holds r.mu.
func (r *runner) localLocked() bool { return r.ownerLocked() == r.m.cfg.Host }

// elsewhereLocked is the *OwnerError of a job owned elsewhere, without the
// owner's URL (which the database holds); nil if this host owns the job.
func (r *runner) elsewhereLocked() error {
	if host := r.ownerLocked(); host != r.m.cfg.Host {
		return &OwnerError{Job: r.name, Host: host}
	}
	return nil
}

// local finds a job to control here: ErrClosed once the Manager is shut
// down, ErrNotFound, or the *OwnerError of a job another host owns.
func (m *Manager) local(ctx context.Context, name string) (*runner, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	r, err := m.runner(name)
	if err != nil {
		return nil, err
	}
	if err := m.elsewhere(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// elsewhere is nil if this host owns the job, else its *OwnerError with the
// owner's URL: what a control of the job answers.
func (m *Manager) elsewhere(ctx context.Context, r *runner) error {
	r.mu.Lock()
	err := r.elsewhereLocked()
	floating := r.job.Host == HostAny
	r.mu.Unlock()
	var oe *OwnerError
	if !errors.As(err, &oe) {
		return nil
	}
	if floating && m.store.pg { // its holder may have changed since this host last heard
		return m.floatingOwner(ctx, r)
	}
	url, uerr := m.hostURL(ctx, oe.Host)
	if uerr != nil {
		m.log.Warn("owner's URL not read", "job", r.name, "host", oe.Host, "err", uerr)
	}
	oe.URL = url
	return oe
}

// floatingOwner is the *OwnerError of a floating job another host holds, as
// its row says now: the live host that claimed it, or none.
func (m *Manager) floatingOwner(ctx context.Context, r *runner) error {
	var row struct{ Owner, Advertise string }
	err := m.store.db.NewRaw(`SELECT coalesce(h.name, '') AS owner, coalesce(h.advertise, '') AS advertise
		FROM jobs j LEFT JOIN hosts h ON h.name = j.owner AND h.lease_until > now() WHERE j.name = ? AND j.id = ?`,
		r.name, r.id).Scan(ctx, &row)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		m.log.Warn("floating job's holder not read", "job", r.name, "err", err)
	}
	return &OwnerError{Job: r.name, Host: row.Owner, URL: row.Advertise}
}

// mirrorCause is the Error of a job another host owns, in this host's status.
func mirrorCause(host string) string {
	if host == "" {
		return "floating, on no live host now"
	}
	return "on host " + host
}

// checkMove refuses to change which host owns an active job: it would run
// on two at once. Stop it first.
func (r *runner) checkMove(j Job) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	active := r.sup != nil || (!r.localLocked() && r.remoteStatusLocked(Status{Host: r.ownerLocked()}).State.active())
	if !active || r.m.ownerOf(j, r.home, r.claimer) == r.ownerLocked() {
		return nil
	}
	return fmt.Errorf("job %q: %w (state %s): stop it before moving it to another host", r.name, ErrRunning, r.st.State)
}

// remoteStatusLocked is what this host knows of the status of a job another
// host owns (st's Host): as that host wrote it (mirror.go), unknown while it
// has written none or if its lease has ended. The caller holds r.mu.
func (r *runner) remoteStatusLocked(st Status) Status {
	switch {
	case st.Host != "" && !r.m.hostAlive(st.Host):
		return Status{Name: r.name, Host: st.Host, State: StateUnknown, Since: st.Since, LastRun: st.LastRun,
			Error: fmt.Sprintf("host %s is not alive: its lease has ended", st.Host)}
	case r.mirror != nil && (r.mirror.Host == st.Host || r.job.Host != HostAny):
		m := *r.mirror
		m.Host = st.Host
		return m
	}
	return Status{Name: r.name, Host: st.Host, State: StateUnknown, Since: st.Since, Error: mirrorCause(st.Host), LastRun: st.LastRun}
}
