package procman

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// parse is ParseDocument of a YAML text, for tests.
func parse(t *testing.T, text string) Document {
	t.Helper()
	doc, err := ParseDocument([]byte(text), YAML)
	if err != nil {
		t.Fatalf("ParseDocument: %v\n%s", err, text)
	}
	return doc
}

func (w *world) apply(doc Document, opts ApplyOptions) Plan {
	w.t.Helper()
	p, err := w.m.Apply(ctxT(w.t), doc, opts)
	if err != nil {
		w.t.Fatalf("Apply: %v", err)
	}
	return p
}

// names of the updated jobs of a plan.
func updatedNames(p Plan) []string {
	var out []string
	for _, u := range p.Updated {
		out = append(out, u.Name)
	}
	return out
}

// sources maps each job to its source, as Entries shows it.
func (w *world) sources() map[string]string {
	out := map[string]string{}
	for _, e := range w.m.Entries() {
		out[e.Name] = e.Source
	}
	return out
}

// TestApplyPlan: a document creates what is new, updates what differs (each
// changed field with its old and new value), leaves the rest, and a dry run
// shows the same plan and changes nothing. On both databases.
func TestApplyPlan(t *testing.T) {
	eachDialect(t, func(t *testing.T, d dialect) {
		w := setupOn(t, d)
		w.create(Job{Name: "db", Command: "exec sleep 100", Type: Continuous, Env: map[string]string{"A": "1"}})
		w.create(Job{Name: "cron", Command: "echo tick", Schedule: "@daily"})
		doc := parse(t, `jobs:
  db:
    command: exec sleep 200
    type: continuous
    env: {A: "2"}
    stop_timeout: 3s
  cron:
    command: echo tick
    schedule: "@daily"
  web:
    command: exec sleep 100
    type: continuous
`)
		dry := w.apply(doc, ApplyOptions{Source: "stack.yaml", DryRun: true})
		want := Plan{Source: "stack.yaml", DryRun: true, Created: []string{"web"}, Deleted: []string{}, Unchanged: []string{"cron"},
			Restarted: []string{}, Updated: []JobChange{{Name: "db", Source: SourceAPI, Fields: []FieldChange{
				{Field: "command", Old: []byte(`"exec sleep 100"`), New: []byte(`"exec sleep 200"`)},
				{Field: "env", Old: []byte(`{"A":"1"}`), New: []byte(`{"A":"2"}`)},
				{Field: "stop_timeout", New: []byte(`"3s"`)}}}}}
		if !reflect.DeepEqual(dry, want) {
			t.Fatalf("dry run planned\n%+v\nwant\n%+v", dry, want)
		}
		if _, err := w.m.Get("web"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("a dry run created web: %v", err)
		}
		if j, _ := w.m.Get("db"); j.Command != "exec sleep 100" {
			t.Fatalf("a dry run changed db: %+v", j)
		}

		done := w.apply(doc, ApplyOptions{Source: "stack.yaml"})
		want.DryRun = false
		if !reflect.DeepEqual(done, want) {
			t.Fatalf("apply did\n%+v\nwant\n%+v", done, want)
		}
		for _, j := range doc.Jobs {
			if got, _ := w.m.Get(j.Name); !reflect.DeepEqual(got, j) {
				t.Errorf("%s is %+v, want %+v", j.Name, got, j)
			}
		}
		if got := w.sources(); !reflect.DeepEqual(got, map[string]string{"db": SourceAPI, "cron": SourceAPI, "web": "stack.yaml"}) {
			t.Errorf("sources %v: the created job is the document's, the others keep theirs", got)
		}
		again := w.apply(doc, ApplyOptions{Source: "stack.yaml"})
		if again.Changed() || len(again.Unchanged) != 3 {
			t.Errorf("applying again: %+v, want every job unchanged", again)
		}

		// What was applied is what a new Manager loads.
		w.m.Close()
		cfg := d.db(t, w.dir)
		if d == sqliteDB {
			cfg.DBPath = filepath.Join(w.dir, "procman.db")
		} else {
			cfg.Postgres = w.m.cfg.Postgres
		}
		m2 := w.open(cfg)
		for _, j := range doc.Jobs {
			if got, _ := m2.Get(j.Name); !reflect.DeepEqual(got, j) {
				t.Errorf("after reopening, %s is %+v, want %+v", j.Name, got, j)
			}
		}
		for _, e := range m2.Entries() {
			if want := map[string]string{"web": "stack.yaml"}[e.Name]; e.Source != cmpOr(want, SourceAPI) {
				t.Errorf("after reopening, %s has source %q", e.Name, e.Source)
			}
		}
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestApplyPrune: prune stops and deletes the jobs of the document's source
// that it no longer has, and never a job of another source, nor one made by
// hand; prune with no source is refused.
func TestApplyPrune(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "byhand", Command: "exec sleep 100", Type: Continuous})
	w.apply(parse(t, "jobs:\n  keep: {command: exec sleep 100, type: continuous}\n  old: {command: exec sleep 100, type: continuous}\n"), ApplyOptions{Source: "a.yaml"})
	w.apply(parse(t, "jobs:\n  other: {command: exec sleep 100, type: continuous}\n"), ApplyOptions{Source: "b.yaml"})
	for _, name := range []string{"byhand", "keep", "old", "other"} {
		w.start(name)
	}
	old := w.waitFor("old", StateRunning)

	p := w.apply(parse(t, "jobs:\n  keep: {command: exec sleep 100, type: continuous}\n"), ApplyOptions{Source: "a.yaml", Prune: true})
	if !slices.Equal(p.Deleted, []string{"old"}) || !slices.Equal(p.Unchanged, []string{"keep"}) {
		t.Fatalf("plan %+v, want old deleted and keep unchanged", p)
	}
	if _, err := w.m.Get("old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("old not deleted: %v", err)
	}
	waitGone(t, old.PID, 5*time.Second)
	for _, name := range []string{"byhand", "keep", "other"} {
		if st, _ := w.m.State(name); st.State != StateRunning {
			t.Errorf("%s: %+v, want it running still", name, st)
		}
	}

	// Without its jobs, a.yaml's document prunes only its own.
	p = w.apply(parse(t, "jobs: {}\n"), ApplyOptions{Source: "a.yaml", Prune: true})
	if !slices.Equal(p.Deleted, []string{"keep"}) {
		t.Errorf("plan %+v, want keep deleted alone", p)
	}
	if got := w.sources(); !reflect.DeepEqual(got, map[string]string{"byhand": SourceAPI, "other": "b.yaml"}) {
		t.Errorf("left %v", got)
	}
	for _, src := range []string{"", SourceAPI} {
		if _, err := w.m.Apply(ctxT(t), parse(t, "jobs: {}\n"), ApplyOptions{Source: src, Prune: true}); !errors.Is(err, ErrInvalid) {
			t.Errorf("prune with source %q: %v, want ErrInvalid", src, err)
		}
	}
	if _, err := w.m.Get("byhand"); err != nil {
		t.Errorf("a job made by hand was pruned: %v", err)
	}
}

// TestApplyRefusesEveryProblem: a document with problems only a Manager can
// see (a user it cannot run as) and a Document made in Go with a job twice:
// every problem is listed, with its line, and nothing changes.
func TestApplyRefusesEveryProblem(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "exec sleep 100", Type: Continuous})
	doc := parse(t, "jobs:\n  db:\n    command: exec sleep 200\n    type: continuous\n  web:\n    command: a\n    user: no-such-user-here\n  api:\n    command: b\n    user: no-such-user-here\n")
	_, err := w.m.Apply(ctxT(t), doc, ApplyOptions{Source: "f.yaml"})
	if got, want := problemsOf(err), []problem{{"web", "user", 7}, {"api", "user", 10}}; !errors.Is(err, ErrInvalid) || !slices.Equal(got, want) {
		t.Fatalf("%v: problems %+v, want %+v", err, got, want)
	}
	twice := Document{Jobs: []Job{{Name: "x", Command: "a"}, {Name: "x", Command: "b"}, {Name: "y"}}}
	_, err = w.m.Apply(ctxT(t), twice, ApplyOptions{})
	if got, want := problemsOf(err), []problem{{"x", "name", 0}, {"y", "command", 0}}; !slices.Equal(got, want) {
		t.Fatalf("%v: problems %+v, want %+v", err, got, want)
	}
	if j, _ := w.m.Get("db"); j.Command != "exec sleep 100" || len(w.m.List()) != 1 {
		t.Errorf("a refused document changed something: %+v", w.m.List())
	}
}

