package procman

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The per-job series, made at scrape time from the runners and one sample
// of /proc (usage.go). They are built as the exposition's families
// directly: a Collector's const metrics, each sent on a channel then checked,
// hashed and sorted by the registry, took 40 ms of a scrape for 2,000 jobs.

// jobLabel names a series' job. Prometheus's own target label is "job" too:
// with honor_labels false (its default) a scraped series keeps this one as
// exported_job (the README says so).
const jobLabel = "job"

// jobCounters are what the per-job series count since Open; guarded by runner.mu.
type jobCounters struct {
	restarts int           // automatic restarts (Status.Restarts resets at a start by hand)
	cpuDone  time.Duration // CPU of the runs that ended
	cpuShown float64       // the largest procman_job_cpu_seconds_total shown: it never goes back
}

// gatherer is the Manager's registry with the per-job families merged in,
// in name order as a registry gives them.
type gatherer struct {
	reg *prometheus.Registry
	m   *Manager
}

func (g gatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.reg.Gather()
	if g.m.cfg.NoJobMetrics {
		return mfs, err
	}
	mfs = append(mfs, g.m.jobFamilies()...)
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return mfs, err
}

// jobSeries is one job as a scrape sees it.
type jobSeries struct {
	name      string
	state     State
	restarts  int
	cpuDone   time.Duration
	health    float64
	hasHealth bool
	run       running // when running
	live      bool
}

// jobFamilies reads every job's state and counters, then what its running
// run costs (one pass over /proc for them all, none when nothing runs).
func (m *Manager) jobFamilies() []*dto.MetricFamily {
	rs := m.runners()
	jobs := make([]jobSeries, len(rs))
	var cs []running
	var at []int // jobs[at[i]] runs cs[i]
	for i, r := range rs {
		r.mu.Lock()
		st := r.statusLocked()
		j := jobSeries{name: r.name, state: st.State, restarts: r.counts.restarts, cpuDone: r.counts.cpuDone}
		j.health, j.hasHealth = healthOf(st)
		if r.cur != nil { // read with cpuDone: a run that ends meanwhile is not counted twice
			j.run = running{job: r.name, p: r.cur}
			j.live = true
			cs, at = append(cs, j.run), append(at, i)
		}
		r.mu.Unlock()
		jobs[i] = j
	}
	usages, _ := m.measure(context.Background(), cs, false) // a pass's only error is its ctx's
	cpu := make([]float64, len(jobs))
	rss := make([]float64, len(jobs))
	for i, u := range usages {
		rss[at[i]] = float64(u.RSSBytes)
		cpu[at[i]] = u.CPUUserSeconds + u.CPUSystemSeconds
	}
	for i, r := range rs {
		r.mu.Lock()
		r.counts.cpuShown = max(r.counts.cpuShown, jobs[i].cpuDone.Seconds()+cpu[i])
		cpu[i] = r.counts.cpuShown
		r.mu.Unlock()
	}
	return buildJobFamilies(jobs, cpu, rss)
}

// healthOf is procman_job_healthy's value for a job's status: 1 for
// "healthy", 0 for "starting" and "unhealthy", no series without a check.
func healthOf(st Status) (float64, bool) {
	return healthValue(st.Health)
}

// healthValue reads Status.Health: "" for a job without a check, or whose
// run is not running.
func healthValue(h Health) (float64, bool) {
	switch h {
	case HealthHealthy:
		return 1, true
	case HealthStarting, HealthUnhealthy:
		return 0, true
	}
	return 0, false
}

