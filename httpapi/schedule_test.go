package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// TestScheduleThroughTheAPI creates a job that runs every second and watches
// the scheduler start it, with next_run moving forward and runs marked "schedule".
func TestScheduleThroughTheAPI(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "tick", Command: "echo tick", Type: procman.OneTime, Schedule: "@every 1s"})
	first := s.control(t, http.MethodGet, "tick", "state")
	if first.NextRun == nil {
		t.Fatalf("no next_run: %+v", first)
	}
	st := s.waitState(t, "tick", "run by its schedule", func(st procman.Status) bool {
		return st.LastRun != nil && st.NextRun != nil && st.NextRun.After(*first.NextRun)
	})
	if st.LastRun.Outcome != procman.OutcomeExited {
		t.Fatalf("last run %+v", st.LastRun)
	}
	runs := decode[[]procman.Run](t, s.doJSON(t, http.MethodGet, "/job/tick/runs", nil))
	if len(runs) == 0 || runs[len(runs)-1].Trigger != procman.TriggerSchedule {
		t.Fatalf("runs %+v", runs)
	}
	if time.Until(*st.NextRun) > 2*time.Second {
		t.Fatalf("next_run %s is not about a second away", st.NextRun)
	}
}

func TestBadScheduleThroughTheAPI(t *testing.T) {
	s := setup(t)
	for _, sched := range []string{"rebot", "*/5 * *", "CRON_TZ=Nowhere/Else 0 3 * * *", "@every never"} {
		body := `{"name":"x","command":"true","type":"one_time","schedule":"` + sched + `"}`
		r := s.doJSON(t, http.MethodPost, "/job/create", body)
		if msg := errorMessage(t, r, http.StatusBadRequest); !strings.Contains(msg, "schedule") {
			t.Errorf("%s: %s", sched, msg)
		}
	}
	r := s.doJSON(t, http.MethodPost, "/job/create", `{"name":"x","command":"true","type":"continuous","schedule":"@daily","overlap":"queue"}`)
	if msg := errorMessage(t, r, http.StatusBadRequest); !strings.Contains(msg, "overlap") {
		t.Errorf("overlap on a continuous job: %s", msg)
	}
}
