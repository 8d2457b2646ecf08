package procman

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// metricValue gathers g and returns the value of the series name{labels}: a
// counter's or gauge's value, a histogram's sample count. ok is false if the
// series is missing.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(want) {
				continue
			}
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
					continue series
				}
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			default:
				t.Fatalf("%s: unexpected type %v", name, mf.GetType())
			}
		}
	}
	return 0, false
}

// wantMetric fails the test unless name{labels} exists and equals want.
func wantMetric(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	v, ok := metricValue(t, g, name, labels...)
	if !ok {
		t.Errorf("%s%v: missing", name, labels)
	} else if v != want {
		t.Errorf("%s%v = %v, want %v", name, labels, v, want)
	}
}

// jobsByState is the exposition of procman_jobs with the given non-zero counts.
func jobsByState(n map[State]int) string {
	var b strings.Builder
	b.WriteString("# HELP procman_jobs Jobs in each state.\n# TYPE procman_jobs gauge\n")
	for _, s := range allStates {
		b.WriteString("procman_jobs{state=\"" + string(s) + "\"} " + strconv.Itoa(n[s]) + "\n")
	}
	return b.String()
}

func TestMetricsOneTimeRun(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	// Every series is there from the start, at 0.
	wantMetric(t, g, 0, "procman_runs_started_total", "trigger", "manual")
	wantMetric(t, g, 0, "procman_runs_finished_total", "outcome", "skipped")
	wantMetric(t, g, 0, "procman_restarts_total")
	wantMetric(t, g, 0, "procman_run_duration_seconds")
	if err := testutil.GatherAndCompare(g, strings.NewReader(jobsByState(nil)), "procman_jobs"); err != nil {
		t.Fatalf("no jobs: %v", err)
	}

	w.create(Job{Name: "once", Command: "sleep 0.05", Type: OneTime})
	w.create(Job{Name: "idle", Command: "true", Type: OneTime})
	w.start("once")
	w.waitFor("once", StateExited)
	wantMetric(t, g, 1, "procman_runs_started_total", "trigger", "manual")
	wantMetric(t, g, 0, "procman_runs_started_total", "trigger", "retry")
	wantMetric(t, g, 1, "procman_runs_finished_total", "outcome", "exited")
	wantMetric(t, g, 0, "procman_runs_finished_total", "outcome", "stopped")
	wantMetric(t, g, 1, "procman_run_duration_seconds")
	wantMetric(t, g, 0, "procman_restarts_total")
	if err := testutil.GatherAndCompare(g, strings.NewReader(jobsByState(map[State]int{StateExited: 1, StateStopped: 1})),
		"procman_jobs"); err != nil {
		t.Fatalf("jobs by state: %v", err)
	}

	// The histogram saw about the run's 50 ms sleep (timed from just after the
	// spawn, so a loaded machine may see a little less), well under a minute.
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "procman_run_duration_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			if sum := h.GetSampleSum(); sum < 0.02 || sum > 60 {
				t.Errorf("run duration sum %v s, want the run's ~0.05 s", sum)
			}
			if b := h.GetBucket(); len(b) == 0 || b[0].GetUpperBound() != 0.01 || b[len(b)-1].GetUpperBound() != 86400 {
				t.Errorf("buckets %v, want 10 ms .. 1 day", b)
			}
		}
	}
}

func TestMetricsRestartsOfFailingContinuousJob(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	w.create(Job{Name: "flaky", Command: "exit 1", Type: Continuous, MaxRetries: 3,
		BackoffInitial: dur(10 * time.Millisecond), MinUptime: dur(time.Minute)})
	w.start("flaky")
	st := w.waitFor("flaky", StateError)
	if st.Restarts != 2 {
		t.Fatalf("status %+v, want 2 restarts before giving up after 3 failures", st)
	}
	wantMetric(t, g, 2, "procman_restarts_total")
	wantMetric(t, g, 1, "procman_runs_started_total", "trigger", "manual")
	wantMetric(t, g, 2, "procman_runs_started_total", "trigger", "retry")
	wantMetric(t, g, 3, "procman_runs_finished_total", "outcome", "exited")
	wantMetric(t, g, 3, "procman_run_duration_seconds")
	wantMetric(t, g, 1, "procman_jobs", "state", "error")
}

