package procman

import (
	"context"
	"fmt"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
)

// Usage is what a running job costs now: every process of its run's process
// group, read from /proc when asked (Usage, Usages). Nothing is measured
// between requests.
type Usage struct {
	Job string `json:"job"`
	// Run is the ID of the running run; PID its shell's, the id of its group.
	Run int64 `json:"run"`
	PID int   `json:"pid"`
	// StartedAt is when the run began, AgeSeconds how long before the reading.
	// Between two readings of the same run, the growth of the CPU seconds
	// over that of the age is the share of a CPU the run used meanwhile.
	StartedAt  time.Time `json:"started_at"`
	AgeSeconds float64   `json:"age_seconds"`
	// Processes counts the live processes of the group.
	Processes int `json:"processes"`
	// CPUUserSeconds and CPUSystemSeconds are the CPU time of the run so
	// far: of its processes, with what each has reaped, and of those of its
	// processes that have ended and were reaped by the Manager (its shell,
	// and with Config.Subreaper the group's orphans). They only grow.
	CPUUserSeconds   float64 `json:"cpu_user_seconds"`
	CPUSystemSeconds float64 `json:"cpu_system_seconds"`
	// RSSBytes is the resident memory of its live processes, pages they
	// share counted once for each. PSSBytes, when asked for and the kernel
	// gives it, is their proportional set size: each page shared by n
	// processes counts 1/n, so the PSS of jobs adds up to what they use.
	RSSBytes int64  `json:"rss_bytes"`
	PSSBytes *int64 `json:"pss_bytes,omitempty"`
}

// UsageOptions says what Usages reads.
type UsageOptions struct {
	// PSS reads each job's PSSBytes too. It costs far more than the rest
	// (the kernel walks every memory mapping of every process: some 100 µs
	// a small process, against some 10 µs for the rest of its figures).
	PSS bool
	// Selector chooses the jobs; the zero Selector, every job.
	Selector Selector
}

// Usage returns what the job's running run costs now, its PSS included;
// ErrNotRunning if it has none.
func (m *Manager) Usage(ctx context.Context, name string) (Usage, error) {
	r, err := m.runner(name)
	if err != nil {
		return Usage{}, err
	}
	if err := m.elsewhere(ctx, r); err != nil {
		return Usage{}, err
	}
	c, ok := r.current()
	if !ok {
		return Usage{}, fmt.Errorf("usage of %q: %w", name, ErrNotRunning)
	}
	us, err := m.measure(ctx, []running{c}, true)
	if err != nil {
		return Usage{}, fmt.Errorf("usage of %q: %w", name, err)
	}
	return us[0], nil
}

// Usages returns what every running job costs now, sorted by name, from
// one pass over /proc for them all (which requests made at the same time
// share). Jobs with no running run are left out.
func (m *Manager) Usages(ctx context.Context, opts UsageOptions) ([]Usage, error) {
	rs := m.runners()
	if !opts.Selector.IsZero() {
		rs = m.selected(opts.Selector)
	}
	var cs []running
	for _, r := range rs {
		if c, ok := r.current(); ok {
			cs = append(cs, c)
		}
	}
	return m.measure(ctx, cs, opts.PSS)
}

// running is a job's running run, as a reading of its usage sees it.
type running struct {
	job     string
	p       *proc
	run     int64
	started time.Time
}

// current is the job's running run, if it has one.
func (r *runner) current() (running, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil {
		return running{}, false
	}
	return running{job: r.name, p: r.cur, run: r.cur.row.ID, started: r.cur.row.StartedAt}, true
}

// measure reads what each running run costs, from one sample of /proc;
// with no run, it reads nothing.
func (m *Manager) measure(ctx context.Context, cs []running, pss bool) ([]Usage, error) {
	out := make([]Usage, len(cs))
	if len(cs) == 0 {
		return out, nil
	}
	// What has ended of each run is read before the sample: a process the
	// Manager reaps meanwhile is then missed for this once, never counted twice.
	ended := make([]osproc.Usage, len(cs))
	for i, c := range cs {
		ended[i] = c.p.leader.Usage().Add(c.p.leader.Orphans())
	}
	s, err := m.sampler.Sample(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	for i, c := range cs {
		g := s.Group(c.p.pgid)
		out[i] = Usage{Job: c.job, Run: c.run, PID: c.p.pgid, StartedAt: c.started,
			AgeSeconds: now.Sub(c.p.started).Seconds(), Processes: g.Procs,
			CPUUserSeconds: (g.User + ended[i].User).Seconds(), CPUSystemSeconds: (g.System + ended[i].System).Seconds(),
			RSSBytes: g.RSS}
		if pss {
			if v, ok := s.PSS(c.p.pgid); ok {
				out[i].PSSBytes = &v
			}
		}
	}
	return out, nil
}
