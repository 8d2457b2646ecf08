package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// TestAllowListsTheMethodsThatWork: for every route, a 405 names in Allow
// exactly the methods that are not answered 405 there; HEAD works wherever
// GET only reads, and is refused on the GET control routes.
func TestAllowListsTheMethodsThatWork(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "a", Command: "echo hi", Type: procman.OneTime})
	s.control(t, http.MethodPost, "a", "start")
	s.waitState(t, "a", "exited", isState(procman.StateExited))
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
	paths := []string{"/healthz", "/jobs", "/jobs/states", "/jobs/usage", "/jobs/start", "/jobs/stop", "/jobs/restart", "/events", "/metrics", "/hosts", "/", "/ui/", "/ui/app.js",
		"/job/create", "/job/a", "/job/a/start", "/job/a/stop", "/job/a/restart", "/job/a/state", "/job/a/runs",
		"/job/a/runs/1", "/job/a/logs", "/job/a/signal", "/job/a/usage", "/job/replace/a", "/job/delete/a"}
	for _, path := range paths {
		works := map[string]bool{}
		allows := map[string]string{} // method -> its 405's Allow
		for _, m := range methods {
			body := ""
			if m == "POST" || m == "PUT" || m == "PATCH" {
				body = `{"name":"b","command":"true","type":"one_time"}`
			}
			req, _ := http.NewRequest(m, s.url+path, strings.NewReader(body))
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", m, path, err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusMethodNotAllowed {
				allows[m] = resp.Header.Get("Allow")
			} else {
				works[m] = true
			}
		}
		var want []string
		for _, m := range methods {
			if works[m] {
				want = append(want, m)
			}
		}
		for m, allow := range allows {
			got := strings.Split(allow, ", ")
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("%s %s: 405 with Allow %q; the methods that work are %v", m, path, allow, want)
			}
		}
		read := !strings.HasSuffix(path, "start") && !strings.HasSuffix(path, "stop") && !strings.HasSuffix(path, "restart")
		if works["GET"] && works["HEAD"] != read {
			t.Errorf("HEAD %s works: %v, want %v", path, works["HEAD"], read)
		}
	}
}

// A HEAD of a stream answers its headers and ends: it does not stream.
func TestHeadOfStreams(t *testing.T) {
	s := setup(t)
	s.create(t, sleeperJob("web"))
	s.control(t, http.MethodPost, "web", "start")
	for _, path := range []string{"/events", "/job/web/logs?follow=1", "/job/web/logs"} {
		req, _ := http.NewRequest(http.MethodHead, s.url+path, nil)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("HEAD %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") == "" {
			t.Errorf("HEAD %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	waitHandlersGone(t, eventsHandler)
	waitHandlersGone(t, logsHandler)
}
