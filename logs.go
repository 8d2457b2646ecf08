package procman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/Mk-Chan/procman/internal/runlog"
)

// MaxTail caps LogOptions.Tail.
const MaxTail = 100_000

// followWait is how long a follower waits at the end of a growing file before
// reading again. The run's end wakes it at once, so this only paces output.
const followWait = 100 * time.Millisecond

// LogOptions selects what Logs reads.
type LogOptions struct {
	// Run is the run's ID; 0 means the job's latest run.
	Run int64
	// Tail, when positive, starts at the last Tail lines (at most MaxTail).
	Tail int
	// Follow keeps reading as the run writes. Following the job's latest run
	// (Run 0) goes on into the job's next runs, as a continuous job restarts,
	// with a marker line between runs (see RunMarker), until the job comes to
	// rest (stopped, exited, error) and its output is drained, or ctx ends.
	// Following a given run ends with that run.
	Follow bool
}

// Logs returns a run's output: its rotated parts (see Job.MaxRunLogBytes),
// then its last file, in order. ErrNotFound if the job has no such run, or its
// log was removed by retention; ErrInvalid for a bad Tail.
func (m *Manager) Logs(ctx context.Context, name string, opts LogOptions) (io.ReadCloser, error) {
	r, err := m.runner(name)
	if err != nil {
		return nil, err
	}
	if err := m.elsewhere(ctx, r); err != nil { // logs stay on the host that wrote them
		return nil, err
	}
	if opts.Tail < 0 || opts.Tail > MaxTail {
		return nil, fmt.Errorf("%w: tail must be 1 to %d lines", ErrInvalid, MaxTail)
	}
	fl := &follower{ctx: ctx, m: m, r: r, tail: opts.Tail}
	if opts.Follow && opts.Run == 0 {
		// The newest run of the job's activation, if it has begun one: no need
		// to ask the database, which may not have recorded it yet.
		r.mu.Lock()
		if s := r.sup; s != nil {
			fl.sup, fl.cur = s, s.latest
		}
		r.mu.Unlock()
		if fl.cur != nil && fl.cur.ended != nil { // a run, not the activation's start
			if err := fl.open(fl.cur.begun(), fl.cur); err != nil {
				return nil, err
			}
			return fl, nil
		}
	}
	run, err := m.logRun(ctx, r, opts.Run)
	if errors.Is(err, ErrNotFound) && fl.sup != nil {
		return fl, nil // no run yet: the follower waits for the first
	}
	if err != nil {
		return nil, err
	}
	var p *proc // the run while it goes on, to follow it
	if opts.Follow {
		r.mu.Lock()
		if r.cur != nil && r.cur.row.ID == run.ID {
			p = r.cur
		}
		r.mu.Unlock()
	}
	if err := fl.open(run, p); err != nil {
		return nil, err
	}
	if !opts.Follow || (p == nil && fl.sup == nil) {
		return fl.rd, nil // a finished run, not followed further: its files are complete
	}
	return fl, nil
}

// logRun finds the run whose log Logs reads, once the runs recorded before
// the call are in the database.
func (m *Manager) logRun(ctx context.Context, r *runner, id int64) (Run, error) {
	if err := m.w.sync(ctx); err != nil {
		return Run{}, fmt.Errorf("log of %q: %w", r.name, err)
	}
	if id != 0 {
		return m.store.run(ctx, r.id, r.name, id)
	}
	runs, err := m.store.runs(ctx, r.id, r.name, 1)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("job %q has not run yet, so it has no log: %w", r.name, ErrNotFound)
	}
	return runs[0], nil
}

