package procman

import (
	"context"

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
	r.m.w.enqueue(func(ctx context.Context, db bun.IDB) error { return setWanted(ctx, db, name, id, wanted) })
}

// startAtOpen starts the jobs with the reboot schedule, and, unless
// Config.NoResume, the continuous jobs that were wanted running.
func (m *Manager) startAtOpen(ctx context.Context) {
	for _, r := range m.runners() {
		r.mu.Lock()
		j, wanted := r.job, r.wanted
		r.mu.Unlock()
		var trigger Trigger
		switch {
		case j.startsOnBoot():
			trigger = TriggerReboot
		case wanted && j.Type == Continuous && !m.cfg.NoResume:
			trigger = TriggerResume
		default:
			continue
		}
		if err := m.start(ctx, j.Name, trigger); err != nil {
			m.log.Error("start at open failed", "job", j.Name, "trigger", trigger, "err", err)
		}
	}
}
