package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// host is one simulated host: a Manager of its own name and log folder,
// reaching the database through its link.
type host struct {
	name string
	m    *procman.Manager
	link *link
}

// round is one fleet of n hosts, on a database of its own.
type round struct {
	cfg   config
	srv   *server
	n     int
	db    string
	dir   string
	hosts []*host
	res   result
	rss0  int64 // this process's resident memory before the hosts joined
	g0    int   // and its goroutines
}

// result is what a round measured.
type result struct {
	hosts, jobs int
	join        []time.Duration // each host's Open, the others running
	started     time.Duration   // until every job of every host ran
	window      time.Duration
	idle        counts  // over the idle window
	rss         float64 // bytes this process grew by, per host
	goroutines  float64 // per host
	listed      int     // entries of one host's GET /jobs
	list        []time.Duration
	dead        []time.Duration // a kill until a live host lists the victim not alive
	claimable   []time.Duration // a kill until the victim's lease plus grace has ended
	moved       []time.Duration // a kill until its floating jobs run on live hosts
}

func runRound(ctx context.Context, cfg config, srv *server, n int, log io.Writer) (res result, err error) {
	r := &round{cfg: cfg, srv: srv, n: n, db: "procman_fleet_" + strconv.Itoa(n)}
	r.res.hosts, r.res.jobs = n, cfg.jobs
	if r.dir, err = os.MkdirTemp("", "procman-fleet-"); err != nil {
		return res, err
	}
	defer os.RemoveAll(r.dir)
	if err := srv.createDB(ctx, r.db); err != nil {
		return res, err
	}
	defer srv.dropDB(context.WithoutCancel(ctx), r.db)
	defer r.teardown()
	steps := []struct {
		what string
		do   func(context.Context) error
	}{
		{"join", r.join}, {"start jobs", r.startJobs}, {"idle", r.measureIdle},
		{"GET /jobs", r.measureList}, {"kill", r.measureFailover},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.do(ctx); err != nil {
			return r.res, fmt.Errorf("%d hosts: %s: %w", n, s.what, err)
		}
		fmt.Fprintf(log, "fleet: %d hosts: %s took %s\n", n, s.what, time.Since(t).Round(time.Millisecond))
	}
	return r.res, nil
}

func (r *round) logger(name string) *slog.Logger {
	if !r.cfg.verbose {
		return nil // procman's default: discarded
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("sim", name)
}

// join opens the hosts one after another, as machines joining a fleet would.
func (r *round) join(ctx context.Context) error {
	r.rss0, r.g0 = rss(), runtime.NumGoroutine()
	for i := range r.n {
		h := &host{name: fmt.Sprintf("h%03d", i)}
		l, err := newLink(r.srv.target)
		if err != nil {
			return err
		}
		h.link = l
		cfg := procman.Config{Postgres: r.srv.dsnVia(l.addr(), r.db), Host: h.name, LogDir: filepath.Join(r.dir, h.name),
			Lease: r.cfg.lease, Grace: r.cfg.grace, Logger: r.logger(h.name)}
		t := time.Now()
		h.m, err = procman.Open(ctx, cfg)
		if err != nil {
			l.close()
			return err
		}
		r.res.join = append(r.res.join, time.Since(t))
		r.hosts = append(r.hosts, h)
	}
	return nil
}

// startJobs creates each host's jobs through it: -jobs continuous reboot
// jobs, started as they are created, and -defs one-time jobs that never
// run; and waits until every continuous one runs.
func (r *round) startJobs(ctx context.Context) error {
	t := time.Now()
	err := r.eachHost(func(h *host) error {
		for k := range r.cfg.jobs {
			j := procman.Job{Name: fmt.Sprintf("%s-run%03d", h.name, k), Command: "exec sleep 3600",
				Type: procman.Continuous, Schedule: "reboot"}
			if err := h.m.Create(ctx, j); err != nil {
				return err
			}
		}
		for k := range r.cfg.defs {
			if err := h.m.Create(ctx, procman.Job{Name: fmt.Sprintf("%s-def%03d", h.name, k), Command: "true"}); err != nil {
				return err
			}
		}
		for k := range r.cfg.jobs {
			wctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := h.m.WaitFor(wctx, fmt.Sprintf("%s-run%03d", h.name, k), procman.StateRunning)
			cancel()
			if err != nil {
				return err
			}
		}
		return nil
	})
	r.res.started = time.Since(t)
	return err
}

// eachHost runs f for every host, a few at a time.
func (r *round) eachHost(f func(*host) error) error {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	errs := make([]error, len(r.hosts))
	for i, h := range r.hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(h); err != nil {
				errs[i] = fmt.Errorf("%s: %w", h.name, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// measureIdle counts what the database runs while the fleet runs its jobs
// and nobody asks it anything: heartbeats, and whatever else a host does on
// its own. The window starts -settle after the last job started: no record
// of a start is still being written, and each session has reported its
// transactions (pg_stat_database), which one that went idle does within
// 10 s (PostgreSQL's PGSTAT_IDLE_INTERVAL).
func (r *round) measureIdle(ctx context.Context) error {
	if err := sleep(ctx, r.cfg.settle); err != nil {
		return err
	}
	r.res.rss = float64(rss()-r.rss0) / float64(r.n)
	r.res.goroutines = float64(runtime.NumGoroutine()-r.g0) / float64(r.n)
	before, err := r.srv.count(ctx, r.db)
	if err != nil {
		return err
	}
	t := time.Now()
	if err := sleep(ctx, r.cfg.idle); err != nil {
		return err
	}
	after, err := r.srv.count(ctx, r.db)
	r.res.window = time.Since(t)
	r.res.idle = after.since(before)
	return err
}

// measureList times GET /jobs on the first host, through its REST API on a
// real HTTP server. It lists that host's own jobs until hosts mirror each
// other's (then every job of the fleet: listed says which).
func (r *round) measureList(ctx context.Context) error {
	srv := httptest.NewServer(httpapi.New(r.hosts[0].m))
	defer srv.Close()
	hc := srv.Client()
	for i := range r.cfg.requests {
		t := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/jobs", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /jobs: %d %v", resp.StatusCode, err)
		}
		r.res.list = append(r.res.list, time.Since(t))
		if i == 0 {
			r.res.listed = strings.Count(string(body), `"command":`)
		}
	}
	return nil
}

// teardown lets every host reach the database again, so that each records
// its jobs' stops, and shuts them all down.
func (r *round) teardown() {
	for _, h := range r.hosts {
		h.link.revive()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.eachHost(func(h *host) error { return h.m.Shutdown(ctx) })
	for _, h := range r.hosts {
		h.link.close()
	}
	r.hosts = nil
}

// rss is this process's resident memory, in bytes, after handing back to
// the system what the heap no longer uses.
func rss() int64 {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// percentile is the q-quantile (0 < q <= 1) of ds, by nearest rank.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := int(float64(len(s))*q+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
