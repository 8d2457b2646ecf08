package procman

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"
)

// The fleet of these tests renews leases of testLease, and claims a dead
// host's floating jobs testGrace after its lease ends.
const (
	testLease = time.Second
	testGrace = 500 * time.Millisecond
)

func (f *fleet) openFloating(host string) *Manager {
	f.w.t.Helper()
	cfg := f.config(host, testLease)
	cfg.Grace = testGrace
	return f.w.open(cfg)
}

// journaled is a floating continuous job that appends "<pid> <unix nanos>"
// to journal every 20 ms while it runs: the spans of two runs must never
// overlap (checkJournal).
func journaled(name, journal string) Job {
	return Job{Name: name, Type: Continuous, Host: HostAny, StopTimeout: dur(200 * time.Millisecond),
		Command: fmt.Sprintf(`while :; do echo "$$ $(date +%%s%%N)" >> %s; sleep 0.02; done`, journal)}
}

// span is the time a run was seen alive, by its journal lines.
type span struct {
	pid         int
	first, last int64
}

// checkJournal fails the test if two runs were alive at once, and returns
// the runs in order.
func checkJournal(t *testing.T, journal string) []span {
	t.Helper()
	f, err := os.Open(journal)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byPid := map[int]*span{}
	var order []int
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pidText, nanosText, ok := strings.Cut(sc.Text(), " ")
		pid, err1 := strconv.Atoi(pidText)
		nanos, err2 := strconv.ParseInt(nanosText, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue // a line cut short by a SIGKILL
		}
		s, seen := byPid[pid]
		if !seen {
			s = &span{pid: pid, first: nanos}
			byPid[pid] = s
			order = append(order, pid)
		}
		s.last = nanos
	}
	var spans []span
	for _, pid := range order {
		spans = append(spans, *byPid[pid])
	}
	slices.SortFunc(spans, func(a, b span) int { return int(a.first - b.first) })
	for i := 1; i < len(spans); i++ {
		if spans[i].first <= spans[i-1].last {
			t.Errorf("two runs at once: pid %d until %s, pid %d from %s", spans[i-1].pid,
				time.Unix(0, spans[i-1].last).Format(time.StampMicro), spans[i].pid, time.Unix(0, spans[i].first).Format(time.StampMicro))
		}
	}
	return spans
}

// journalRuns counts the runs that wrote to journal.
func journalRuns(t *testing.T, journal string) int {
	t.Helper()
	b, err := os.ReadFile(journal)
	if err != nil && !os.IsNotExist(err) { // none yet: no run has begun to write
		t.Fatal(err)
	}
	pids := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if pid, _, ok := strings.Cut(line, " "); ok {
			pids[pid] = true
		}
	}
	return len(pids)
}

// runningOn waits until job runs on m, and returns its pid.
func runningOn(t *testing.T, m *Manager, job string) int {
	t.Helper()
	var pid int
	eventually(t, job+" running on "+m.cfg.Host, func() bool {
		st, err := m.State(job)
		pid = st.PID
		return err == nil && st.State == StateRunning && st.Host == m.cfg.Host
	})
	return pid
}

// A floating job runs on the live host with the fewest active jobs; when
// that host stops renewing its lease it stops the job itself, and another
// claims it once the lease and the grace have passed, and runs it: never
// two runs at once.
func TestFloatingJobFailsOver(t *testing.T) {
	f := newFleet(t)
	journal := filepath.Join(f.w.dir, "journal")
	a := f.openFloating("a")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(journaled("svc", journal))
	claimedBy(t, a, "svc")
	b := f.openFloating("b")
	wa.start("svc")
	runningOn(t, a, "svc")
	if err := b.Start(ctxT(t), "svc"); !isOwner(err, "a") {
		t.Fatalf("b's Start of svc: %v, want an OwnerError naming a", err)
	}

	a.lock.(*hostLease).frozen.Store(true)    // a can no longer reach the database
	died, _, _ := a.lock.(*hostLease).clock() // its last renewal
	runningOn(t, b, "svc")
	failover := time.Since(died)
	t.Logf("failover: svc ran on b %s after a's last heartbeat (lease %s, grace %s)", failover.Round(time.Millisecond), testLease, testGrace)
	if failover < testLease+testGrace {
		t.Fatalf("b ran svc %s after a stopped renewing: before the lease and grace had passed", failover)
	}
	if st, _ := a.State("svc"); st.Host == "a" {
		t.Fatalf("svc still running on a: %+v", st)
	}
	if !f.w.logs.has("self-fencing") {
		t.Error("a did not say it fenced itself")
	}

	a.lock.(*hostLease).frozen.Store(false) // a back: fenced, it joins again and runs nothing of svc
	eventually(t, "a joined again", func() bool { return a.Ping(ctxT(t)) == nil })
	eventually(t, "b's run in the journal", func() bool { return journalRuns(t, journal) >= 2 })
	checkJournal(t, journal)
	if n := runsBy(t, b, "svc", "b"); n != 1 {
		t.Fatalf("b recorded %d runs of svc, want 1", n)
	}
}