// buildJobFamilies makes the families; every label pair and value is
// allocated in slabs, a handful of allocations for thousands of series.
func buildJobFamilies(jobs []jobSeries, cpu, rss []float64) []*dto.MetricFamily {
	states := States()
	stateLabel, jl := "state", jobLabel
	statePairs := make([]dto.LabelPair, len(states))
	for i := range states {
		statePairs[i] = dto.LabelPair{Name: &stateLabel, Value: (*string)(&states[i])}
	}
	nHealth := 0
	for _, j := range jobs {
		if j.hasHealth {
			nHealth++
		}
	}
	n := len(jobs)
	sb := slab{metrics: make([]dto.Metric, n*(len(states)+3)+nHealth), values: make([]float64, n*(len(states)+3)+nHealth),
		gauges: make([]dto.Gauge, n*(len(states)+1)+nHealth), counters: make([]dto.Counter, 2*n),
		labels: make([]*dto.LabelPair, n*(2*len(states)+3)+nHealth)}
	names := make([]dto.LabelPair, n)
	fState := family("procman_job_state", "1 for the state each job is in, 0 for each other state.", dto.MetricType_GAUGE, n*len(states))
	fCPU := family("procman_job_cpu_seconds_total", "CPU time (user and system) of the job's runs since ProcMan opened: the runs that ended, and the running run so far.", dto.MetricType_COUNTER, n)
	fMem := family("procman_job_memory_bytes", "Resident memory (RSS) of the processes of the job's running run; 0 when it has none.", dto.MetricType_GAUGE, n)
	fRestarts := family("procman_job_restarts_total", "Automatic restarts of the job since ProcMan opened.", dto.MetricType_COUNTER, n)
	fHealth := family("procman_job_healthy", "1 while the job's health check passes, 0 while it fails or has yet to pass; only for jobs with a check.", dto.MetricType_GAUGE, nHealth)
	for i, j := range jobs {
		names[i] = dto.LabelPair{Name: &jl, Value: &jobs[i].name}
		for k, s := range states {
			fState.Metric = append(fState.Metric, sb.gauge(b2f(j.state == s), &names[i], &statePairs[k]))
		}
		fCPU.Metric = append(fCPU.Metric, sb.counter(cpu[i], &names[i]))
		fMem.Metric = append(fMem.Metric, sb.gauge(rss[i], &names[i]))
		fRestarts.Metric = append(fRestarts.Metric, sb.counter(float64(j.restarts), &names[i]))
		if j.hasHealth {
			fHealth.Metric = append(fHealth.Metric, sb.gauge(j.health, &names[i]))
		}
	}
	var out []*dto.MetricFamily
	for _, f := range []*dto.MetricFamily{fCPU, fHealth, fMem, fRestarts, fState} {
		if len(f.Metric) > 0 { // a family with no series cannot be written
			out = append(out, f)
		}
	}
	return out
}

func family(name, help string, typ dto.MetricType, n int) *dto.MetricFamily {
	return &dto.MetricFamily{Name: &name, Help: &help, Type: &typ, Metric: make([]*dto.Metric, 0, n)}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// slab hands out the parts of series from slices made once per scrape.
type slab struct {
	metrics  []dto.Metric
	values   []float64
	gauges   []dto.Gauge
	counters []dto.Counter
	labels   []*dto.LabelPair
}

func (s *slab) gauge(v float64, labels ...*dto.LabelPair) *dto.Metric {
	m, val := s.take(v, labels)
	g := &s.gauges[0]
	s.gauges = s.gauges[1:]
	g.Value = val
	m.Gauge = g
	return m
}

func (s *slab) counter(v float64, labels ...*dto.LabelPair) *dto.Metric {
	m, val := s.take(v, labels)
	c := &s.counters[0]
	s.counters = s.counters[1:]
	c.Value = val
	m.Counter = c
	return m
}

// take is the next metric with value v and the labels given, copied into
// the slab.
func (s *slab) take(v float64, labels []*dto.LabelPair) (*dto.Metric, *float64) {
	m, val := &s.metrics[0], &s.values[0]
	s.metrics, s.values = s.metrics[1:], s.values[1:]
	*val = v
	m.Label = s.labels[:len(labels):len(labels)]
	copy(m.Label, labels)
	s.labels = s.labels[len(labels):]
	return m, val
}
