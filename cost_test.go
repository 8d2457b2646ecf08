package procman

import "testing"

// spin is a shell loop that burns some 100-200 ms of CPU: three times the
// least the tests want of it (35 ms), for a fast machine.
const spin = `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done`

// Each finished run records what it cost: the CPU of its shell and what the
// shell waited for, and of the orphans of its group the Manager reaped; and
// the largest resident memory of any of them. A run that never had a
// process has none, and the figures come back from the database as written.
func TestRunsRecordWhatTheyCost(t *testing.T) { eachDialect(t, testRunsRecordWhatTheyCost) }

func testRunsRecordWhatTheyCost(t *testing.T, d dialect) {
	w := setupOn(t, d, Config{Subreaper: true})
	w.create(Job{Name: "waited", Command: "(" + spin + "); exit 0"})
	// The spinning subshell is orphaned at once (its parent exits), and the
	// shell waits, polling, until the Manager has reaped it.
	w.create(Job{Name: "orphaned", Command: `sh -c '(` + spin + `) & echo $! > pid'; p=$(cat pid);
		while kill -0 $p 2>/dev/null; do sleep 0.05; done`, Dir: w.dir})
	w.create(Job{Name: "nodir", Command: "true", Dir: w.dir + "/missing"})
	for _, name := range []string{"waited", "orphaned"} {
		w.start(name)
		w.waitFor(name, StateExited)
	}
	w.startFails("nodir")
	for _, name := range []string{"waited", "orphaned"} {
		r := w.runs(name)[0]
		if r.CPUUserSeconds == nil || r.CPUSystemSeconds == nil || r.MaxRSSBytes == nil {
			t.Fatalf("%s: run %+v lacks its cost", name, r)
		}
		if cpu := *r.CPUUserSeconds + *r.CPUSystemSeconds; cpu < 0.035 || cpu > 60 {
			t.Errorf("%s: CPU %.3f s + %.3f s, want the spin's (at least 35 ms)", name, *r.CPUUserSeconds, *r.CPUSystemSeconds)
		}
		if rss := *r.MaxRSSBytes; rss < 100<<10 || rss > 1<<30 {
			t.Errorf("%s: peak RSS %d bytes, want a shell's", name, rss)
		}
		if got, err := w.m.Run(ctxT(t), name, r.ID); err != nil || *got.CPUUserSeconds != *r.CPUUserSeconds || *got.MaxRSSBytes != *r.MaxRSSBytes {
			t.Errorf("%s: Run(%d) = %+v, %v; want the same cost as Runs", name, r.ID, got, err)
		}
	}
	if r := w.runs("nodir")[0]; r.CPUUserSeconds != nil || r.CPUSystemSeconds != nil || r.MaxRSSBytes != nil {
		t.Errorf("a run that failed to start has a cost: %+v", r)
	}
}
