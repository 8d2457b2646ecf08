package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

func open(b *testing.B) *procman.Manager {
	b.Helper()
	return openWith(b, procman.Config{})
}

// openWith opens a Manager of cfg in a temporary folder.
func openWith(b *testing.B, cfg procman.Config) *procman.Manager {
	b.Helper()
	dir := b.TempDir()
	cfg.DBPath, cfg.LogDir = filepath.Join(dir, "procman.db"), filepath.Join(dir, "logs")
	m, err := procman.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Shutdown(context.Background()) })
	return m
}

func create(b *testing.B, m *procman.Manager, n int, cmd string, typ procman.Type) {
	b.Helper()
	for i := range n {
		if err := m.Create(context.Background(), procman.Job{Name: fmt.Sprintf("job-%05d", i), Command: cmd, Type: typ}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreate: validate and save one job definition.
func BenchmarkCreate(b *testing.B) {
	m := open(b)
	b.ResetTimer()
	create(b, m, b.N, "true", procman.OneTime)
}

// BenchmarkStartStop: spawn a process group and stop it, end to end.
func BenchmarkStartStop(b *testing.B) {
	m := open(b)
	create(b, m, 1, "sleep 100", procman.Continuous)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := m.Start(ctx, "job-00000"); err != nil {
			b.Fatal(err)
		}
		if err := m.Stop(ctx, "job-00000"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkState: one job's status among 10,000.
func BenchmarkState(b *testing.B) {
	m := open(b)
	create(b, m, 10_000, "true", procman.OneTime)
	b.ResetTimer()
	for i := range b.N {
		if _, err := m.State(fmt.Sprintf("job-%05d", i%10_000)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkList10k: every job with its state, 10,000 of them: GET /jobs as
// the API's handler answers it, without the network.
func BenchmarkList10k(b *testing.B) {
	m := open(b)
	create(b, m, 10_000, "true", procman.OneTime)
	h := httpapi.New(m)
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/jobs", nil)
	w := &discard{header: http.Header{}}
	b.ResetTimer()
	for range b.N {
		w.n = 0
		h.ServeHTTP(w, req)
		if w.code != http.StatusOK || w.n < 10_000 {
			b.Fatalf("GET /jobs: %d, %d bytes", w.code, w.n)
		}
	}
}

// discard is a ResponseWriter that counts the bytes of the answer and keeps
// none, so that a benchmark measures the handler, not a buffer.
type discard struct {
	header http.Header
	code   int
	n      int
}

func (d *discard) Header() http.Header { return d.header }

func (d *discard) WriteHeader(code int) { d.code = code }

func (d *discard) Write(b []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	d.n += len(b)
	return len(b), nil
}

// BenchmarkEventFanout: one state change delivered to 100 subscribers.
func BenchmarkEventFanout(b *testing.B) {
	m := open(b)
	create(b, m, 1, "true", procman.OneTime)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var chans []<-chan procman.Event
	for range 100 {
		ch, _ := m.Subscribe(ctx)
		chans = append(chans, ch)
	}
	b.ResetTimer()
	for range b.N {
		if err := m.Start(ctx, "job-00000"); err != nil {
			b.Fatal(err)
		}
		for _, ch := range chans {
			for ev := range ch { // starting, running, exited
				if ev.To == procman.StateExited {
					break
				}
			}
		}
	}
}

// BenchmarkHTTPState: GET /job/{name}/state through the whole HTTP stack.
func BenchmarkHTTPState(b *testing.B) {
	m := open(b)
	create(b, m, 50, "true", procman.OneTime)
	ts := httptest.NewServer(httpapi.New(m))
	defer ts.Close()
	c := ts.Client()
	b.ResetTimer()
	for i := range b.N {
		resp, err := c.Get(fmt.Sprintf("%s/job/job-%05d/state", ts.URL, i%50))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkMetricsScrape: GET /metrics as the API's handler answers it, with
// 2,000 running jobs (11 series each, and one pass over /proc for them all),
// in the text format as Prometheus asks for it, gzipped or not; and with
// the per-job series off (Config.NoJobMetrics) for comparison.
//
//	go test -run '^$' -bench MetricsScrape -benchtime 20x ./bench/
func BenchmarkMetricsScrape(b *testing.B) {
	for _, off := range []bool{false, true} {
		dir := b.TempDir()
		m, err := procman.Open(context.Background(), procman.Config{NoJobMetrics: off,
			DBPath: filepath.Join(dir, "procman.db"), LogDir: filepath.Join(dir, "logs")})
		if err != nil {
			b.Fatal(err)
		}
		create(b, m, 2000, "sleep 1000", procman.Continuous)
		for _, j := range m.List() {
			if err := m.Start(context.Background(), j.Name); err != nil {
				b.Fatal(err)
			}
		}
		h := httpapi.New(m)
		for _, gz := range []bool{false, true} {
			name := fmt.Sprintf("jobs=2000/job_series=%v/gzip=%v", !off, gz)
			b.Run(name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/metrics", nil)
				req.Header.Set("Accept", "text/plain;version=0.0.4")
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				w := &discard{header: http.Header{}}
				for b.Loop() {
					w.n, w.code = 0, 0
					h.ServeHTTP(w, req)
					if w.code != http.StatusOK {
						b.Fatalf("GET /metrics: %d", w.code)
					}
				}
				b.ReportMetric(float64(w.n), "bytes/scrape")
			})
		}
		m.Shutdown(context.Background())
	}
}
