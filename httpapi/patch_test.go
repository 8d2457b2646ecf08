package httpapi_test

import (
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// patch sends a PATCH with the given Content-Type.
func (s *server) patch(t *testing.T, path, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPatch, s.url+path, strings.NewReader(body))
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
	return response{method: http.MethodPatch, path: path, code: resp.StatusCode, header: resp.Header, body: raw}
}

// TestPatch: PATCH /job/{name} applies a JSON merge patch to the saved
// definition and answers the result; what it does not name stays.
func TestPatch(t *testing.T) {
	s := setup(t)
	before := procman.Job{Name: "web", Command: "sleep 1", Type: procman.Continuous, Schedule: "@every 1h",
		Env: map[string]string{"A": "1", "B": "2"}, EnvFile: "/etc/web.env", StopSignal: "INT",
		StopTimeout: procman.Duration(3 * time.Second), BackoffInitial: procman.Duration(time.Second),
		MaxRetries: 3, KeepRuns: 7}
	s.create(t, before)

	r := s.patch(t, "/job/web", "application/merge-patch+json", `{"command":"sleep 2","env":{"A":null,"C":"3"},"keep_runs":null}`)
	want(t, r, http.StatusOK)
	after := before
	after.Command, after.Env, after.KeepRuns = "sleep 2", map[string]string{"B": "2", "C": "3"}, 0
	if got := decode[procman.Job](t, r); !reflect.DeepEqual(got, after) {
		t.Errorf("PATCH answered %+v, want %+v", got, after)
	}
	if got := s.job(t, "web"); !reflect.DeepEqual(got, after) {
		t.Errorf("after PATCH: %+v, want %+v", got, after)
	}
	// application/json is taken as a merge patch too, and so is a body without a type.
	want(t, s.patch(t, "/job/web", "application/json; charset=utf-8", `{"max_retries":4}`), http.StatusOK)
	want(t, s.patch(t, "/job/web", "", `{"max_retries":5}`), http.StatusOK)
	if got := s.job(t, "web"); got.MaxRetries != 5 || got.Command != "sleep 2" {
		t.Errorf("after two more patches: %+v", got)
	}

	r = s.patch(t, "/job/web", "text/plain", `{"command":"x"}`)
	errorMessage(t, r, http.StatusUnsupportedMediaType)
	if got := r.header.Get("Accept-Patch"); got != "application/merge-patch+json" {
		t.Errorf("415 with Accept-Patch %q", got)
	}
	for _, tc := range []struct {
		body   string
		code   int
		fields []string
	}{
		{`{"name":"other"}`, 400, []string{"name"}},
		{`{"stop_timeout":"2h","schedule":"rebot","backoff_max":"1ms"}`, 400, []string{"schedule", "stop_timeout", "backoff_max"}},
		{`{"Command":"x"}`, 400, []string{"Command"}},
		{`{"command":"x","command":"y"}`, 400, []string{"command"}},
		{`[{"op":"replace","path":"/command","value":"x"}]`, 400, nil},
	} {
		r := s.patch(t, "/job/web", "application/merge-patch+json", tc.body)
		errorMessage(t, r, tc.code)
		var fields []string
		for _, fe := range decode[errorList](t, r).Errors {
			fields = append(fields, fe.Field)
		}
		if !slices.Equal(fields, tc.fields) {
			t.Errorf("%v: errors name %q, want %q", r, fields, tc.fields)
		}
	}
	errorMessage(t, s.patch(t, "/job/nope", "application/merge-patch+json", `{}`), http.StatusNotFound)
	if got := s.job(t, "web"); got.MaxRetries != 5 || got.Command != "sleep 2" || got.StopTimeout != before.StopTimeout {
		t.Errorf("refused patches changed the job: %+v", got)
	}
}

// TestCreateListsEveryProblem: a refused definition is answered with every
// problem, each naming its field, beside the message.
func TestCreateListsEveryProblem(t *testing.T) {
	s := setup(t)
	r := s.doJSON(t, http.MethodPost, "/job/create", `{"name":"a","command":" ","schedule":"@every 1ms","stop_timeout":"-1s"}`)
	msg := errorMessage(t, r, http.StatusBadRequest)
	body := decode[errorList](t, r)
	var fields []string
	for _, fe := range body.Errors {
		fields = append(fields, fe.Field)
		if fe.Msg == "" || !strings.Contains(msg, fe.Msg) {
			t.Errorf("error %+v: no message, or one the main message lacks: %q", fe, msg)
		}
	}
	if want := []string{"command", "schedule", "stop_timeout"}; !slices.Equal(fields, want) {
		t.Errorf("errors name %q, want %q: %s", fields, want, r.body)
	}
	// A job without a type is one_time.
	r = s.doJSON(t, http.MethodPost, "/job/create", `{"name":"b","command":"true"}`)
	want(t, r, http.StatusCreated)
	if got := decode[procman.Job](t, r); got.Type != procman.OneTime {
		t.Errorf("created without a type: %+v, want one_time", got)
	}
}

// TestEncodedSlashIsNoRouteSeparator: /job/victim%2Fstop names a job called
// "victim/stop" (there is none), never the stop route of victim.
func TestEncodedSlashIsNoRouteSeparator(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("victim"))
	s.control(t, http.MethodGet, "victim", "start")
	for _, path := range []string{"/job/victim%2Fstop", "/job/victim%2fstop", "/job/victim%2Frestart", "/job/delete%2Fvictim"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			errorMessage(t, s.doJSON(t, method, path, nil), http.StatusNotFound)
		}
	}
	if st := s.control(t, http.MethodGet, "victim", "state"); st.State != procman.StateRunning || st.Restarts != 0 {
		t.Errorf("victim after the encoded paths: %+v, want running as it was", st)
	}
	if runs := decode[[]procman.Run](t, s.doJSON(t, http.MethodGet, "/job/victim/runs", nil)); len(runs) != 1 {
		t.Errorf("victim has %d runs, want its one", len(runs))
	}
}

// errorList is an error answer with its list of field errors.
type errorList struct {
	Error  string
	Code   string
	Errors []procman.FieldError
}
