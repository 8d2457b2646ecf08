package httpapi_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// TestDependenciesOverTheAPI: depends_on is taken as a list or an object and
// sent as an object; a cycle is refused with 400 showing it, the delete of a
// job others depend on with 409 in_use naming them; a start that waits shows
// waiting_for; a stop answers which dependents it stopped first.
func TestDependenciesOverTheAPI(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("db"))
	want(t, s.doJSON(t, http.MethodPost, "/job/create",
		`{"name":"web","command":"sleep 100","type":"continuous","depends_on":["db"]}`), http.StatusCreated)
	if r := s.doJSON(t, http.MethodGet, "/job/web", nil); !strings.Contains(string(r.body), `"depends_on":{"db":"started"}`) {
		t.Errorf("%v: want depends_on as an object", r)
	}

	r := s.doJSON(t, http.MethodPut, "/job/replace/db", `{"command":"sleep 100","type":"continuous","depends_on":{"web":"started"}}`)
	if msg := errorMessage(t, r, http.StatusBadRequest); !strings.Contains(msg, "db -> web -> db") || !strings.Contains(string(r.body), `"field":"depends_on"`) {
		t.Errorf("%v: want the cycle shown, on depends_on", r)
	}
	r = s.doJSON(t, http.MethodDelete, "/job/delete/db", nil)
	if msg := errorMessage(t, r, http.StatusConflict); errorCode(t, r) != "in_use" || !strings.Contains(msg, "web") {
		t.Errorf("%v: want in_use naming web", r)
	}

	dir := t.TempDir()
	s.create(t, procman.Job{Name: "gate", Command: "while [ ! -e go ]; do sleep 0.02; done", Type: procman.OneTime, Dir: dir})
	s.create(t, procman.Job{Name: "app", Command: sleeper, Type: procman.Continuous,
		DependsOn: procman.Dependencies{"gate": procman.ConditionCompleted}})
	answer := make(chan response, 1)
	go func() {
		r, err := s.send(http.MethodPost, "/job/app/start", nil)
		if err != nil {
			t.Error(err)
		}
		answer <- r
	}()
	s.waitState(t, "app", "waiting for gate", func(st procman.Status) bool {
		return maps.Equal(st.WaitingFor, map[string]procman.Condition{"gate": procman.ConditionCompleted})
	})
	if r := s.doJSON(t, http.MethodGet, "/job/app/state", nil); !strings.Contains(string(r.body), `"state":"starting"`) ||
		!strings.Contains(string(r.body), `"waiting_for":{"gate":"completed"}`) {
		t.Errorf("%v: want starting, waiting for gate", r)
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := <-answer; r.code != http.StatusOK || decode[procman.Status](t, r).State != procman.StateRunning {
		t.Errorf("%v: the start answers once app runs", r)
	}

	s.control(t, http.MethodPost, "web", "start")
	r = s.doJSON(t, http.MethodPost, "/job/db/stop", nil)
	want(t, r, http.StatusOK)
	var got struct {
		procman.Status
		StoppedDependents []string `json:"stopped_dependents"`
	}
	if err := json.Unmarshal(r.body, &got); err != nil || got.Name != "db" || got.State != procman.StateStopped ||
		!reflect.DeepEqual(got.StoppedDependents, []string{"web"}) {
		t.Errorf("%v: want db stopped, having stopped web first", r)
	}
	if st := s.control(t, http.MethodPost, "app", "stop"); st.State != procman.StateStopped { // no dependents: a status alone
		t.Errorf("app: %+v", st)
	}
}
