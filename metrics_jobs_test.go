package procman

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// seriesOf counts the series of job name among the procman_job_ families.
func seriesOf(t *testing.T, w *world, name string) int {
	t.Helper()
	mfs, err := w.m.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "procman_job_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "job" && l.GetValue() == name {
					n++
				}
			}
		}
	}
	return n
}

// Each job has its state (1 for the one it is in), its CPU and memory, and
// its restarts, as series of its own, read when scraped.
func TestJobSeries(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	spun := filepath.Join(w.dir, "spun")
	w.create(Job{Name: "svc", Command: "(" + spin + "); touch " + spun + "; exec sleep 100", Type: Continuous})
	w.create(Job{Name: "idle", Command: "sleep 100"})
	w.start("svc")
	eventually(t, "the spin", func() bool { _, err := os.Stat(spun); return err == nil })
	for _, s := range States() {
		want := map[bool]float64{true: 1, false: 0}
		wantMetric(t, g, want[s == StateRunning], "procman_job_state", "job", "svc", "state", string(s))
		wantMetric(t, g, want[s == StateStopped], "procman_job_state", "job", "idle", "state", string(s))
	}
	if v, _ := metricValue(t, g, "procman_job_cpu_seconds_total", "job", "svc"); v < 0.035 {
		t.Errorf("procman_job_cpu_seconds_total{job=svc} = %v, want the spin's", v)
	}
	if v, _ := metricValue(t, g, "procman_job_memory_bytes", "job", "svc"); v < 100<<10 {
		t.Errorf("procman_job_memory_bytes{job=svc} = %v, want a shell's and a sleep's", v)
	}
	wantMetric(t, g, 0, "procman_job_cpu_seconds_total", "job", "idle")
	wantMetric(t, g, 0, "procman_job_memory_bytes", "job", "idle")
	wantMetric(t, g, 0, "procman_job_restarts_total", "job", "idle")
	if _, ok := metricValue(t, g, "procman_job_healthy", "job", "svc"); ok {
		t.Error("procman_job_healthy for a job without a health check")
	}
	if n := seriesOf(t, w, "svc"); n != len(States())+3 {
		t.Errorf("job svc has %d series, want %d (the README says so)", n, len(States())+3)
	}
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "procman_job_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// procman_job_healthy follows the health check of a running job: 1 while
// it passes, 0 while it has yet to pass or fails; a job not running has no
// health, so no series. It is the one more series a checked job has.
func TestJobHealthySeries(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	w.create(w.checkedJob("db"))
	w.start("db")
	w.setHealth("db", true)
	wantMetric(t, g, 1, "procman_job_healthy", "job", "db")
	if n := seriesOf(t, w, "db"); n != len(States())+4 {
		t.Errorf("job db, with a check, has %d series, want %d (the README says so)", n, len(States())+4)
	}
	w.setHealth("db", false)
	wantMetric(t, g, 0, "procman_job_healthy", "job", "db")
	w.stop("db")
	if _, ok := metricValue(t, g, "procman_job_healthy", "job", "db"); ok {
		t.Error("procman_job_healthy for a job that is stopped")
	}
}

// A job's counters never go back: restarts count on after a start by hand
// (which resets Status.Restarts), and the CPU of runs that ended stays in.
func TestJobCountersNeverGoBack(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	w.create(Job{Name: "tick", Command: spin, Type: Continuous, MinUptime: dur(time.Millisecond)})
	w.start("tick")
	last := 0.0
	w.until("tick", "3 restarts", func(st Status) bool {
		v, _ := metricValue(t, g, "procman_job_cpu_seconds_total", "job", "tick")
		if v < last {
			t.Errorf("procman_job_cpu_seconds_total went back from %v to %v", last, v)
		}
		last = v
		return st.Restarts >= 3
	})
	w.stop("tick")
	if v, _ := metricValue(t, g, "procman_job_cpu_seconds_total", "job", "tick"); v < 3*0.035 {
		t.Errorf("procman_job_cpu_seconds_total = %v after three runs of some 50 ms of CPU", v)
	}
	st, _ := w.m.State("tick")
	wantMetric(t, g, float64(st.Restarts), "procman_job_restarts_total", "job", "tick")
	w.start("tick") // Status.Restarts starts again from 0; the counter does not
	if v, _ := metricValue(t, g, "procman_job_restarts_total", "job", "tick"); v < float64(st.Restarts) {
		t.Errorf("procman_job_restarts_total = %v after a start by hand, was %d", v, st.Restarts)
	}
}

// Nothing reads /proc while nobody scrapes; a scrape reads it once for
// every job; with NoJobMetrics there are no per-job series, and no reading.
func TestJobSeriesReadProcOnlyWhenScraped(t *testing.T) {
	w := setup(t)
	for _, name := range []string{"a", "b", "c"} {
		w.create(Job{Name: name, Command: "sleep 100", Type: Continuous})
		w.start(name)
	}
	if n := w.m.sampler.Passes(); n != 0 {
		t.Fatalf("%d passes over /proc before any scrape", n)
	}
	if _, err := w.m.Metrics().Gather(); err != nil {
		t.Fatal(err)
	}
	if n := w.m.sampler.Passes(); n != 1 {
		t.Errorf("%d passes over /proc for one scrape of three running jobs, want 1", n)
	}

	off := setup(t, Config{NoJobMetrics: true})
	off.create(Job{Name: "a", Command: "sleep 100", Type: Continuous})
	off.start("a")
	if n := seriesOf(t, off, "a"); n != 0 {
		t.Errorf("%d per-job series with NoJobMetrics", n)
	}
	if n := off.m.sampler.Passes(); n != 0 {
		t.Errorf("%d passes over /proc with NoJobMetrics", n)
	}
	wantMetric(t, off.m.Metrics(), 1, "procman_jobs", "state", "running")
}
