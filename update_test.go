package procman

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// fullJob sets every field a continuous job can have (overlap is one_time's).
// It depends on the job "db", which must exist.
func fullJob(name, dir string) Job {
	return Job{Name: name, Command: "sleep 100", Type: Continuous, Schedule: "@every 1h", Labels: map[string]string{"tier": "web"},
		DependsOn: Dependencies{"db": ConditionHealthy}, StartTimeout: dur(30 * time.Second),
		Dir: dir, Env: map[string]string{"A": "1", "B": "2"}, EnvFile: "app.env", User: "nobody",
		StopSignal: "INT", StopTimeout: dur(3 * time.Second), BackoffInitial: dur(time.Second),
		BackoffMax: dur(time.Minute), MinUptime: dur(5 * time.Second), MaxRetries: 3, KeepRuns: 7, MaxLogBytes: 1 << 20, MaxRunLogBytes: 1 << 22,
		Restart: RestartAlways, SuccessExitCodes: []int{3, 4},
		Health: &HealthCheck{Exec: "test -e ready", Interval: dur(time.Second), Timeout: dur(time.Second), Retries: 2,
			StartPeriod: dur(time.Minute)},
		OnUnhealthy: OnUnhealthyIgnore, Host: HostAny}
}

// TestFullJobSetsEveryHealthField keeps fullJob's health check complete
// (its kind apart: one of exec, http, tcp).
func TestFullJobSetsEveryHealthField(t *testing.T) {
	v := reflect.ValueOf(*fullJob("a", "/tmp").Health)
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; v.Field(i).IsZero() && name != "HTTP" && name != "TCP" {
			t.Errorf("fullJob's health check leaves %s unset", name)
		}
	}
}

// TestFullJobSetsEveryField keeps fullJob complete: a field added to Job
// without a value there would go untested by the update tests.
func TestFullJobSetsEveryField(t *testing.T) {
	v := reflect.ValueOf(fullJob("a", "/tmp"))
	for i := range v.NumField() {
		if name := v.Type().Field(i).Name; v.Field(i).IsZero() && name != "Overlap" {
			t.Errorf("fullJob leaves %s unset", name)
		}
	}
}

// TestUpdateChangesOnlyWhatThePatchNames: a merge patch changes the fields it
// names, merges env, and leaves every other field as it was.
func TestUpdateChangesOnlyWhatThePatchNames(t *testing.T) {
	w := setup(t)
	w.m.root = true // the user is only checked, never switched to
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	before := fullJob("web", w.dir)
	w.create(before)

	got, err := w.m.Update(ctxT(t), "web", MergePatch([]byte(`{"command":"sleep 200","env":{"A":null,"C":"3"},"max_retries":null}`)))
	if err != nil {
		t.Fatal(err)
	}
	want := before
	want.Command, want.Env, want.MaxRetries = "sleep 200", map[string]string{"B": "2", "C": "3"}, 0
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Update returned\n%+v\nwant\n%+v", got, want)
	}
	if saved, _ := w.m.Get("web"); !reflect.DeepEqual(saved, want) {
		t.Fatalf("saved\n%+v\nwant\n%+v", saved, want)
	}

	// Refused patches change nothing.
	for _, tc := range []struct{ patch, field string }{
		{`{"name":"other"}`, "name"},
		{`{"stop_timeout":"2h"}`, "stop_timeout"},
		{`{"type":null}`, "backoff_initial"}, // one_time now, with continuous fields
		{`{"colour":"red"}`, "colour"},
		{`{"Command":"x"}`, "Command"},
		{`{"command":"a","command":"b"}`, "command"},
		{`{"env":{"A":"1","A":"2"}}`, "env"},
		{`{"env":{"PROCMAN_JOB":"x"}}`, "env"},
		{`{"user":"no-such-user-here"}`, "user"},
	} {
		_, err := w.m.Update(ctxT(t), "web", MergePatch([]byte(tc.patch)))
		if fe := FieldErrors(err); !errors.Is(err, ErrInvalid) || len(fe) == 0 || fe[0].Field != tc.field {
			t.Errorf("patch %s: %v, want a FieldError on %s", tc.patch, err, tc.field)
		}
	}
	for _, patch := range []string{`[]`, `"x"`, `null`, `{"command":"x"} {}`, `{`} {
		if _, err := w.m.Update(ctxT(t), "web", MergePatch([]byte(patch))); !errors.Is(err, ErrInvalid) {
			t.Errorf("patch %s: %v, want ErrInvalid", patch, err)
		}
	}
	if saved, _ := w.m.Get("web"); !reflect.DeepEqual(saved, want) {
		t.Fatalf("after refused patches:\n%+v\nwant\n%+v", saved, want)
	}
	if _, err := w.m.Update(ctxT(t), "nope", MergePatch([]byte(`{}`))); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of a missing job: %v, want ErrNotFound", err)
	}
}

