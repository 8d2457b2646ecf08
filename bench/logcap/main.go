// Command logcap measures what keeping running runs' log files under
// max_run_log_bytes costs ProcMan: its own CPU time (getrusage, every thread of
// this process, which runs the Manager and sleeps otherwise) and the wall time,
//
//   - with many continuous jobs running and writing nothing (sleep);
//   - with as many jobs each writing a line every second (vmstat 1);
//   - with one job writing a lot to stdout as fast as it can (head -c N
//     /dev/zero), with the default cap (its file is rotated as it goes) and
//     with a cap it never reaches (the checks alone).
//
// It is a measuring program, not a test. Run it from the module root:
//
//	go run ./bench/logcap
//	go run ./bench/logcap -jobs 200 -for 5s -bytes 268435456
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/Mk-Chan/procman"
)

func main() {
	jobs := flag.Int("jobs", 2000, "running jobs in the many-jobs scenarios")
	span := flag.Duration("for", 10*time.Second, "how long each many-jobs scenario is measured")
	bytes := flag.Int64("bytes", 1<<30, "what the one job writes to stdout")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the many-jobs scenarios' measured spans to this file")
	flag.Parse()
	if *profile != "" {
		f := must(os.Create(*profile))
		defer f.Close()
		profileTo = f
	}
	dir, err := os.MkdirTemp("", "procman-logcap-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-58s %10s %10s\n", "scenario", "wall", "CPU")
	many(dir, "idle", *jobs, *span, "exec sleep 3600")
	many(dir, "lines", *jobs, *span, "exec vmstat 1")
	one(dir, "default", *bytes, 0)
	one(dir, "never", *bytes, 1<<62)
}

// profileTo receives the CPU profile, if one is asked for.
var profileTo *os.File

func open(dir, name string) *procman.Manager {
	m, err := procman.Open(context.Background(), procman.Config{
		DBPath: filepath.Join(dir, name+".db"), LogDir: filepath.Join(dir, name+"-logs"),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fail(err)
	}
	return m
}

// many starts n continuous jobs running cmd, waits until each has written
// (or slept) for a second, then measures over span.
func many(dir, name string, n int, span time.Duration, cmd string) {
	m := open(dir, name)
	defer m.Shutdown(context.Background())
	ctx := context.Background()
	for i := range n {
		j := procman.Job{Name: fmt.Sprintf("%s-%04d", name, i), Command: cmd, Type: procman.Continuous}
		if err := m.Create(ctx, j); err != nil {
			fail(err)
		}
		if err := m.Start(ctx, j.Name); err != nil {
			fail(err)
		}
	}
	time.Sleep(2 * time.Second) // past the start-up: each job has begun its steady state
	if profileTo != nil && name == "lines" {
		pprof.StartCPUProfile(profileTo)
	}
	cpu0, t0 := cpu(), time.Now()
	time.Sleep(span)
	if profileTo != nil && name == "lines" {
		pprof.StopCPUProfile()
	}
	fmt.Printf("%-58s %10s %10s\n", fmt.Sprintf("%d jobs: %s, over %s", n, cmd, span),
		time.Since(t0).Round(time.Millisecond), (cpu() - cpu0).Round(time.Millisecond))
}

// one runs a one_time job that writes size bytes to stdout, with capBytes as
// its max_run_log_bytes (0: the default).
func one(dir, name string, size, capBytes int64) {
	m := open(dir, name)
	defer m.Shutdown(context.Background())
	ctx := context.Background()
	j := procman.Job{Name: "writer", Type: procman.OneTime, MaxRunLogBytes: capBytes,
		Command: fmt.Sprintf("head -c %d /dev/zero", size)}
	if err := m.Create(ctx, j); err != nil {
		fail(err)
	}
	cpu0, t0 := cpu(), time.Now()
	if err := m.Start(ctx, j.Name); err != nil {
		fail(err)
	}
	st, err := m.WaitFor(ctx, j.Name, procman.StateExited, procman.StateError)
	if err != nil || st.State != procman.StateExited {
		fail(fmt.Errorf("writer: %+v %v", st, err))
	}
	wall, used := time.Since(t0), cpu()-cpu0
	files := len(must(os.ReadDir(filepath.Join(dir, name+"-logs", "writer"))))
	rc := must(m.Logs(ctx, j.Name, procman.LogOptions{}))
	total := must(io.Copy(io.Discard, rc)) // every part, then the last file
	rc.Close()
	what := "default cap (100 MiB)"
	if capBytes > 0 {
		what = "a cap it never reaches"
	}
	fmt.Printf("%-58s %10s %10s\n", fmt.Sprintf("1 job writing %d MiB, %s: %d files, %d MiB", size>>20, what, files, total>>20),
		wall.Round(time.Millisecond), used.Round(time.Millisecond))
	if total != size {
		fail(fmt.Errorf("the log holds %d bytes, want %d", total, size))
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		fail(err)
	}
	return v
}

// cpu is this process's CPU time, user and system, every thread.
func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "logcap:", err)
	os.Exit(1)
}
