package procman

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"runtime/debug"
	"time"
	"unicode"
)

// A ProcMan is a host: on PostgreSQL, a row of the hosts table that it holds
// by a lease (lease.go), so that ProcMans sharing a database know each other
// and two never run under one name. On SQLite there is one host, this one.

// Host is a ProcMan of the fleet sharing this database, alive or not.
type Host struct {
	Name string `json:"name"`
	// Epoch counts the ProcMans that have held the name: each one that joins
	// the fleet under it gets the next. It is the fencing token of a host's
	// writes. 0 on SQLite, which has no fleet.
	Epoch int64 `json:"epoch"`
	// Alive: its lease has not ended, on the database's clock.
	Alive     bool      `json:"alive"`
	Advertise string    `json:"advertise,omitempty"`
	Version   string    `json:"version"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// HeartbeatAt is its last renewal of the lease, LeaseUntil when that ends.
	HeartbeatAt time.Time `json:"heartbeat_at"`
	LeaseUntil  time.Time `json:"lease_until"`
	// ActiveJobs is how many of its jobs were active at its last heartbeat
	// (on SQLite, and for this host: now).
	ActiveJobs int `json:"active_jobs"`
	// This marks the host that answered.
	This bool `json:"this,omitempty"`
}

// Hosts lists every host that has joined the fleet on this database, alive or
// not, by name. On SQLite it is this host alone.
func (m *Manager) Hosts(ctx context.Context) ([]Host, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	if l, ok := m.lock.(*hostLease); ok {
		hosts, err := l.hosts(ctx)
		if err != nil {
			return nil, err
		}
		for i := range hosts {
			if hosts[i].Name == m.cfg.Host {
				hosts[i].This = true
				if hosts[i].Epoch == l.epochNow() {
					hosts[i].ActiveJobs = m.activeJobs()
				}
			}
		}
		return hosts, nil
	}
	now := time.Now().UTC()
	return []Host{{Name: m.cfg.Host, Alive: true, Advertise: m.cfg.Advertise, Version: version(), PID: os.Getpid(),
		StartedAt: m.started.UTC(), HeartbeatAt: now, LeaseUntil: now, ActiveJobs: m.activeJobs(), This: true}}, nil
}

// Epoch returns this host's epoch in the fleet, and a channel closed once
// that epoch is fenced: its lease was found lapsed (a heartbeat came too late,
// or the process was frozen past it) or the name taken by another ProcMan.
// Whatever this host does under an epoch must stop once it is fenced; the
// Manager then joins again, under a new epoch, as soon as the name is free.
// On SQLite: 0 and nil (never fenced).
func (m *Manager) Epoch() (int64, <-chan struct{}) {
	if l, ok := m.lock.(*hostLease); ok {
		return l.current()
	}
	return 0, nil
}

// activeJobs counts the jobs with a supervisor: starting, running, retrying or stopping.
func (m *Manager) activeJobs() int {
	n := 0
	for _, r := range m.runners() {
		if r.active() {
			n++
		}
	}
	return n
}

// checkHost refuses a host name or an advertised URL the others could not use.
func (c Config) checkHost() error {
	if why := hostNameProblem(c.Host); why != "" {
		return fmt.Errorf("config: Host %q %s: %w", c.Host, why, ErrInvalid)
	}
	if c.Lease < time.Second || c.Lease > time.Hour || c.Grace < 0 || c.Grace > time.Hour {
		return fmt.Errorf("config: Lease must be 1s up to 1h, Grace up to 1h; got %s and %s: %w", c.Lease, c.Grace, ErrInvalid)
	}
	if c.Advertise == "" {
		return nil
	}
	u, err := url.Parse(c.Advertise)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("config: Advertise %q is not an http:// or https:// URL with a host: %w", c.Advertise, ErrInvalid)
	}
	return nil
}

// hostNameProblem says what is wrong with a host's name, "" if nothing is.
func hostNameProblem(name string) string {
	if len(name) > 255 {
		return "is longer than 255 bytes"
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return "holds a space or an unprintable character"
		}
	}
	return ""
}

// modulePath is ProcMan's module, whose version a host reports.
const modulePath = "github.com/Mk-Chan/procman"

// version is this build's version of ProcMan: its module's, as the program
// embedding it was built with; "(devel)" in a build from a checkout.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if bi.Main.Path == modulePath {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == modulePath {
			return d.Version
		}
	}
	return "unknown"
}
