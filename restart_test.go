package procman

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

// onFailure is a continuous job with restart on-failure and a quick backoff.
func onFailure(name, command string, codes ...int) Job {
	return Job{Name: name, Command: command, Type: Continuous, Restart: RestartOnFailure, SuccessExitCodes: codes,
		MinUptime: dur(time.Hour), BackoffInitial: dur(10 * time.Millisecond), MaxRetries: 3}
}

// statesOf lists the state changes of the job that events holds so far.
func statesOf(events <-chan Event, job string) []State {
	var out []State
	for len(events) > 0 {
		if ev := <-events; ev.Type == EventState && ev.Job == job {
			out = append(out, ev.To)
		}
	}
	return out
}

// Under restart on-failure a continuous job that exits 0, or with one of
// its success codes, rests in exited; any other exit restarts it with
// backoff, up to max_retries.
func TestContinuousOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name    string
		job     Job
		state   State
		runs    int
		success bool
	}{
		{"exit 0", onFailure("a", "exit 0"), StateExited, 1, true},
		{"success code", onFailure("a", "exit 3", 3, 4), StateExited, 1, true},
		{"failure", onFailure("a", "exit 2", 3), StateError, 3, false},
		{"signal", onFailure("a", "kill -TERM $$"), StateError, 3, false},
		{"always restarts after exit 0", Job{Name: "a", Command: "exit 0", Type: Continuous, Restart: RestartAlways,
			MinUptime: dur(time.Hour), BackoffInitial: dur(10 * time.Millisecond), MaxRetries: 3}, StateError, 3, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := setup(t)
			events, cancel := w.m.Subscribe(context.Background())
			defer cancel()
			w.create(tc.job)
			w.start("a")
			st := w.waitFor("a", StateExited, StateError)
			if st.State != tc.state || st.LastRun == nil || st.LastRun.Success != tc.success || st.Restarts != tc.runs-1 {
				t.Fatalf("status %+v, last run %+v; want %s after %d runs, success %v", st, st.LastRun, tc.state, tc.runs, tc.success)
			}
			if n := len(w.logFiles("a")); n != tc.runs {
				t.Errorf("%d runs, want %d", n, tc.runs)
			}
			if tc.state == StateExited {
				if got := statesOf(events, "a"); !slices.Equal(got, []State{StateStarting, StateRunning, StateExited}) {
					t.Errorf("states %v", got)
				}
			}
		})
	}
}

