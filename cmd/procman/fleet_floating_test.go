package main

// The fleet's scenarios on three binaries (fleet_cluster_test.go): jobs
// pinned to a host and steered through the others, and floating jobs (job
// field host "*") moving off a host that is killed, frozen or cut off from
// PostgreSQL. Each ends with c.checkJournals(): no job ever ran twice at
// once, but where a test says which overlap the design allows and bounds it.

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// floatingJob creates, through host on, a continuous floating job that
// runs journalScript, started as created (schedule reboot). prefix goes
// before the script's exec: `trap "" TERM; ` makes a job deaf to SIGTERM
// (a stop kills it after its stop timeout, 1 s).
func (c *cluster) floatingJob(on, job, prefix string) {
	c.t.Helper()
	createJob(c.t, c.node(on).base, map[string]any{"name": job, "type": "continuous", "schedule": "reboot",
		"host": procman.HostAny, "stop_timeout": "1s", "command": prefix + "exec sh " + filepath.Join(c.dir, "journal.sh") + " " + job})
}

// up lists the hosts that run and are not frozen, in name order.
func (c *cluster) up() []string {
	var out []string
	for _, name := range []string{"A", "B", "C"} {
		if n := c.nodes[name]; n.base != "" && !n.frozen {
			out = append(out, name)
		}
	}
	return out
}

// runsOn asks every host that is up whether it runs job itself (its state
// running, under its own name), and returns that host and the run's pid;
// "" while none does. Two hosts at once fail the test.
func (c *cluster) runsOn(job string) (string, int) {
	c.t.Helper()
	var on string
	var pid int
	for _, name := range c.up() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := api(c.t, c.node(name).base).State(ctx, job)
		cancel()
		if err != nil || st.State != procman.StateRunning || st.Host != name {
			continue
		}
		if on != "" {
			c.t.Fatalf("job %s runs on %s (pid %d) and on %s (pid %d)", job, on, pid, name, st.PID)
		}
		on, pid = name, st.PID
	}
	return on, pid
}

// waitPlaced waits until job runs on one of the hosts among (any host if
// none is named) and its run has journaled its start, and returns the host
// and the run.
func (c *cluster) waitPlaced(job string, among ...string) (string, journalRun) {
	c.t.Helper()
	var on string
	var run journalRun
	poll(c.t, fleetWait, "floating job "+job+" running on one of "+fmt.Sprint(among), func() bool {
		host, pid := c.runsOn(job)
		if host == "" || (len(among) > 0 && !slices.Contains(among, host)) {
			return false
		}
		runs, _ := parseJournal(c.journal(job))
		i := slices.IndexFunc(runs, func(r journalRun) bool { return r.pid == pid && r.host == host && r.open })
		if i < 0 {
			return false
		}
		on, run = host, runs[i]
		return true
	})
	return on, run
}

// waitListed waits until GET /jobs on every host that is up lists job with
// host (the host column: the fleet's view of where a job runs).
func (c *cluster) waitListed(job, host string) {
	c.t.Helper()
	for _, from := range c.up() {
		var got string
		poll(c.t, fleetWait, fmt.Sprintf("GET /jobs on %s to list %s on host %s", from, job, host), func() bool {
			for _, e := range listJobs(c.t, c.node(from).base) {
				if e.Name == job {
					got = e.Host
				}
			}
			return got == host
		})
	}
}

// openRuns is every run of job's journal still without an end.
func (c *cluster) openRuns(job string) []journalRun {
	c.t.Helper()
	runs, err := parseJournal(c.journal(job))
	if err != nil {
		c.t.Fatalf("journal of %s: %v", job, err)
	}
	return slices.DeleteFunc(runs, func(r journalRun) bool { return !r.open })
}

