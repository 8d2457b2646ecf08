package procman

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
)

// A signal reaches every process of the running run's group, the shell and
// its children alike, and is an event.
func TestSignalReachesTheWholeGroup(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Command: `sh -c 'trap "echo child-hup; exit 0" HUP; echo child-ready; sleep 100 & wait' &
		trap 'echo shell-hup' HUP; echo shell-ready; wait; wait`})
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.start("svc")
	st := w.waitFor("svc", StateRunning)
	eventually(t, "both traps set", func() bool {
		out := readFile(t, st.LogFile)
		return strings.Contains(out, "child-ready") && strings.Contains(out, "shell-ready")
	})
	if err := w.m.Signal(ctxT(t), "svc", syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.waitFor("svc", StateExited)
	if out := readFile(t, st.LogFile); !strings.Contains(out, "child-hup") || !strings.Contains(out, "shell-hup") {
		t.Errorf("the run printed %q: want both the shell and its child to have had the HUP", out)
	}
	for ev := range events {
		if ev.Type == EventSignal {
			if ev.Job != "svc" || ev.Signal != "hangup" || ev.PID != st.PID || ev.Status.Name != "svc" {
				t.Errorf("signal event %+v", ev)
			}
			break
		}
		if ev.Type == EventState && ev.To == StateExited {
			t.Fatal("the run exited with no signal event before")
		}
	}
	if !w.logs.has("job signalled job=svc signal=SIGHUP") {
		t.Error("the signal is not in the Manager's log")
	}
}

// A signal needs a running run, a job and a signal number.
func TestSignalBadInput(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "idle", Command: "sleep 100"})
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		want error
	}{
		{"idle", syscall.SIGHUP, ErrNotRunning},
		{"nope", syscall.SIGHUP, ErrNotFound},
		{"idle", 0, ErrInvalid},
		{"idle", MaxSignal + 1, ErrInvalid},
	} {
		if err := w.m.Signal(ctxT(t), tc.name, tc.sig); !errors.Is(err, tc.want) {
			t.Errorf("Signal(%s, %d): %v, want %v", tc.name, tc.sig, err, tc.want)
		}
	}
	w.start("idle")
	w.stop("idle")
	if err := w.m.Signal(ctxT(t), "idle", syscall.SIGHUP); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Signal of a stopped job: %v, want ErrNotRunning", err)
	}
}

func TestParseSignalOfTheAPI(t *testing.T) {
	for in, want := range map[string]syscall.Signal{"HUP": syscall.SIGHUP, "sighup": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1,
		"term": syscall.SIGTERM, "1": 1, "64": 64, "10": syscall.SIGUSR1} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "9x", "FOO", "SIG", "WINCH", " HUP"} {
		if _, err := ParseSignal(in); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "unknown signal") {
			t.Errorf("ParseSignal(%q): %v, want ErrInvalid naming the signal", in, err)
		}
	}
}