// openLog opens a run's output for reading: through its Live while it is
// watched (so that rotations are seen), else from its files.
func (m *Manager) openRunLog(name string, run Run) (*runlog.Reader, error) {
	switch {
	case run.Pruned:
		return nil, fmt.Errorf("log of run %d of %q was removed by retention: %w", run.ID, name, ErrNotFound)
	case run.LogFile == "":
		return nil, fmt.Errorf("run %d of %q has no log (%s: %s): %w", run.ID, name, run.Outcome, run.Error, ErrNotFound)
	}
	rd, err := runlog.Open(run.LogFile, m.rot.Lookup(run.LogFile))
	if errors.Is(err, os.ErrNotExist) { // retention removed it since the row was read
		return nil, fmt.Errorf("log of run %d of %q was removed: %w", run.ID, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("log of run %d of %q: %w", run.ID, name, err)
	}
	return rd, nil
}

// RunMarker is the line a follower of a job writes between two runs: how the
// last one ended and how the next began, for example
//
//	--- procman: run 12 exited, exit code 1; run 13 started (retry) ---
func RunMarker(prev *Run, next Run) string {
	s := "--- procman: "
	if prev != nil && prev.ID != 0 {
		s += fmt.Sprintf("run %d %s; ", prev.ID, runEnd(*prev))
	}
	return s + fmt.Sprintf("run %d started (%s) ---\n", next.ID, next.Trigger)
}

func runEnd(r Run) string {
	switch {
	case r.ExitCode != nil:
		return fmt.Sprintf("%s, exit code %d", r.Outcome, *r.ExitCode)
	case r.Signal != "":
		return fmt.Sprintf("%s, signal %s", r.Outcome, r.Signal)
	case r.Outcome != "":
		return string(r.Outcome)
	}
	return "ended"
}

// follower reads a job's output as it grows: its run's until the run ends
// (then it drains what is left), then, when it follows the job (sup), the
// next runs of the job's activation, until the job comes to rest or ctx ends.
type follower struct {
	ctx  context.Context
	m    *Manager
	r    *runner
	tail int // for the first run opened

	rd *runlog.Reader // the run being read; nil before the first
	// prev is the run being read, for the marker before the next; cur is its
	// proc (a run read from the database has none: cur is then where the
	// activation stood, whose next run follows it).
	prev    *Run
	cur     *proc
	ended   <-chan struct{} // cur's end, until seen
	sup     *supervisor     // the activation followed; nil: this run only
	pending []byte          // a marker to write
	last    byte            // the last byte written
	timer   *time.Timer
}

// begun is the run as it began: the fields set before it is linked into
// its activation, which a follower may read while the run goes on and ends.
func (p *proc) begun() Run {
	return Run{ID: p.row.ID, Job: p.row.Job, Trigger: Trigger(p.row.Trigger), LogFile: p.row.LogFile}
}

// open starts reading run (p while it goes on, else nil).
func (fl *follower) open(run Run, p *proc) error {
	rd, err := fl.m.openRunLog(fl.r.name, run)
	if err != nil {
		return err
	}
	if fl.tail > 0 {
		if err := rd.Tail(fl.tail); err != nil {
			rd.Close()
			return fmt.Errorf("log of run %d of %q: %w", run.ID, fl.r.name, err)
		}
		fl.tail = 0
	}
	fl.closeRun()
	fl.rd, fl.prev = rd, &run
	if p != nil {
		fl.cur, fl.ended = p, p.ended
	}
	return nil
}

func (fl *follower) closeRun() {
	if fl.rd != nil {
		fl.rd.Close()
		fl.rd = nil
	}
}

func (fl *follower) Read(p []byte) (int, error) {
	for {
		if len(fl.pending) > 0 {
			n := copy(p, fl.pending)
			fl.pending = fl.pending[n:]
			return n, nil
		}
		if fl.rd != nil {
			n, err := fl.rd.Read(p)
			if n > 0 {
				fl.last = p[n-1]
				return n, nil
			}
			if err != io.EOF {
				return 0, err
			}
			if fl.ended != nil { // the run goes on
				if err := fl.wait(); err != nil {
					return 0, err
				}
				continue
			}
		}
		if fl.sup == nil {
			return 0, io.EOF
		}
		next, err := fl.next()
		if err != nil {
			return 0, err
		}
		if next == nil { // the job came to rest
			return 0, io.EOF
		}
		if err := fl.openNext(next); err != nil {
			return 0, err
		}
	}
}

// wait waits at the end of the run's output for more, for its end (after
// which one more read drains it) or for ctx.
func (fl *follower) wait() error {
	if fl.timer == nil {
		fl.timer = time.NewTimer(followWait)
	} else {
		fl.timer.Reset(followWait)
	}
	select {
	case <-fl.ended:
		fl.ended = nil
	case <-fl.timer.C:
	case <-fl.ctx.Done():
		return fl.ctx.Err()
	}
	return nil
}

// next waits for the activation's run after cur: nil once the job has come
// to rest without another.
func (fl *follower) next() (*proc, error) {
	r := fl.r
	for {
		r.mu.Lock()
		next, changed := fl.cur.next, r.changed
		r.mu.Unlock()
		if next != nil {
			return next, nil
		}
		select {
		case <-fl.sup.done:
			r.mu.Lock()
			next = fl.cur.next // begun just before the job came to rest
			r.mu.Unlock()
			return next, nil
		case <-changed:
		case <-fl.ctx.Done():
			return nil, fl.ctx.Err()
		}
	}
}

// openNext moves on to run p, after a marker line.
func (fl *follower) openNext(p *proc) error {
	prev := fl.prev
	if fl.cur != nil && fl.cur.ended != nil { // a run that has ended: its end is recorded
		end := fl.cur.row.run()
		prev = &end
	}
	run := p.begun()
	if prev != nil && prev.ID == run.ID && fl.rd != nil {
		// The run read from the database is this one, linked just after:
		// go on reading it.
		fl.cur, fl.ended = p, p.ended
		return nil
	}
	marker := RunMarker(prev, run)
	if fl.last != 0 && fl.last != '\n' {
		marker = "\n" + marker
	}
	fl.pending = []byte(marker)
	if err := fl.open(run, p); err != nil {
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		// Its log is gone already (retention): on to the next.
		fl.closeRun()
		fl.cur, fl.ended, fl.prev = p, nil, &run
	}
	return nil
}

func (fl *follower) Close() error {
	if fl.timer != nil {
		fl.timer.Stop()
	}
	fl.closeRun()
	return nil
}
