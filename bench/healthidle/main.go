// Command healthidle measures what health checks cost ProcMan itself, next
// to what the checks' own processes cost: it runs -jobs continuous jobs
// (sleep) with an exec check every -interval, and over -window it reads
// ProcMan's CPU time (getrusage RUSAGE_SELF: this process is a Manager and
// little else) and the CPU time of the checks' processes (RUSAGE_CHILDREN:
// every check's shell is reaped during the window, and counts its own
// children; the jobs' processes are not reaped until the end). The same jobs
// without a check give ProcMan's idle cost, taken off. The guardian process
// (awk, told of each check's group) is read from /proc and shown apart.
//
//	go run ./bench/healthidle
//	go run ./bench/healthidle -jobs 200 -interval 10s -window 60s -check 'test -e /'
//
// It is a measuring program, not a test: it prints what it measured.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/internal/osproc"
	"golang.org/x/sys/unix"
)

func main() {
	jobs := flag.Int("jobs", 200, "continuous jobs")
	interval := flag.Duration("interval", 10*time.Second, "health check interval")
	window := flag.Duration("window", 60*time.Second, "how long to measure")
	check := flag.String("check", "cat /dev/null", "the exec check")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the measure with checks to this file")
	flag.Parse()
	cpuProfile = *profile

	idle := measure(*jobs, nil, *window)
	checked := measure(*jobs, &procman.HealthCheck{Exec: *check, Interval: procman.Duration(*interval)}, *window)

	fmt.Printf("%d jobs, exec check %q every %s, over %s\n", *jobs, *check, *interval, *window)
	fmt.Printf("  without checks: ProcMan %s CPU\n", idle.self)
	fmt.Printf("  with checks:    ProcMan %s CPU, checks' processes %s CPU (about %d checks), guardian (awk) %s CPU\n",
		checked.self, checked.children, checked.checks, checked.guardian)
	extra := checked.self - idle.self
	fmt.Printf("  ProcMan's cost of the checks: %s, %.1f µs a check; ratio to the checks' processes: %.2f\n",
		extra, float64(extra.Microseconds())/float64(max(checked.checks, 1)), float64(extra)/float64(checked.children))
	fmt.Printf("  with the guardian: ratio %.2f\n", float64(extra+checked.guardian)/float64(checked.children))
}

var cpuProfile string

type sample struct {
	self, children, guardian time.Duration
	checks                   int
}

// measure runs n jobs with check (nil: none) and measures the window once
// every job is running (and, with a check, healthy).
func measure(n int, check *procman.HealthCheck, window time.Duration) sample {
	dir, err := os.MkdirTemp("", "healthidle")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	m, err := procman.Open(ctx, procman.Config{DBPath: filepath.Join(dir, "procman.db"), LogDir: filepath.Join(dir, "logs")})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	for i := range n {
		name := "job" + strconv.Itoa(i)
		if err := m.Create(ctx, procman.Job{Name: name, Command: "exec sleep 100000", Type: procman.Continuous, Health: check}); err != nil {
			log.Fatal(err)
		}
		if err := m.Start(ctx, name); err != nil {
			log.Fatal(err)
		}
	}
	for i := range n {
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := m.WaitFor(wctx, "job"+strconv.Itoa(i), procman.StateRunning)
		for check != nil && err == nil {
			var st procman.Status
			if st, err = m.State("job" + strconv.Itoa(i)); st.Health == procman.HealthHealthy {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		if err != nil {
			log.Fatal(err)
		}
	}
	time.Sleep(time.Second) // let the start settle
	awk := guardian()
	self0, kids0, g0 := rusage(unix.RUSAGE_SELF), rusage(unix.RUSAGE_CHILDREN), procCPU(awk)
	if cpuProfile != "" && check != nil {
		f, err := os.Create(cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	time.Sleep(window)
	s := sample{self: rusage(unix.RUSAGE_SELF) - self0, children: rusage(unix.RUSAGE_CHILDREN) - kids0,
		guardian: procCPU(awk) - g0}
	if check != nil { // about: each job's checks are an interval (plus the check's own few ms) apart
		s.checks = n * int(window/time.Duration(check.Interval))
	}
	return s
}

func rusage(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		log.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// guardian finds this process's awk child.
func guardian() int {
	self := os.Getpid()
	for _, p := range osproc.Procs() {
		if p.PPid == self && p.Comm == "awk" {
			return p.Pid
		}
	}
	return 0
}

// procCPU is the user and system time of pid from /proc (clock ticks of 10ms).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
