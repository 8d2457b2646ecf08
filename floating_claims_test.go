package procman

import (
	"path/filepath"
	"testing"
)

// A host that lost its lease for a while (cut off from the database) and
// got it back, with no other host to claim its floating job meanwhile,
// takes the job back and runs it again.
func TestFloatingJobTakenBackAfterALapse(t *testing.T) {
	f := newFleet(t)
	journal := filepath.Join(f.w.dir, "journal")
	a := f.openFloating("a")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(journaled("svc", journal))
	claimedBy(t, a, "svc")
	wa.start("svc")
	first := runningOn(t, a, "svc")
	l := a.lock.(*hostLease)
	l.frozen.Store(true)
	eventually(t, "svc stopped by self-fencing", func() bool {
		st, _ := a.State("svc")
		return st.State != StateRunning && st.PID == 0
	})
	l.frozen.Store(false)
	if again := runningOn(t, a, "svc"); again == first {
		t.Fatalf("svc runs as pid %d, the run self-fencing stopped", again)
	}
	checkJournal(t, journal)
}
