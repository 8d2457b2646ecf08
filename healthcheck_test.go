package procman

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
)

// fastCheck is a check every 20ms, unhealthy after 2 failures in a row.
func fastCheck(h HealthCheck) *HealthCheck {
	h.Interval, h.Retries = dur(20*time.Millisecond), 2
	return &h
}

// healthEvents collects the job's health events from events until want
// says it has enough, for 20 s at most.
func healthEvents(t *testing.T, events <-chan Event, job string, want func([]Event) bool) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(20 * time.Second)
	for !want(got) {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("events closed; health events so far: %v", healths(got))
			}
			if ev.Type == EventHealth && ev.Job == job {
				got = append(got, ev)
			}
		case <-deadline:
			t.Fatalf("timed out; health events so far: %v", healths(got))
		}
	}
	return got
}

func healths(evs []Event) []Health {
	var out []Health
	for _, ev := range evs {
		out = append(out, ev.Status.Health)
	}
	return out
}

func (w *world) health(name string, h Health) Status {
	w.t.Helper()
	return w.until(name, "health "+string(h), func(st Status) bool { return st.Health == h })
}

// An exec check runs as the job does (its dir and env), and goes healthy
// and unhealthy with the file it tests; its output is in the status, not in
// the job's log. Each change is an event carrying the whole status.
func TestExecCheckGoesHealthyAndUnhealthy(t *testing.T) {
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	ready := filepath.Join(w.dir, "ready")
	w.create(Job{Name: "db", Command: "sleep 1000", Type: Continuous, Dir: w.dir, Env: map[string]string{"MARK": "ready"},
		OnUnhealthy: OnUnhealthyIgnore,
		Health:      fastCheck(HealthCheck{Exec: `test "$(pwd)" = "` + w.dir + `" || exit 9; echo "no $MARK here"; test -e "$MARK"`})})
	w.start("db")
	st := w.health("db", HealthUnhealthy)
	if st.HealthFailure != "exit code 1: no ready here" || st.HealthCheckedAt == nil || st.State != StateRunning {
		t.Fatalf("unhealthy: %+v", st)
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if st = w.health("db", HealthHealthy); st.HealthFailure != "" {
		t.Errorf("healthy, with a failure: %+v", st)
	}
	os.Remove(ready)
	w.health("db", HealthUnhealthy)

	evs := healthEvents(t, events, "db", func(evs []Event) bool { return len(evs) == 3 })
	for i, want := range []Health{HealthUnhealthy, HealthHealthy, HealthUnhealthy} {
		if ev := evs[i]; ev.Status.Health != want || ev.Status.State != StateRunning || ev.PID != st.PID || ev.Status.PID != st.PID {
			t.Errorf("event %d: %+v, want health %s of the running pid %d", i, ev, want, st.PID)
		}
	}
	if evs[0].Reason != "exit code 1: no ready here" || evs[1].Reason != "" {
		t.Errorf("reasons %q, %q: want the failure when unhealthy, none when healthy", evs[0].Reason, evs[1].Reason)
	}
	b, _ := json.Marshal(evs[0].Status)
	if !strings.Contains(string(b), `"health":"unhealthy","health_failure":"exit code 1: no ready here","health_checked_at":"`) {
		t.Errorf("status JSON %s", b)
	}
	if log := readFile(t, st.LogFile); strings.Contains(log, "ready here") {
		t.Errorf("the check's output is in the job's log: %q", log)
	}
	w.stop("db")
	if st, _ := w.m.State("db"); st.Health != "" || st.HealthFailure != "" || st.HealthCheckedAt != nil {
		t.Errorf("a stopped job has a health: %+v", st)
	}
}

// An http check passes on 2xx and 3xx (a redirect is not followed) and
// fails with the status otherwise.
func TestHTTPCheckGoesHealthyAndUnhealthy(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if s := int(status.Load()); s == http.StatusFound {
			http.Redirect(w, r, "/elsewhere", s)
		} else {
			w.WriteHeader(s)
		}
	}))
	defer srv.Close()
	w := setup(t)
	w.create(Job{Name: "web", Command: "sleep 1000", Type: Continuous, OnUnhealthy: OnUnhealthyIgnore,
		Health: fastCheck(HealthCheck{HTTP: srv.URL + "/health"})})
	w.start("web")
	if st := w.health("web", HealthUnhealthy); st.HealthFailure != "status 503 Service Unavailable" {
		t.Errorf("failure %q", st.HealthFailure)
	}
	status.Store(http.StatusNoContent)
	w.health("web", HealthHealthy)
	status.Store(http.StatusNotFound)
	w.health("web", HealthUnhealthy)
	status.Store(http.StatusFound)
	w.health("web", HealthHealthy)
	srv.Close()
	if st := w.health("web", HealthUnhealthy); !strings.Contains(st.HealthFailure, "connection refused") {
		t.Errorf("failure %q", st.HealthFailure)
	}
}