// TestApplyIsOneTransaction: when one write of an apply fails, none is
// made, on both databases: the pruned job, deleted first in the
// transaction, is still saved (and stays, stopped), and the update is not.
func TestApplyIsOneTransaction(t *testing.T) {
	eachDialect(t, func(t *testing.T, d dialect) {
		w := setupOn(t, d)
		w.apply(parse(t, "jobs:\n  old: {command: exec sleep 100, type: continuous}\n  web: {command: v1}\n"), ApplyOptions{Source: "f.yaml"})
		w.start("old")
		// A job of that name is in the database behind the Manager's back:
		// the document's create of it fails, after its delete of old.
		s := openTestStore(t, w.m.cfg)
		if err := insertJob(ctxT(t), s.wdb, newJobID(), SourceAPI, w.m.cfg.Host, Job{Name: "clash", Command: "x", Type: OneTime}); err != nil {
			t.Fatal(err)
		}
		s.close()
		_, err := w.m.Apply(ctxT(t), parse(t, "jobs:\n  web: {command: v2}\n  clash: {command: y}\n"), ApplyOptions{Source: "f.yaml", Prune: true})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("Apply: %v, want ErrExists", err)
		}
		s = openTestStore(t, w.m.cfg)
		defer s.close()
		saved, err := s.all(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, j := range saved {
			got[j.Name] = j.Command
		}
		if want := map[string]string{"old": "exec sleep 100", "web": "v1", "clash": "x"}; !reflect.DeepEqual(got, want) {
			t.Errorf("saved %v, want %v: the failed apply wrote some of its changes", got, want)
		}
		if j, err := w.m.Get("web"); err != nil || j.Command != "v1" {
			t.Errorf("web: %+v, %v: want v1 still", j, err)
		}
		if st, err := w.m.State("old"); err != nil || st.State != StateStopped {
			t.Errorf("old: %+v, %v; want it there, stopped", st, err)
		}
		w.start("old") // not left marked deleted
	})
}