// floatingOwnerNow is the owner of job as the database says.
func (m *Manager) floatingOwnerNow(t *testing.T, job string) string {
	t.Helper()
	var owner string
	if err := m.store.db.NewRaw("SELECT coalesce(owner, '') FROM jobs WHERE name = ?", job).Scan(ctxT(t), &owner); err != nil {
		t.Fatal(err)
	}
	return owner
}

// claimedBy waits until m holds the floating job.
func claimedBy(t *testing.T, m *Manager, job string) {
	t.Helper()
	eventually(t, job+" claimed by "+m.cfg.Host, func() bool {
		loc, err := m.Locate(job)
		return err == nil && loc.Local && m.floatingOwnerNow(t, job) == m.cfg.Host
	})
}

func isOwner(err error, host string) bool {
	oe, ok := err.(*OwnerError)
	return ok && oe.Host == host
}

// A host frozen whole (its process and its jobs, as in a paused VM) past its
// lease kills its floating run on waking, before anything else, while the
// host that claimed the job meanwhile runs it.
func TestFrozenHostKillsFloatingRunsOnWaking(t *testing.T) {
	f := newFleet(t)
	journal := filepath.Join(f.w.dir, "journal")
	a := f.openFloating("a")
	b := f.openFloating("b")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(journaled("svc", journal))
	claimedBy(t, a, "svc")
	wa.start("svc")
	pid := runningOn(t, a, "svc")
	eventually(t, "a's run in the journal", func() bool { return journalRuns(t, journal) >= 1 })

	l := a.lock.(*hostLease)
	l.asleep.Store(true)
	// Its jobs and its guardian are frozen with it, as in a paused VM: only a
	// can kill its run, once it wakes.
	guardian := a.guard.Processes()
	for _, p := range append(guardian, -pid) {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	runningOn(t, b, "svc")
	woke := time.Now()
	l.asleep.Store(false)
	waitGone(t, pid, 5*time.Second)
	t.Logf("a's floating run killed %s after a woke", time.Since(woke).Round(time.Millisecond))
	for _, p := range append(guardian, -pid) {
		syscall.Kill(p, syscall.SIGCONT)
	}
	if !f.w.logs.has("self-fencing: every floating run killed") {
		t.Error("a did not say it killed its floating run")
	}
	checkJournal(t, journal)
	eventually(t, "a joined again", func() bool { return a.Ping(ctxT(t)) == nil })
	eventually(t, "a's supervisor of svc at rest", func() bool { // its run is gone already
		st, _ := a.State("svc")
		return st.Host == "b" || st.State != StateRunning
	})
}

// A write about a floating job that another host holds now is dropped, and
// the host that made it drops the job at once.
func TestFencedWriteDropsTheJob(t *testing.T) {
	f := newFleet(t)
	a := f.openFloating("a")
	f.openFloating("b")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Host: HostAny})
	claimedBy(t, a, "svc")
	// b takes it behind a's back, as a claim after a lapse would.
	if _, err := a.store.db.NewRaw("UPDATE jobs SET owner = 'b', owner_epoch = 99 WHERE name = 'svc'").Exec(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	a.Start(ctxT(t), "svc") // a believes it holds svc: its run's record is fenced
	eventually(t, "a dropped svc", func() bool {
		st, _ := a.State("svc")
		return f.w.logs.has("were dropped") && st.State != StateRunning && st.PID == 0
	})
	if n := runsBy(t, a, "svc", "a"); n != 0 {
		t.Fatalf("a recorded %d runs of svc after losing it", n)
	}
}

// A floating job's schedule ticks on the host that holds it, only.
func TestFloatingCronTicksOnItsHolder(t *testing.T) {
	f := newFleet(t)
	a := f.openFloating("a")
	b := f.openFloating("b")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "tick", Command: "true", Schedule: "@every 1s", Host: HostAny})
	claimedBy(t, a, "tick")
	eventually(t, "two ticks on a", func() bool { return runsBy(t, a, "tick", "a") >= 2 })
	if n := runsBy(t, b, "tick", "b"); n != 0 {
		t.Fatalf("b ran tick %d times", n)
	}
}

// Placement: the live host with the fewest active jobs claims a floating
// job, and when it dies the next fewest does.
func TestFloatingJobGoesToTheLeastBusyHost(t *testing.T) {
	f := newFleet(t)
	journal := filepath.Join(f.w.dir, "journal")
	a := f.openFloating("a")
	b := f.openFloating("b")
	c := f.openFloating("c")
	for m, n := range map[*Manager]int{a: 2, c: 1} {
		w := &world{t: t, dir: f.w.dir, m: m, logs: f.w.logs}
		for i := range n {
			name := fmt.Sprintf("busy-%s-%d", m.cfg.Host, i)
			w.create(Job{Name: name, Command: "sleep 100", Type: Continuous})
			w.start(name)
		}
	}
	eventually(t, "every host's load reported", func() bool {
		return host(t, a, "a").ActiveJobs == 2 && host(t, a, "c").ActiveJobs == 1
	})
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(journaled("svc", journal))
	claimedBy(t, b, "svc")
	if err := b.Start(ctxT(t), "svc"); err != nil {
		t.Fatal(err)
	}
	runningOn(t, b, "svc")
	b.lock.(*hostLease).frozen.Store(true)
	died, _, _ := b.lock.(*hostLease).clock()
	runningOn(t, c, "svc")
	t.Logf("failover: svc ran on c %s after b's last heartbeat (lease %s, grace %s)", time.Since(died).Round(time.Millisecond), testLease, testGrace)
	eventually(t, "c's run in the journal", func() bool { return journalRuns(t, journal) >= 2 })
	checkJournal(t, journal)
	if n := runsBy(t, a, "svc", "a"); n != 0 {
		t.Fatalf("a, the busiest, ran svc %d times", n)
	}
}

