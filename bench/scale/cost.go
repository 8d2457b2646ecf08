package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// measureCost samples the two readings of what jobs cost, one request at a
// time, with every continuous job running: GET /jobs/usage (one pass over
// /proc for all of them) and a /metrics scrape (the per-job series, made
// from such a pass too). Beside each latency it prints the CPU time
// ProcMan spent per request (the kernel's reading of /proc included), which
// other work on a shared machine changes far less than the latency.
func (r *runner) measureCost(ctx context.Context, in *instance) error {
	n := min(jobsSamples, r.cfg.requests)
	for _, route := range []string{"/jobs/usage", "/metrics"} {
		cpu0, err := cpuTimeOf(in.pid())
		if err != nil {
			return err
		}
		d, err := r.sample(ctx, n, func(int) string { return in.base + route })
		if err != nil {
			return err
		}
		cpu1, err := cpuTimeOf(in.pid())
		if err != nil {
			return err
		}
		name := fmt.Sprintf("GET %s (%d running)", route, r.cfg.running)
		r.latency(name, d, 100)
		per := ms(cpu1-cpu0) / float64(n)
		r.printf("%-32s ProcMan's CPU per request: %.1f ms\n", name, per)
		r.info(name+" ProcMan CPU per request", fmt.Sprintf("%.1f ms", per))
	}
	return nil
}

// cpuTimeOf is the CPU time (user and system) a process has used, from
// /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func cpuTimeOf(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])) // state is f[0], utime f[11], stime f[12]
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	user, err1 := strconv.ParseInt(f[11], 10, 64)
	system, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q, stime %q", pid, f[11], f[12])
	}
	return time.Duration(user+system) * 10 * time.Millisecond, nil
}
