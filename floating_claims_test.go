package procman

import (
	"context"
	"fmt"
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

// Jobs created in a burst through one host spread over the fleet: a host
// counts the floating jobs it has claimed and not yet started as active,
// else each create, which has it beat at once, would find it idle still
// and it would claim them all.
func TestFloatingBurstSpreads(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.openFloating("a"), f.openFloating("b"), f.openFloating("c")
	release := make(chan struct{})
	a.floats.queue(func(ctx context.Context) { // a adopts nothing until released
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	defer close(release)
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	for i := range 6 {
		wa.create(Job{Name: fmt.Sprintf("f%d", i), Command: "sleep 100", Type: Continuous, Schedule: "reboot", Host: HostAny})
	}
	held := map[string]int{}
	eventually(t, "every job claimed", func() bool {
		var owners []string
		if err := a.store.db.NewRaw("SELECT owner FROM jobs WHERE owner IS NOT NULL").Scan(ctxT(t), &owners); err != nil {
			t.Fatal(err)
		}
		clear(held)
		for _, o := range owners {
			held[o]++
		}
		return len(owners) == 6
	})
	for _, m := range []*Manager{a, b, c} {
		if n := held[m.cfg.Host]; n != 2 {
			t.Errorf("host %s holds %d of 6 floating jobs, want 2: %v", m.cfg.Host, n, held)
		}
	}
}