// TestUpdatesOfDifferentFieldsAllSurvive: updates that run at once, each
// adding its own variable, all take effect; a read-modify-write outside the
// job's serialisation would lose some.
func TestUpdatesOfDifferentFieldsAllSurvive(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "web", Command: "true"})
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			patch := fmt.Sprintf(`{"env":{"V%d":"x"}}`, i)
			if _, err := w.m.Update(ctxT(t), "web", MergePatch([]byte(patch))); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if j, _ := w.m.Get("web"); len(j.Env) != n {
		t.Errorf("after %d concurrent updates env has %d variables: %v", n, len(j.Env), j.Env)
	}
}

// TestUpdateEditMayChangeItsMap: an edit given the saved env may change that
// map; a refused edit must not have changed the saved definition through it.
func TestUpdateEditMayChangeItsMap(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "web", Command: "true", Env: map[string]string{"A": "1"}})
	_, err := w.m.Update(ctxT(t), "web", func(j *Job) error {
		j.Env["PROCMAN_JOB"] = "x" // refused by validation
		return nil
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Update: %v, want ErrInvalid", err)
	}
	if j, _ := w.m.Get("web"); !reflect.DeepEqual(j.Env, map[string]string{"A": "1"}) {
		t.Errorf("a refused edit changed the saved env: %v", j.Env)
	}
}

// TestTypeDefaultsToOneTime: a job without a type is one_time, stored as such,
// whether it comes from Go or from JSON.
func TestTypeDefaultsToOneTime(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "a", Command: "echo hi"})
	if j, _ := w.m.Get("a"); j.Type != OneTime {
		t.Errorf("Create without a type stored %q, want one_time", j.Type)
	}
	if err := w.m.Replace(ctxT(t), "a", Job{Command: "echo again"}); err != nil {
		t.Fatal(err)
	}
	if j, _ := w.m.Get("a"); j.Type != OneTime {
		t.Errorf("Replace without a type stored %q, want one_time", j.Type)
	}
	j, err := DecodeJob([]byte(`{"name":"b","command":"true"}`))
	if err != nil || j.Type != OneTime {
		t.Errorf("DecodeJob without a type: %+v, %v; want one_time", j, err)
	}
	w.start("a")
	if st := w.waitFor("a", StateExited, StateError); st.State != StateExited {
		t.Errorf("a job without a type ran as %+v, want it exited once", st)
	}
}

// TestEnvCannotOverrideProcManVariables: env may not name PROCMAN_JOB or
// PROCMAN_INVOCATION, and an env_file that sets them does not win either:
// crash recovery knows a run's processes by them.
func TestEnvCannotOverrideProcManVariables(t *testing.T) {
	for _, k := range []string{"PROCMAN_JOB", "PROCMAN_INVOCATION"} {
		err := Job{Name: "a", Command: "true", Env: map[string]string{k: "x"}}.Validate()
		if fe := FieldErrors(err); len(fe) != 1 || fe[0].Field != "env" || !strings.Contains(fe[0].Msg, k) {
			t.Errorf("env %s: %v, want a FieldError on env naming it", k, err)
		}
	}
	w := setup(t)
	writeEnv(t, w.dir+"/job.env", "PROCMAN_JOB=other\nPROCMAN_INVOCATION=forged\n")
	got := w.runOnce(Job{Name: "envy", Command: `echo "$PROCMAN_JOB $PROCMAN_INVOCATION"`, Dir: w.dir, EnvFile: "job.env"})
	runs, err := w.m.Runs(ctxT(t), "envy", RunsOptions{})
	if err != nil || len(runs) == 0 {
		t.Fatal(runs, err)
	}
	if want := "envy " + runs[0].Invocation + "\n"; got != want {
		t.Errorf("the run saw %q, want %q", got, want)
	}
}
