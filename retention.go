package procman

import (
	"context"
	"errors"
	"os"
	"sync/atomic"

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
func (m *Manager) prune(r *runner, j Job, running *runlog.Live) {
	m.w.enqueueOp(op{retain: &retainReq{jobID: r.id, job: j, running: running, lastRunID: &r.lastRunID, parts: &r.parts}})
}

// retainReq is one job's retention pass, queued by prune.
type retainReq struct {
	jobID     string
	job       Job
	running   *runlog.Live
	lastRunID *atomic.Int64 // the runner's: no more runs than that were ever given
	parts     *partsSeen    // the runner's
}

// partsSeen tells whether a job's log folder may hold parts (of runs whose
// log was rotated), so that a retention pass need not read the folder at
// every run's end: most jobs' logs are never rotated. Each rotation counts;
// a listing that found no part records the count it began at, and the folder
// is read again only once a rotation has come since. Before the first
// listing nothing is known: parts may be left from an earlier ProcMan.
type partsSeen struct {
	rotations atomic.Int64
	noneAfter atomic.Int64 // 1 + the rotations when a listing found no part; 0: none did
}

// rotated counts a rotation once its part is in the folder (runlog calls
// onRotate after the part's rename): a listing that began before the count
// may have missed the part, and the next one reads the folder again.
func (p *partsSeen) rotated() { p.rotations.Add(1) }

// list lists the parts in dir, unless none can be there.
func (p *partsSeen) list(dir string) (map[string][]runlog.Part, error) {
	n := p.rotations.Load()
	if p.noneAfter.Load() == n+1 {
		return nil, nil
	}
	parts, err := runlog.ListParts(dir)
	if err == nil && len(parts) == 0 {
		p.noneAfter.Store(n + 1) // a rotation since the listing began counted past n
	}
	return parts, err
}

// retainAll applies the retention passes of one batch of the writer, in its
// transaction, once per job (the last pass queued for it covers the others).
// The runs of most jobs are within keep_runs, and then only their number
// matters: a job that was never given more run IDs than keep_runs has no run
// beyond it, and one query counts the runs of the others of the batch. A database
// fault is returned, and the writer retries; what it does to files may then
// happen twice, which is harmless: removing a file again does nothing, and
// the running run's parts are dropped up to a named one.
func (m *Manager) retainAll(ctx context.Context, db bun.IDB, reqs []retainReq) error {
	last := make(map[string]int, len(reqs))
	for i, q := range reqs {
		last[q.jobID] = i
	}
	var looks []retainLook
	var counted []string
	for i, q := range reqs {
		if last[q.jobID] != i {
			continue
		}
		lk, ok := m.lookAt(q)
		if !ok {
			continue
		}
		if lk.rowsOnly() && lk.given > int64(lk.set.keepRuns) {
			counted = append(counted, q.jobID)
		}
		looks = append(looks, lk)
	}
	n, err := finishedCounts(ctx, db, counted)
	if err != nil {
		return err
	}
	for _, lk := range looks {
		if lk.rowsOnly() && (lk.given <= int64(lk.set.keepRuns) || n[lk.jobID] <= lk.set.keepRuns) {
			continue // nothing beyond keep_runs, and no size to keep under
		}
		if err := m.retain(ctx, db, lk); err != nil {
			return err
		}
	}
	return nil
}

// retainLook is what retention found of a job's files.
type retainLook struct {
	retainReq
	set   settings
	parts map[string][]runlog.Part // finished runs' parts, by main file
	live  []runlog.Part            // the running run's
	given int64                    // run IDs given so far: the job has no more runs
}

// rowsOnly: without a size cap or parts, only the runs beyond keep_runs
// matter, and there are none most of the time.
func (lk retainLook) rowsOnly() bool {
	return lk.set.maxLogBytes == 0 && len(lk.parts) == 0 && len(lk.live) == 0
}

// lookAt lists the parts in the job's log folder, unless none can be there
// (partsSeen); ok is false if it cannot be read now (it is read again at the
// next run's end).
func (m *Manager) lookAt(q retainReq) (lk retainLook, ok bool) {
	lk = retainLook{retainReq: q, set: m.cfg.settings(q.job), given: q.lastRunID.Load()}
	parts, err := q.parts.list(m.jobLogDir(q.job.Name))
	if err != nil {
		m.log.Error("retention", "job", q.job.Name, "err", err)
		return lk, false
	}
	if q.running != nil {
		lk.live = q.running.Parts()
		delete(parts, q.running.Path())
	}
	lk.parts = parts
	return lk, true
}

// retain is one job's retention pass (see prune).
func (m *Manager) retain(ctx context.Context, db bun.IDB, lk retainLook) error {
	set, name := lk.set, lk.job.Name
	// Rows only: read those beyond keep_runs, not the whole history.
	skip := 0
	if lk.rowsOnly() {
		skip = set.keepRuns
	}
	rows, err := finishedRuns(ctx, db, lk.jobID, skip)
	if err != nil {
		return err
	}
	plan := planRetention(set, skip, rows, lk.parts, lk.live, func(path string) int64 {
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
			m.log.Warn("retention: log not removed", "job", name, "file", f, "err", err)
		}
	}
	if plan.dropLive > 0 {
		lk.running.DropThrough(lk.live[plan.dropLive-1].Path)
	}
	return pruneRuns(ctx, db, lk.jobID, plan.del, plan.pruned)
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
