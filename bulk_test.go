package procman

import (
	"errors"
	"reflect"
	"testing"
)

func mustSelector(t *testing.T, s string) Selector {
	t.Helper()
	sel, err := ParseSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func labelledJob(j Job, labels ...string) Job {
	j.Labels = map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		j.Labels[labels[i]] = labels[i+1]
	}
	return j
}

// resultsOf lists what results say: name, and whether each was a dependent.
func resultsOf(t *testing.T, res []Result) (names []string, dependents []string) {
	t.Helper()
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
		if r.Status.Name != r.Name {
			t.Errorf("result of %s holds the status of %q", r.Name, r.Status.Name)
		}
		names = append(names, r.Name)
		if r.Dependent {
			dependents = append(dependents, r.Name)
		}
	}
	return names, dependents
}

// TestStopJobsFollowsTheGraph: StopJobs stops the chosen jobs and, first,
// the active jobs that depend on them, chosen or not, in waves, each wave in
// parallel; it says which were dependents; other jobs go on.
func TestStopJobsFollowsTheGraph(t *testing.T) {
	w := setup(t)
	w.create(labelledJob(stopMarker("db", w.dir, nil), "tier", "db"))
	w.create(labelledJob(stopMarker("cache", w.dir, nil), "tier", "db"))
	w.create(labelledJob(stopMarker("web", w.dir, Dependencies{"db": ConditionStarted}), "tier", "web"))
	w.create(stopMarker("worker", w.dir, Dependencies{"web": ConditionStarted}))
	w.create(labelledJob(Job{Name: "idle", Command: "true", DependsOn: Dependencies{"db": ConditionStarted}}, "tier", "web"))
	w.create(Job{Name: "other", Command: "sleep 100", Type: Continuous})
	for _, n := range []string{"worker", "cache", "other"} {
		w.start(n)
	}
	w.waitReady("db", "web", "worker", "cache")
	res, err := w.m.StopJobs(ctxT(t), mustSelector(t, "tier=db"))
	if err != nil {
		t.Fatal(err)
	}
	names, deps := resultsOf(t, res)
	if want := []string{"cache", "worker", "web", "db"}; !reflect.DeepEqual(names, want) {
		t.Errorf("results for %q, want %q: wave by wave, by name within a wave", names, want)
	}
	if want := []string{"worker", "web"}; !reflect.DeepEqual(deps, want) {
		t.Errorf("dependents %q, want %q (idle was at rest: left alone)", deps, want)
	}
	for _, r := range res {
		if r.Status.State != StateStopped {
			t.Errorf("%s: %s, want stopped", r.Name, r.Status.State)
		}
	}
	w.before("worker.end", "web.term")
	w.before("web.end", "db.term")
	w.before("cache.term", "worker.end") // one wave: at once
	w.before("worker.term", "cache.end")
	if st, _ := w.m.State("other"); st.State != StateRunning {
		t.Errorf("other: %s, want running", st.State)
	}
	for _, n := range []string{"db", "web", "worker", "cache"} {
		r, _ := w.m.runner(n)
		r.mu.Lock()
		wanted := r.wanted
		r.mu.Unlock()
		if wanted {
			t.Errorf("%s is still wanted running after a stop by hand", n)
		}
	}
}

// TestBulkRefusesNoSelector: the zero Selector acts on nothing and is an
// error; one that matches nothing is no error and no result; AllJobs acts
// on every job.
func TestBulkRefusesNoSelector(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "a", Command: "sleep 100", Type: Continuous})
	w.create(Job{Name: "b", Command: "sleep 100", Type: Continuous})
	w.start("a")
	for name, act := range map[string]func(Selector) ([]Result, error){
		"StopJobs":    func(s Selector) ([]Result, error) { return w.m.StopJobs(ctxT(t), s) },
		"StartJobs":   func(s Selector) ([]Result, error) { return w.m.StartJobs(ctxT(t), s) },
		"RestartJobs": func(s Selector) ([]Result, error) { return w.m.RestartJobs(ctxT(t), s) },
	} {
		if res, err := act(Selector{}); !errors.Is(err, ErrInvalid) || res != nil {
			t.Errorf("%s(zero Selector) = %v, %v; want ErrInvalid", name, res, err)
		}
		if res, err := act(mustSelector(t, "tier=none")); err != nil || res == nil || len(res) != 0 {
			t.Errorf("%s(a selector matching nothing) = %#v, %v; want no result and no error", name, res, err)
		}
	}
	if st, _ := w.m.State("a"); st.State != StateRunning {
		t.Fatalf("a: %s after no bulk action, want running", st.State)
	}
	res, err := w.m.StopJobs(ctxT(t), AllJobs())
	if names, _ := resultsOf(t, res); err != nil || !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Fatalf("StopJobs(AllJobs()) = %q, %v", names, err)
	}
	if st, _ := w.m.State("a"); st.State != StateStopped {
		t.Errorf("a: %s, want stopped", st.State)
	}
}