// A tcp check passes while something accepts connections at the address.
func TestTCPCheckGoesHealthyAndUnhealthy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	w := setup(t)
	w.create(Job{Name: "db", Command: "sleep 1000", Type: Continuous, OnUnhealthy: OnUnhealthyIgnore,
		Health: fastCheck(HealthCheck{TCP: addr})})
	w.start("db")
	w.health("db", HealthHealthy)
	ln.Close()
	if st := w.health("db", HealthUnhealthy); !strings.Contains(st.HealthFailure, "connection refused") {
		t.Errorf("failure %q", st.HealthFailure)
	}
	if ln, err = net.Listen("tcp", addr); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w.health("db", HealthHealthy)
}

// A run whose check fails (on_unhealthy defaults to restart for a
// continuous job) is stopped as a stop does, recorded with outcome
// unhealthy and the reason, and counts as a failure: the job backs off in
// retrying, restarts, and gives up after max_retries, although each run
// exited 0 on SIGTERM.
func TestUnhealthyRunIsRestartedAndCounted(t *testing.T) {
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	w.create(Job{Name: "svc", Type: Continuous, Command: `trap 'exit 0' TERM; sleep 1000 & wait`, MaxRetries: 2,
		BackoffInitial: dur(100 * time.Millisecond), BackoffMax: dur(time.Second),
		Health: fastCheck(HealthCheck{Exec: "echo stuck; exit 1"})})
	w.start("svc")
	st := w.waitFor("svc", StateError)
	if !strings.Contains(st.Error, "gave up after 2 consecutive failures; last: unhealthy: 2 health checks failed in a row, the last: exit code 1: stuck") ||
		st.Restarts != 1 || st.Health != "" {
		t.Fatalf("status %+v", st)
	}
	runs, err := w.m.Runs(ctxT(t), "svc", RunsOptions{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
	for _, run := range runs {
		if run.Outcome != OutcomeUnhealthy || !strings.HasPrefix(run.Error, "unhealthy: 2 health checks failed") ||
			run.ExitCode == nil || *run.ExitCode != 0 {
			t.Errorf("run %d: %+v", run.ID, run)
		}
	}
	if runs[0].Trigger != TriggerRetry {
		t.Errorf("second run's trigger %s", runs[0].Trigger)
	}
	var path []State
	for len(events) > 0 {
		if ev := <-events; ev.Type == EventState && ev.Job == "svc" {
			path = append(path, ev.To)
		}
	}
	want := []State{StateStarting, StateRunning, StateStopping, StateRetrying, StateStarting, StateRunning, StateStopping, StateError}
	if !slices.Equal(path, want) {
		t.Errorf("states %v, want %v", path, want)
	}
}

// process-compose #403: a run stopped because its check failed must be
// restarted under restart "on-failure", even though it exited 0 on the stop
// signal: being unhealthy is a failure, not a stop and not a success.
func TestUnhealthyOnFailureJobRestarts(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "svc", Type: Continuous, Dir: w.dir, Restart: RestartOnFailure,
		Command: `echo run >> runs; trap 'exit 0' TERM; sleep 1000 & wait`, BackoffInitial: dur(10 * time.Millisecond),
		Health: fastCheck(HealthCheck{Exec: `test "$(wc -l < runs)" -ge 2`})}) // the second run is healthy
	w.start("svc")
	st := w.health("svc", HealthHealthy)
	if st.State != StateRunning || st.Restarts != 1 {
		t.Fatalf("status %+v, want the second run running and healthy", st)
	}
	runs, err := w.m.Runs(ctxT(t), "svc", RunsOptions{})
	if err != nil || len(runs) != 2 || runs[1].Outcome != OutcomeUnhealthy || *runs[1].ExitCode != 0 {
		t.Fatalf("runs %+v, %v", runs, err)
	}
}