// A job created through A pinned to B ("host": "B") and started through C
// runs on B: its journal names B, GET /jobs on A and C lists it on host B,
// and a stop through A stops it on B.
func TestFleetPinnedThroughAnotherHost(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	createJob(t, c.node("A").base, map[string]any{"name": "pinned", "type": "continuous", "host": "B",
		"command": "exec sh " + filepath.Join(c.dir, "journal.sh") + " pinned"})
	c.waitListed("pinned", "B")
	if _, err := api(t, c.node("C").base).Start(context.Background(), "pinned"); err != nil {
		t.Fatalf("start pinned through C: %v", err)
	}
	pid := c.waitJournaled("B", "pinned")
	if _, err := api(t, c.node("A").base).Stop(context.Background(), "pinned"); err != nil {
		t.Fatalf("stop pinned through A: %v", err)
	}
	poll(t, fleetWait, "pinned stopped on B", func() bool { return jobState(t, c.node("B").base, "pinned").State == procman.StateStopped })
	if runs := c.openRuns("pinned"); len(runs) > 0 || !gone(pid) {
		t.Errorf("after the stop through A: open runs %v, pid %d gone %v", runs, pid, gone(pid))
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
	runs, _ := parseJournal(c.journal("pinned"))
	if len(runs) != 1 || runs[0].host != "B" || runs[0].seen {
		t.Errorf("journal of pinned: %v, want one run on B, its end journaled", runs)
	}
}

// Floating jobs spread over A, B and C; B's ProcMan SIGKILLed: each of its
// floating jobs runs on A or C once B's lease plus the grace have ended
// (the failover, from the kill to the start on the new host, is logged),
// never before; B's pinned job shows unknown on A and C, naming B; B
// restarted runs its pinned job again and takes no floating job back.
func TestFleetFloatingMovesOffAKilledHost(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	jobs := []string{"f1", "f2", "f3", "f4", "f5", "f6"}
	for _, job := range jobs {
		c.floatingJob("A", job, "")
	}
	placed := map[string]string{}
	for _, job := range jobs {
		placed[job], _ = c.waitPlaced(job)
	}
	var onB []string
	for _, job := range jobs {
		c.waitListed(job, placed[job])
		if placed[job] == "B" {
			onB = append(onB, job)
		}
	}
	t.Logf("placed: %v", placed)
	if len(onB) == 0 {
		t.Fatalf("B, as idle as A and C, holds none of %d floating jobs: %v", len(jobs), placed)
	}
	c.journalJob("B", "pinned-B")
	killed := c.kill("B")
	for _, job := range onB {
		on, run := c.waitPlaced(job, "A", "C")
		took := run.start.Sub(killed)
		t.Logf("failover of %s: B killed, running on %s %s later (lease %s, grace %s)", job, on, took.Round(time.Millisecond), fleetLease, fleetGrace)
		// The kill came at most a beat (lease/5) after B's last renewal.
		if floor := fleetLease - fleetLease/5 + fleetGrace; took < floor {
			t.Errorf("%s ran on %s %s after B's kill: before B's lease plus the grace could have ended (%s)", job, on, took, floor)
		}
		placed[job] = on
	}
	for _, from := range []string{"A", "C"} {
		poll(t, fleetWait, "pinned-B unknown on "+from+", naming B", func() bool {
			st := jobState(t, c.node(from).base, "pinned-B")
			return st.State == procman.StateUnknown && st.Host == "B" && strings.Contains(st.Error, "B")
		})
	}
	pids := map[string]int{}
	for _, job := range jobs {
		_, pids[job] = c.runsOn(job)
	}
	c.start("B")
	c.waitJournaled("B", "pinned-B")
	// B's claims ride on its heartbeat: two beats since it joined again gave it its chances.
	row, _ := c.waitHost("B", "B", "alive at epoch 2", aliveAt(2))
	c.waitHost("B", "B", "renewed twice since", func(h procman.Host) bool {
		return h.Alive && h.HeartbeatAt.Sub(row.HeartbeatAt) >= 2*fleetLease/5
	})
	for _, job := range jobs {
		if on, pid := c.runsOn(job); on != placed[job] || pid != pids[job] {
			t.Errorf("%s runs on %s as pid %d after B came back, want %s as pid %d", job, on, pid, placed[job], pids[job])
		}
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
}

// B frozen (SIGSTOP of its ProcMan alone) past its lease plus the grace:
// B's guardian, a process of its own, kills B's floating runs before the
// lease ends, although they are deaf to SIGTERM; only then do A and C claim
// and run them. B thawed (SIGCONT) finds them gone and starts none of them
// again: no job ever ran twice at once.
func TestFleetFrozenHostDropsItsCopies(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	jobs := []string{"f1", "f2", "f3", "f4", "f5", "f6"}
	for _, job := range jobs { // deaf to SIGTERM: a kill must not wait for them
		c.floatingJob("A", job, `trap "" TERM; `)
	}
	placed := map[string]string{}
	for _, job := range jobs {
		placed[job], _ = c.waitPlaced(job)
	}
	t.Logf("placed: %v", placed)
	copies := map[string]journalRun{} // B's runs, by job
	for _, job := range jobs {
		if placed[job] == "B" {
			copies[job] = c.openRuns(job)[0]
		}
	}
	if len(copies) == 0 {
		t.Fatalf("B, as idle as A and C, holds none of %d floating jobs: %v", len(jobs), placed)
	}
	frozen := c.freeze("B")
	for job, run := range copies {
		poll(t, fleetWait, "B's copy of "+job+" gone while B is frozen", func() bool { return gone(run.pid) })
		t.Logf("B frozen, its copy of %s gone %s later (lease %s)", job, time.Since(frozen).Round(time.Millisecond), fleetLease)
	}
	c.noteGone() // each copy's end, before any successor could start
	for job := range copies {
		on, run := c.waitPlaced(job, "A", "C")
		t.Logf("B frozen, its job %s runs on %s %s later", job, on, run.start.Sub(frozen).Round(time.Millisecond))
	}
	c.thaw("B")
	c.waitHost("B", "B", "alive again", func(h procman.Host) bool { return h.Alive })
	for _, name := range []string{"B", "A", "C"} {
		c.stop(name)
	}
	c.checkJournals()
}

// Floating jobs on A, B and C. PostgreSQL restarted, for less than half a
// lease (self-fencing stops floating jobs at half a lease unrenewed; the
// lease is 6 s here, for a restart takes a second on a loaded machine):
// nothing moves, every floating job keeps its pid. Then stopped for longer
// than the lease: every host stops its floating jobs before its lease ends
// (self-fencing by its own clock), its pinned ones run on; once the server
// is back every floating job runs again, on one host.
func TestFleetFloatingThroughAPostgresRestart(t *testing.T) {
	c := newCluster(t)
	c.lease = 6 * time.Second
	c.startAll()
	jobs := []string{"f1", "f2", "f3"}
	for _, job := range jobs {
		c.floatingJob("A", job, "")
	}
	pinned := c.journalJob("C", "pinned-C")
	pids := map[string]int{}
	for _, job := range jobs {
		c.waitPlaced(job)
		_, pids[job] = c.runsOn(job)
	}
	began := time.Now()
	c.restartPostgres()
	t.Logf("PostgreSQL stopped and started again in %s", time.Since(began).Round(time.Millisecond))
	for _, name := range []string{"A", "B", "C"} {
		c.waitHost(name, name, "renewed since the restart", func(h procman.Host) bool { return h.Alive && h.HeartbeatAt.After(began) })
	}
	for _, job := range jobs {
		if _, pid := c.runsOn(job); pid != pids[job] {
			t.Errorf("%s runs as pid %d after a short restart, want %d", job, pid, pids[job])
		}
	}

	if err := c.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	// The hosts' last renewals were sent before the stop: their leases end by stopped + lease.
	poll(t, fleetWait, "the lease past since PostgreSQL stopped", func() bool { return time.Since(stopped) > c.lease })
	for _, job := range jobs {
		if open := c.openRuns(job); len(open) > 0 && !gone(open[0].pid) {
			t.Errorf("%s still runs a lease after PostgreSQL stopped: %v", job, open)
		}
	}
	c.noteGone()
	var last time.Time
	for _, job := range jobs {
		runs, _ := parseJournal(c.journal(job))
		for _, r := range runs {
			if !r.seen && r.end.After(last) {
				last = r.end
			}
		}
	}
	t.Logf("floating runs stopped by their hosts %s after PostgreSQL stopped (lease %s)", last.Sub(stopped).Round(time.Millisecond), c.lease)
	if gone(pinned) {
		t.Errorf("pinned-C (pid %d) ended while PostgreSQL was down", pinned)
	}
	if err := c.srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL down for %s", time.Since(stopped).Round(time.Millisecond))
	for _, job := range jobs {
		on, run := c.waitPlaced(job)
		t.Logf("%s runs again on %s, %s after PostgreSQL stopped", job, on, run.start.Sub(stopped).Round(time.Millisecond))
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
}

// A floating one_time job ticking every second fires once a tick in the
// fleet, on its owner only; after its owner is killed, on the new one.
func TestFleetCronFiresOnce(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	created := time.Now()
	createJob(t, c.node("A").base, map[string]any{"name": "tick", "type": "one_time", "schedule": "@every 1s",
		"host": procman.HostAny, "command": "exec sh " + filepath.Join(c.dir, "journal.sh") + " tick 0.2"})
	owner := c.waitTicks("tick", created, 3, c.up())
	killed := c.kill(owner)
	rest := slices.DeleteFunc(c.up(), func(h string) bool { return h == owner })
	next := c.waitTicks("tick", killed, 3, rest)
	t.Logf("tick ran on %s, then on %s after %s was killed", owner, next, owner)
	for _, name := range rest {
		c.stop(name)
	}
	c.checkJournals()
	c.checkTicks("tick", created)
}

// waitTicks waits until job has journaled n ended runs started since,
// all on one host among hosts, and returns it.
func (c *cluster) waitTicks(job string, since time.Time, n int, hosts []string) string {
	c.t.Helper()
	var on []string
	poll(c.t, fleetWait, fmt.Sprintf("%d ticks of %s since %s", n, job, since.Format("15:04:05.000")), func() bool {
		runs, _ := parseJournal(c.journal(job))
		on = nil
		for _, r := range runs {
			if r.start.After(since) && !r.open {
				on = append(on, r.host)
			}
		}
		return len(on) >= n
	})
	on = slices.Compact(on)
	if len(on) != 1 || !slices.Contains(hosts, on[0]) {
		c.t.Fatalf("ticks of %s since %s ran on %v, want one host of %v", job, since.Format("15:04:05.000"), on, hosts)
	}
	return on[0]
}

// checkTicks fails the test if job ran more often than once a second
// since: twice in a tick is two hosts firing it. A loaded machine only
// delays ticks.
func (c *cluster) checkTicks(job string, since time.Time) {
	c.t.Helper()
	runs, _ := parseJournal(c.journal(job))
	if max := int(time.Since(since)/time.Second) + 1; len(runs) > max {
		c.t.Errorf("%s ran %d times in %s, at most once a second: %v", job, len(runs), time.Since(since), runs)
	}
}
