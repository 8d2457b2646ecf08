package procman

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fleet opens Managers of several hosts on one PostgreSQL database.
type fleet struct {
	w   *world
	dsn string
}

func newFleet(t *testing.T) *fleet {
	return &fleet{w: &world{t: t, dir: t.TempDir(), logs: &bugLog{t: t}}, dsn: pg.DB(t)}
}

func (f *fleet) config(host string, lease time.Duration) Config {
	return Config{Postgres: f.dsn, LogDir: filepath.Join(f.w.dir, host), Host: host, Lease: lease,
		Advertise: "http://" + host + ".example:10000", Logger: slog.New(f.w.logs)}
}

func (f *fleet) open(host string, lease time.Duration) *Manager {
	f.w.t.Helper()
	return f.w.open(f.config(host, lease))
}

// host returns name's row as m lists it.
func host(t *testing.T, m *Manager, name string) Host {
	t.Helper()
	hosts, err := m.Hosts(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("host %s not among %+v", name, hosts)
	return Host{}
}

// A second ProcMan under a name that a live one holds is refused, naming the
// holder; once the holder has shut down (which releases its lease) the next
// joins at once, with the next epoch.
func TestHostNameHeldByALiveProcMan(t *testing.T) {
	f := newFleet(t)
	a := f.open("h1", 0)
	epoch, _ := a.Epoch()
	if epoch != 1 {
		t.Fatalf("the first epoch: %d, want 1", epoch)
	}
	cfg := f.config("h1", 0)
	cfg.Advertise = "http://second.example:10000"
	_, err := Open(ctxT(t), cfg)
	for _, want := range []string{"host h1", fmt.Sprintf("pid %d", os.Getpid()), "http://h1.example:10000", "version ", "last heartbeat"} {
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
			t.Fatalf("a second Open as h1: %v, want ErrLocked saying %q", err, want)
		}
	}
	t.Log(err)
	if h := host(t, a, "h1"); h.Epoch != 1 || !h.Alive || h.Advertise != "http://h1.example:10000" || !h.This {
		t.Fatalf("h1 after the refused Open: %+v", h)
	}

	if err := a.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b, err := Open(ctxT(t), cfg) // at once: no wait for a lease to end
	if err != nil {
		t.Fatalf("Open after the holder shut down: %v", err)
	}
	f.w.owned(b)
	if epoch, _ := b.Epoch(); epoch != 2 {
		t.Fatalf("epoch after a restart: %d, want 2", epoch)
	}
	if h := host(t, b, "h1"); h.Epoch != 2 || !h.Alive || h.Advertise != "http://second.example:10000" || h.PID != os.Getpid() {
		t.Fatalf("h1 after the restart: %+v", h)
	}
}

// A lease that lapses (its holder's heartbeat stopped, as a process stopped
// by SIGSTOP would) lets another ProcMan take the name with the next epoch;
// the old holder, waking, finds its epoch fenced, says so, cannot join again
// while the new one lives, and its Shutdown leaves the new one's lease alone.
func TestLapsedLeaseFencesTheOldHolder(t *testing.T) {
	f := newFleet(t)
	a := f.open("h1", time.Second)
	old, fenced := a.Epoch()
	a.lock.(*hostLease).frozen.Store(true)

	cfg := f.config("h1", 0)
	cfg.Advertise = "http://second.example:10000"
	var b *Manager
	eventually(t, "the lapsed name taken", func() bool {
		m, err := Open(ctxT(t), cfg)
		if err != nil && !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
		b = m
		return err == nil
	})
	f.w.owned(b)
	if epoch, _ := b.Epoch(); epoch != old+1 {
		t.Fatalf("the new holder's epoch: %d, want %d", epoch, old+1)
	}
	select {
	case <-fenced:
		t.Fatal("fenced while frozen: no heartbeat has come back yet")
	default:
	}

	a.lock.(*hostLease).frozen.Store(false)
	select {
	case <-fenced:
	case <-ctxT(t).Done():
		t.Fatal("the old holder did not find itself fenced")
	}
	if !f.w.logs.has("this epoch is fenced") {
		t.Error("the fencing was not logged")
	}
	eventually(t, "the old holder's Ping naming the new one", func() bool {
		err := a.Ping(ctxT(t))
		return errors.Is(err, ErrLocked) && strings.Contains(err.Error(), "http://second.example:10000")
	})
	t.Log(a.Ping(ctxT(t)))
	if epoch, _ := a.Epoch(); epoch != 0 {
		t.Fatalf("the fenced holder's epoch: %d, want 0 (none)", epoch)
	}
	if err := a.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if h := host(t, b, "h1"); h.Epoch != old+1 || !h.Alive {
		t.Fatalf("h1 after the fenced holder shut down: %+v, want epoch %d alive", h, old+1)
	}
}

