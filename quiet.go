package procman

import (
	"runtime/debug"
	"sync/atomic"
	"time"
)

// quiet returns memory to the OS once the jobs have gone Config.ReturnMemory
// without a state change (see there). A transition pokes it, which costs a
// channel send that never blocks; nothing wakes while nothing happens.
type quiet struct {
	after time.Duration
	poke  chan struct{}
	done  chan struct{} // closed when run has ended
	freed atomic.Int64  // collections made (tests)
}

// startQuiet starts the quiet watch if Config.ReturnMemory asks for one.
func (m *Manager) startQuiet() {
	if m.cfg.ReturnMemory <= 0 {
		return
	}
	m.quiet = &quiet{after: m.cfg.ReturnMemory, poke: make(chan struct{}, 1), done: make(chan struct{})}
	go m.quiet.run(m.ctx.Done())
}

// touched notes a state change.
func (q *quiet) touched() {
	if q == nil {
		return
	}
	select {
	case q.poke <- struct{}{}:
	default:
	}
}

// run collects once per quiet spell, until stop; after a collection it lets
// ten spells' length pass before the next, so a job that changes state every
// few seconds costs a collection every 10 ReturnMemory at most.
func (q *quiet) run(stop <-chan struct{}) {
	defer close(q.done)
	for {
		select {
		case <-q.poke:
		case <-stop:
			return
		}
		if !q.await(stop) {
			return
		}
		debug.FreeOSMemory()
		q.freed.Add(1)
		gap := time.NewTimer(10 * q.after)
		select {
		case <-gap.C:
		case <-stop:
			gap.Stop()
			return
		}
	}
}

// await waits until after has passed with no poke, or reports false at stop.
func (q *quiet) await(stop <-chan struct{}) bool {
	t := time.NewTimer(q.after)
	defer t.Stop()
	for {
		select {
		case <-q.poke:
			t.Reset(q.after)
		case <-t.C:
			return true
		case <-stop:
			return false
		}
	}
}
