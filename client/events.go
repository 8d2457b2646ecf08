package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"slices"
	"strings"

	"github.com/Mk-Chan/procman"
)

// EventStream is ProcMan's state changes as they happen (GET /events), read
// one at a time on the caller's goroutine: nothing is read ahead, and nothing
// runs once the caller stops reading. Close it when done.
type EventStream struct {
	body io.ReadCloser
	sc   *bufio.Scanner
}

// Events subscribes to every state change of every job, as Manager.Subscribe
// does. It returns once ProcMan has subscribed: no change made after that is
// missed. A subscriber that reads too slowly loses events, and is told so by
// an event of Type "lagged".
func (c *Client) Events(ctx context.Context) (*EventStream, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/events"})
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	return &EventStream{body: resp.Body, sc: sc}, nil
}

// Next returns the next event. It returns io.EOF once ProcMan has ended the
// stream (it does when it shuts down), and the context's error once the
// context given to Events has ended.
func (s *EventStream) Next() (procman.Event, error) {
	var data []string
	for s.sc.Scan() {
		line := s.sc.Text()
		// Comments (": heartbeat") and event names are skipped: the data says it all.
		if d, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(d, " "))
		} else if line == "" && len(data) > 0 {
			var ev procman.Event
			if err := json.Unmarshal([]byte(strings.Join(data, "\n")), &ev); err != nil {
				return ev, fmt.Errorf("an event ProcMan sent: %w", err)
			}
			return ev, nil
		}
	}
	if err := s.sc.Err(); err != nil {
		return procman.Event{}, err
	}
	return procman.Event{}, io.EOF
}

// All iterates over the events until the stream ends, then closes it. An
// end other than ProcMan's (io.EOF) comes last, as an error with a zero Event.
func (s *EventStream) All() iter.Seq2[procman.Event, error] {
	return func(yield func(procman.Event, error) bool) {
		defer s.Close()
		for {
			ev, err := s.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// Close ends the stream.
func (s *EventStream) Close() error { return s.body.Close() }

// WaitFor waits until the job is in one of the given states and returns its
// status then, as Manager.WaitFor does: it follows the event stream rather
// than asking again and again. A state passed through faster than an event
// can tell may be missed, so wait for states a job rests in (running,
// exited, stopped, error, retrying). If ProcMan ends the stream (it shuts
// down), the error wraps procman.ErrClosed.
func (c *Client) WaitFor(ctx context.Context, name string, states ...procman.State) (procman.Status, error) {
	events, err := c.Events(ctx) // before the first look: no change falls between the two
	if err != nil {
		return procman.Status{}, err
	}
	defer events.Close()
	st, err := c.State(ctx, name)
	if err != nil {
		return st, err
	}
	for !slices.Contains(states, st.State) {
		ev, err := events.Next()
		switch {
		case errors.Is(err, io.EOF):
			err = procman.ErrClosed
		case err != nil:
		case ev.Type == procman.EventLagged: // what was dropped may have been this job's
			st, err = c.State(ctx, name)
		case ev.Job == name && ev.Status.Name == name:
			st = ev.Status
		}
		if err != nil {
			return st, fmt.Errorf("wait for %q (state %s): %w", name, st.State, err)
		}
	}
	return st, nil
}