// TestStartJobsFollowsTheGraph: StartJobs starts the chosen jobs,
// dependencies first, each as by hand (not as a dependency of another); a
// job already active is no error; a job that fails to start fails alone.
func TestStartJobsFollowsTheGraph(t *testing.T) {
	w := setup(t)
	w.create(labelledJob(Job{Name: "db", Command: "sleep 100", Type: Continuous}, "tier", "x"))
	w.create(labelledJob(Job{Name: "web", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"db": ConditionStarted}}, "tier", "x"))
	w.create(labelledJob(Job{Name: "solo", Command: "sleep 100", Type: Continuous}, "tier", "x"))
	w.create(labelledJob(Job{Name: "bad", Command: "true", Dir: "/nonexistent/dir"}, "tier", "x"))
	w.create(Job{Name: "other", Command: "sleep 100", Type: Continuous})
	w.start("solo")
	res, err := w.m.StartJobs(ctxT(t), mustSelector(t, "tier=x"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range res {
		names = append(names, r.Name)
		switch {
		case r.Name == "bad" && !errors.Is(r.Err, ErrStartFailed):
			t.Errorf("bad: %v, want ErrStartFailed", r.Err)
		case r.Name != "bad" && (r.Err != nil || r.Status.State != StateRunning):
			t.Errorf("%s: %s, %v; want running", r.Name, r.Status.State, r.Err)
		}
	}
	if want := []string{"bad", "db", "solo", "web"}; !reflect.DeepEqual(names, want) {
		t.Errorf("results for %q, want %q", names, want)
	}
	eventually(t, "db's run recorded", func() bool {
		runs, err := w.m.Runs(ctxT(t), "db", RunsOptions{})
		return err == nil && len(runs) == 1 && runs[0].Trigger == TriggerManual
	})
	if st, _ := w.m.State("other"); st.State != StateStopped {
		t.Errorf("other: %s, want stopped", st.State)
	}
}

// TestRestartJobsFollowsTheGraph: RestartJobs restarts every chosen job,
// dependencies first, each with a new run.
func TestRestartJobsFollowsTheGraph(t *testing.T) {
	w := setup(t)
	w.create(labelledJob(Job{Name: "db", Command: "sleep 100", Type: Continuous}, "tier", "x"))
	w.create(labelledJob(Job{Name: "web", Command: "sleep 100", Type: Continuous, DependsOn: Dependencies{"db": ConditionStarted}}, "tier", "x"))
	w.start("web")
	db, web := w.waitFor("db", StateRunning), w.waitFor("web", StateRunning)
	res, err := w.m.RestartJobs(ctxT(t), AllJobs())
	names, _ := resultsOf(t, res)
	if err != nil || !reflect.DeepEqual(names, []string{"db", "web"}) {
		t.Fatalf("RestartJobs: %q, %v; want db, then web", names, err)
	}
	if res[0].Status.PID == db.PID || res[1].Status.PID == web.PID || res[0].Status.State != StateRunning || res[1].Status.State != StateRunning {
		t.Errorf("after RestartJobs: %+v; want new runs of both", res)
	}
	if !res[0].Status.Since.Before(res[1].Status.Since) {
		t.Errorf("db running since %v, web since %v: want db first", res[0].Status.Since, res[1].Status.Since)
	}
}