// TestApplyRunningJobKeepsItsRun: a changed running job keeps its run, and
// takes its new definition at its next start; with Restart, at once.
func TestApplyRunningJobKeepsItsRun(t *testing.T) {
	w := setup(t)
	marker := filepath.Join(w.dir, "ran")
	doc := func(v string) Document {
		return parse(t, "jobs:\n  web:\n    command: echo "+v+" >> "+marker+"; exec sleep 100\n    type: continuous\n")
	}
	w.apply(doc("v1"), ApplyOptions{Source: "f"})
	w.start("web")
	first := w.waitFor("web", StateRunning)
	eventually(t, "v1 written", func() bool { b, _ := os.ReadFile(marker); return string(b) == "v1\n" })

	p := w.apply(doc("v2"), ApplyOptions{Source: "f"})
	if len(p.Restarted) != 0 || !slices.Equal(updatedNames(p), []string{"web"}) {
		t.Fatalf("plan %+v", p)
	}
	if st, _ := w.m.State("web"); st.State != StateRunning || st.PID != first.PID {
		t.Errorf("after apply: %+v, want the run of pid %d going on", st, first.PID)
	}
	p = w.apply(doc("v3"), ApplyOptions{Source: "f", Restart: true})
	if !slices.Equal(p.Restarted, []string{"web"}) {
		t.Fatalf("plan %+v, want web restarted", p)
	}
	if st, _ := w.m.State("web"); st.State != StateRunning || st.PID == first.PID {
		t.Errorf("after apply with restart: %+v, want a new run", st)
	}
	eventually(t, "v3 written", func() bool { b, _ := os.ReadFile(marker); return string(b) == "v1\nv3\n" })
	waitGone(t, first.PID, 5*time.Second)
}

