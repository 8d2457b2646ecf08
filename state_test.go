package procman

import (
	"slices"
	"testing"
)

var allStates = []State{StateStopped, StateStarting, StateRunning, StateRetrying, StateError, StateStopping, StateExited, StateUnknown}

// TestTransitions checks the state table row by row: each row lists every
// state a job may move to from one state, and every other move must be refused.
func TestTransitions(t *testing.T) {
	rows := []struct {
		from State
		to   []State
		why  string
	}{
		{StateStopped, []State{StateStarting}, "start"},
		{StateExited, []State{StateStarting}, "start again"},
		{StateError, []State{StateStarting}, "start again after giving up"},
		{StateUnknown, []State{StateStarting}, "start after a crash of ProcMan"},
		{StateStarting, []State{StateRunning, StateRetrying, StateError, StateStopped}, "spawned; spawn failed; stopped while preparing"},
		{StateRunning, []State{StateExited, StateStarting, StateRetrying, StateError, StateStopping}, "ended; stop"},
		{StateRetrying, []State{StateStarting, StateStopped}, "backoff elapsed; stop"},
		{StateStopping, []State{StateStopped, StateError, StateRetrying}, "group gone; group survived SIGKILL; unhealthy run stopped"},
	}
	if len(rows) != len(allStates) {
		t.Fatalf("%d rows for %d states", len(rows), len(allStates))
	}
	for _, row := range rows {
		t.Run(string(row.from), func(t *testing.T) {
			for _, to := range allStates {
				if got, want := canTransition(row.from, to), slices.Contains(row.to, to); got != want {
					t.Errorf("%s -> %s allowed=%v, want %v (%s)", row.from, to, got, want, row.why)
				}
			}
		})
	}
}

func TestActiveStates(t *testing.T) {
	for _, s := range allStates {
		want := s == StateStarting || s == StateRunning || s == StateRetrying || s == StateStopping
		if s.active() != want {
			t.Errorf("%s.active() = %v", s, !want)
		}
	}
}
