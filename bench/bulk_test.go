package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
)

// bulkJobs is the size of the peer harness: the bulk stop is compared with
// a bare kill of as many process groups.
const bulkJobs = 200

// BenchmarkBulkStop200: one POST /jobs/stop?all=1 of 200 running `sleep`
// jobs, answered once every process of them is gone, by a Manager configured
// as the binary's (Config.Subreaper). Compare it with BenchmarkKillGroups200
// and BenchmarkKillReapGroups200, the least it could take.
func BenchmarkBulkStop200(b *testing.B) {
	m := openWith(b, procman.Config{Subreaper: true})
	create(b, m, bulkJobs, "sleep 100", procman.Continuous)
	ts := httptest.NewServer(httpapi.New(m))
	defer ts.Close()
	c := ts.Client()
	ctx := context.Background()
	for range b.N {
		b.StopTimer()
		if res, err := m.StartJobs(ctx, procman.AllJobs()); err != nil || len(res) != bulkJobs {
			b.Fatalf("start: %d results, %v", len(res), err)
		}
		written(b, m)
		forked(b, pidsOf(m))
		b.StartTimer()
		resp, err := c.Post(ts.URL+"/jobs/stop?all=1", "", nil)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatal(resp.Status)
		}
	}
}

// BenchmarkKillGroups200: what BenchmarkBulkStop200 is measured against:
// SIGTERM to each of 200 process groups of `sh -c "sleep 100"`, and a wait
// for every shell.
func BenchmarkKillGroups200(b *testing.B) {
	for range b.N {
		b.StopTimer()
		cmds, pids := make([]*exec.Cmd, bulkJobs), make([]int, bulkJobs)
		for i := range cmds {
			cmds[i] = exec.Command("/bin/sh", "-c", "sleep 100")
			cmds[i].SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := cmds[i].Start(); err != nil {
				b.Fatal(err)
			}
			pids[i] = cmds[i].Process.Pid
		}
		forked(b, pids)
		b.StartTimer()
		for _, c := range cmds {
			syscall.Kill(-c.Process.Pid, syscall.SIGTERM)
		}
		for _, c := range cmds {
			c.Wait() // killed by the signal: an error, as expected
		}
	}
}

// BenchmarkKillReapGroups200: the least a manager that answers a stop only
// once it is done can do: SIGTERM to each of 200 process groups of
// `sh -c "sleep 100"`, as their subreaper, and a wait for every process of
// them (the shells, and the sleeps they did not reap themselves), with no
// record kept. A bare kill waits for none of this; ProcMan's answer waits
// for all of it.
func BenchmarkKillReapGroups200(b *testing.B) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		b.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	for range b.N {
		b.StopTimer()
		pgids := make([]int, bulkJobs)
		for i := range pgids {
			c := exec.Command("/bin/sh", "-c", "sleep 100")
			c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if err := c.Start(); err != nil {
				b.Fatal(err)
			}
			pgids[i] = c.Process.Pid
		}
		forked(b, pgids)
		b.StartTimer()
		for _, g := range pgids {
			unix.Kill(-g, unix.SIGTERM)
		}
		reaped := 0
		for _, g := range pgids {
			reaped += reapGroup(g)
		}
		if reaped < bulkJobs {
			b.Fatalf("reaped %d processes of %d groups", reaped, bulkJobs)
		}
	}
}

// reapGroup waits for every child of group pgid until none is left. A
// shell's orphan is this process's child before the shell is a zombie, so a
// wait that reaped the shell is followed by one that finds the orphan.
func reapGroup(pgid int) (n int) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(-pgid, &ws, 0, nil)
		switch {
		case err == unix.EINTR:
		case err != nil:
			return n
		default:
			n++
		}
	}
}

// BenchmarkStopJobs200: m.StopJobs of 200 running `sleep` jobs, without
// the HTTP layer.
func BenchmarkStopJobs200(b *testing.B) {
	benchStopJobs(b, open(b))
}

// BenchmarkStopJobs200Subreaper: BenchmarkStopJobs200 with the Manager the
// binary runs, which adopts its jobs' orphans (Config.Subreaper): no zombie
// waits for an init that reaps late, so no stop needs a scan of /proc.
func BenchmarkStopJobs200Subreaper(b *testing.B) {
	benchStopJobs(b, openWith(b, procman.Config{Subreaper: true}))
}

// benchStopJobs also reports the CPU this process spent per stop, from the
// stop until the database has its records (cpu-ms/op), which other work on
// a shared machine changes less than the time.
func benchStopJobs(b *testing.B, m *procman.Manager) {
	create(b, m, bulkJobs, "sleep 100", procman.Continuous)
	ctx := context.Background()
	var cpu time.Duration
	for range b.N {
		b.StopTimer()
		if res, err := m.StartJobs(ctx, procman.AllJobs()); err != nil || len(res) != bulkJobs {
			b.Fatalf("start: %d results, %v", len(res), err)
		}
		written(b, m)
		forked(b, pidsOf(m))
		cpu0 := selfCPU()
		b.StartTimer()
		if _, err := m.StopJobs(ctx, procman.AllJobs()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		written(b, m)
		cpu += selfCPU() - cpu0
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// forked waits until each shell has started its sleep, so that every stop
// timed here ends the same 400 processes: a shell signalled before its fork
// leaves one.
func forked(b *testing.B, shells []int) {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range shells {
		for {
			kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
			if err != nil {
				b.Fatal(err)
			}
			if len(kids) > 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("shell %d has not started its sleep in 10 s", pid)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// pidsOf lists the shells of m's running jobs.
func pidsOf(m *procman.Manager) []int {
	var pids []int
	for _, st := range m.States() {
		if st.PID != 0 {
			pids = append(pids, st.PID)
		}
	}
	return pids
}

// written waits until the Manager has written the records of the starts
// just made: a stop timed while the writer still inserts them would share
// the two cores with it, which a stop of jobs that have been running for a
// while does not.
func written(b *testing.B, m *procman.Manager) {
	b.Helper()
	if _, err := m.Runs(context.Background(), "job-00000", procman.RunsOptions{Limit: 1}); err != nil {
		b.Fatal(err)
	}
}
