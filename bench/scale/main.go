// Command scale drives a real ProcMan binary at scale through its REST API
// (with package client; the latency samples with bare requests, whose answers
// it reads but does not decode) and prints what it measured, next to the
// targets ProcMan is meant to meet:
//
//   - how fast job definitions are created (one_time jobs that never run);
//   - how long it takes to create and start many continuous jobs until ProcMan
//     reports every one of them running;
//   - the latency (p50, p99, max) of GET /jobs, GET /jobs/states and
//     GET /job/{name}/state with every definition present and every
//     continuous job running;
//   - the latency of GET /jobs/usage and of a GET /metrics scrape, which read
//     what every running job costs;
//   - ProcMan's resident memory, and what each running job adds to it;
//   - how long one POST /jobs/stop?all=1 takes to stop every running job;
//   - how long SIGTERM takes until ProcMan has exited and no process of any
//     job is left;
//   - on a fresh instance, whether memory grows as one job is run over and
//     over (run history and logs are pruned, so it should not).
//
// Run it from the module root; without -bin it first builds ./cmd/procman into
// a temporary folder:
//
//	go run ./bench/scale
//	go run ./bench/scale -defs 200 -running 50 -churn 100 -requests 200
//	go build ./cmd/procman && go run ./bench/scale -bin ./procman
//
// Each ProcMan instance runs in its own temporary folder (database, logs and
// its output), which is removed at the end, as is the instance itself. It is
// a measuring program, not a test: it exits 0 even when a target is missed,
// and 1 only on a real failure (a request that fails, a timeout).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
)

// config is the command line.
type config struct {
	bin                                     string
	defs, running, churn, requests, workers int
}

// figure is one line of the final summary.
type figure struct {
	name, target, measured, verdict string
}

// runner carries everything the measurements share: the HTTP client, the
// figures gathered so far and what must be undone on the way out.
type runner struct {
	cfg      config
	hc       *http.Client // under every instance's API client, and the latency samples
	out      io.Writer
	figures  []figure
	cleanups []func()
}

// instance is one running ProcMan binary.
type instance struct {
	cmd    *exec.Cmd
	dir    string // its temporary folder: database, logs, output
	output string // its stdout and stderr
	base   string // http://127.0.0.1:port
	api    *client.Client
	done   chan struct{}
	// How and when it exited; set before done is closed.
	err      error
	exitedAt time.Time
}

const (
	// Every sample and poll uses the one client; enough idle connections are
	// kept for every worker, so that no request pays for a new connection.
	maxConns     = 64
	stopGrace    = 15 * time.Second // SIGTERM, then SIGKILL after this
	readyTimeout = 30 * time.Second
	runTimeout   = 10 * time.Second // one churn run, start to exited
	jobsSamples  = 200              // GET /jobs samples, at most
)

func main() {
	cfg, ok := parseFlags()
	if !ok {
		os.Exit(2)
	}
	// Any of these ends the run through its cleanup, so that no ProcMan, job or
	// temporary folder is left behind. SIGPIPE (output piped into head, say)
	// would otherwise kill this program on the spot.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale: FAILED:", err)
		os.Exit(1)
	}
}

func parseFlags() (config, bool) {
	var c config
	flag.StringVar(&c.bin, "bin", "", "path to the procman binary; empty: build ./cmd/procman into a temporary folder")
	flag.IntVar(&c.defs, "defs", 10000, "job definitions in all")
	flag.IntVar(&c.running, "running", 2000, "of them continuous jobs kept running")
	flag.IntVar(&c.churn, "churn", 2000, "short runs of one job for the memory check")
	flag.IntVar(&c.requests, "requests", 2000, "latency samples of GET /job/{name}/state (GET /jobs: at most 200)")
	flag.IntVar(&c.workers, "workers", 8, "concurrent clients creating and starting jobs")
	flag.Parse()
	if c.running < 1 || c.defs < c.running || c.churn < 2 || c.requests < 1 || c.workers < 1 || c.workers > maxConns {
		fmt.Fprintf(os.Stderr, "scale: want -running >= 1, -defs >= -running, -churn >= 2, -requests >= 1, 1 <= -workers <= %d\n", maxConns)
		return c, false
	}
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "scale: no arguments expected, only flags")
		return c, false
	}
	return c, true
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	r := &runner{cfg: cfg, out: out, hc: &http.Client{
		Timeout:   time.Minute, // a request that hangs is a failure, not a wait forever
		Transport: &http.Transport{MaxIdleConns: maxConns, MaxIdleConnsPerHost: maxConns},
	}}
	defer r.cleanup()
	if err := raiseFileLimit(); err != nil {
		return err
	}
	r.printMachine()
	if r.cfg.bin, err = r.binary(ctx); err != nil {
		return err
	}
	if err := r.measureScale(ctx); err != nil {
		return err
	}
	if err := r.measureChurn(ctx); err != nil {
		return err
	}
	r.printSummary()
	return nil
}

