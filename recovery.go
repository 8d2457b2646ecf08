package procman

import (
	"context"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/runlog"
)

// unknownCause is the error of a run whose ProcMan died while it went on.
const unknownCause = "ProcMan ended without shutting down while this run went on"

// recover closes the runs an earlier ProcMan left open (it died: SIGKILL,
// power loss) with outcome unknown, after killing whatever is left of them.
// It returns the jobs (by ID) whose last run was lost that way. It runs at
// Open, before any job does, so it writes directly.
func (m *Manager) recover(ctx context.Context) (map[string]bool, error) {
	rows, err := m.store.openRuns(ctx, m.cfg.Host)
	if err != nil {
		return nil, err
	}
	lost := make(map[string]bool)
	for _, row := range rows {
		if killed := reap(row); len(killed) > 0 {
			m.log.Warn("reaped processes of a run left by an earlier ProcMan",
				"job", row.Job, "run", row.ID, "pgid", row.PGID, "pids", killed)
		}
		now := dbNow()
		row.EndedAt, row.Outcome, row.Error = &now, string(OutcomeUnknown), unknownCause
		if row.LogFile != "" {
			row.LogBytes = runlog.Recover(row.LogFile) // and a rotation it cut short
		}
		if err := endRuns(ctx, m.store.db, []runRow{row}); err != nil {
			return nil, err
		}
		m.metrics.runFinished(OutcomeUnknown)
		lost[row.JobID] = true
	}
	return lost, nil
}

// reap kills what is left of a run's process group, sparing any process that
// is not provably the run's: its shell by pid and recorded start time, its
// descendants by the run's PROCMAN_INVOCATION in their environment.
func reap(row runRow) []int {
	l := osproc.Leftover{PGID: row.PGID, Leader: row.PID, LeaderStart: row.ProcStart}
	if row.Invocation != "" {
		l.Marker = invocationVar + row.Invocation
	}
	return osproc.KillLeftovers(l)
}