// process-compose #544, the part of it that is health: a run that lost its
// health and recovered it (on_unhealthy ignore) goes healthy again, and each
// change is an event with the status as it then is, and wakes those who wait.
func TestHealthComesBackWhileTheRunGoesOn(t *testing.T) {
	w := setup(t)
	events, cancel := w.m.Subscribe(context.Background())
	defer cancel()
	ready := filepath.Join(w.dir, "ready")
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.create(Job{Name: "db", Command: "sleep 1000", Type: Continuous, OnUnhealthy: OnUnhealthyIgnore,
		Health: fastCheck(HealthCheck{Exec: "test -e " + ready})})
	w.start("db")
	first := w.health("db", HealthHealthy)
	for range 2 {
		os.Remove(ready)
		w.health("db", HealthUnhealthy)
		if err := os.WriteFile(ready, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		w.health("db", HealthHealthy)
	}
	evs := healthEvents(t, events, "db", func(evs []Event) bool { return len(evs) == 5 })
	want := []Health{HealthHealthy, HealthUnhealthy, HealthHealthy, HealthUnhealthy, HealthHealthy}
	if got := healths(evs); !slices.Equal(got, want) {
		t.Fatalf("health events %v, want %v", got, want)
	}
	for _, ev := range evs {
		if ev.Status.State != StateRunning || ev.Status.PID != first.PID || ev.Status.Restarts != 0 {
			t.Errorf("event %+v: want the same running run", ev)
		}
	}
}

// Failures within start_period do not count, however many; a check that
// passes ends it, and failures count from then on.
func TestStartPeriod(t *testing.T) {
	w := setup(t)
	checks, ready := filepath.Join(w.dir, "checks"), filepath.Join(w.dir, "ready")
	h := fastCheck(HealthCheck{Exec: "echo >> " + checks + "; test -e " + ready, StartPeriod: dur(time.Hour)})
	h.Retries = 1
	w.create(Job{Name: "slow", Command: "sleep 1000", Type: Continuous, Health: h})
	w.start("slow")
	eventually(t, "6 checks", func() bool {
		b, _ := os.ReadFile(checks)
		return strings.Count(string(b), "\n") >= 6
	})
	st, _ := w.m.State("slow")
	if st.State != StateRunning || st.Health != HealthStarting || st.Restarts != 0 || st.HealthFailure != "exit code 1" {
		t.Fatalf("after failures in the start period: %+v", st)
	}
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.health("slow", HealthHealthy)
	os.Remove(ready)
	// on_unhealthy restart: the first failure now stops the run.
	w.until("slow", "the next run", func(st Status) bool { return st.Restarts == 1 && st.State == StateRunning })
	w.stop("slow")
	runs, err := w.m.Runs(ctxT(t), "slow", RunsOptions{})
	if err != nil || len(runs) != 2 || runs[1].Outcome != OutcomeUnhealthy ||
		runs[1].Error != "unhealthy: the health check failed: exit code 1" || runs[0].Outcome != OutcomeStopped {
		t.Fatalf("runs %+v, %v", runs, err)
	}
}

// A check that outlasts its timeout fails, and its whole group is killed: its
// shell is reaped (no zombie of ProcMan's) and its child killed.
func TestExecCheckTimeoutKillsItsGroup(t *testing.T) {
	w := setup(t)
	pids := filepath.Join(w.dir, "pids")
	w.create(Job{Name: "svc", Command: "sleep 1000", Type: Continuous, OnUnhealthy: OnUnhealthyIgnore,
		Health: &HealthCheck{Exec: "sleep 1000 & echo $$ $! > " + pids + "; wait", Timeout: dur(200 * time.Millisecond),
			Retries: 1, Interval: dur(time.Hour)}})
	w.start("svc")
	if st := w.health("svc", HealthUnhealthy); st.HealthFailure != "timed out after 200ms" {
		t.Fatalf("status %+v", st)
	}
	b, err := os.ReadFile(pids)
	f := strings.Fields(string(b))
	if err != nil || len(f) != 2 {
		t.Fatalf("pids %q, %v", b, err)
	}
	sh, _ := strconv.Atoi(f[0])
	child, _ := strconv.Atoi(f[1])
	if st, ok := osproc.ReadStat(sh); ok {
		t.Errorf("the check's shell %d is still there, in state %c", sh, st.State)
	}
	if !gone(child) {
		t.Errorf("the check's child %d outlived it", child)
	}
	if m := osproc.GroupMembers(sh); len(m) > 0 {
		t.Errorf("the check's group still has %v", m)
	}
}

// Between two checks a checked job costs no goroutine: running jobs with an
// hourly check, each checked once, have as many goroutines as running jobs
// without one.
func TestNoGoroutineBetweenChecks(t *testing.T) {
	w := setup(t)
	const n = 20
	g0 := steadyGoroutines(t)
	for i := range n {
		w.create(Job{Name: "plain" + strconv.Itoa(i), Command: "sleep 1000", Type: Continuous})
		w.start("plain" + strconv.Itoa(i))
	}
	g1 := steadyGoroutines(t)
	perJob := (g1 - g0) / n // a running job's supervisor and the wait for its shell
	for i := range n {
		name := "checked" + strconv.Itoa(i)
		w.create(Job{Name: name, Command: "sleep 1000", Type: Continuous, Health: &HealthCheck{Exec: "true", Interval: dur(time.Hour)}})
		w.start(name)
		w.health(name, HealthHealthy)
	}
	if g2, want := steadyGoroutines(t), g1+n*perJob+2; g2 > want {
		t.Errorf("%d goroutines with %d checked jobs between checks, want %d at most (%d per running job)", g2, n, want, perJob)
	}
}

// steadyGoroutines is the number of goroutines once it stops changing
// (goroutines that ended a moment ago may take a moment to go).
func steadyGoroutines(t *testing.T) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for same := 0; same < 5 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if m := runtime.NumGoroutine(); m == n {
			same++
		} else {
			n, same = m, 0
		}
	}
	return n
}