// TestApplyStartsCreatedRebootJobs: a created job with the reboot schedule
// starts, as Create starts it; an updated one is left as it is.
func TestApplyStartsCreatedRebootJobs(t *testing.T) {
	w := setup(t)
	w.apply(parse(t, "jobs:\n  web: {command: exec sleep 100, type: continuous, schedule: reboot}\n"), ApplyOptions{Source: "f"})
	st := w.waitFor("web", StateRunning)
	w.apply(parse(t, "jobs:\n  web: {command: exec sleep 200, type: continuous, schedule: reboot}\n"), ApplyOptions{Source: "f"})
	if now, _ := w.m.State("web"); now.PID != st.PID {
		t.Errorf("an updated reboot job was restarted: %+v, was %+v", now, st)
	}
}

// TestExportRoundTrip: every job, with every field a job can have
// (fullJob), written as a document in either format and applied back, is
// unchanged.
func TestExportRoundTrip(t *testing.T) {
	w := setup(t)
	w.m.root = true // fullJob's user is only checked, never switched to
	// full depends on db.
	w.create(Job{Name: "db", Command: "sleep 100", Type: Continuous})
	w.create(fullJob("full", w.dir))
	w.create(Job{Name: "once", Command: "echo 'a: b'\necho \"#x\"\n", Schedule: "@hourly", Overlap: OverlapRestart, Env: map[string]string{"N": "8080", "B": "yes"}})
	w.apply(parse(t, "jobs:\n  filed: {command: exec sleep 1}\n"), ApplyOptions{Source: "f.yaml"})
	for _, f := range []Format{YAML, JSON} {
		text, err := Document{Jobs: w.m.List()}.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ParseDocument(text, f)
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, text)
		}
		p := w.apply(doc, ApplyOptions{Source: "f.yaml", Prune: true})
		if p.Changed() || !slices.Equal(p.Unchanged, []string{"db", "filed", "full", "once"}) {
			t.Errorf("%s: applying the export: %+v, want every job unchanged\n%s", f, p, text)
		}
	}
}

