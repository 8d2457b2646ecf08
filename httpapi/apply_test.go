package httpapi_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// post sends body to path with a Content-Type.
func (s *server) post(t *testing.T, path, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return response{method: http.MethodPost, path: path, code: resp.StatusCode, header: resp.Header, body: raw}
}

const stackDoc = `jobs:
  db:
    command: exec sleep 100
    type: continuous
    schedule: reboot
  web:
    command: exec sleep 100
    type: continuous
`

// TestApplyRoute: POST /apply plans (dry_run=1) and applies a document in
// YAML or JSON, prunes the jobs of its source only, restarts the changed
// running jobs with restart=1, and answers the plan.
func TestApplyRoute(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "byhand", Command: "true", Type: procman.OneTime})

	r := s.post(t, "/apply?dry_run=1&source=stack.yaml", "application/yaml", stackDoc)
	want(t, r, http.StatusOK)
	plan := decode[procman.Plan](t, r)
	if !plan.DryRun || !slices.Equal(plan.Created, []string{"db", "web"}) || len(s.m.List()) != 1 {
		t.Fatalf("dry run: %+v; jobs %v", plan, s.m.List())
	}
	plan = decode[procman.Plan](t, s.post(t, "/apply?source=stack.yaml", "application/yaml", stackDoc))
	if plan.DryRun || !slices.Equal(plan.Created, []string{"db", "web"}) {
		t.Fatalf("apply: %+v", plan)
	}
	s.waitState(t, "db", "running", isState(procman.StateRunning))

	// The same source in JSON, without web, and db changed: pruned, updated.
	r = s.post(t, "/apply?prune=1&source=stack.yaml", "application/json",
		`{"jobs": {"db": {"command": "exec sleep 200", "type": "continuous", "schedule": "reboot"}}}`)
	want(t, r, http.StatusOK)
	plan = decode[procman.Plan](t, r)
	wantPlan := procman.Plan{Source: "stack.yaml", Created: []string{}, Deleted: []string{"web"}, Unchanged: []string{}, Restarted: []string{},
		Updated: []procman.JobChange{{Name: "db", Source: "stack.yaml", Fields: []procman.FieldChange{
			{Field: "command", Old: []byte(`"exec sleep 100"`), New: []byte(`"exec sleep 200"`)}}}}}
	if !reflect.DeepEqual(plan, wantPlan) {
		t.Fatalf("plan\n%+v\nwant\n%+v", plan, wantPlan)
	}
	var names []string
	for _, e := range s.m.Entries() {
		names = append(names, e.Name+":"+e.Source)
	}
	if !slices.Equal(names, []string{"byhand:api", "db:stack.yaml"}) {
		t.Errorf("jobs %v", names)
	}

	// restart=1: the changed running job is restarted (a dry run only says so).
	before := s.waitState(t, "db", "running", isState(procman.StateRunning))
	changed := `{"jobs": {"db": {"command": "exec sleep 300", "type": "continuous", "schedule": "reboot"}}}`
	plan = decode[procman.Plan](t, s.post(t, "/apply?restart=1&dry_run=1&source=stack.yaml", "application/json", changed))
	if st, _ := s.m.State("db"); !slices.Equal(plan.Restarted, []string{"db"}) || st.PID != before.PID {
		t.Fatalf("dry run with restart=1: %+v; db %+v, was pid %d", plan, st, before.PID)
	}
	plan = decode[procman.Plan](t, s.post(t, "/apply?restart=1&source=stack.yaml", "application/json", changed))
	if !slices.Equal(plan.Restarted, []string{"db"}) || len(plan.Updated) != 1 {
		t.Fatalf("restart=1: %+v", plan)
	}
	if st, _ := s.m.State("db"); st.State != procman.StateRunning || st.PID == before.PID {
		t.Errorf("restart=1 did not restart db: %+v, was pid %d", st, before.PID)
	}

	// Through the client, as the command line sends it.
	plan, err := s.api.Apply(context.Background(), []byte(stackDoc), procman.YAML, procman.ApplyOptions{Source: "stack.yaml", DryRun: true})
	if err != nil || !slices.Equal(plan.Created, []string{"web"}) || len(plan.Updated) != 1 {
		t.Errorf("client Apply: %+v, %v", plan, err)
	}
}

