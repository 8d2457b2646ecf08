// Command memjob measures what a running job costs ProcMan's memory: it
// starts -jobs continuous jobs in a Manager of its own and reports the
// growth of the Go runtime's figures (heap, stacks, goroutines) and of RSS,
// per job.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/Mk-Chan/procman"
)

func main() {
	n := flag.Int("jobs", 200, "continuous jobs to run")
	flag.Parse()
	dir, err := os.MkdirTemp("", "memjob")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	m, err := procman.Open(ctx, procman.Config{DBPath: filepath.Join(dir, "db"), LogDir: filepath.Join(dir, "logs"), Subreaper: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Shutdown(ctx)
	before := sample()
	for i := range *n {
		j := procman.Job{Name: "j" + strconv.Itoa(i), Command: "sleep 3600", Type: procman.Continuous}
		if err := m.Create(ctx, j); err != nil {
			log.Fatal(err)
		}
		if err := m.Start(ctx, j.Name); err != nil {
			log.Fatal(err)
		}
	}
	after := sample()
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(100 * time.Millisecond) // let the scavenger's work show in RSS: a measurement, not synchronisation
	settled := sample()
	fmt.Printf("per job, right after the starts: %s\n", after.minus(before, *n))
	fmt.Printf("per job, after GC and FreeOSMemory: %s\n", settled.minus(before, *n))
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Threads") || strings.HasPrefix(l, "VmRSS") {
			fmt.Println(l)
		}
	}
	fmt.Println("before:", before.status)
}

type figures struct {
	rss, heapInuse, heapAlloc, stack float64
	goroutines                       int
	status                           string
}

func sample() figures {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return figures{rss: rss(), heapInuse: float64(ms.HeapInuse), heapAlloc: float64(ms.HeapAlloc),
		stack: float64(ms.StackInuse), goroutines: runtime.NumGoroutine(), status: status()}
}

func (f figures) minus(b figures, n int) string {
	k := func(a, b float64) float64 { return (a - b) / 1024 / float64(n) }
	return fmt.Sprintf("RSS %.1f KiB, heap in use %.1f KiB (live %.1f), stacks %.1f KiB, goroutines %.2f",
		k(f.rss, b.rss), k(f.heapInuse, b.heapInuse), k(f.heapAlloc, b.heapAlloc), k(f.stack, b.stack),
		float64(f.goroutines-b.goroutines)/float64(n))
}

func rss() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseFloat(f[1], 64)
	return pages * float64(os.Getpagesize())
}

func status() string {
	st, _ := os.ReadFile("/proc/self/status")
	var out []string
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "Rss") || strings.HasPrefix(l, "Threads") {
			out = append(out, strings.Join(strings.Fields(l), " "))
		}
	}
	return strings.Join(out, "; ")
}