// TestJobsFile: Open applies Config.JobsFile before starting any job (a
// reboot job it creates runs once), pruning that file's jobs it no longer
// has; Reload applies it again. A broken file fails Open with every
// problem, and on Reload changes nothing, and the metrics say so.
func TestJobsFile(t *testing.T) {
	w := setup(t)
	dir := w.dir
	file := filepath.Join(dir, "procman.yaml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w.create(Job{Name: "byhand", Command: "true"})
	w.m.Close()
	cfg := Config{DBPath: filepath.Join(dir, "procman.db"), LogDir: filepath.Join(dir, "logs"), JobsFile: file, Logger: w.m.log}

	write("jobs:\n  web: {command: exec sleep 100, type: continuous, schedule: reboot}\n  gone: {command: 'true'}\n  bad: {command: ''}\n  worse: {colour: red}\n")
	_, err := Open(ctxT(t), cfg)
	if got, want := problemsOf(err), []problem{{"bad", "command", 4}, {"worse", "colour", 5}, {"worse", "command", 5}}; !slices.Equal(got, want) {
		t.Fatalf("Open with a broken file: %v: problems %+v, want %+v", err, got, want)
	}

	write("jobs:\n  web: {command: exec sleep 100, type: continuous, schedule: reboot}\n  gone: {command: 'true'}\n")
	m := w.open(cfg)
	st, err := m.WaitFor(ctxT(t), "web", StateRunning)
	if err != nil {
		t.Fatal(err)
	}
	if runs, _ := m.Runs(ctxT(t), "web", RunsOptions{}); len(runs) != 1 || runs[0].Trigger != TriggerReboot {
		t.Errorf("runs %+v, want one reboot run", runs)
	}
	g := m.Metrics()
	if err := testutil.GatherAndCompare(g, strings.NewReader(`
# HELP procman_config_last_reload_successful Whether the last application of the jobs file (-config) succeeded: 1, or 0 when it changed nothing.
# TYPE procman_config_last_reload_successful gauge
procman_config_last_reload_successful 1
`), "procman_config_last_reload_successful"); err != nil {
		t.Error(err)
	}
	at, _ := metricValue(t, g, "procman_config_last_reload_success_timestamp_seconds")
	if age := time.Since(time.Unix(int64(at), 0)); age < 0 || age > time.Minute {
		t.Errorf("last success %v ago", age)
	}

	write("jobs:\n  web: {command: exec sleep 200, type: continuous, schedule: reboot\n")
	if _, err := m.Reload(ctxT(t)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reload of a broken file: %v", err)
	}
	if v, _ := metricValue(t, g, "procman_config_last_reload_successful"); v != 0 {
		t.Errorf("after a failed reload: %v, want 0", v)
	}
	if later, _ := metricValue(t, g, "procman_config_last_reload_success_timestamp_seconds"); later != at {
		t.Errorf("a failed reload moved the last success from %v to %v", at, later)
	}
	if j, _ := m.Get("web"); j.Command != "exec sleep 100" || len(m.List()) != 3 {
		t.Errorf("a failed reload changed something: %+v", m.List())
	}

	write("jobs:\n  web: {command: exec sleep 200, type: continuous, schedule: reboot}\n")
	p, err := m.Reload(ctxT(t))
	if err != nil || !slices.Equal(p.Deleted, []string{"gone"}) || !slices.Equal(updatedNames(p), []string{"web"}) {
		t.Fatalf("Reload: %+v, %v", p, err)
	}
	if now, _ := m.State("web"); now.PID != st.PID {
		t.Errorf("reload restarted web: %+v", now)
	}
	if v, _ := metricValue(t, g, "procman_config_last_reload_successful"); v != 1 {
		t.Errorf("after a reload: %v, want 1", v)
	}
	if _, err := m.Get("byhand"); err != nil {
		t.Errorf("the reload pruned a job made by hand: %v", err)
	}
}

// TestNoJobsFileNoReloadSeries: without a jobs file, Reload is refused and
// no reload series exists, to alert on.
func TestNoJobsFileNoReloadSeries(t *testing.T) {
	w := setup(t)
	if _, err := w.m.Reload(ctxT(t)); !errors.Is(err, ErrInvalid) {
		t.Errorf("Reload without a jobs file: %v", err)
	}
	if _, ok := metricValue(t, w.m.Metrics(), "procman_config_last_reload_successful"); ok {
		t.Error("a reload series without a jobs file")
	}
}

// TestApplyChecksDependencies: the document's depends_on are checked against
// the jobs there would be after it (its own, and those of ProcMan that its
// prune leaves): a job in neither, a cycle (through ProcMan's jobs too), a
// completed* condition on a continuous job (in the document, or one the
// document makes continuous while another job waits for its end), a prune of
// a job another job still depends on. Each is a problem with its job, field
// and line, and nothing changes: not even the stop of a job to prune.
func TestApplyChecksDependencies(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "db", Command: "exec sleep 100", Type: Continuous})
	w.create(Job{Name: "y", Command: "true"})
	w.create(Job{Name: "x", Command: "true", DependsOn: Dependencies{"y": ConditionStarted}})
	w.create(Job{Name: "mig", Command: "true"})
	w.create(Job{Name: "after", Command: "true", DependsOn: Dependencies{"mig": ConditionCompleted}})
	w.apply(parse(t, "jobs:\n  old: {command: exec sleep 100, type: continuous}\n  cache: {command: exec sleep 100, type: continuous}\n"), ApplyOptions{Source: "f.yaml"})
	w.create(Job{Name: "uses", Command: "true", DependsOn: Dependencies{"old": ConditionStarted}})
	w.start("old")
	old := w.waitFor("old", StateRunning)
	before := w.m.List()

	for _, tc := range []struct {
		name, doc string
		prune     bool
		want      []problem
		says      string
	}{
		{"a job in neither the document nor ProcMan", "jobs:\n  web:\n    command: a\n    depends_on: [nosuch]\n", false,
			[]problem{{"web", "depends_on", 4}}, `unknown job "nosuch"`},
		{"a cycle in the document", "jobs:\n  a:\n    command: a\n    depends_on: [b]\n  b:\n    command: b\n    depends_on: [a]\n", false,
			[]problem{{"a", "depends_on", 4}}, "a -> b -> a"},
		{"a cycle through ProcMan's jobs", "jobs:\n  y:\n    command: b\n    depends_on: [z]\n  z:\n    command: c\n    depends_on: [x]\n", false,
			[]problem{{"y", "depends_on", 4}}, "y -> z -> x -> y"},
		{"completed on a continuous job of ProcMan", "jobs:\n  web:\n    command: a\n    depends_on: {db: completed}\n", false,
			[]problem{{"web", "depends_on", 4}}, `"db" is continuous`},
		{"completed_successfully on a continuous job of the document", "jobs:\n  svc: {command: a, type: continuous}\n  web:\n    command: a\n    depends_on: {svc: completed_successfully}\n", false,
			[]problem{{"web", "depends_on", 5}}, `"svc" is continuous`},
		{"a job made continuous that another waits to complete", "jobs:\n  mig:\n    command: a\n    type: continuous\n", false,
			[]problem{{"mig", "type", 4}}, `"after" depends on this job`},
		{"a prune of a job another still depends on", "jobs:\n  cache: {command: exec sleep 100, type: continuous}\n", true,
			[]problem{{"old", "", 0}}, "uses"},
		{"a dependency on a job the prune deletes", "jobs:\n  cache:\n    command: exec sleep 100\n    type: continuous\n    depends_on: [old]\n", true,
			[]problem{{"cache", "depends_on", 5}, {"old", "", 0}}, "the prune deletes it"},
	} {
		for _, dry := range []bool{true, false} {
			_, err := w.m.Apply(ctxT(t), parse(t, tc.doc), ApplyOptions{Source: "f.yaml", Prune: tc.prune, DryRun: dry})
			if got := problemsOf(err); !errors.Is(err, ErrInvalid) || !slices.Equal(got, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("%s (dry run %v): %v: problems %+v, want %+v saying %q", tc.name, dry, err, got, tc.want, tc.says)
			}
		}
	}
	if after := w.m.List(); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused document changed the jobs:\n%+v\nwas\n%+v", after, before)
	}
	if st, _ := w.m.State("old"); st.State != StateRunning || st.PID != old.PID {
		t.Errorf("old after the refused prunes: %+v, want its run of pid %d going on", st, old.PID)
	}
}

