package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// labelled is a sleeper with labels.
func labelled(name string, labels map[string]string) procman.Job {
	j := sleeperJob(name)
	j.Labels = labels
	return j
}

// TestListBySelector: GET /jobs and GET /jobs/states take ?selector= and
// list only the jobs it chooses (none: 200 with []); a bad selector is 400
// naming the problem; a filtered listing and a whole one share the
// definitions kept encoded without mixing them up.
func TestListBySelector(t *testing.T) {
	s := setup(t)
	s.create(t, labelled("api", map[string]string{"tier": "web", "team": "core"}))
	s.create(t, labelled("db", map[string]string{"tier": "db", "team": "core"}))
	s.create(t, labelled("www", map[string]string{"tier": "web", "canary": ""}))
	s.create(t, sleeperJob("plain"))
	names := func(path string) []string {
		t.Helper()
		r := s.doJSON(t, http.MethodGet, path, nil)
		want(t, r, http.StatusOK)
		var got []struct{ Name string }
		if err := json.Unmarshal(r.body, &got); err != nil || got == nil {
			t.Fatalf("%v: not a JSON array: %v", r, err)
		}
		var out []string
		for _, g := range got {
			out = append(out, g.Name)
		}
		return out
	}
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"tier=web", []string{"api", "www"}},
		{"team=core,tier!=web", []string{"db"}},
		{"!tier", []string{"plain"}},
		{"canary", []string{"www"}},
		{"tier=none", nil},
	} {
		for _, path := range []string{"/jobs", "/jobs/states"} {
			if got := names(path + "?selector=" + url.QueryEscape(tc.sel)); !slices.Equal(got, tc.want) {
				t.Errorf("%s?selector=%s: %q, want %q", path, tc.sel, got, tc.want)
			}
		}
		if got := names("/jobs"); len(got) != 4 {
			t.Errorf("GET /jobs after a filtered one lists %q, want all four", got)
		}
	}
	r := s.doJSON(t, http.MethodGet, "/jobs?selector=tier%3Dnone", nil)
	if !bytes.Equal(r.body, []byte("[]\n")) {
		t.Errorf("a selector matching nothing: %q, want []", r.body)
	}
	r = s.doJSON(t, http.MethodGet, "/jobs", nil)
	entries, _ := json.Marshal(s.m.Entries())
	if !bytes.Equal(r.body, append(entries, '\n')) {
		t.Errorf("GET /jobs answered\n%s\nwant\n%s", r.body, entries)
	}
	for _, tc := range []struct{ sel, want string }{
		{"tier=we%20b", "letters, digits"},
		{"tier%3Dweb,", "empty term"},
		{"", "empty"},
		{strings.Repeat("k", 64), "at most 63"},
	} {
		for _, path := range []string{"/jobs", "/jobs/states"} {
			r := s.doJSON(t, http.MethodGet, path+"?selector="+tc.sel, nil)
			if msg := errorMessage(t, r, http.StatusBadRequest); !strings.Contains(msg, "selector") || !strings.Contains(msg, tc.want) {
				t.Errorf("%s?selector=%s: %q, want it to name the selector and say %q", path, tc.sel, msg, tc.want)
			}
		}
	}
}

// TestLabelRefused: a label too long or with a bad character is refused with
// 400 naming the field labels.
func TestLabelRefused(t *testing.T) {
	s := setup(t)
	for _, body := range []string{
		`{"name":"a","command":"true","labels":{"tier":"` + strings.Repeat("w", 64) + `"}}`,
		`{"name":"a","command":"true","labels":{"ti er":"web"}}`,
	} {
		r := s.doJSON(t, http.MethodPost, "/job/create", body)
		errorMessage(t, r, http.StatusBadRequest)
		if !strings.Contains(string(r.body), `"field":"labels"`) {
			t.Errorf("%v: want the error on the field labels", r)
		}
	}
}
