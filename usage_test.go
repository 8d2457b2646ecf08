package procman

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A running job's usage is its run's whole group: its live processes, their
// memory, the CPU of what they ran; PSS with it, no more than the RSS.
func TestUsageOfARunningJob(t *testing.T) {
	w := setup(t)
	spun := filepath.Join(w.dir, "spun")
	w.create(Job{Name: "busy", Command: "sleep 100 & (" + spin + "); touch " + spun + "; wait", Type: Continuous})
	w.start("busy")
	st := w.waitFor("busy", StateRunning)
	eventually(t, "the spin", func() bool { _, err := os.Stat(spun); return err == nil })
	var u Usage
	eventually(t, "two processes", func() bool {
		var err error
		u, err = w.m.Usage(ctxT(t), "busy")
		return err == nil && u.Processes == 2
	})
	if u.Job != "busy" || u.Run != 1 || u.PID != st.PID || u.AgeSeconds <= 0 || u.StartedAt.IsZero() {
		t.Errorf("usage %+v: want job busy, run 1, pid %d, an age", u, st.PID)
	}
	if cpu := u.CPUUserSeconds + u.CPUSystemSeconds; cpu < 0.035 {
		t.Errorf("CPU %.3f s, want the spin's, which the shell waited for", cpu)
	}
	if u.RSSBytes < 200<<10 || u.PSSBytes == nil || *u.PSSBytes <= 0 || *u.PSSBytes > u.RSSBytes {
		t.Errorf("RSS %d, PSS %v: want some of each, the PSS no more than the RSS", u.RSSBytes, u.PSSBytes)
	}
	w.create(Job{Name: "idle", Command: "sleep 100"})
	if _, err := w.m.Usage(ctxT(t), "idle"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("usage of a job that does not run: %v, want ErrNotRunning", err)
	}
	if _, err := w.m.Usage(ctxT(t), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("usage of no job: %v, want ErrNotFound", err)
	}
}

// Usages lists the running jobs only, by name, from one pass over /proc;
// with nothing running it reads nothing. PSS comes only when asked for.
func TestUsagesOfEveryRunningJobInOnePass(t *testing.T) {
	w := setup(t)
	if us, err := w.m.Usages(ctxT(t), UsageOptions{}); err != nil || len(us) != 0 {
		t.Fatalf("Usages with no job: %v, %v", us, err)
	}
	for _, name := range []string{"b", "a", "c"} {
		w.create(Job{Name: name, Command: "sleep 100", Type: Continuous})
	}
	if us, err := w.m.Usages(ctxT(t), UsageOptions{}); err != nil || len(us) != 0 {
		t.Fatalf("Usages with no job running: %v, %v", us, err)
	}
	if w.m.sampler.Passes() != 0 {
		t.Fatalf("%d passes over /proc with no job running, want none", w.m.sampler.Passes())
	}
	w.start("b")
	w.start("a")
	us, err := w.m.Usages(ctxT(t), UsageOptions{})
	if err != nil || len(us) != 2 || us[0].Job != "a" || us[1].Job != "b" {
		t.Fatalf("Usages: %+v, %v; want a and b", us, err)
	}
	if n := w.m.sampler.Passes(); n != 1 {
		t.Errorf("%d passes over /proc for one request, want 1", n)
	}
	// A shell spawned a moment ago may have no page of its own yet.
	eventually(t, "an RSS for both, and no PSS unasked", func() bool {
		us, err := w.m.Usages(ctxT(t), UsageOptions{})
		if err != nil || len(us) != 2 {
			t.Fatalf("Usages: %+v, %v; want a and b", us, err)
		}
		for _, u := range us {
			if u.PSSBytes != nil {
				t.Fatalf("%s: PSS %v unasked", u.Job, *u.PSSBytes)
			}
			if u.RSSBytes <= 0 {
				return false
			}
		}
		return true
	})
	us, err = w.m.Usages(ctxT(t), UsageOptions{PSS: true})
	if err != nil || len(us) != 2 || us[0].PSSBytes == nil || us[1].PSSBytes == nil {
		t.Errorf("Usages with PSS: %+v, %v", us, err)
	}
}

// What ended of a run still counts while it goes on: an orphan of its group
// the Manager reaped is in its CPU.
func TestUsageKeepsWhatEnded(t *testing.T) {
	w := setup(t, Config{Subreaper: true})
	w.create(Job{Name: "svc", Type: Continuous, Dir: w.dir, Command: `sh -c '(` + spin + `) & echo $! > pid'; p=$(cat pid);
		while kill -0 $p 2>/dev/null; do sleep 0.05; done; touch reaped; exec sleep 100`})
	w.start("svc")
	eventually(t, "the orphan reaped", func() bool { _, err := os.Stat(filepath.Join(w.dir, "reaped")); return err == nil })
	u, err := w.m.Usage(ctxT(t), "svc")
	if err != nil {
		t.Fatal(err)
	}
	if cpu := u.CPUUserSeconds + u.CPUSystemSeconds; cpu < 0.035 {
		t.Errorf("CPU %.3f s, want the reaped orphan's spin in it", cpu)
	}
}