// raiseFileLimit lifts the soft limit on open files to the hard one: thousands
// of jobs and connections need descriptors. Setting it explicitly (rather than
// relying on Go raising it for this process alone) also makes ProcMan inherit it.
func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	return nil
}

// cleanup undoes everything, newest first: instances are stopped before their
// folders (and the folder of a built binary) are removed.
func (r *runner) cleanup() {
	for _, f := range slices.Backward(r.cleanups) {
		f()
	}
	r.cleanups = nil
}

func (r *runner) printf(format string, args ...any) { fmt.Fprintf(r.out, format, args...) }

func (r *runner) printMachine() {
	r.printf("machine: %d CPUs, %s/%s, %s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		runtime.Version(), time.Now().Format(time.RFC3339))
	r.printf("scale: %d definitions, %d running, %d churn runs, %d state samples, %d workers\n\n",
		r.cfg.defs, r.cfg.running, r.cfg.churn, r.cfg.requests, r.cfg.workers)
}

// binary returns the absolute path of the procman binary to drive, building
// it when none was given.
func (r *runner) binary(ctx context.Context) (string, error) {
	if r.cfg.bin != "" {
		if !strings.ContainsRune(r.cfg.bin, '/') {
			return exec.LookPath(r.cfg.bin)
		}
		return filepath.Abs(r.cfg.bin) // ProcMan runs in its own folder, so a relative path would break
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", err
	}
	dir, err := r.tempDir("procman-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "procman")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/procman")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/procman: %v\n%s", err, b)
	}
	r.printf("built ./cmd/procman\n\n")
	return bin, nil
}

// moduleRoot finds the procman module from the working directory, as the go
// command does.
func moduleRoot(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside a Go module: run from the procman module, or give -bin")
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.Contains(data, []byte("module github.com/Mk-Chan/procman\n")) {
		return "", fmt.Errorf("%s is not the procman module: run from it, or give -bin", gomod)
	}
	return filepath.Dir(gomod), nil
}

func (r *runner) tempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	r.cleanups = append(r.cleanups, func() { os.RemoveAll(dir) })
	return dir, nil
}

// start runs a fresh ProcMan in a new temporary folder and waits until it answers.
func (r *runner) start(ctx context.Context) (*instance, error) {
	dir, err := r.tempDir("procman-scale-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	in := &instance{dir: dir, output: filepath.Join(dir, "procman.out"), base: "http://127.0.0.1:" + port,
		done: make(chan struct{})}
	if in.api, err = client.New(in.base, client.WithHTTPClient(r.hc)); err != nil {
		return nil, err
	}
	if err := in.launch(r.cfg.bin, port); err != nil {
		return nil, err
	}
	r.cleanups = append(r.cleanups, func() { in.stop() })
	if err := r.waitReady(ctx, in); err != nil {
		return nil, err
	}
	return in, nil
}

// freePort asks the kernel for a free loopback port. Another program could
// take it before ProcMan binds it; ProcMan would then exit, and waitReady say so.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func (in *instance) launch(bin, port string) error {
	f, err := os.Create(in.output)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own copy
	in.cmd = exec.Command(bin, "-db", filepath.Join(in.dir, "procman.db"), "-logs", filepath.Join(in.dir, "logs"), port)
	in.cmd.Dir = in.dir // jobs inherit it: nothing they write lands in the caller's folder
	in.cmd.Stdout, in.cmd.Stderr = f, f
	// Its own process group, so that a Ctrl-C meant for this program does not
	// reach ProcMan too: cleanup sends it one SIGTERM, and a second signal
	// would make it kill its jobs at once instead of stopping them.
	in.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := in.cmd.Start(); err != nil {
		return fmt.Errorf("starting procman: %w", err)
	}
	go func() {
		in.err = in.cmd.Wait()
		in.exitedAt = time.Now()
		close(in.done)
	}()
	return nil
}