func TestHealthFieldsValidated(t *testing.T) {
	for _, tc := range []struct {
		job    Job
		fields []string
	}{
		{Job{Health: &HealthCheck{}}, []string{"health"}},
		{Job{Health: &HealthCheck{Exec: "true", TCP: "db:5432"}}, []string{"health"}},
		{Job{Health: &HealthCheck{Exec: " "}}, []string{"health.exec"}},
		{Job{Health: &HealthCheck{HTTP: "localhost:8080/health"}}, []string{"health.http"}},
		{Job{Health: &HealthCheck{HTTP: "https:///x"}}, []string{"health.http"}},
		{Job{Health: &HealthCheck{TCP: "localhost"}}, []string{"health.tcp"}},
		{Job{Health: &HealthCheck{TCP: "localhost:99999"}}, []string{"health.tcp"}},
		{Job{Health: &HealthCheck{TCP: "db:5432", Interval: dur(25 * time.Hour), Timeout: dur(time.Microsecond),
			StartPeriod: dur(-time.Second), Retries: -1}},
			[]string{"health.interval", "health.timeout", "health.start_period", "health.retries"}},
		{Job{OnUnhealthy: OnUnhealthyIgnore}, []string{"on_unhealthy"}},
		{Job{Health: &HealthCheck{TCP: "db:5432"}, OnUnhealthy: "kill"}, []string{"on_unhealthy"}},
	} {
		j := tc.job
		j.Name, j.Command, j.Type = "a", "true", Continuous
		var got []string
		for _, fe := range FieldErrors(j.Validate()) {
			got = append(got, fe.Field)
		}
		if !slices.Equal(got, tc.fields) {
			t.Errorf("%+v: errors on %v, want %v", tc.job.Health, got, tc.fields)
		}
	}
	ok := Job{Name: "a", Command: "true", Health: &HealthCheck{HTTP: "https://[::1]:8443/health?deep=1", Interval: dur(time.Millisecond),
		Timeout: dur(time.Hour), StartPeriod: dur(24 * time.Hour), Retries: 100}, OnUnhealthy: OnUnhealthyRestart}
	if err := ok.Validate(); err != nil {
		t.Errorf("a good check refused: %v", err)
	}
}

func TestHealthDecodesStrictly(t *testing.T) {
	for in, field := range map[string]string{
		`{"name":"a","command":"x","health":{"exec":"true","intervall":"1s"}}`:   "health.intervall",
		`{"name":"a","command":"x","health":{"exec":"true","interval":"soon"}}`:  "health.interval",
		`{"name":"a","command":"x","health":{"exec":"true","retries":"3"}}`:      "health.retries",
		`{"name":"a","command":"x","health":{"exec":"true","exec":"false"}}`:     "health.exec",
		`{"name":"a","command":"x","health":{"TCP":"db:5432"}}`:                  "health.TCP",
		`{"name":"a","command":"x","health":"test -e ready"}`:                    "health",
		`{"name":"a","command":"x","success_exit_codes":"3"}`:                    "success_exit_codes",
		`{"name":"a","command":"x","health":{"tcp":"db:1"},"on_unhealthy":true}`: "on_unhealthy",
	} {
		_, err := DecodeJob([]byte(in))
		if fe := FieldErrors(err); !errors.Is(err, ErrInvalid) || len(fe) != 1 || fe[0].Field != field {
			t.Errorf("%s: %v, want an error on %s", in, err, field)
		}
	}
	j, err := DecodeJob([]byte(`{"name":"a","command":"x","health":{"tcp":"db:5432","interval":"2s","retries":5},"on_unhealthy":"ignore"}`))
	if err != nil || j.Health == nil || j.Health.TCP != "db:5432" || j.Health.Interval != dur(2*time.Second) || j.Health.Retries != 5 {
		t.Fatalf("%+v, %v", j.Health, err)
	}
	b, _ := json.Marshal(j)
	if !strings.Contains(string(b), `"health":{"tcp":"db:5432","interval":"2s","retries":5},"on_unhealthy":"ignore"`) {
		t.Errorf("JSON %s", b)
	}
}
