package logwriter

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// gather is how long the lines that follow a first one are waited for, to go
// out with it in one write: a stop of 200 jobs logs 400 lines in some 30 ms.
const gather = time.Millisecond

// ErrStalled: Close gave up waiting for the destination to take what waited.
var ErrStalled = errors.New("log destination not taking writes")

// Writer is an io.Writer whose Write never waits for the destination. Each
// Write is kept whole: a line is written entirely or dropped. Safe for use
// by many goroutines; it owns one, which Close ends.
type Writer struct {
	out   io.Writer
	limit int // bytes that may wait

	mu      sync.Mutex
	buf     []byte
	dropped int
	closed  bool

	kick chan struct{} // capacity 1: buf is no longer empty
	quit chan struct{}
	done chan struct{}
}

// New starts a Writer that writes to out. While out is slow, at most limit
// bytes wait besides the write under way.
func New(out io.Writer, limit int) *Writer {
	w := &Writer{out: out, limit: limit, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	return w
}

// Write queues p, or drops it if the lines waiting would pass the limit. It
// reports success either way: a log line that cannot be written is no error
// of the caller's. After Close it writes p itself once what waited has been
// written, and drops it before.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		select {
		case <-w.done:
			return w.out.Write(p)
		default:
			return len(p), nil
		}
	}
	first := len(w.buf) == 0 && w.dropped == 0
	if len(w.buf)+len(p) > w.limit {
		w.dropped++
	} else {
		w.buf = append(w.buf, p...)
	}
	w.mu.Unlock()
	if first {
		select {
		case w.kick <- struct{}{}:
		default: // the goroutine has been told already
		}
	}
	return len(p), nil
}

func (w *Writer) run() {
	defer close(w.done)
	var spare []byte
	t := time.NewTimer(gather)
	t.Stop()
	for {
		select {
		case <-w.kick:
		case <-w.quit:
			w.flush(spare)
			return
		}
		t.Reset(gather)
		select {
		case <-t.C:
		case <-w.quit:
			w.flush(spare)
			return
		}
		spare = w.flush(spare)
	}
}

// flush writes what waits, after a line counting the writes dropped since
// the last flush, and returns the buffer for reuse.
func (w *Writer) flush(spare []byte) []byte {
	w.mu.Lock()
	b, n := w.buf, w.dropped
	w.buf, w.dropped = spare[:0], 0
	w.mu.Unlock()
	if n > 0 {
		b = append(dropNotice(n), b...)
	}
	if len(b) > 0 {
		w.out.Write(b) // nowhere to report its failure but the log itself
	}
	if cap(b) > keep { // what a stall made it: not kept for the quiet times after
		return nil
	}
	return b
}

// keep is the largest buffer kept for reuse.
const keep = 64 << 10

// dropNotice is a line in the form of log/slog's TextHandler.
func dropNotice(n int) []byte {
	return fmt.Appendf(nil, "time=%s level=WARN msg=\"log lines dropped: their destination was not taking them\" lines=%d\n",
		time.Now().Format("2006-01-02T15:04:05.000Z07:00"), n)
}

// Close writes what waits and ends the Writer's goroutine, waiting for it at
// most wait: a destination stalled for good keeps that last write, and the
// goroutine, until it takes it (or the program exits).
func (w *Writer) Close(wait time.Duration) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.quit)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.done:
		return nil
	case <-t.C:
		return ErrStalled
	}
}
