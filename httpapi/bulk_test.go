package httpapi_test

import (
	"bytes"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

type bulkLine struct {
	Name      string         `json:"name"`
	Status    procman.Status `json:"status"`
	Dependent bool           `json:"dependent"`
	Error     string         `json:"error"`
	Code      string         `json:"code"`
}

// bulk posts a bulk action, requiring 200, and returns its lines.
func (s *server) bulk(t *testing.T, path string) []bulkLine {
	t.Helper()
	r := s.doJSON(t, http.MethodPost, path, nil)
	want(t, r, http.StatusOK)
	return decode[[]bulkLine](t, r)
}

func bulkNames(lines []bulkLine) (names, dependents []string) {
	for _, l := range lines {
		names = append(names, l.Name)
		if l.Dependent {
			dependents = append(dependents, l.Name)
		}
	}
	return names, dependents
}

// TestBulkActions: POST /jobs/start|stop|restart act on the jobs the
// selector chooses, or on all with all=1, in dependency order, and answer
// one line per job: its status, and for a failure the error and its code.
func TestBulkActions(t *testing.T) {
	s := setup(t)
	s.create(t, labelled("db", map[string]string{"tier": "db"}))
	web := labelled("web", map[string]string{"tier": "web"})
	web.DependsOn = procman.Dependencies{"db": procman.ConditionStarted}
	s.create(t, web)
	s.create(t, labelled("www", map[string]string{"tier": "web"}))
	bad := procman.Job{Name: "bad", Command: "true", Type: procman.OneTime, Dir: "/nonexistent/dir", Labels: map[string]string{"tier": "web"}}
	s.create(t, bad)
	s.create(t, sleeperJob("plain"))

	lines := s.bulk(t, "/jobs/start?selector=tier%3Dweb")
	if names, _ := bulkNames(lines); !reflect.DeepEqual(names, []string{"bad", "www", "web"}) {
		t.Errorf("start: %q, want bad and www, then web (which depends on db)", names)
	}
	for _, l := range lines {
		switch {
		case l.Name == "bad" && (l.Code != "start_failed" || !strings.Contains(l.Error, "/nonexistent/dir")):
			t.Errorf("bad: %+v, want start_failed naming the dir", l)
		case l.Name != "bad" && (l.Error != "" || l.Status.State != procman.StateRunning):
			t.Errorf("%s: %+v, want running", l.Name, l)
		}
	}
	if st, _ := s.m.State("db"); st.State != procman.StateRunning {
		t.Errorf("db: %s, want started as web's dependency", st.State)
	}

	lines = s.bulk(t, "/jobs/stop?selector=tier%3Ddb")
	names, deps := bulkNames(lines)
	if !reflect.DeepEqual(names, []string{"web", "db"}) || !reflect.DeepEqual(deps, []string{"web"}) {
		t.Errorf("stop tier=db: %q (dependents %q), want web as a dependent, then db", names, deps)
	}
	for _, l := range lines {
		if l.Status.State != procman.StateStopped {
			t.Errorf("%s: %s, want stopped", l.Name, l.Status.State)
		}
	}
	if r := s.doJSON(t, http.MethodPost, "/jobs/restart?selector=tier%3Dnone", nil); !bytes.Equal(r.body, []byte("[]\n")) || r.code != http.StatusOK {
		t.Errorf("a selector matching nothing: %v, want 200 []", r)
	}
	lines = s.bulk(t, "/jobs/restart?all=1")
	if names, _ := bulkNames(lines); !reflect.DeepEqual(names, []string{"bad", "db", "plain", "www", "web"}) {
		t.Errorf("restart all: %q", names)
	}
	lines = s.bulk(t, "/jobs/stop?all=1")
	if names, _ := bulkNames(lines); !reflect.DeepEqual(names, []string{"bad", "plain", "web", "www", "db"}) {
		t.Errorf("stop all: %q", names)
	}
	for _, st := range s.m.States() {
		if st.State == procman.StateRunning {
			t.Errorf("%s is running after stop all=1", st.Name)
		}
	}
}

// TestBulkNeedsASelector: a bulk action without selector or all=1, with
// both, with a bad all or a bad selector is 400 naming the problem, and acts
// on no job.
func TestBulkNeedsASelector(t *testing.T) {
	s := setup(t)
	s.create(t, labelled("web", map[string]string{"tier": "web"}))
	s.control(t, http.MethodPost, "web", "start")
	for _, tc := range []struct{ query, want string }{
		{"", "needs ?selector=... (the jobs to act on"},
		{"?selector=tier%3Dweb&all=1", "not both"},
		{"?all=0", `all="0": to act on every job, give all=1`},
		{"?all=", `all="": to act on every job, give all=1`},
		{"?selector=", "selector: it is empty"},
		{"?selector=tier%3D%3D%3Dweb", "use key=value"},
	} {
		for _, act := range []string{"start", "stop", "restart"} {
			r := s.doJSON(t, http.MethodPost, "/jobs/"+act+tc.query, nil)
			if msg := errorMessage(t, r, http.StatusBadRequest); !strings.Contains(msg, tc.want) {
				t.Errorf("POST /jobs/%s%s: %q, want it to say %q", act, tc.query, msg, tc.want)
			}
		}
	}
	if st, _ := s.m.State("web"); st.State != procman.StateRunning || st.Restarts != 0 {
		t.Errorf("web: %+v after refused bulk actions, want running as before", st)
	}
	if r := s.doJSON(t, http.MethodGet, "/jobs/stop?all=1", nil); r.code != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET /jobs/stop: %v, want 405 with Allow POST", r)
	}
}
