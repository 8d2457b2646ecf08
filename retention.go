package procman

import (
	"context"
	"errors"
	"os"
)

// prune applies log retention to a job after one of its runs ended, failed
// to start or was skipped: beyond the newest keep_runs finished runs (of any
// outcome), rows and log files go; within them, the oldest logs go while
// their total exceeds max_log_bytes (those rows stay, marked pruned). A
// running run is never finished, so its file is never touched.
func (m *Manager) prune(j Job) {
	set := m.cfg.settings(j)
	ctx := context.Background()
	// Without a size cap only the runs beyond keep_runs matter, and there are
	// none most of the time: read those, not the whole history at every run end.
	skip := 0
	if set.maxLogBytes == 0 {
		skip = set.keepRuns
	}
	rows, err := m.store.finishedRuns(ctx, j.Name, skip)
	if err != nil {
		m.log.Error("retention", "job", j.Name, "err", err)
		return
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
	if err := m.store.pruneRuns(ctx, del, pruned); err != nil {
		m.log.Error("retention", "job", j.Name, "err", err)
	}
}
