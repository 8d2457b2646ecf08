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
	// Follow keeps reading as the run writes, until the run ends and its output
	// is drained, or ctx ends.
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
	if opts.Tail < 0 || opts.Tail > MaxTail {
		return nil, fmt.Errorf("%w: tail must be 1 to %d lines", ErrInvalid, MaxTail)
	}
	run, err := m.logRun(ctx, name, opts.Run)
	if err != nil {
		return nil, err
	}
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
	if opts.Tail > 0 {
		if err := rd.Tail(opts.Tail); err != nil {
			rd.Close()
			return nil, fmt.Errorf("log of run %d of %q: %w", run.ID, name, err)
		}
	}
	var ended <-chan struct{}
	if opts.Follow {
		r.mu.Lock()
		if r.cur != nil && r.cur.row.ID == run.ID {
			ended = r.cur.ended
		}
		r.mu.Unlock()
	}
	if ended == nil { // not following, or the run is over: the file is complete
		return rd, nil
	}
	return &follower{ctx: ctx, f: rd, ended: ended}, nil
}

func (m *Manager) logRun(ctx context.Context, name string, id int64) (Run, error) {
	if id != 0 {
		return m.store.run(ctx, name, id)
	}
	runs, err := m.store.runs(ctx, name, 1)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, fmt.Errorf("job %q has not run yet, so it has no log: %w", name, ErrNotFound)
	}
	return runs[0], nil
}

// follower reads a run's log as it grows. At end of file it waits for more,
// for the run's end (then drains what is left) or for ctx.
type follower struct {
	ctx   context.Context
	f     *runlog.Reader
	ended <-chan struct{}
	timer *time.Timer
}

func (fl *follower) Read(p []byte) (int, error) {
	for {
		n, err := fl.f.Read(p)
		if n > 0 || err != io.EOF {
			return n, err
		}
		if fl.ended == nil { // the run is over and the file drained
			return 0, io.EOF
		}
		if fl.timer == nil {
			fl.timer = time.NewTimer(followWait)
		} else {
			fl.timer.Reset(followWait)
		}
		select {
		case <-fl.ended:
			fl.ended = nil // one more read drains what the run wrote last
		case <-fl.timer.C:
		case <-fl.ctx.Done():
			return 0, fl.ctx.Err()
		}
	}
}

func (fl *follower) Close() error {
	if fl.timer != nil {
		fl.timer.Stop()
	}
	return fl.f.Close()
}