// queryCounter counts the statements a bun handle sends.
type queryCounter struct {
	n    atomic.Int64
	last atomic.Value // the last statement, for a failure's message
}

func (q *queryCounter) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	q.n.Add(1)
	q.last.Store(e.Query)
	return ctx
}
func (q *queryCounter) AfterQuery(context.Context, *bun.QueryEvent) {}

// An idle fleet sends the database its heartbeats and nothing else: each
// beat both renews the lease and asks whether there is a floating job to
// claim, so a host costs one statement per Lease/5 (0.5 a second at the
// default lease of 10s).
func TestIdleFleetSendsHeartbeatsOnly(t *testing.T) {
	f := newFleet(t)
	var sql queryCounter
	open := func(host string) *Manager {
		cfg := f.config(host, testLease)
		cfg.Grace, cfg.queryHook = testGrace, &sql
		return f.w.open(cfg)
	}
	a, b := open("a"), open("b")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, Host: HostAny})
	wa.create(Job{Name: "pinned", Command: "sleep 100", Type: Continuous})
	claimedBy(t, a, "svc")
	wa.start("svc")
	wa.start("pinned")
	if err := a.w.sync(ctxT(t)); err != nil { // the starts' records written
		t.Fatal(err)
	}
	for _, job := range []string{"svc", "pinned"} { // and b has heard of them
		eventually(t, job+" running as b sees it", func() bool {
			st, err := b.State(job)
			return err == nil && st.State == StateRunning && st.Host == "a"
		})
	}
	la, lb := a.lock.(*hostLease), b.lock.(*hostLease)
	fromA, fromB := la.beats.Load(), lb.beats.Load()
	// Each host has read the hosts again once its beat saw the other come.
	eventually(t, "two beats of each host", func() bool { return la.beats.Load()-fromA >= 2 && lb.beats.Load()-fromB >= 2 })
	fromA, fromB, from, since := la.beats.Load(), lb.beats.Load(), sql.n.Load(), time.Now()
	eventually(t, "ten beats of each host", func() bool { return la.beats.Load()-fromA >= 10 && lb.beats.Load()-fromB >= 10 })
	took := time.Since(since)
	beats := la.beats.Load() - fromA + lb.beats.Load() - fromB
	other := sql.n.Load() - from
	t.Logf("idle: %d heartbeats and %d other statements from 2 hosts in %s: %.2f statements a second a host (lease %s)",
		beats, other, took.Round(time.Millisecond), float64(beats+other)/took.Seconds()/2, testLease)
	if n := other; n != 0 {
		t.Fatalf("an idle fleet sent %d statements besides its heartbeats, the last: %v", n, sql.last.Load())
	}
}

// A ProcMan that cannot act while its lease goes unrenewed (here: its lease
// asleep, as under SIGSTOP) has its floating run killed by the guardian; the
// supervision, which sees the run end, must not start it again, for the job
// may run elsewhere by now. Once the lease is held again, it is.
func TestNoRestartWhileTheLeaseGoesUnrenewed(t *testing.T) {
	f := newFleet(t)
	journal := filepath.Join(f.w.dir, "journal")
	a := f.openFloating("a")
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	j := journaled("svc", journal)
	j.MinUptime = dur(10 * time.Millisecond) // a good run: restarted at once, not after a backoff
	wa.create(j)
	claimedBy(t, a, "svc")
	wa.start("svc")
	pid := runningOn(t, a, "svc")
	eventually(t, "a run in the journal", func() bool { return journalRuns(t, journal) >= 1 })
	l := a.lock.(*hostLease)
	l.asleep.Store(true)
	waitGone(t, pid, 5*time.Second) // the guardian's kill, at 0.9 lease
	st := wa.until("svc", "at rest", func(st Status) bool { return !st.State.active() })
	if st.State != StateStopped || st.PID != 0 {
		t.Fatalf("svc after the guardian's kill: %+v, want stopped and not started again", st)
	}
	if n := journalRuns(t, journal); n != 1 {
		t.Fatalf("%d runs in the journal while the lease went unrenewed, want 1", n)
	}
	l.asleep.Store(false)
	again := runningOn(t, a, "svc") // joined again, took it back, started it
	if again == pid {
		t.Fatalf("svc runs as pid %d, the killed run", again)
	}
	checkJournal(t, journal)
}
