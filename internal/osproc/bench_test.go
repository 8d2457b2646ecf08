//go:build linux

package osproc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkStartDuringStops: start a process and wait for it to exit, with
// eight at a time, while a Reaper that adopts (as the binary's does) has
// other groups being stopped: their shells ended by SIGTERM, a child that
// ignores it left in each, and each group polled by WaitGroupGone, as a stop
// polls it during its grace period. Besides the time per start, it reports
// the CPU time this process spent per start (the polls' included), and how
// long a start waits for the fork gate (median, 99th percentile). Run it with
//
//	go test -run '^$' -bench StartDuringStops -benchtime 200x ./internal/osproc/
func BenchmarkStartDuringStops(b *testing.B) {
	for _, stopping := range []int{0, 200, 800} {
		b.Run(fmt.Sprintf("stopping=%d", stopping), func(b *testing.B) {
			rp, err := NewReaper(true)
			if err != nil {
				b.Fatal(err)
			}
			defer rp.Close()
			groups := make([]*Proc, stopping)
			dirs := make([]string, stopping)
			for i := range groups {
				// The child is deaf to SIGTERM: it stays until SIGKILL, as in a slow stop.
				dirs[i] = b.TempDir()
				groups[i], err = rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c",
					`sh -c 'trap "" TERM; : > ready; exec sleep 1000' & wait`}, Dir: dirs[i]})
				if err != nil {
					b.Fatal(err)
				}
			}
			grace := make(chan time.Time)
			var polls sync.WaitGroup
			for i, g := range groups {
				for !exists(filepath.Join(dirs[i], "ready")) { // the trap is set
					time.Sleep(time.Millisecond)
				}
				SignalGroup(g.Pid, syscall.SIGTERM)
				polls.Go(func() {
					g.Exit() // a stop polls the group once its leader has gone
					rp.WaitGroupGone(g.Pid, grace, nil)
				})
			}
			// A probe takes the fork gate as a start does, every millisecond,
			// and notes how long it waited for it.
			probing, probed := make(chan struct{}), make(chan []time.Duration)
			go func() {
				var waits []time.Duration
				for {
					select {
					case <-probing:
						probed <- waits
						return
					case <-time.After(time.Millisecond):
					}
					t0 := time.Now()
					rp.forks.RLock()
					waits = append(waits, time.Since(t0))
					rp.forks.RUnlock()
				}
			}()
			cpu0 := cpuTime()
			b.SetParallelism(4) // eight starts at a time on two cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p, err := rp.StartGroup(Spec{Path: "/bin/true"})
					if err != nil {
						b.Error(err)
						return
					}
					p.Exit()
				}
			})
			b.StopTimer()
			close(probing)
			waits := <-probed
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(float64(percentile(waits, 0.5).Microseconds()), "gate-p50-µs")
			b.ReportMetric(float64(percentile(waits, 0.99).Microseconds()), "gate-p99-µs")
			close(grace)
			polls.Wait()
			for _, g := range groups {
				SignalGroup(g.Pid, syscall.SIGKILL)
				g.Exit()
			}
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// cpuTime is the CPU time this process has used, its children's not included.
func cpuTime() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[int(float64(len(ds)-1)*q)]
}

// BenchmarkSample: one pass over /proc with this machine's processes and
// 1,000 groups of two (a shell and its sleep) more, with the CPU time this
// process spent per pass (the kernel's reading of /proc included); and the
// PSS of one group.
//
//	go test -run '^$' -bench Sample ./internal/osproc/
func BenchmarkSample(b *testing.B) {
	rp, err := NewReaper(false)
	if err != nil {
		b.Fatal(err)
	}
	defer rp.Close()
	groups := make([]*Proc, 1000)
	for i := range groups {
		if groups[i], err = rp.StartGroup(Spec{Path: "/bin/sh", Args: []string{"-c", "sleep 1000; exit 0"}}); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, g := range groups {
			SignalGroup(g.Pid, syscall.SIGKILL)
			g.Exit()
		}
	}()
	for len(GroupMembers(groups[len(groups)-1].Pid)) < 2 {
		time.Sleep(time.Millisecond)
	}
	b.Run("pass", func(b *testing.B) {
		cpu0 := cpuTime()
		for b.Loop() {
			takeSample()
		}
		b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	})
	s := takeSample()
	b.Run("pss", func(b *testing.B) {
		for b.Loop() {
			s.PSS(groups[0].Pid)
		}
	})
}
