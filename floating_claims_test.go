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

// A dead host's many floating jobs are dealt over every live host at once:
// each survivor takes its share in one beat, rather than one host taking
// one job a beat until the others catch up.
func TestDeadHostsJobsSpreadInABeat(t *testing.T) {
	f := newFleet(t)
	a, b, c := f.openFloating("a"), f.openFloating("b"), f.openFloating("c")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	const n = 30
	for i := range n {
		wa.create(Job{Name: fmt.Sprintf("f%02d", i), Command: "sleep 100", Type: Continuous, Schedule: "reboot", Host: HostAny})
	}
	owners := func() map[string]int {
		var got []string
		if err := a.store.db.NewRaw("SELECT owner FROM jobs WHERE owner IS NOT NULL").Scan(ctxT(t), &got); err != nil {
			t.Fatal(err)
		}
		held := map[string]int{}
		for _, o := range got {
			held[o]++
		}
		return held
	}
	eventually(t, "every job claimed, b holding some", func() bool { h := owners(); return h["a"]+h["b"]+h["c"] == n && h["b"] > 0 })
	onB := owners()["b"]
	b.lock.(*hostLease).frozen.Store(true) // b can no longer reach the database: its jobs go once its lease and the grace have
	beatsOf := func(m *Manager) int64 { return m.lock.(*hostLease).beats.Load() }
	var first map[*Manager]int64
	eventually(t, "b's jobs claimed by a and c", func() bool {
		h := owners()
		if first == nil && h["a"]+h["c"] > n-onB { // the first claim of b's jobs: beats counted from here
			first = map[*Manager]int64{a: beatsOf(a), c: beatsOf(c)}
		}
		return h["b"] == 0
	})
	for _, m := range []*Manager{a, c} {
		if beats := beatsOf(m) - first[m]; beats > 2 {
			t.Errorf("%s took %d beats to take its share of b's %d jobs, want at most 2", m.cfg.Host, beats, onB)
		}
	}
	if h := owners(); h["a"] < h["c"]-1 || h["c"] < h["a"]-1 {
		t.Errorf("b's jobs went unevenly: %v", h)
	}
}
