package procman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
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

// Logs returns a run's output. ErrNotFound if the job has no such run, or its
// log was removed by retention; ErrInvalid for a bad Tail.
func (m *Manager) Logs(ctx context.Context, name string, opts LogOptions) (io.ReadCloser, error) {
	r, err := m.runner(name)
	if err != nil {
		return nil, err
	}
	if opts.Tail < 0 || opts.Tail > MaxTail {
		return nil, fmt.Errorf("%w: tail must be 1 to %d lines", ErrInvalid, MaxTail)
	}
	run, err := m.logRun(ctx, r, opts.Run)
	if err != nil {
		return nil, err
	}
	switch {
	case run.Pruned:
		return nil, fmt.Errorf("log of run %d of %q was removed by retention: %w", run.ID, name, ErrNotFound)
	case run.LogFile == "":
		return nil, fmt.Errorf("run %d of %q has no log (%s: %s): %w", run.ID, name, run.Outcome, run.Error, ErrNotFound)
	}
	f, err := os.Open(run.LogFile)
	if errors.Is(err, os.ErrNotExist) { // retention removed it since the row was read
		return nil, fmt.Errorf("log of run %d of %q was removed: %w", run.ID, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("log of run %d of %q: %w", run.ID, name, err)
	}
	if opts.Tail > 0 {
		if err := seekTail(f, opts.Tail); err != nil {
			f.Close()
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
		return f, nil
	}
	return &follower{ctx: ctx, f: f, ended: ended}, nil
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

// seekTail positions f at the start of its last n lines.
func seekTail(f *os.File, n int) error {
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	// A final newline ends the last line; it does not start another.
	if end > 0 {
		if _, err := f.ReadAt(buf[:1], end-1); err != nil {
			return err
		}
		if buf[0] == '\n' {
			end--
		}
	}
	for pos := end; pos > 0; {
		size := min(int64(len(buf)), pos)
		pos -= size
		if _, err := f.ReadAt(buf[:size], pos); err != nil {
			return err
		}
		for i := size - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				if n--; n == 0 {
					_, err := f.Seek(pos+i+1, io.SeekStart)
					return err
				}
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// follower reads a run's log as it grows. At end of file it waits for more,
// for the run's end (then drains what is left) or for ctx.
type follower struct {
	ctx   context.Context
	f     *os.File
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