// TestApplyRouteRefusesBadInput: a body that is not YAML or JSON, a job
// given twice, jobs that fail validation, a dependency on a job neither in
// the document nor in ProcMan, a cycle, completed on a continuous job, a
// prune of a job another job still depends on: 400 listing every problem
// with its job, field and line, and nothing changed. A body of another type
// is 415, an unknown or malformed parameter 400, a prune without a source 400.
func TestApplyRouteRefusesBadInput(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "db", Command: "exec sleep 100", Type: procman.Continuous})
	if _, err := s.api.Apply(context.Background(), []byte("jobs:\n  old: {command: 'true'}\n"), procman.YAML, procman.ApplyOptions{Source: "g.yaml"}); err != nil {
		t.Fatal(err)
	}
	s.create(t, procman.Job{Name: "uses", Command: "true", Type: procman.OneTime, DependsOn: procman.Dependencies{"old": procman.ConditionStarted}})
	before := s.m.List()
	type problem struct {
		Job, Field string
		Line       int
	}
	for _, tc := range []struct {
		query, body string
		want        []problem
	}{
		{"source=f.yaml", "jobs:\n  web:\n    command: a\n    depends_on: [nosuch]\n", []problem{{"web", "depends_on", 4}}},
		{"source=f.yaml", "jobs:\n  a: {command: a, depends_on: [b]}\n  b: {command: b, depends_on: [a]}\n", []problem{{"a", "depends_on", 2}}},
		{"source=f.yaml", "jobs:\n  web:\n    command: a\n    depends_on: {db: completed}\n", []problem{{"web", "depends_on", 4}}},
		{"source=g.yaml&prune=1", "jobs: {}\n", []problem{{"old", "", 0}}},
	} {
		r := s.post(t, "/apply?"+tc.query, "application/yaml", tc.body)
		errorMessage(t, r, http.StatusBadRequest)
		e := decode[struct {
			Error, Code string
			Errors      []procman.FieldError
		}](t, r)
		var got []problem
		for _, fe := range e.Errors {
			got = append(got, problem{fe.Job, fe.Field, fe.Line})
		}
		if !slices.Equal(got, tc.want) || e.Code != "invalid" {
			t.Errorf("%s: %s: problems %+v, want %+v (%s)", tc.query, tc.body, got, tc.want, e.Error)
		}
	}
	for _, tc := range []struct {
		name, ct, body string
		want           []problem
	}{
		{"not YAML", "application/yaml", "jobs:\n  web: [\n", []problem{{"", "", 2}}},
		{"not JSON", "application/json", `{"jobs": {"web": }}`, []problem{{"", "", 1}}},
		{"a job twice", "application/yaml", "jobs:\n  db: {command: a}\n  db: {command: b}\n", []problem{{"db", "", 3}}},
		{"jobs that fail validation", "application/yaml",
			"jobs:\n  db:\n    command: ''\n    colour: red\n  web:\n    command: a\n    stop_timeout: 2h\n",
			[]problem{{"db", "command", 3}, {"db", "colour", 4}, {"web", "stop_timeout", 7}}},
		{"an alias inside the value it names", "application/yaml", "jobs: &d\n  web:\n    <<: *d\n    command: a\n", []problem{{"web", "", 3}}},
		{"a user that is not there", "application/yaml", "jobs:\n  web:\n    command: a\n    user: no-such-user-here\n", []problem{{"web", "user", 4}}},
	} {
		r := s.post(t, "/apply?source=f.yaml&prune=1", tc.ct, tc.body)
		errorMessage(t, r, http.StatusBadRequest)
		e := decode[struct {
			Error, Code string
			Errors      []procman.FieldError
		}](t, r)
		var got []problem
		for _, fe := range e.Errors {
			got = append(got, problem{fe.Job, fe.Field, fe.Line})
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: problems %+v, want %+v (%s)", tc.name, got, tc.want, e.Error)
		}
		_, err := s.api.Apply(context.Background(), []byte(tc.body), procman.FormatOf(map[string]string{"application/json": "f.json"}[tc.ct]), procman.ApplyOptions{})
		if fes := procman.FieldErrors(err); !errors.Is(err, procman.ErrInvalid) || len(fes) != len(tc.want) {
			t.Errorf("%s: client: %v, want every problem", tc.name, err)
		}
	}
	for _, tc := range []struct {
		query, ct string
		code      int
	}{
		{"", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"", "", http.StatusUnsupportedMediaType},
		{"?dryrun=1", "application/yaml", http.StatusBadRequest},
		{"?dry_run=yes", "application/yaml", http.StatusBadRequest},
		{"?prune=1", "application/yaml", http.StatusBadRequest},
		{"?prune=1&source=api", "application/yaml", http.StatusBadRequest},
	} {
		errorMessage(t, s.post(t, "/apply"+tc.query, tc.ct, "jobs: {}\n"), tc.code)
	}
	if after := s.m.List(); !reflect.DeepEqual(after, before) {
		t.Errorf("a refused document changed the jobs: %+v", after)
	}
}