// TestApplyStackStartsInOrder: a document of a database with a health
// check, a one_time migration and a web server that depends on both
// (healthy, completed_successfully), all started at boot: Apply returns
// while the web server waits (as Create does), and it starts only once the
// database is healthy and the migration has exited 0.
func TestApplyStackStartsInOrder(t *testing.T) {
	w := setup(t)
	doc := parse(t, `jobs:
  web:
    command: test -e db.ok && test -e migrate.go || exit 3; exec sleep 100
    type: continuous
    schedule: reboot
    dir: `+w.dir+`
    depends_on: {db: healthy, migrate: completed_successfully}
  migrate:
    command: while [ ! -e migrate.go ]; do sleep 0.02; done
    schedule: reboot
    dir: `+w.dir+`
  db:
    command: ": > db.ok; exec sleep 100"
    type: continuous
    schedule: reboot
    dir: `+w.dir+`
    health: {exec: test -e db.ok, interval: 20ms, retries: 2}
`)
	done := make(chan error, 1)
	go func() { _, err := w.m.Apply(ctxT(t), doc, ApplyOptions{Source: "stack.yaml"}); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Apply: %v", err)
		}
	case <-time.After(10 * time.Second):
		letThrough(t, w.dir, "migrate") // so that the test ends
		t.Fatal("Apply waits for web's dependencies")
	}
	w.health("db", HealthHealthy)
	w.until("web", "waiting for migrate", func(st Status) bool {
		return st.State == StateStarting && st.WaitingFor["migrate"] == ConditionCompletedSuccessfully
	})
	letThrough(t, w.dir, "migrate")
	if st := w.waitFor("migrate", StateExited, StateError); st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("migrate: %+v, want exit code 0", st)
	}
	web := w.waitFor("web", StateRunning, StateRetrying, StateError)
	if st, _ := w.m.State("web"); st.State != StateRunning || st.PID != web.PID || web.Restarts != 0 {
		t.Errorf("web: %+v, want it running its first run", st)
	}
	if runs, _ := w.m.Runs(ctxT(t), "migrate", RunsOptions{}); len(runs) != 1 {
		t.Errorf("migrate ran %d times, want once: %+v", len(runs), runs)
	}
}

