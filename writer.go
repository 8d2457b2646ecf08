package procman

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/uptrace/bun"
)

// The writer's bounds.
const (
	// maxBatch is how many queued writes go into one transaction: a burst of
	// starts costs one commit, not one each.
	maxBatch = 256
	// drainLimit is how long Shutdown waits for the writes still queued once
	// every job has stopped. A healthy database takes milliseconds.
	drainLimit = 5 * time.Second
	// failLogEvery spaces the logs of a database that keeps failing.
	failLogEvery = 30 * time.Second
)

// writer applies the Manager's run records, retention, desired states and
// health probes to the database, in the order they were queued, on one
// goroutine. Supervisors only queue: a slow, locked or failing database never
// delays a start, a stop or a restart. A write that fails is retried, with
// backoff, until it commits; none is dropped, except those still queued when
// Shutdown's drain runs out (they are counted and logged).
//
// Definition writes (Create, Replace, Delete) are not queued: their callers
// must learn whether they were saved. They take turns with the writer on its
// connection (store.wdb).
type writer struct {
	db      *bun.DB
	probeOp func(context.Context, bun.IDB) error // the health probe's write (health.go)
	host    string                               // this host, whose fenced writes must still be its own
	// onFenced is told of the floating jobs whose writes were found fenced:
	// another host holds them now.
	onFenced func(jobs []string)
	log      *slog.Logger
	ctx      context.Context // ends when the drain runs out: the writer gives up
	cancel   context.CancelFunc

	mu       sync.Mutex
	ops      []op          // queued, not yet committed, in order
	queued   uint64        // sequence number of the last op queued
	written  uint64        // sequence number of the last op committed
	progress chan struct{} // closed and replaced when written moves, and when the writer ends
	failing  time.Time     // when the current run of failed commits began; zero while they succeed
	lastErr  error         // the last failure, while failing
	loggedAt time.Time     // when a failure was last logged
	ended    bool          // the goroutine has returned: nothing more is written
	probing  uint64        // sequence number of the health probe queued, if any
	probed   time.Time     // when the last health probe committed

	wake chan struct{} // one token: ops were queued
	quit chan struct{} // closed by close: write what is queued, then end
	done chan struct{} // closed when the goroutine has returned
}

// op is one queued write, applied inside the writer's transaction. It must be
// idempotent: a commit reported as failed may have happened.
type op struct {
	seq   uint64
	apply func(ctx context.Context, db bun.IDB) error
	fence *fence // of a write about a floating job: whose it must still be
}

// fence names the floating job a write is about and the epoch under which
// this host claimed it: the write commits only while the job's row still
// says so (floating.go).
type fence struct {
	job, id string
	epoch   int64
}

func newWriter(db *bun.DB, host string, probe func(context.Context, bun.IDB) error, log *slog.Logger) *writer {
	w := &writer{db: db, host: host, probeOp: probe, log: log, progress: make(chan struct{}),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

// start runs the writer's goroutine, which ends with close.
func (w *writer) start() { go w.run() }

// enqueue queues a write and returns its sequence number. It never blocks
// (the queue has no bound: a record is never dropped for lack of room), so it
// may be called under a runner's lock, which keeps one job's writes in order.
func (w *writer) enqueue(apply func(context.Context, bun.IDB) error) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.enqueueLocked(apply)
}

// enqueueFenced queues a write about a floating job, made only while this
// host still holds the job under f's epoch; f nil: a write like any other.
func (w *writer) enqueueFenced(f *fence, apply func(context.Context, bun.IDB) error) uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	seq := w.enqueueLocked(apply)
	if f != nil && len(w.ops) > 0 && w.ops[len(w.ops)-1].seq == seq {
		w.ops[len(w.ops)-1].fence = f
	}
	return seq
}

func (w *writer) enqueueLocked(apply func(context.Context, bun.IDB) error) uint64 {
	if w.ended { // every goroutine that writes has ended before the writer does
		w.log.Error("database write queued after the writer ended; not written")
		return w.queued
	}
	w.queued++
	w.ops = append(w.ops, op{seq: w.queued, apply: apply})
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return w.queued
}

// sync waits until every write queued before the call has committed, so that
// a read of the history sees it; or until ctx ends. After Shutdown it returns
// at once: what was not written then never will be.
func (w *writer) sync(ctx context.Context) error {
	w.mu.Lock()
	target := w.queued
	w.mu.Unlock()
	return w.waitFor(ctx, target)
}

func (w *writer) waitFor(ctx context.Context, seq uint64) error {
	for {
		w.mu.Lock()
		ok, ch, behind, cause := w.written >= seq || w.ended, w.progress, len(w.ops), w.lastErr
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if cause != nil {
				return fmt.Errorf("%d database writes waiting (%w): %w", behind, cause, ctx.Err())
			}
			return fmt.Errorf("%d database writes waiting: %w", behind, ctx.Err())
		}
	}
}

