package procman

import (
	"context"
	"errors"
	"os"

	"github.com/uptrace/bun"
)

// prune applies log retention to a job (jobID, the runner's id) after one of
// its runs ended: beyond the newest keep_runs finished runs, rows and log
// files go; within them, the oldest logs go while their total exceeds
// max_log_bytes (those rows stay, marked pruned). A running run is never
// finished, so its file is never touched. It is queued to the database
// writer, after the run's own record: a supervisor never waits for it.
func (m *Manager) prune(jobID string, j Job) {
	m.w.enqueue(func(ctx context.Context, db bun.IDB) error { return m.retain(ctx, db, jobID, j) })
}

// retain is prune's work, in the writer's transaction. A database fault is
// returned, and the writer retries; removing a log file twice is harmless.
func (m *Manager) retain(ctx context.Context, db bun.IDB, jobID string, j Job) error {
	set := m.cfg.settings(j)
	// Without a size cap only the runs beyond keep_runs matter, and there are
	// none most of the time: read those, not the whole history at every run end.
	skip := 0
	if set.maxLogBytes == 0 {
		skip = set.keepRuns
	}
	rows, err := finishedRuns(ctx, db, jobID, skip)
	if err != nil {
		return err
	}
	var del, pruned []int64
	var total int64
	for k, row := range rows {
		i := skip + k
		switch {
		case i >= set.keepRuns:
			del = append(del, row.ID)
		case row.Pruned || row.LogFile == "":
			continue
		default:
			total += row.LogBytes
			if set.maxLogBytes == 0 || total <= set.maxLogBytes || i == 0 {
				continue
			}
			pruned = append(pruned, row.ID)
		}
		if !row.Pruned && row.LogFile != "" {
			if err := os.Remove(row.LogFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				m.log.Warn("retention: log not removed", "job", j.Name, "file", row.LogFile, "err", err)
			}
		}
	}
	return pruneRuns(ctx, db, del, pruned)
}