// TestApplyKeepsTheGraph: the jobs an apply creates, updates and prunes are
// in the dependency graph: a stop of a dependency stops its applied
// dependents first, a delete of a job an applied job depends on is refused,
// and one that an update or a prune freed is not.
func TestApplyKeepsTheGraph(t *testing.T) {
	w := setup(t)
	w.apply(parse(t, "jobs:\n  db: {command: exec sleep 100, type: continuous}\n  web: {command: exec sleep 100, type: continuous, depends_on: [db]}\n"), ApplyOptions{Source: "f.yaml"})
	w.start("web")
	w.waitFor("db", StateRunning)
	w.waitFor("web", StateRunning)
	if stopped, err := w.m.StopWithDependents(ctxT(t), "db"); err != nil || !slices.Equal(stopped, []string{"web"}) {
		t.Errorf("stop of db: stopped %v, %v; want web stopped first", stopped, err)
	}
	if st, _ := w.m.State("web"); st.State != StateStopped {
		t.Errorf("web after the stop of db: %s", st.State)
	}
	if err := w.m.Delete(ctxT(t), "db"); !errors.Is(err, ErrInUse) {
		t.Errorf("Delete of db: %v, want ErrInUse (web, created by apply, depends on it)", err)
	}
	w.create(Job{Name: "api", Command: "true"})
	w.apply(parse(t, "jobs:\n  db: {command: exec sleep 100, type: continuous}\n  web: {command: exec sleep 100, type: continuous, depends_on: [api]}\n"), ApplyOptions{Source: "f.yaml"})
	if err := w.m.Delete(ctxT(t), "api"); !errors.Is(err, ErrInUse) {
		t.Errorf("Delete of api: %v, want ErrInUse (web, updated by apply, depends on it)", err)
	}
	if err := w.m.Delete(ctxT(t), "db"); err != nil {
		t.Errorf("Delete of db, which nothing depends on since the update: %v", err)
	}
	w.apply(parse(t, "jobs: {}\n"), ApplyOptions{Source: "f.yaml", Prune: true})
	if err := w.m.Delete(ctxT(t), "api"); err != nil {
		t.Errorf("Delete of api, which nothing depends on since the prune: %v", err)
	}
}

// TestApplyRestartsInDependencyOrder: with Restart, the changed active jobs
// restart dependencies first, whatever their names: the dependent's new run
// starts after its dependency's.
func TestApplyRestartsInDependencyOrder(t *testing.T) {
	w := setup(t)
	doc := func(v string) Document {
		return parse(t, "jobs:\n  api:\n    command: exec sleep 10"+v+"\n    type: continuous\n    depends_on: [zdb]\n"+
			"  zdb:\n    command: exec sleep 10"+v+"\n    type: continuous\n")
	}
	w.apply(doc("0"), ApplyOptions{Source: "f.yaml"})
	w.start("api")
	api, zdb := w.waitFor("api", StateRunning), w.waitFor("zdb", StateRunning)
	p := w.apply(doc("1"), ApplyOptions{Source: "f.yaml", Restart: true})
	if !slices.Equal(p.Restarted, []string{"api", "zdb"}) {
		t.Fatalf("plan %+v, want api and zdb restarted", p)
	}
	if st := w.waitFor("api", StateRunning); st.PID == api.PID {
		t.Errorf("api not restarted")
	}
	if st := w.waitFor("zdb", StateRunning); st.PID == zdb.PID {
		t.Errorf("zdb not restarted")
	}
	newest := func(name string) time.Time {
		runs, err := w.m.Runs(ctxT(t), name, RunsOptions{Limit: 1})
		if err != nil || len(runs) != 1 {
			t.Fatalf("runs of %s: %+v, %v", name, runs, err)
		}
		return runs[0].StartedAt
	}
	if a, z := newest("api"), newest("zdb"); !z.Before(a) {
		t.Errorf("api's new run started at %v, before zdb's at %v", a, z)
	}
}