func (in *instance) pid() int { return in.cmd.Process.Pid }

func (in *instance) exited() bool {
	select {
	case <-in.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, and SIGKILL if ProcMan has not exited after stopGrace.
func (in *instance) stop() {
	if in.exited() {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
		return
	case <-time.After(stopGrace):
	}
	_ = in.cmd.Process.Kill()
	<-in.done
}

// tail is the end of ProcMan's output, for error messages.
func (in *instance) tail() string {
	b, err := os.ReadFile(in.output)
	if err != nil {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nlast output of procman:\n" + string(b)
}

// waitReady polls GET /jobs until it answers 200.
func (r *runner) waitReady(ctx context.Context, in *instance) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if in.exited() {
			return fmt.Errorf("procman exited before answering (%v)%s", in.err, in.tail())
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := in.api.List(rctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("procman did not answer GET /jobs within %s: %v%s", readyTimeout, err, in.tail())
		}
		if err := pause(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// timeGET sends GET url and reads the whole answer, which must be a 200,
// without decoding it: a latency sample times ProcMan's answer, not what a
// client makes of it.
func (r *runner) timeGET(ctx context.Context, url string) (time.Duration, error) {
	t0 := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: status %d, want 200", url, resp.StatusCode)
	}
	return time.Since(t0), nil
}

func create(ctx context.Context, in *instance, name, command string, typ procman.Type) error {
	_, err := in.api.Create(ctx, procman.Job{Name: name, Command: command, Type: typ})
	return err
}

// parallel calls fn for 0..n-1 from r.cfg.workers goroutines, as several
// clients would, and stops at the first error.
func (r *runner) parallel(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

func defName(i int) string { return fmt.Sprintf("def-%05d", i) }
func runName(i int) string { return fmt.Sprintf("run-%05d", i) }

// measureScale runs steps 1 to 6 on one instance: definitions, running jobs,
// latencies, what reading the jobs' cost takes, memory, a bulk stop, then
// shutdown.
func (r *runner) measureScale(ctx context.Context) error {
	in, err := r.start(ctx)
	if err != nil {
		return err
	}
	rss0, err := rss(in.pid())
	if err != nil {
		return err
	}
	r.printf("procman pid %d, RSS at start-up %s\n", in.pid(), mib(rss0))
	if err := r.createDefinitions(ctx, in); err != nil {
		return err
	}
	rssDefs, err := rss(in.pid())
	if err != nil {
		return err
	}
	statuses, err := r.startRunning(ctx, in)
	if err != nil {
		return err
	}
	time.Sleep(quietWait)
	rssQuiet, err := rss(in.pid())
	if err != nil {
		return err
	}
	if err := r.measureLatency(ctx, in); err != nil {
		return err
	}
	if err := r.measureCost(ctx, in); err != nil {
		return err
	}
	if err := r.measureRSS(in, rss0, rssDefs, rssQuiet); err != nil {
		return err
	}
	if statuses, err = r.measureBulkStop(ctx, in, statuses); err != nil {
		return err
	}
	return r.measureShutdown(ctx, in, statuses)
}

// createDefinitions creates the one_time jobs that are never run.
func (r *runner) createDefinitions(ctx context.Context, in *instance) error {
	n := r.cfg.defs - r.cfg.running
	t0 := time.Now()
	err := r.parallel(ctx, n, func(ctx context.Context, i int) error {
		return create(ctx, in, defName(i), "true", procman.OneTime)
	})
	if err != nil {
		return fmt.Errorf("creating definitions: %w", err)
	}
	took := time.Since(t0)
	rate := float64(n) / took.Seconds()
	r.printf("created %d one_time definitions in %.2f s: %.0f jobs/s\n", n, took.Seconds(), rate)
	r.info("create one_time definitions", fmt.Sprintf("%.0f jobs/s", rate))
	return nil
}

// startRunning creates and starts the continuous jobs, timed until ProcMan
// reports every one running, and returns their statuses then.
func (r *runner) startRunning(ctx context.Context, in *instance) ([]procman.Status, error) {
	t0 := time.Now()
	err := r.parallel(ctx, r.cfg.running, func(ctx context.Context, i int) error {
		if err := create(ctx, in, runName(i), "sleep 3600", procman.Continuous); err != nil {
			return err
		}
		_, err := in.api.Start(ctx, runName(i))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating and starting continuous jobs: %w", err)
	}
	statuses, err := r.waitAllRunning(ctx, in)
	if err != nil {
		return nil, err
	}
	took := time.Since(t0).Seconds()
	r.printf("created and started %d continuous jobs, all reported running after %.2f s\n", r.cfg.running, took)
	r.below(fmt.Sprintf("create+start %d continuous jobs until all running", r.cfg.running), took, 10, "s", 2)
	return statuses, nil
}

// waitAllRunning polls GET /jobs/states until every continuous job is running.
func (r *runner) waitAllRunning(ctx context.Context, in *instance) ([]procman.Status, error) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		all, err := in.api.States(ctx)
		if err != nil {
			return nil, err
		}
		running, bad := runningJobs(all)
		if bad != nil {
			return nil, fmt.Errorf("job %s is %s, not running: %s", bad.Name, bad.State, bad.Error)
		}
		if len(running) == r.cfg.running {
			return running, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d continuous jobs running after 5 minutes", len(running), r.cfg.running)
		}
		if err := pause(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// runningJobs picks the running continuous jobs out of all statuses, and the
// first that has given up, if any.
func runningJobs(all []procman.Status) (running []procman.Status, bad *procman.Status) {
	for i, s := range all {
		if !strings.HasPrefix(s.Name, "run-") {
			continue
		}
		switch s.State {
		case "running":
			running = append(running, s)
		case "error", "exited", "unknown":
			return nil, &all[i]
		}
	}
	return running, nil
}

// measureLatency samples GET /jobs, GET /jobs/states and GET /job/{name}/state,
// one request at a time, so that each sample is the latency of a lone client.
func (r *runner) measureLatency(ctx context.Context, in *instance) error {
	n := min(jobsSamples, r.cfg.requests)
	fixed := func(path string) func(int) string { return func(int) string { return in.base + path } }
	jobs, err := r.sample(ctx, n, fixed("/jobs"))
	if err != nil {
		return err
	}
	states, err := r.sample(ctx, n, fixed("/jobs/states"))
	if err != nil {
		return err
	}
	rnd := rand.New(rand.NewPCG(1, 2)) // fixed seed: the same names on every run
	state, err := r.sample(ctx, r.cfg.requests, func(int) string {
		return in.base + "/job/" + runName(rnd.IntN(r.cfg.running)) + "/state"
	})
	if err != nil {
		return err
	}
	r.latency("GET /jobs", jobs, 50)
	r.latency("GET /jobs/states", states, 0)
	r.latency("GET /job/{name}/state", state, 10)
	return nil
}

func (r *runner) sample(ctx context.Context, n int, url func(i int) string) ([]time.Duration, error) {
	d := make([]time.Duration, n)
	for i := range n {
		var err error
		if d[i], err = r.timeGET(ctx, url(i)); err != nil {
			return nil, err
		}
	}
	slices.Sort(d)
	return d, nil
}

// latency prints p50, p99 and max of sorted samples, and records p99 against
// limitMS (0: no target).
func (r *runner) latency(route string, d []time.Duration, limitMS float64) {
	p50, p99, top := ms(percentile(d, 50)), ms(percentile(d, 99)), ms(d[len(d)-1])
	r.printf("%-32s %5d samples: p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", route, len(d), p50, p99, top)
	name := route + " p99"
	if limitMS == 0 {
		r.info(name, fmt.Sprintf("%.2f ms", p99))
		return
	}
	r.below(name, p99, limitMS, "ms", 2)
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(d []time.Duration, p int) time.Duration {
	i := (len(d)*p + 99) / 100
	return d[max(i-1, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quietWait is how long the running jobs are left alone before their memory
// is read: the binary returns freed memory once its jobs have gone a second
// without a state change (Config.ReturnMemory), and the starts left garbage.
const quietWait = 2 * time.Second

// measureRSS records ProcMan's memory with every job present and running:
// once they had been quiet for quietWait (rssQuiet), and now, after the
// latency and cost readings, whose garbage the heap may still hold (no state
// changed since, so nothing returned it at once). Per running job is the
// growth since start-up divided among the running jobs, definitions that
// never run included; the growth since the definitions were created tells
// what running costs alone.
func (r *runner) measureRSS(in *instance, rss0, rssDefs, rssQuiet int64) error {
	now, err := rss(in.pid())
	if err != nil {
		return err
	}
	quiet := float64(rssQuiet-rss0) / float64(r.cfg.running) / 1024
	r.printf("RSS per running job once they had been quiet for %s: %.1f KiB since start-up (RSS %s)\n",
		quietWait, quiet, mib(rssQuiet))
	r.below(fmt.Sprintf("RSS per running job, %d running, quiet %s (since start-up)", r.cfg.running, quietWait), quiet, 12, "KiB", 1)
	per := float64(now-rss0) / float64(r.cfg.running) / 1024
	perRun := float64(now-rssDefs) / float64(r.cfg.running) / 1024
	perDef := float64(rssDefs-rss0) / float64(max(r.cfg.defs-r.cfg.running, 1)) / 1024
	r.printf("procman RSS %s: start-up %s, after the definitions %s (%.1f KiB each)\n", mib(now), mib(rss0), mib(rssDefs), perDef)
	r.printf("RSS per running job after the readings: %.1f KiB since start-up, %.1f KiB since the definitions\n", per, perRun)
	r.info(fmt.Sprintf("RSS with %d defs, %d running", r.cfg.defs, r.cfg.running), mib(now))
	r.info("RSS per running job after the readings (since start-up)", fmt.Sprintf("%.1f KiB", per))
	r.info("RSS per running job after the readings (definitions excluded)", fmt.Sprintf("%.1f KiB", perRun))
	return nil
}

// rss is VmRSS of a process, in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// measureShutdown sends SIGTERM and times until ProcMan has exited and no
// process of any job is left. Each run is its own process group led by the
// pid in its status, so the group also finds the shell's children.
func (r *runner) measureShutdown(ctx context.Context, in *instance, running []procman.Status) error {
	groups := make(map[int]bool, len(running))
	for _, s := range running {
		groups[s.PID] = true
	}
	if err := r.countBefore(groups); err != nil {
		return err
	}
	// The Transport may hold a connection it dialled but never used; net/http's
	// Shutdown waits up to 5 s for such a connection, which would time this
	// client rather than ProcMan.
	r.hc.CloseIdleConnections()
	t0 := time.Now()
	if err := in.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	left, err := waitGone(ctx, in, groups)
	if err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d job processes still alive 60 s after SIGTERM", left)
	}
	took := time.Since(t0).Seconds()
	code := in.cmd.ProcessState.ExitCode()
	r.printf("SIGTERM: procman exited (code %d) after %.2f s, every job process gone after %.2f s\n\n",
		code, in.exitedAt.Sub(t0).Seconds(), took)
	r.below(fmt.Sprintf("shutdown with %d running", r.cfg.running), took, 5, "s", 2)
	r.add("procman exit code after SIGTERM", "0", strconv.Itoa(code), code == 0)
	return nil
}

// countBefore prints how many job processes there are, so that the shutdown
// figure is seen to cover shells and their children alike.
func (r *runner) countBefore(groups map[int]bool) error {
	n, err := liveInGroups(groups)
	if err != nil {
		return err
	}
	r.printf("job processes before shutdown: %d (in %d process groups)\n", n, len(groups))
	return nil
}

// waitGone waits for ProcMan to exit, then for the job processes to go, and
// returns how many are left at the deadline.
func waitGone(ctx context.Context, in *instance, groups map[int]bool) (int, error) {
	deadline := time.After(60 * time.Second)
	select {
	case <-in.done:
	case <-deadline:
		return 0, fmt.Errorf("procman still running 60 s after SIGTERM%s", in.tail())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	for {
		// Scanning /proc costs CPU, so it waits for ProcMan's exit above.
		left, err := liveInGroups(groups)
		if err != nil || left == 0 {
			return left, err
		}
		select {
		case <-deadline:
			return left, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// liveInGroups counts the processes in /proc that belong to one of groups,
// zombies excepted: a zombie has ended, and on a host whose init is slow to
// reap orphans it can stay a while.
func liveInGroups(groups map[int]bool) (int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if ok && state != "Z" && (groups[pgrp] || groups[pid]) {
			n++
		}
	}
	return n, nil
}

// procStat reads a process's state and process group from /proc/<pid>/stat;
// ok is false when it is gone.
func procStat(pid int) (state string, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// The command name, in parentheses, may itself hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(string(b[i+1:])) // state, ppid, pgrp, ...
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0], pgrp, err == nil
}

// measureChurn runs one one_time job over and over on a fresh instance and
// compares memory after a warm-up with memory at the end: a bounded history
// should make the growth per run about zero.
func (r *runner) measureChurn(ctx context.Context) error {
	in, err := r.start(ctx)
	if err != nil {
		return err
	}
	if err := create(ctx, in, "x", "true", procman.OneTime); err != nil {
		return err
	}
	warm := max(r.cfg.churn/10, 1)
	var warmRSS, warmHeap int64
	t0 := time.Now()
	for i := range r.cfg.churn {
		if err := runOnce(ctx, in, "x"); err != nil {
			return fmt.Errorf("churn run %d: %w", i+1, err)
		}
		if i+1 == warm {
			if warmRSS, warmHeap, err = r.memory(ctx, in); err != nil {
				return err
			}
		}
	}
	took := time.Since(t0).Seconds()
	endRSS, endHeap, err := r.memory(ctx, in)
	if err != nil {
		return err
	}
	r.reportChurn(took, warm, [2]int64{warmRSS, endRSS}, [2]int64{warmHeap, endHeap})
	in.stop()
	return nil
}

// runOnce starts a one_time job and polls its state, every millisecond, until
// the run has exited.
func runOnce(ctx context.Context, in *instance, name string) error {
	st, err := in.api.Start(ctx, name)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(runTimeout)
	for st.State != "exited" {
		if st.State == "error" || st.State == "unknown" {
			return fmt.Errorf("job %s went to %s: %s", name, st.State, st.Error)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %s still %s after %s", name, st.State, runTimeout)
		}
		if err := pause(ctx, time.Millisecond); err != nil {
			return err
		}
		if st, err = in.api.State(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// memory is ProcMan's RSS and, when GET /metrics has it, its Go heap in use
// (-1 when not).
func (r *runner) memory(ctx context.Context, in *instance) (rssBytes, heap int64, err error) {
	if rssBytes, err = rss(in.pid()); err != nil {
		return 0, 0, err
	}
	data, err := in.api.Metrics(ctx)
	if err != nil {
		return rssBytes, -1, nil // optional: a binary without metrics still has RSS
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "go_memstats_heap_inuse_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return rssBytes, int64(f), nil
			}
		}
	}
	return rssBytes, -1, nil
}

// reportChurn prints the churn figures; rssB and heap hold the values after
// warm-up and at the end.
func (r *runner) reportChurn(took float64, warm int, rssB, heap [2]int64) {
	runs := r.cfg.churn - warm
	growth := float64(rssB[1]-rssB[0]) / float64(runs)
	rate := float64(r.cfg.churn) / took
	r.printf("churn: %d runs of a one_time job in %.2f s: %.0f runs/s\n", r.cfg.churn, took, rate)
	r.printf("churn RSS after %d runs %s, after %d %s: %+.0f bytes per run\n",
		warm, mib(rssB[0]), r.cfg.churn, mib(rssB[1]), growth)
	r.info("churn runs (start, poll until exited)", fmt.Sprintf("%.0f runs/s", rate))
	r.info("churn RSS after warm-up / at end", mib(rssB[0])+" / "+mib(rssB[1]))
	r.below("churn RSS growth per run", growth, 1024, "bytes", 0)
	if heap[0] >= 0 && heap[1] >= 0 {
		hg := float64(heap[1]-heap[0]) / float64(runs)
		r.printf("churn Go heap in use after %d runs %s, after %d %s: %+.0f bytes per run\n",
			warm, mib(heap[0]), r.cfg.churn, mib(heap[1]), hg)
		r.info("churn Go heap in use growth per run", fmt.Sprintf("%+.0f bytes", hg))
	}
	r.printf("\n")
}

// below records a figure whose target is to stay under limit.
func (r *runner) below(name string, v, limit float64, unit string, prec int) {
	r.add(name, fmt.Sprintf("< %g %s", limit, unit), fmt.Sprintf("%.*f %s", prec, v, unit), v < limit)
}

func (r *runner) add(name, target, measured string, ok bool) {
	verdict := "MISSED"
	if ok {
		verdict = "OK"
	}
	r.figures = append(r.figures, figure{name, target, measured, verdict})
}

// info records a figure that has no target.
func (r *runner) info(name, measured string) {
	r.figures = append(r.figures, figure{name, "-", measured, "-"})
}

func (r *runner) printSummary() {
	r.printf("summary (%d CPUs, %s/%s, %s)\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		time.Now().Format(time.RFC3339))
	w := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "FIGURE\tTARGET\tMEASURED\tRESULT")
	for _, f := range r.figures {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", f.name, f.target, f.measured, f.verdict)
	}
	w.Flush()
}
