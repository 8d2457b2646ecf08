package procman

import (
	"context"
	"errors"
	"slices"

	"github.com/uptrace/bun"
)

// The desired state, as pm2's resurrect and systemd's enabled units keep it:
// a continuous job that was started, and not stopped by a user since, is
// wanted running, and Open starts it again, whether the last Manager shut
// down or died. A stop by hand, a delete, or giving up (StateError) clears
// it; Shutdown's own stops do not. one_time jobs are never wanted: a run that
// has done its work must not be done again because ProcMan restarted.

// noteStateLocked keeps the desired state in step with a transition. The
// caller holds r.mu, so one job's desired states are queued in order.
func (r *runner) noteStateLocked(from, to State) {
	switch {
	case to == StateStarting && !from.active(): // a start, whatever its trigger
		if r.job.Type == Continuous {
			r.wantLocked(true)
		}
	case to == StateError && r.m.ctx.Err() == nil: // gave up, or its group survived SIGKILL
		r.wantLocked(false)
	}
}

// wantLocked records whether the job is wanted running; only a change is
// written. The caller holds r.mu.
func (r *runner) wantLocked(wanted bool) {
	if r.wanted == wanted {
		return
	}
	r.wanted = wanted
	name, id := r.name, r.id
	r.m.w.enqueueFenced(r.fenceLocked(), func(ctx context.Context, db bun.IDB) error { return setWanted(ctx, db, name, id, wanted) })
}

// startAtOpen starts the jobs with the reboot schedule, and, unless
// Config.NoResume, the continuous jobs that were wanted running:
// dependencies before the jobs that depend on them, so that each is started
// for its own reason rather than as a dependency. It waits for the first
// run of each job without dependencies, as a start does (each is quick: a
// preparation that a file holds up is walked away from); a job with
// dependencies waits for them on its own, while the others start.
func (m *Manager) startAtOpen(ctx context.Context) {
	type start struct {
		name    string
		trigger Trigger
	}
	var todo []start
	for _, r := range m.runners() {
		r.mu.Lock()
		j, wanted, local := r.job, r.wanted, r.localLocked()
		r.mu.Unlock()
		switch {
		case !local: // its owner starts it
		case j.startsOnBoot():
			todo = append(todo, start{j.Name, TriggerReboot})
		case wanted && j.Type == Continuous && !m.cfg.NoResume:
			todo = append(todo, start{j.Name, TriggerResume})
		}
	}
	m.mu.RLock()
	memo, open := map[string]int{}, map[string]bool{}
	for _, st := range todo {
		depth(m.graph.on, st.name, memo, open)
	}
	m.mu.RUnlock()
	slices.SortStableFunc(todo, func(a, b start) int { return memo[a.name] - memo[b.name] })
	for _, st := range todo {
		s, err := m.begin(ctx, st.name, st.trigger)
		if errors.Is(err, ErrRunning) { // started already, as a dependency of another
			continue
		}
		if err == nil && !s.waits {
			err = s.firstRun(ctx, st.name)
		}
		if err != nil {
			m.log.Error("start at open failed", "job", st.name, "trigger", st.trigger, "err", err)
		}
	}
}
