package procman

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"golang.org/x/sys/unix"
)

// MaxSignal is the largest signal number Signal takes: Linux's SIGRTMAX.
const MaxSignal = 64

// ParseSignal reads a signal as the API and the command line take it: one
// of the names stop_signal takes (TERM, INT, HUP, QUIT, KILL, USR1, USR2),
// in any case and with or without SIG, or a number from 1 to MaxSignal.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= MaxSignal {
		return syscall.Signal(n), nil
	}
	if sig, err := parseSignal(s); err == nil {
		return sig, nil
	}
	return 0, fmt.Errorf("%w: unknown signal %q: give TERM, INT, HUP, QUIT, KILL, USR1 or USR2 (SIG in front is fine), or a number from 1 to %d",
		ErrInvalid, s, MaxSignal)
}

// Signal sends sig to every process of the job's running run: its whole
// process group, as a stop does, so a service reloads (HUP) without being
// restarted. It returns ErrNotRunning if the job has no run whose shell is
// still there, and ErrInvalid for a number outside 1 to MaxSignal. The
// signal goes out only while the run's shell has not been reaped, so the
// group is surely the run's, never one that took over its id. Each signal
// sent is an event (EventSignal) and a line of the Manager's log.
func (m *Manager) Signal(ctx context.Context, name string, sig syscall.Signal) error {
	if sig < 1 || sig > MaxSignal {
		return fmt.Errorf("signal %q: %w: %d is not a signal number (1 to %d)", name, ErrInvalid, int(sig), MaxSignal)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r, err := m.local(ctx, name)
	if err != nil {
		return err
	}
	// Under r.mu, a kill alone: the event is then in order with the state
	// changes the signal brings about.
	r.mu.Lock()
	p := r.cur
	if p != nil {
		err = p.leader.SignalGroup(sig)
		if err == nil {
			r.m.hub.publish(Event{Type: EventSignal, Job: name, Time: time.Now(), PID: p.pgid, Signal: sig.String(), Status: r.statusLocked()})
		}
	}
	r.mu.Unlock()
	switch {
	case p == nil || errors.Is(err, osproc.ErrReaped):
		return fmt.Errorf("signal %q: %w", name, ErrNotRunning)
	case err != nil:
		return fmt.Errorf("signal %q: %w", name, err)
	}
	m.log.Info("job signalled", "job", name, "signal", signalName(sig), "pgid", p.pgid)
	return nil
}

// signalName is "SIGHUP", or the number of a signal without a name.
func signalName(sig syscall.Signal) string {
	if n := unix.SignalName(sig); n != "" {
		return n
	}
	return strconv.Itoa(int(sig))
}
