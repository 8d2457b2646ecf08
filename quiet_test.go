package procman

import (
	"testing"
	"time"
)

// Once the jobs have gone Config.ReturnMemory without a state change, the
// Manager collects once; more changes make another quiet spell, and another
// collection once the gap after the last has passed. Off by default: no
// collection and no goroutine.
func TestMemoryReturnedOnceQuiet(t *testing.T) {
	const after = 20 * time.Millisecond
	w := setup(t, Config{ReturnMemory: after})
	q := w.m.quiet
	if n := q.freed.Load(); n != 0 {
		t.Fatalf("collected %d times before any job changed state", n)
	}
	w.create(Job{Name: "a", Command: "sleep 100", Type: Continuous})
	w.start("a")
	eventually(t, "a collection once quiet", func() bool { return q.freed.Load() == 1 })
	collected := time.Now()
	if err := w.m.Stop(ctxT(t), "a"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second collection after the stop", func() bool { return q.freed.Load() == 2 })
	if gap := time.Since(collected); gap < 10*after {
		t.Errorf("collected again %s after the last, within the gap of %s", gap, 10*after)
	}
	if off := setup(t); off.m.quiet != nil {
		t.Error("a Manager without ReturnMemory watches for quiet")
	}
}
