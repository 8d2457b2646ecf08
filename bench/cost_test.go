package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
	"golang.org/x/sys/unix"
)

// BenchmarkCost: GET /jobs/usage and GET /metrics (text, gzipped as
// Prometheus asks) through the API's handler, with 2,000 running jobs.
// Beside the time, it reports the CPU this process spent per request
// (cpu-ms/op, the kernel's reading of /proc included), which other work on
// a shared machine changes less than the time.
//
//	go test -run '^$' -bench Cost -benchtime 50x ./bench/
func BenchmarkCost(b *testing.B) {
	m := open(b)
	create(b, m, 2000, "sleep 3600", procman.Continuous)
	for _, j := range m.List() {
		if err := m.Start(context.Background(), j.Name); err != nil {
			b.Fatal(err)
		}
	}
	h := httpapi.New(m)
	for _, route := range []string{"/jobs/usage", "/metrics"} {
		b.Run(route[1:], func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+route, nil)
			req.Header.Set("Accept", "text/plain;version=0.0.4")
			req.Header.Set("Accept-Encoding", "gzip")
			w := &discard{header: http.Header{}}
			cpu0 := selfCPU()
			for b.Loop() {
				w.n, w.code = 0, 0
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("GET %s: %d", route, w.code)
				}
			}
			b.ReportMetric(float64(selfCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// selfCPU is the CPU time (user and system) this process has used.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