// A fenced host whose name nobody took joins again, with a new epoch.
func TestFencedHostJoinsAgain(t *testing.T) {
	f := newFleet(t)
	a := f.open("h1", time.Second)
	l := a.lock.(*hostLease)
	old, fenced := a.Epoch()
	l.frozen.Store(true)
	other := f.open("h2", 0)
	eventually(t, "h1's lease lapsed", func() bool { return !host(t, other, "h1").Alive })
	l.frozen.Store(false)
	select {
	case <-fenced:
	case <-ctxT(t).Done():
		t.Fatal("h1 did not find itself fenced")
	}
	eventually(t, "h1 joined again", func() bool {
		e, _ := a.Epoch()
		return e > old && a.Ping(ctxT(t)) == nil
	})
	if h, e := host(t, other, "h1"), a.lock.(*hostLease).epochNow(); !h.Alive || h.Epoch != e {
		t.Fatalf("h1 as h2 sees it: %+v", h)
	}
}

// The heartbeat renews the lease on the database's clock and reports the
// host's active jobs; every host sees every other, and one shut down is at
// once not alive.
func TestHeartbeatRenewsAndReports(t *testing.T) {
	f := newFleet(t)
	a := f.open("h1", time.Second)
	b := f.open("h2", 0)
	wa := &world{t: t, dir: f.w.dir, m: a, logs: f.w.logs}
	wa.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	wa.start("svc")
	first := host(t, b, "h1")
	eventually(t, "h1's heartbeat reporting its active job", func() bool {
		h := host(t, b, "h1")
		return h.Alive && h.ActiveJobs == 1 && h.HeartbeatAt.After(first.HeartbeatAt) && !h.This
	})
	h := host(t, b, "h1")
	if d := h.LeaseUntil.Sub(h.HeartbeatAt); d != time.Second {
		t.Fatalf("h1's lease runs %s past its heartbeat, want 1s", d)
	}
	if hosts, _ := b.Hosts(ctxT(t)); len(hosts) != 2 || hosts[0].Name != "h1" || hosts[1].Name != "h2" || !hosts[1].This {
		t.Fatalf("hosts: %+v", hosts)
	}
	if err := a.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if h := host(t, b, "h1"); h.Alive || h.ActiveJobs != 0 {
		t.Fatalf("h1 after its Shutdown: %+v, want not alive", h)
	}
	if _, err := a.Hosts(ctxT(t)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Hosts after Shutdown: %v", err)
	}
}

// On SQLite the one host is this one.
func TestHostsOnSQLite(t *testing.T) {
	w := setup(t, Config{Host: "solo", Advertise: "http://solo.example:1"})
	hosts, err := w.m.Hosts(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || hosts[0].Name != "solo" || !hosts[0].Alive || !hosts[0].This ||
		hosts[0].Advertise != "http://solo.example:1" || hosts[0].PID != os.Getpid() {
		t.Fatalf("hosts on SQLite: %+v", hosts)
	}
	if e, ch := w.m.Epoch(); e != 0 || ch != nil {
		t.Fatalf("Epoch on SQLite: %d %v", e, ch)
	}
}

func TestHostConfigChecked(t *testing.T) {
	for _, cfg := range []Config{{Host: "a b"}, {Host: "a\x00"}, {Lease: time.Millisecond},
		{Grace: -time.Second}, {Advertise: "10.0.0.1:10000"}, {Advertise: "ftp://x"}} {
		cfg.DBPath = filepath.Join(t.TempDir(), "db")
		if _, err := Open(ctxT(t), cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open(%+v): %v, want ErrInvalid", cfg, err)
		}
	}
}