// A one_time job with restart on-failure retries a failed run with the
// backoff (state retrying), until a run succeeds or max_retries runs failed;
// without it, a failed run is never retried.
func TestOneTimeOnFailure(t *testing.T) {
	t.Run("retried until it succeeds", func(t *testing.T) {
		w := setup(t)
		events, cancel := w.m.Subscribe(context.Background())
		defer cancel()
		w.create(Job{Name: "migrate", Dir: w.dir, Restart: RestartOnFailure, MaxRetries: 5, BackoffInitial: dur(10 * time.Millisecond),
			Command: `echo try >> tries; [ "$(wc -l < tries)" -ge 3 ]`})
		w.start("migrate")
		st := w.waitFor("migrate", StateExited, StateError)
		if st.State != StateExited || !st.LastRun.Success || st.Restarts != 2 || *st.ExitCode != 0 {
			t.Fatalf("status %+v, last run %+v", st, st.LastRun)
		}
		want := []State{StateStarting, StateRunning, StateRetrying, StateStarting, StateRunning, StateRetrying,
			StateStarting, StateRunning, StateExited}
		if got := statesOf(events, "migrate"); !slices.Equal(got, want) {
			t.Errorf("states %v, want %v", got, want)
		}
		runs, err := w.m.Runs(ctxT(t), "migrate", RunsOptions{})
		if err != nil || len(runs) != 3 || runs[0].Trigger != TriggerRetry || runs[2].Trigger != TriggerManual || *runs[2].ExitCode != 1 {
			t.Fatalf("runs %+v, %v", runs, err)
		}
	})
	t.Run("gives up after max_retries", func(t *testing.T) {
		w := setup(t)
		w.create(Job{Name: "migrate", Restart: RestartOnFailure, MaxRetries: 3, BackoffInitial: dur(10 * time.Millisecond),
			Command: "exit 4", SuccessExitCodes: []int{3}})
		w.start("migrate")
		st := w.waitFor("migrate", StateExited, StateError)
		if st.State != StateError || !strings.Contains(st.Error, "gave up after 3 consecutive failures; last: exit code 4") || st.LastRun.Success {
			t.Fatalf("status %+v", st)
		}
		if n := len(w.logFiles("migrate")); n != 3 {
			t.Errorf("%d runs, want 3", n)
		}
	})
	t.Run("a success code is a success", func(t *testing.T) {
		w := setup(t)
		w.create(Job{Name: "migrate", Restart: RestartOnFailure, MaxRetries: 3, Command: "exit 3", SuccessExitCodes: []int{3}})
		w.start("migrate")
		if st := w.waitFor("migrate", StateExited, StateError); st.State != StateExited || !st.LastRun.Success || st.Restarts != 0 {
			t.Fatalf("status %+v, last run %+v", st, st.LastRun)
		}
	})
	t.Run("without on-failure", func(t *testing.T) {
		w := setup(t)
		w.create(Job{Name: "once", Command: "exit 3", SuccessExitCodes: []int{3}})
		w.create(Job{Name: "fails", Command: "exit 1"})
		w.start("once")
		w.start("fails")
		if st := w.waitFor("once", StateExited, StateError); st.State != StateExited || !st.LastRun.Success {
			t.Errorf("once: %+v, last run %+v", st, st.LastRun)
		}
		if st := w.waitFor("fails", StateExited, StateError); st.State != StateExited || st.LastRun.Success || st.Restarts != 0 {
			t.Errorf("fails: %+v, last run %+v", st, st.LastRun)
		}
	})
}

// LastRun.Success of a run recorded by an earlier Manager is read back with
// the job's success codes.
func TestLastRunSuccessAfterReopen(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "once", Command: "exit 3", SuccessExitCodes: []int{3}})
	w.start("once")
	w.waitFor("once", StateExited)
	cfg := Config{DBPath: w.m.cfg.DBPath, LogDir: w.m.cfg.LogDir}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m := w.open(cfg)
	if st, _ := m.State("once"); st.LastRun == nil || !st.LastRun.Success || *st.LastRun.ExitCode != 3 {
		t.Fatalf("after reopen: %+v", st.LastRun)
	}
}

func TestRestartFieldsValidated(t *testing.T) {
	for _, tc := range []struct {
		job    Job
		fields []string
	}{
		{Job{Restart: "never"}, []string{"restart"}},
		{Job{Restart: RestartAlways}, []string{"restart"}},
		{Job{Restart: RestartOnFailure}, []string{"max_retries"}},
		{Job{MaxRetries: 2}, []string{"max_retries"}},
		{Job{BackoffInitial: dur(time.Second)}, []string{"backoff_initial"}},
		{Job{Restart: RestartOnFailure, MaxRetries: 2, MinUptime: dur(time.Second)}, []string{"min_uptime"}},
		{Job{SuccessExitCodes: []int{0, 256}}, []string{"success_exit_codes"}},
		{Job{SuccessExitCodes: []int{-1}}, []string{"success_exit_codes"}},
		{Job{Type: Continuous, Restart: "on_failure"}, []string{"restart"}},
		// Accepted:
		{Job{Restart: RestartOnFailure, MaxRetries: 2, BackoffInitial: dur(time.Second), BackoffMax: dur(time.Minute),
			SuccessExitCodes: []int{0, 3, 255}}, nil},
		{Job{Type: Continuous, Restart: RestartOnFailure}, nil},
		{Job{Type: Continuous, Restart: RestartAlways, SuccessExitCodes: []int{2}}, nil},
	} {
		j := tc.job
		j.Name, j.Command = "a", "true"
		var got []string
		for _, fe := range FieldErrors(j.Validate()) {
			got = append(got, fe.Field)
		}
		if !slices.Equal(got, tc.fields) {
			t.Errorf("%+v: errors on %v, want %v", tc.job, got, tc.fields)
		}
	}
}
