package procman

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics is a Manager's Prometheus instrumentation. Each Manager has its own
// registry: nothing is registered with the prometheus default registry, so
// several Managers (as in tests) never collide.
type metrics struct {
	reg      *prometheus.Registry
	gather   gatherer               // reg and the per-job series (metrics_jobs.go)
	started  *prometheus.CounterVec // by trigger
	finished *prometheus.CounterVec // by outcome
	restarts prometheus.Counter
	duration prometheus.Histogram
	reload   reloadState
}

// reloadState is the outcome of the last application of the jobs file.
type reloadState struct {
	tried  atomic.Bool  // the series exist once a jobs file was applied
	ok     atomic.Bool  // the last attempt succeeded
	lastOK atomic.Int64 // when one last succeeded, in Unix nanoseconds
}

// runDurationBuckets spans 10 ms to one day, in steps a person reads easily.
var runDurationBuckets = []float64{0.01, 0.05, 0.25, 1, 5, 15, 60, 300, 900,
	3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600}

func newMetrics(m *Manager) *metrics {
	mt := &metrics{
		reg: prometheus.NewRegistry(),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "procman_runs_started_total",
			Help: "Runs started (including those that failed to start), by what started them.",
		}, []string{"trigger"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "procman_runs_finished_total",
			Help: "Runs finished, by outcome; skipped counts schedule ticks that did not run, unknown the runs an earlier ProcMan left open.",
		}, []string{"outcome"}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "procman_restarts_total",
			Help: "Automatic restarts of jobs: continuous jobs', and one_time jobs' retries.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "procman_run_duration_seconds",
			Help:    "How long finished runs lasted, from spawn to the end of their process group.",
			Buckets: runDurationBuckets,
		}),
	}
	// Every label value from the start, so each series exists at 0 before its first event.
	for _, t := range Triggers() {
		mt.started.WithLabelValues(string(t))
	}
	for _, o := range Outcomes() {
		mt.finished.WithLabelValues(string(o))
	}
	mt.reg.MustRegister(mt.started, mt.finished, mt.restarts, mt.duration, jobsCollector{m}, reloadCollector{&mt.reload},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mt.gather = gatherer{reg: mt.reg, m: m}
	return mt
}

// Metrics returns the Manager's Prometheus metrics: procman_jobs{state} (jobs
// in each state, read at scrape time), procman_runs_started_total{trigger},
// procman_runs_finished_total{outcome}, procman_restarts_total,
// procman_run_duration_seconds, with Config.JobsFile
// procman_config_last_reload_successful (1 or 0) and
// procman_config_last_reload_success_timestamp_seconds (as Prometheus names
// its own), the Go runtime (go_*) and process
// (process_*) metrics; and, unless Config.NoJobMetrics, series of each job:
// procman_job_state{job,state} (1 for its state, 0 for the others),
// procman_job_cpu_seconds_total{job}, procman_job_memory_bytes{job},
// procman_job_restarts_total{job}, and procman_job_healthy{job} for a job
// with a health check. They live in a registry of the Manager's own, not the
// prometheus default one; serve them with promhttp.HandlerFor(m.Metrics(),
// promhttp.HandlerOpts{}). A scrape never reads the database; the per-job
// series read /proc once for every running job, and nothing else does
// between scrapes. It keeps working after Shutdown.
func (m *Manager) Metrics() prometheus.Gatherer { return m.metrics.gather }

// The hooks below do nothing on a nil *metrics (a Manager not built by Open).

// runStarted counts a run that has been spawned.
func (mt *metrics) runStarted(trigger Trigger) {
	if mt != nil {
		mt.started.WithLabelValues(string(trigger)).Inc()
	}
}

// failedStart counts a run that never had a process: started and finished at once.
func (mt *metrics) failedStart(trigger Trigger) {
	if mt != nil {
		mt.started.WithLabelValues(string(trigger)).Inc()
		mt.finished.WithLabelValues(string(OutcomeFailedToStart)).Inc()
	}
}

// runEnded counts a run whose process ran and ended, and how long it lasted.
func (mt *metrics) runEnded(outcome Outcome, ran time.Duration) {
	if mt != nil {
		mt.finished.WithLabelValues(string(outcome)).Inc()
		mt.duration.Observe(ran.Seconds())
	}
}

// runFinished counts a run that ended without a duration to report (skipped, unknown).
func (mt *metrics) runFinished(outcome Outcome) {
	if mt != nil {
		mt.finished.WithLabelValues(string(outcome)).Inc()
	}
}

// restarted counts an automatic restart (or retry) of a job.
func (mt *metrics) restarted() {
	if mt != nil {
		mt.restarts.Inc()
	}
}

var jobsDesc = prometheus.NewDesc("procman_jobs", "Jobs in each state.", []string{"state"}, nil)

// jobsCollector reports procman_jobs from the runners' statuses at scrape time.
type jobsCollector struct{ m *Manager }

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	states := States()
	n := make(map[State]int, len(states))
	for _, r := range c.m.runners() {
		r.mu.Lock()
		n[r.st.State]++
		r.mu.Unlock()
	}
	for _, s := range states {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n[s]), string(s))
		delete(n, s)
	}
	for s, v := range n { // a state missing from States still shows
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(v), string(s))
	}
}

// reloaded records an application of the jobs file.
func (mt *metrics) reloaded(ok bool, at time.Time) {
	if mt == nil {
		return
	}
	if ok {
		mt.reload.lastOK.Store(at.UnixNano())
	}
	mt.reload.ok.Store(ok)
	mt.reload.tried.Store(true)
}

var (
	reloadOKDesc = prometheus.NewDesc("procman_config_last_reload_successful",
		"Whether the last application of the jobs file (-config) succeeded: 1, or 0 when it changed nothing.", nil, nil)
	reloadTimeDesc = prometheus.NewDesc("procman_config_last_reload_success_timestamp_seconds",
		"When the jobs file (-config) was last applied successfully, in Unix seconds.", nil, nil)
)

// reloadCollector reports the jobs file's last application: nothing before
// one, so that a ProcMan without a jobs file has no failing series.
type reloadCollector struct{ st *reloadState }

func (c reloadCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadOKDesc
	ch <- reloadTimeDesc
}

func (c reloadCollector) Collect(ch chan<- prometheus.Metric) {
	if !c.st.tried.Load() {
		return
	}
	ok := 0.0
	if c.st.ok.Load() {
		ok = 1
	}
	ch <- prometheus.MustNewConstMetric(reloadOKDesc, prometheus.GaugeValue, ok)
	ch <- prometheus.MustNewConstMetric(reloadTimeDesc, prometheus.GaugeValue, float64(c.st.lastOK.Load())/1e9)
}
