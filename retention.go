package procman

import (
	"context"
	"errors"
	"os"

	"github.com/Mk-Chan/procman/internal/runlog"
	"github.com/uptrace/bun"
)

// prune applies log retention to a job (jobID, the runner's id) after one of
// its runs ended, failed to start or was skipped, and whenever a part is
// rotated out of its running run's log (running, else nil). It is queued to
// the database writer, after the run's own record: a supervisor never waits
// for it.
//
// Rows: beyond the newest keep_runs finished runs (of any outcome), rows go
// with all their files. Files, newest first (the running run's rotated parts,
// then each finished run's last file and its parts): each counts toward
// keep_runs and their sizes toward max_log_bytes, and those beyond either
// limit are removed; so the oldest go first. The running run's live file
// counts toward neither and is never touched (max_run_log_bytes bounds it),
// and the newest finished run's last file is always kept. A run whose files
// are all gone stays, marked pruned.
func (m *Manager) prune(jobID string, j Job, running *runlog.Live) {
	m.w.enqueue(func(ctx context.Context, db bun.IDB) error { return m.retain(ctx, db, jobID, j, running) })
}

// retain is prune's work, in the writer's transaction. A database fault is
// returned, and the writer retries; what it does to files may then happen
// twice, which is harmless: removing a file again does nothing, and the
// running run's parts are dropped up to a named one.
func (m *Manager) retain(ctx context.Context, db bun.IDB, jobID string, j Job, running *runlog.Live) error {
	set := m.cfg.settings(j)
	parts, err := runlog.ListParts(m.jobLogDir(j.Name))
	if err != nil {
		m.log.Error("retention", "job", j.Name, "err", err)
		return nil // a folder that cannot be read now is read at the next run's end
	}
	var live []runlog.Part
	if running != nil {
		live = running.Parts()
		delete(parts, running.Path())
	}
	// Without a size cap or parts, only the runs beyond keep_runs matter, and
	// there are none most of the time: read those, not the whole history at
	// every run end.
	skip := 0
	if set.maxLogBytes == 0 && len(parts) == 0 && len(live) == 0 {
		skip = set.keepRuns
	}
	rows, err := finishedRuns(ctx, db, jobID, skip)
	if err != nil {
		return err
	}
	plan := planRetention(set, skip, rows, parts, live, func(path string) int64 {
		if set.maxLogBytes == 0 {
			return 0 // only counted
		}
		fi, err := os.Stat(path)
		if err != nil {
			return 0
		}
		return fi.Size()
	})
	for _, f := range plan.remove {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Warn("retention: log not removed", "job", j.Name, "file", f, "err", err)
		}
	}
	if plan.dropLive > 0 {
		running.DropThrough(live[plan.dropLive-1].Path)
	}
	return pruneRuns(ctx, db, jobID, plan.del, plan.pruned)
}

// retentionPlan is what prune removes.
type retentionPlan struct {
	del, pruned []int64  // rows to delete, and rows whose files are all gone
	remove      []string // files of finished runs
	dropLive    int      // how many of the running run's oldest parts go
}

// planRetention decides what prune removes (see prune): rows are the finished
// runs beyond the newest skip, newest first; parts their parts by main file;
// live the running run's parts, oldest first; size gives a main file's size.
func planRetention(set settings, skip int, rows []runRow, parts map[string][]runlog.Part, live []runlog.Part,
	size func(path string) int64) retentionPlan {
	var p retentionPlan
	files, total := 0, int64(0)
	// beyond counts one more file, newest first, and reports whether it is
	// beyond what is kept; once one is, every older one is too.
	beyond := func(n int64) bool {
		files++
		total += n
		return files > set.keepRuns || (set.maxLogBytes > 0 && total > set.maxLogBytes)
	}
	for i := len(live) - 1; i >= 0 && p.dropLive == 0; i-- {
		if beyond(live[i].Size) {
			p.dropLive = i + 1
		}
	}
	for k, row := range rows {
		ps := parts[row.LogFile]
		if skip+k >= set.keepRuns {
			p.del = append(p.del, row.ID)
			if !row.Pruned && row.LogFile != "" {
				p.remove = append(p.remove, row.LogFile)
			}
			for _, pt := range ps {
				p.remove = append(p.remove, pt.Path)
			}
			continue
		}
		if row.Pruned || row.LogFile == "" {
			continue
		}
		kept := false
		if beyond(size(row.LogFile)) && skip+k > 0 {
			p.remove = append(p.remove, row.LogFile)
		} else {
			kept = true
		}
		for i := len(ps) - 1; i >= 0; i-- {
			if beyond(ps[i].Size) {
				p.remove = append(p.remove, ps[i].Path)
			} else {
				kept = true
			}
		}
		if !kept {
			p.pruned = append(p.pruned, row.ID)
		}
	}
	return p
}