func (w *writer) run() {
	defer close(w.done)
	for {
		batch := w.next()
		if batch == nil {
			return
		}
		if !w.write(batch) {
			return
		}
	}
}

// next waits for queued ops and returns the oldest, up to maxBatch; nil once
// the writer should end (closed and drained, or out of time).
func (w *writer) next() []op {
	for {
		w.mu.Lock()
		n := min(len(w.ops), maxBatch)
		batch := w.ops[:n:n] // ops queued meanwhile are appended past n
		w.mu.Unlock()
		if n > 0 {
			return batch
		}
		select {
		case <-w.wake:
		case <-w.quit:
			w.mu.Lock()
			empty := len(w.ops) == 0
			w.mu.Unlock()
			if empty {
				return nil
			}
		case <-w.ctx.Done():
			return nil
		}
	}
}

// write commits batch in one transaction, retrying with backoff until it
// does. It reports false if the writer ran out of time first.
func (w *writer) write(batch []op) bool {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(50*time.Millisecond),
		backoff.WithMaxInterval(2*time.Second), backoff.WithMaxElapsedTime(0))
	for {
		var lost []string
		err := w.db.RunInTx(w.ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			skip, fenced, err := w.fenced(ctx, tx, batch)
			if err != nil {
				return err
			}
			lost = fenced
			for i, o := range batch {
				if skip[i] {
					continue
				}
				if err := o.apply(ctx, tx); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			w.committed(len(batch))
			if len(lost) > 0 {
				w.log.Error("writes about floating jobs another host holds now were dropped", "host", w.host, "jobs", lost)
				w.onFenced(lost)
			}
			return true
		}
		if w.ctx.Err() != nil {
			return false
		}
		w.failed(err)
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-t.C:
		case <-w.ctx.Done():
			t.Stop()
			return false
		}
	}
}

// fenced finds, in the batch's transaction, the writes about floating jobs
// this host no longer holds under their epoch; the rows of those it holds
// are locked (FOR SHARE) until the commit, so that no claim comes between.
// One statement per epoch among the batch's writes: usually one, or none.
func (w *writer) fenced(ctx context.Context, tx bun.Tx, batch []op) ([]bool, []string, error) {
	ids := map[int64][]string{}
	for _, o := range batch {
		if o.fence != nil {
			ids[o.fence.epoch] = append(ids[o.fence.epoch], o.fence.id)
		}
	}
	if len(ids) == 0 {
		return make([]bool, len(batch)), nil, nil
	}
	held := map[fence]bool{}
	for epoch, list := range ids {
		var got []string
		err := tx.NewRaw("SELECT id FROM jobs WHERE owner = ? AND owner_epoch = ? AND id IN (?) FOR SHARE",
			w.host, epoch, bun.List(list)).Scan(ctx, &got)
		if err != nil {
			return nil, nil, fmt.Errorf("fence: %w", err)
		}
		for _, id := range got {
			held[fence{id: id, epoch: epoch}] = true
		}
	}
	skip := make([]bool, len(batch))
	var lost []string
	for i, o := range batch {
		if o.fence != nil && !held[fence{id: o.fence.id, epoch: o.fence.epoch}] {
			skip[i] = true
			if !slices.Contains(lost, o.fence.job) {
				lost = append(lost, o.fence.job)
			}
		}
	}
	return skip, lost, nil
}

func (w *writer) committed(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.written = w.ops[n-1].seq
	w.ops = slices.Delete(w.ops, 0, n)
	if !w.failing.IsZero() {
		w.log.Warn("database writes resumed", "failed_for", time.Since(w.failing).Round(time.Millisecond),
			"still_queued", len(w.ops))
		w.failing, w.lastErr = time.Time{}, nil
	}
	if w.probing != 0 && w.written >= w.probing {
		w.probing, w.probed = 0, time.Now()
	}
	close(w.progress)
	w.progress = make(chan struct{})
}

// failed notes a failed commit, and logs it: the first of a run of
// failures, then one every failLogEvery.
func (w *writer) failed(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	switch {
	case w.failing.IsZero():
		w.failing, w.loggedAt = now, now
		w.log.Error("database write failed; retrying, nothing is dropped", "queued", len(w.ops), "err", err)
	case now.Sub(w.loggedAt) >= failLogEvery:
		w.loggedAt = now
		w.log.Error("database writes still failing; retrying", "for", now.Sub(w.failing).Round(time.Second),
			"queued", len(w.ops), "err", err)
	}
	w.lastErr = err
}

// close writes what is queued, for up to limit, then ends the writer. It
// returns how many writes were left unwritten.
func (w *writer) close(limit time.Duration) int {
	close(w.quit)
	t := time.NewTimer(limit)
	select {
	case <-w.done:
		t.Stop()
	case <-t.C:
		w.cancel() // the attempt under way ends within its busy timeout
		<-w.done
	}
	w.cancel()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	close(w.progress)
	w.progress = make(chan struct{})
	return len(w.ops)
}
