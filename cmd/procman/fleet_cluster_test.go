package main

// A fleet of three binaries, A, B and C, on one throwaway PostgreSQL: each
// with its own -host, -advertise and port, log folder and working folder,
// and short leases (fleetLease, fleetGrace) to bound the tests' time. The
// harness starts, stops, kills, freezes and thaws hosts, waits for what
// GET /hosts shows, and restarts PostgreSQL under them.
//
// Jobs of these tests run journalScript, which appends to a journal of its
// job a start line and an end line for each run, with the host that ran it:
// checkJournals fails the test on any two runs of one job at once. That is
// the fleet's promise for floating jobs, and for pinned ones too.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/internal/pgtest"
)

// pgFleet serves the fleet tests; one of them restarts it.
var pgFleet pgtest.Lazy

const (
	fleetLease = 2 * time.Second
	fleetGrace = time.Second
	// fleetWait bounds a wait for the fleet to see a change: a lease, and
	// ample room for a loaded machine.
	fleetWait = 15 * time.Second
)

// cluster is three hosts on one database.
type cluster struct {
	t            *testing.T
	lease, grace time.Duration // each host's -lease and -grace: fleetLease and fleetGrace unless a test sets them
	srv          *pgtest.Server
	dsn          string
	dir          string // journal.sh and the journals
	nodes        map[string]*node
}

// node is one host's binary; base is set while it runs.
type node struct {
	name, dir string
	port      int
	base      string
	cmd       *exec.Cmd
	frozen    bool
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, lease: fleetLease, grace: fleetGrace, srv: pgFleet.Server(t), dsn: pgFleet.DB(t), dir: newDir(t),
		nodes: map[string]*node{}}
	if err := os.WriteFile(filepath.Join(c.dir, "journal.sh"), []byte(journalScript(c.dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"A", "B", "C"} {
		c.nodes[name] = &node{name: name, dir: newDir(t), port: freePort(t)}
	}
	return c
}

// freePort is a loopback port free now, which a host keeps across its
// restarts, as its advertised URL says.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (c *cluster) node(name string) *node {
	n, ok := c.nodes[name]
	if !ok {
		c.t.Fatalf("no host %s", name)
	}
	return n
}

// start starts host name's binary and waits until it listens. FLEET_HOST
// tells the journal script, run by its jobs, which host runs them.
func (c *cluster) start(name string) {
	c.t.Helper()
	n := c.node(name)
	n.base, n.cmd = startBinaryWith(c.t, n.dir, []string{"FLEET_HOST=" + name},
		"-db", c.dsn, "-logs", filepath.Join(n.dir, "logs"), "-host", name,
		"-advertise", fmt.Sprintf("http://127.0.0.1:%d", n.port),
		"-lease", c.lease.String(), "-grace", c.grace.String(), strconv.Itoa(n.port))
}

func (c *cluster) startAll() {
	c.t.Helper()
	for _, name := range []string{"A", "B", "C"} {
		c.start(name)
	}
}

// stop stops host name gracefully: SIGTERM, exit 0, no process left.
func (c *cluster) stop(name string) {
	c.t.Helper()
	n := c.node(name)
	stopAndCheck(c.t, n.cmd, n.dir)
	n.base = ""
}

// kill SIGKILLs host name's binary and waits until its guardian has killed
// its jobs; each run it ended is then noted gone in its journal.
func (c *cluster) kill(name string) time.Time {
	c.t.Helper()
	n := c.node(name)
	killed := time.Now()
	if err := n.cmd.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	waitExit(c.t, n.cmd, 5*time.Second)
	poll(c.t, 10*time.Second, "host "+name+"'s jobs gone", func() bool { return len(procsIn(n.dir)) == 0 })
	c.noteGone()
	n.base = ""
	return killed
}

// freeze stops host name's binary with SIGSTOP, as a paused VM would be:
// its jobs run on, its sessions stay open, its heartbeat stops. Nothing may
// ask it anything until thaw.
func (c *cluster) freeze(name string) time.Time {
	c.t.Helper()
	n := c.node(name)
	if err := n.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		c.t.Fatal(err)
	}
	if !n.frozen {
		c.t.Cleanup(func() { n.cmd.Process.Signal(syscall.SIGCONT) }) // else no SIGTERM can stop it
	}
	n.frozen = true
	return time.Now()
}

func (c *cluster) thaw(name string) {
	c.t.Helper()
	n := c.node(name)
	if err := n.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		c.t.Fatal(err)
	}
	n.frozen = false
}

// restartPostgres stops the server under the running hosts (ending every
// session) and starts it again on the same port.
func (c *cluster) restartPostgres() {
	c.t.Helper()
	if err := c.srv.Restart(); err != nil {
		c.t.Fatal(err)
	}
}

