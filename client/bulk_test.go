package client_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/Mk-Chan/procman"
)

// TestBulkAndSelectors: ListOf and StatesOf list the chosen jobs; StartJobs,
// StopJobs and RestartJobs act on them and read one result per job back,
// a failure as an error that maps to procman's sentinel; the zero Selector
// is refused before anything is sent.
func TestBulkAndSelectors(t *testing.T) {
	w := setup(t, nil)
	ctx := ctxT(t)
	c := w.c
	for _, j := range []procman.Job{
		{Name: "db", Command: "sleep 100", Type: procman.Continuous, Labels: map[string]string{"tier": "db"}},
		{Name: "web", Command: "sleep 100", Type: procman.Continuous, Labels: map[string]string{"tier": "web"},
			DependsOn: procman.Dependencies{"db": procman.ConditionStarted}},
		{Name: "bad", Command: "true", Type: procman.OneTime, Dir: "/nonexistent/dir", Labels: map[string]string{"tier": "web"}},
	} {
		if _, err := c.Create(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	web, err := procman.ParseSelector("tier=web")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := c.ListOf(ctx, web)
	if err != nil || len(entries) != 2 || entries[0].Name != "bad" || entries[1].Name != "web" {
		t.Fatalf("ListOf: %+v, %v", entries, err)
	}
	states, err := c.StatesOf(ctx, procman.AllJobs())
	if err != nil || len(states) != 3 {
		t.Fatalf("StatesOf(AllJobs()): %+v, %v", states, err)
	}
	res, err := c.StartJobs(ctx, web)
	if err != nil || len(res) != 2 || res[0].Name != "bad" || res[1].Name != "web" {
		t.Fatalf("StartJobs: %+v, %v", res, err)
	}
	if !errors.Is(res[0].Err, procman.ErrStartFailed) || res[1].Err != nil || res[1].Status.State != procman.StateRunning {
		t.Errorf("StartJobs: %+v; want bad failed to start, web running", res)
	}
	res, err = c.StopJobs(ctx, procman.AllJobs())
	var names []string
	for _, r := range res {
		names = append(names, r.Name)
	}
	if err != nil || !reflect.DeepEqual(names, []string{"bad", "web", "db"}) {
		t.Errorf("StopJobs(AllJobs()): %q, %v", names, err)
	}
	if res, err := c.RestartJobs(ctx, procman.Selector{}); !errors.Is(err, procman.ErrInvalid) || res != nil {
		t.Errorf("RestartJobs(zero Selector): %v, %v; want ErrInvalid", res, err)
	}
}
