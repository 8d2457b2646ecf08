package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// TestListFollowsEveryChange: GET /jobs answers what encoding/json writes for
// the Manager's entries, whatever changed since the last listing: the
// definitions it keeps encoded are dropped when a job is replaced, patched,
// deleted or created again under its name, and new jobs anywhere in the
// order are listed.
func TestListFollowsEveryChange(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	same := func(what string) string {
		t.Helper()
		r := s.doJSON(t, http.MethodGet, "/jobs", nil)
		want(t, r, http.StatusOK)
		entries, _ := json.Marshal(s.m.Entries())
		if !bytes.Equal(r.body, append(entries, '\n')) {
			t.Fatalf("%s: GET /jobs answered\n%s\nwant\n%s", what, r.body, entries)
		}
		return string(r.body)
	}
	same("no jobs")
	for _, n := range []string{"m", "c", "x"} {
		s.create(t, procman.Job{Name: n, Command: "echo " + n, Type: procman.OneTime})
	}
	s.create(t, procman.Job{Name: "e", Command: `echo "<&>" \ é`, Type: procman.Continuous, Env: map[string]string{"K": "v\n"},
		StopTimeout: procman.Duration(3 * time.Second)})
	same("four jobs")
	same("nothing changed")
	for _, step := range []struct {
		what string
		do   func() error
	}{
		{"a job first in the order", func() error { return s.m.Create(ctx, procman.Job{Name: "a", Command: "true"}) }},
		{"one in the middle", func() error { return s.m.Create(ctx, procman.Job{Name: "k", Command: "true"}) }},
		{"one last", func() error { return s.m.Create(ctx, procman.Job{Name: "z", Command: "true"}) }},
		{"a replace", func() error { return s.m.Replace(ctx, "m", procman.Job{Command: "echo two", Type: procman.OneTime}) }},
		{"a patch", func() error {
			_, err := s.m.Update(ctx, "c", procman.MergePatch([]byte(`{"command":"echo patched"}`)))
			return err
		}},
		{"a run", func() error {
			if err := s.m.Start(ctx, "x"); err != nil {
				return err
			}
			_, err := s.m.WaitFor(ctx, "x", procman.StateExited)
			return err
		}},
		{"the first deleted", func() error { return s.m.Delete(ctx, "a") }},
		{"one in the middle deleted", func() error { return s.m.Delete(ctx, "k") }},
		{"the last deleted", func() error { return s.m.Delete(ctx, "z") }},
		{"one deleted and created again", func() error {
			if err := s.m.Delete(ctx, "m"); err != nil {
				return err
			}
			return s.m.Create(ctx, procman.Job{Name: "m", Command: "echo three", Type: procman.Continuous})
		}},
	} {
		if err := step.do(); err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		same(step.what)
	}
	if l := same("at the end"); !bytes.Contains([]byte(l), []byte(`{"name":"m","command":"echo three","type":"continuous","schedule":"","source":"api","state":"stopped","host":`)) ||
		!bytes.Contains([]byte(l), []byte(`"command":"echo patched"`)) || !bytes.Contains([]byte(l), []byte(`"state":"exited"`)) {
		t.Fatalf("listing %s", l)
	}
}

// TestListsAtOnce: listings made at the same time as changes all answer a
// listing that holds together (run with -race).
func TestListsAtOnce(t *testing.T) {
	s := setup(t)
	ctx := context.Background()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			name := fmt.Sprintf("j%02d", i%10)
			if s.m.Delete(ctx, name) != nil {
				s.m.Create(ctx, procman.Job{Name: name, Command: fmt.Sprintf("echo %d", i)})
			}
		}
	}()
	for listing := true; listing; {
		select {
		case <-done:
			listing = false
		default:
		}
		r, err := s.send(http.MethodGet, "/jobs", nil)
		if err != nil || r.code != http.StatusOK {
			t.Fatalf("GET /jobs: %v %v", r, err)
		}
		var entries []procman.Entry
		if err := json.Unmarshal(r.body, &entries); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		for i := 1; i < len(entries); i++ {
			if entries[i-1].Name >= entries[i].Name {
				t.Fatalf("%v: not one entry per job in name order", r)
			}
		}
	}
}