// hosts is GET /hosts on host from; nil, while it cannot answer (its
// database restarting, say).
func (c *cluster) hosts(from string) []procman.Host {
	c.t.Helper()
	n := c.node(from)
	if n.base == "" || n.frozen {
		c.t.Fatalf("GET /hosts on %s, which does not run", from)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hosts, err := api(c.t, n.base).Hosts(ctx)
	if err != nil {
		return nil
	}
	return hosts
}

// waitHost polls GET /hosts on from until host name's row satisfies want,
// and returns the row and how long the wait took.
func (c *cluster) waitHost(from, name, what string, want func(procman.Host) bool) (procman.Host, time.Duration) {
	c.t.Helper()
	began := time.Now()
	var row procman.Host
	poll(c.t, fleetWait, fmt.Sprintf("GET /hosts on %s to show %s %s", from, name, what), func() bool {
		for _, h := range c.hosts(from) {
			if h.Name == name {
				row = h
				return want(h)
			}
		}
		return false
	})
	return row, time.Since(began)
}

func dead(h procman.Host) bool { return !h.Alive }

// aliveAt is a want of waitHost: alive under epoch.
func aliveAt(epoch int64) func(procman.Host) bool {
	return func(h procman.Host) bool { return h.Alive && h.Epoch == epoch }
}

// journalJob creates, through host on, a continuous job that runs
// journalScript (started when created: schedule reboot), and returns its
// pid once it runs and has journaled its start.
func (c *cluster) journalJob(on, job string) int {
	c.t.Helper()
	base := c.node(on).base
	createJob(c.t, base, map[string]any{"name": job, "type": "continuous", "schedule": "reboot",
		"command": "exec sh " + filepath.Join(c.dir, "journal.sh") + " " + job})
	return c.waitJournaled(on, job)
}

// waitJournaled waits until job runs on host on and its run has journaled
// its start, and returns its pid.
func (c *cluster) waitJournaled(on, job string) int {
	c.t.Helper()
	pid := waitRunning(c.t, c.node(on).base, job)
	poll(c.t, 10*time.Second, "the start of "+job+" journaled", func() bool {
		runs, _ := parseJournal(c.journal(job))
		return slices.ContainsFunc(runs, func(r journalRun) bool { return r.pid == pid && r.host == on })
	})
	return pid
}

func (c *cluster) journalPath(job string) string { return filepath.Join(c.dir, "journal", job) }

func (c *cluster) journal(job string) string {
	b, _ := os.ReadFile(c.journalPath(job))
	return string(b)
}

func (c *cluster) journals() []string {
	paths, _ := filepath.Glob(filepath.Join(c.dir, "journal", "*"))
	return paths
}

// noteGone appends a gone line for each run without an end whose process
// is gone (killed with its ProcMan by SIGKILL: no trap ran). The test sees
// it gone some time after it died, so the run is taken to last longer than
// it did: the check errs towards finding an overlap, never towards missing
// one. A run still without an end is still running, and is taken to last
// forever.
func (c *cluster) noteGone() {
	c.t.Helper()
	for _, path := range c.journals() {
		b, err := os.ReadFile(path)
		if err != nil {
			c.t.Fatal(err)
		}
		runs, err := parseJournal(string(b))
		if err != nil {
			c.t.Fatalf("%s: %v", path, err)
		}
		for _, r := range runs {
			if r.open && gone(r.pid) {
				appendLine(c.t, path, fmt.Sprintf("gone %s %d %d\n", r.host, r.pid, time.Now().UnixNano()))
			}
		}
	}
}

// checkJournals fails the test for any two runs of one job at once.
func (c *cluster) checkJournals() {
	c.t.Helper()
	c.noteGone()
	paths := c.journals()
	if len(paths) == 0 {
		c.t.Fatal("no journal written")
	}
	for _, path := range paths {
		b, _ := os.ReadFile(path)
		runs, err := parseJournal(string(b))
		if err != nil {
			c.t.Errorf("journal of %s: %v", filepath.Base(path), err)
		}
		for _, o := range overlaps(runs) {
			c.t.Errorf("job %s ran twice at once: %s; journal:\n%s", filepath.Base(path), o, b)
		}
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(line)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatal(err)
	}
}

// healthz is host name's GET /healthz status code.
func (c *cluster) healthz(name string) int {
	c.t.Helper()
	code, _ := getStatus(c.t, c.node(name).base+"/healthz")
	return code
}

// --- tests ---

// Three hosts join: GET /hosts on each lists all three alive, each at epoch
// 1 with its advertised URL, and marks the host that answered.
func TestFleetThreeHostsJoin(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	for _, from := range []string{"A", "B", "C"} {
		hosts := c.hosts(from)
		if len(hosts) != 3 {
			t.Fatalf("GET /hosts on %s: %+v, want A, B and C", from, hosts)
		}
		for _, h := range hosts {
			n := c.node(h.Name)
			if !h.Alive || h.Epoch != 1 || h.This != (h.Name == from) || h.Advertise != fmt.Sprintf("http://127.0.0.1:%d", n.port) ||
				h.PID != n.cmd.Process.Pid {
				t.Errorf("GET /hosts on %s: %+v, want %s alive at epoch 1, advertised on port %d, pid %d", from, h, h.Name, n.port, n.cmd.Process.Pid)
			}
		}
	}
	for _, name := range []string{"A", "B", "C"} {
		c.journalJob(name, "pinned-"+name)
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
	for _, name := range []string{"A", "B", "C"} { // each run's trap journaled its end
		runs, _ := parseJournal(c.journal("pinned-" + name))
		if len(runs) != 1 || runs[0].open || runs[0].seen || runs[0].host != name {
			t.Errorf("journal of pinned-%s: %+v, want one run on %s, its end journaled", name, runs, name)
		}
	}
}

// A SIGKILLed host: the others list it not alive once its lease has ended
// (the time is logged), its job dies with it (its guardian), and the
// binary started again takes its name at once with the next epoch and
// runs its job again, never twice at once.
func TestFleetKilledHostLapsesAndRejoins(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	first := c.journalJob("B", "pinned-B")
	killed := c.kill("B")
	for _, from := range []string{"A", "C"} {
		row, _ := c.waitHost(from, "B", "not alive", dead)
		t.Logf("%s lists B not alive %s after the kill (lease %s); its lease ended %s after it",
			from, time.Since(killed).Round(time.Millisecond), fleetLease, row.LeaseUntil.Sub(killed).Round(time.Millisecond))
		if row.Epoch != 1 {
			t.Errorf("B's epoch on %s: %d, want 1", from, row.Epoch)
		}
	}
	c.start("B")
	for _, from := range []string{"A", "B", "C"} {
		c.waitHost(from, "B", "alive at epoch 2", aliveAt(2))
	}
	again := c.waitJournaled("B", "pinned-B")
	if again == first {
		t.Errorf("pinned-B runs as pid %d, the run the kill ended", again)
	}
	c.stop("B")
	c.checkJournals()
}

// A host frozen past its lease (SIGSTOP) is listed not alive; thawed
// (SIGCONT), it finds its epoch fenced, joins again under the next one,
// says so in GET /hosts, and its /healthz is 200 again. Its pinned job ran
// on through it all.
func TestFleetFrozenHostRejoinsUnderANewEpoch(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	pid := c.journalJob("B", "pinned-B")
	frozen := c.freeze("B")
	for _, from := range []string{"A", "C"} {
		c.waitHost(from, "B", "not alive", dead)
	}
	t.Logf("B listed not alive %s after SIGSTOP (lease %s)", time.Since(frozen).Round(time.Millisecond), fleetLease)
	c.thaw("B")
	thawed := time.Now()
	for _, from := range []string{"A", "C"} {
		c.waitHost(from, "B", "alive at epoch 2", aliveAt(2))
	}
	t.Logf("B alive at epoch 2 %s after SIGCONT", time.Since(thawed).Round(time.Millisecond))
	if row, _ := c.waitHost("B", "B", "itself alive at epoch 2", aliveAt(2)); !row.This {
		t.Errorf("B's own row does not say it is the host that answered: %+v", row)
	}
	poll(t, fleetWait, "B's /healthz 200", func() bool { return c.healthz("B") == http.StatusOK })
	if st := jobState(t, c.node("B").base, "pinned-B"); st.State != procman.StateRunning || st.PID != pid {
		t.Errorf("pinned-B after the freeze: %s pid %d, want running as pid %d", st.State, st.PID, pid)
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
}

// PostgreSQL restarted under three running hosts: each lists all three
// alive again, renewed since, within fleetWait, and each host's pinned job
// runs on, as the same process.
func TestFleetPostgresRestarted(t *testing.T) {
	c := newCluster(t)
	c.startAll()
	pids := map[string]int{}
	for _, name := range []string{"A", "B", "C"} {
		pids[name] = c.journalJob(name, "pinned-"+name)
	}
	began := time.Now()
	c.restartPostgres()
	up := time.Now()
	t.Logf("PostgreSQL stopped and started again in %s", up.Sub(began).Round(time.Millisecond))
	// A row still alive from before the restart says nothing: a heartbeat
	// must have come since.
	renewed := func(h procman.Host) bool { return h.Alive && h.HeartbeatAt.After(up) }
	for _, from := range []string{"A", "B", "C"} {
		for _, name := range []string{"A", "B", "C"} {
			row, _ := c.waitHost(from, name, "alive, renewed since the restart", renewed)
			t.Logf("%s lists %s renewed at epoch %d, %s after the restart began", from, name, row.Epoch, time.Since(began).Round(time.Millisecond))
		}
	}
	for _, name := range []string{"A", "B", "C"} {
		st := jobState(t, c.node(name).base, "pinned-"+name)
		if st.State != procman.StateRunning || st.PID != pids[name] {
			t.Errorf("pinned-%s after the restart: %s pid %d, want running as pid %d", name, st.State, st.PID, pids[name])
		}
	}
	for _, name := range []string{"A", "B", "C"} {
		c.stop(name)
	}
	c.checkJournals()
}