func TestMetricsRestartsOfHealthyContinuousJob(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	w.create(Job{Name: "tick", Command: "sleep 0.02", Type: Continuous, MinUptime: dur(time.Millisecond)})
	w.start("tick")
	w.until("tick", "2 restarts", func(st Status) bool { return st.Restarts >= 2 })
	mfs, err := g.Gather() // one scrape: the state moves on between two
	if err != nil {
		t.Fatal(err)
	}
	total, series := 0.0, 0
	for _, mf := range mfs {
		if mf.GetName() == "procman_jobs" {
			for _, m := range mf.GetMetric() {
				total += m.GetGauge().GetValue()
				series++
			}
		}
	}
	if total != 1 || series != len(allStates) {
		t.Errorf("procman_jobs: %d series adding up to %v, want %d adding up to 1", series, total, len(allStates))
	}
	w.stop("tick")
	st := w.waitFor("tick", StateStopped)
	wantMetric(t, g, float64(st.Restarts), "procman_restarts_total")
	// The stop may have come while the last restart's run was being prepared: it never started.
	if v, _ := metricValue(t, g, "procman_runs_started_total", "trigger", "retry"); v != float64(st.Restarts) && v != float64(st.Restarts-1) {
		t.Errorf("procman_runs_started_total{trigger=retry} = %v after %d restarts", v, st.Restarts)
	}
	wantMetric(t, g, 1, "procman_jobs", "state", "stopped")
}

func TestMetricsFailedStartSkipAndUnknown(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	w.create(Job{Name: "nodir", Command: "true", Type: OneTime, Dir: filepath.Join(w.dir, "missing")})
	w.startFails("nodir")
	w.waitFor("nodir", StateError)
	wantMetric(t, g, 1, "procman_runs_started_total", "trigger", "manual")
	wantMetric(t, g, 1, "procman_runs_finished_total", "outcome", "failed_to_start")
	wantMetric(t, g, 0, "procman_run_duration_seconds") // no process, no duration

	r, err := w.m.runner("nodir")
	if err != nil {
		t.Fatal(err)
	}
	r.recordSkip("test")
	wantMetric(t, g, 1, "procman_runs_finished_total", "outcome", "skipped")

	// A run left open by a dead ProcMan is counted when the next one recovers it.
	cfg := w.m.cfg
	if err := w.m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	insertOpenRun(t, cfg, runRow{Job: "nodir", Trigger: string(TriggerManual), StartedAt: time.Now().UTC()})
	m2 := w.open(cfg)
	g2 := m2.Metrics()
	wantMetric(t, g2, 1, "procman_runs_finished_total", "outcome", "unknown")
	wantMetric(t, g2, 1, "procman_jobs", "state", "unknown")
	wantMetric(t, g2, 0, "procman_runs_started_total", "trigger", "manual") // a new Manager, new counters
}

func TestMetricsRuntimeProcessAndLint(t *testing.T) {
	w := setup(t)
	g := w.m.Metrics()
	if v, ok := metricValue(t, g, "go_goroutines"); !ok || v < 1 {
		t.Errorf("go_goroutines = %v, %v", v, ok)
	}
	if _, ok := metricValue(t, g, "process_resident_memory_bytes"); !ok {
		t.Error("process_resident_memory_bytes missing")
	}
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "procman_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
	// Two Managers in one process have separate registries.
	other := setup(t)
	other.create(Job{Name: "x", Command: "true", Type: OneTime})
	wantMetric(t, g, 0, "procman_jobs", "state", "stopped")
	wantMetric(t, other.m.Metrics(), 1, "procman_jobs", "state", "stopped")
}
