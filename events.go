package procman

import (
	"context"
	"sync"
	"time"
)

// EventBuffer is how many events a subscriber may fall behind before events
// are dropped for it (and it is told with a lagged event).
const EventBuffer = 256

// Event is one state change of one job, a skipped tick or a signal sent to
// it, or a note that events were dropped.
type Event struct {
	// Type is what the event is about (EventState, EventSkipped, EventSignal, EventLagged).
	Type     EventKind `json:"type"`
	Job      string    `json:"job,omitempty"`
	From     State     `json:"from,omitempty"`
	To       State     `json:"to,omitempty"`
	Time     time.Time `json:"time"`
	PID      int       `json:"pid,omitempty"`
	ExitCode *int      `json:"exit_code,omitempty"`
	Signal   string    `json:"signal,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Dropped  int       `json:"dropped,omitempty"`
	// Status is the job's whole status once the change was made (every event
	// but "lagged"), as State would answer it: a subscriber keeps a job's
	// status up to date from its events alone, with no rule of the state
	// machine to apply itself.
	Status Status `json:"status,omitzero"`
}

// hub fans events out to subscribers. Publishing never blocks: a subscriber
// whose buffer is full loses events and is told so.
type hub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch      chan Event
	dropped int
	stop    func() bool // stops the context watch
}

// Subscribe returns every job state change from now on, in order for each
// job. The channel is closed when ctx ends, when cancel is called, or at
// Shutdown. A subscriber that falls more than EventBuffer events behind loses
// events and then receives an Event of Type "lagged" saying how many.
func (m *Manager) Subscribe(ctx context.Context) (events <-chan Event, cancel func()) {
	return m.hub.subscribe(ctx)
}

func (h *hub) subscribe(ctx context.Context) (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, EventBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	if h.subs == nil {
		h.subs = make(map[*subscriber]struct{})
	}
	h.subs[s] = struct{}{}
	cancel := func() { h.unsubscribe(s) }
	s.stop = context.AfterFunc(ctx, cancel)
	return s.ch, cancel
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		s.stop()
		close(s.ch)
	}
}

func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.send(e)
	}
}

func (s *subscriber) send(e Event) {
	if s.dropped > 0 {
		select {
		case s.ch <- Event{Type: EventLagged, Time: e.Time, Dropped: s.dropped}:
			s.dropped = 0
		default:
			s.dropped++
			return
		}
	}
	select {
	case s.ch <- e:
	default:
		s.dropped++
	}
}

// close ends every subscription; later ones get a closed channel.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		s.stop()
		close(s.ch)
	}
	h.subs = nil
}
