package procman

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// A job whose run simply runs holds no goroutine: its supervision is parked,
// and resumes on each event of its run. Here the events are a crash (the job
// restarts), a health check that fails (the run is restarted), and stops.
func TestRunningJobsHoldNoGoroutine(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "warm", Command: "sleep 1000", Type: Continuous})
	w.start("warm") // the process waiter, the writer and the log watcher are up
	w.waitFor("warm", StateRunning)
	steady := func() int { // the count once two readings 50 ms apart agree
		for n := runtime.NumGoroutine(); ; {
			time.Sleep(50 * time.Millisecond)
			m := runtime.NumGoroutine()
			if m == n {
				return n
			}
			n = m
		}
	}
	settled := func(want int) bool {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > want {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	before := steady() // nothing left of the warm start's goroutines
	const n = 30
	sick := filepath.Join(w.dir, "sick")
	for i := range n {
		j := Job{Name: fmt.Sprintf("j%d", i), Command: "sleep 1000", Type: Continuous}
		if i%3 == 0 { // checked every 20 ms: its timer, not a goroutine
			j.Health = fastCheck(HealthCheck{Exec: "test ! -e " + sick + fmt.Sprint(i)})
		}
		w.create(j)
		w.start(j.Name)
	}
	for i := range n {
		w.waitFor(fmt.Sprintf("j%d", i), StateRunning)
	}
	if !settled(before + 3) {
		t.Fatalf("%d goroutines more while %d jobs run, want none per job", runtime.NumGoroutine()-before, n)
	}
	crashed := w.waitFor("j1", StateRunning)
	syscall.Kill(-crashed.PID, syscall.SIGKILL)
	again := w.until("j1", "running again", func(st Status) bool { return st.State == StateRunning && st.PID != crashed.PID })
	if again.Restarts != 1 {
		t.Errorf("j1 after its crash: %+v, want one restart", again)
	}
	sickOne := w.waitFor("j3", StateRunning)
	if err := os.WriteFile(sick+"3", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	w.until("j3", "restarted as unhealthy", func(st Status) bool { return st.PID != sickOne.PID && st.PID != 0 })
	os.Remove(sick + "3")
	w.until("j3", "healthy again", func(st Status) bool { return st.State == StateRunning && st.Health == HealthHealthy })
	if !settled(before + 3) {
		t.Fatalf("%d goroutines more after a crash and an unhealthy restart, want none per job", runtime.NumGoroutine()-before)
	}
	for i := range n {
		if err := w.m.Stop(ctxT(t), fmt.Sprintf("j%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}
