package procman

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/uptrace/bun"
)

// A host's hold on its name on a PostgreSQL database is a lease: its row of
// the hosts table, valid until lease_until, always reckoned by the database's
// clock. ProcMan joins at Open by taking the row if its lease has ended
// (bumping the epoch, the fencing token), and a heartbeat renews it every
// Lease/5 while the epoch is still its own and the lease has not ended.
//
// It replaces a session's advisory lock, which a process frozen by SIGSTOP or
// a paused VM keeps for as long as its TCP session lasts, which may be
// forever: no other ProcMan could take the name, and a frozen one waking up
// could not tell that anyone had. A lease ends by the clock however its
// holder fares, and a holder that wakes up finds its epoch fenced.
//
// The heartbeat has a connection of its own, which waits on its socket
// between beats: a server that ends every session (a restart) is noticed at
// once, and the store drops its idle connections (setOnLost). A later LISTEN
// can wait on it as well.

// migrationLockName names the advisory lock migrations take (store_migrate.go).
const migrationLockName = "procman: schema migrations"

// advisoryKey is the 64-bit key of the advisory lock called name.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// hostLease is this host's lease; its goroutine (keep) owns the connection,
// renews the lease, and joins again once it is fenced.
type hostLease struct {
	cfg       *pgx.ConnConfig
	db        *bun.DB // the store's pool, which lists the hosts
	host      string
	advertise string
	version   string
	machine   string // thisMachine
	start     uint64 // this process's start time (osproc.Stat.Start)
	lease     time.Duration
	grace     time.Duration
	log       *slog.Logger
	cancel    context.CancelFunc
	done      chan struct{} // closed when keep has released the lease and closed its connection
	frozen    atomic.Bool   // tests: no heartbeat, as in a host cut off from the database
	// asleep (tests): no heartbeat and no self-fencing, as in a process
	// stopped by SIGSTOP; waking, the first beat finds how long it slept.
	asleep atomic.Bool
	fleet  fleetHooks   // what the Manager does on claims, joins and lapses (floating.go)
	beats  atomic.Int64 // heartbeat statements sent (tests: the idle load)
	// claimed counts the jobs claimed and not yet adopted (claimsAdopted):
	// reported as active, or a host poked to beat again before it has
	// started what it claimed would look idle, and claim again.
	claimed atomic.Int64
	live    int // live hosts at the last beat (the heartbeat's own)

	mu         sync.Mutex
	epoch      int64         // held; 0 once fenced, until joined again
	lastEpoch  int64         // the last epoch held, for messages
	fenced     chan struct{} // closed when epoch is fenced
	sentAt     time.Time     // when the last renewal that succeeded was sent
	change     chan struct{} // closed and replaced when sentAt or epoch changes
	wake       func()        // ends the wait for the next beat (pokeBeat)
	poked      bool          // a beat is wanted now
	onLost     func()        // called when the connection is lost (setOnLost)
	activeJobs func() int    // reported with each heartbeat (setActiveJobs)
	failErr    error         // why the last beat failed; nil if it did not
	failAt     time.Time     // since when beats fail
	loggedAt   time.Time
}

const (
	// joinSQL takes the name if its lease has ended, or if it is still held
	// by epoch $8, whose process is known to be gone (0: none is).
	joinSQL = `INSERT INTO hosts AS h (name, epoch, advertise, version, pid, machine, proc_start,
			started_at, heartbeat_at, lease_until, active_jobs)
		VALUES ($1, 1, $2, $3, $4, $5, $6, now(), now(), now() + $7 * interval '1 millisecond', 0)
		ON CONFLICT (name) DO UPDATE SET epoch = h.epoch + 1, advertise = excluded.advertise,
			version = excluded.version, pid = excluded.pid, machine = excluded.machine,
			proc_start = excluded.proc_start, started_at = excluded.started_at,
			heartbeat_at = excluded.heartbeat_at, lease_until = excluded.lease_until, active_jobs = 0
		WHERE h.lease_until < now() OR h.epoch = $8
		RETURNING epoch`
	// beatSQL renews the lease and, in the same statement, claims floating
	// jobs that no live host holds (none, or a host dead past its lease and
	// the grace, on the database's clock). The live hosts are ranked by
	// their active jobs (fewest first, ties by name); with k jobs to claim,
	// the first k of them claim, each as many as bring its floating jobs to
	// the fleet's mean share (the least busy at least one). So a single job
	// goes to the least busy host, and a dead host's many jobs are spread
	// over the live hosts in a beat of each, not one job a beat. The shares
	// count the floating jobs each host holds now, not the active jobs it
	// last reported, which a claim made since leaves stale. Idle, it is the
	// one statement a host sends. Its first row says whether the lease was
	// renewed; each claimed job adds one.
	beatSQL = `WITH renewed AS (
			UPDATE hosts SET heartbeat_at = now(), lease_until = now() + $3 * interval '1 millisecond', active_jobs = $4
			WHERE name = $1 AND epoch = $2 AND lease_until >= now() RETURNING name),
		live AS (SELECT name, row_number() OVER (ORDER BY active, name) - 1 AS rank, count(*) OVER () AS hosts
			FROM (SELECT name, CASE WHEN name = $1 THEN $4 ELSE active_jobs END AS active FROM hosts
				WHERE lease_until > now() OR name = $1) h),
		claimable AS (SELECT name FROM jobs WHERE floating AND (owner IS NULL OR owner IN
			(SELECT name FROM hosts WHERE lease_until + $5 * interval '1 millisecond' < now()))),
		share AS (SELECT CASE WHEN l.rank >= c.n THEN 0 ELSE greatest(CASE WHEN l.rank = 0 THEN 1 ELSE 0 END,
				ceil((h.held + c.n)::numeric / l.hosts)::bigint - h.mine) END AS n
			FROM live l, (SELECT count(*) AS n FROM claimable) c,
				(SELECT count(*) AS held, count(*) FILTER (WHERE owner = $1) AS mine FROM jobs
					WHERE floating AND owner IN (SELECT name FROM live)) h
			WHERE l.name = $1),
		pick AS (SELECT j.name FROM jobs j JOIN claimable c ON c.name = j.name
			WHERE EXISTS (SELECT 1 FROM renewed)
			ORDER BY j.name
			LIMIT (SELECT n FROM share)
			FOR UPDATE OF j SKIP LOCKED),
		claimed AS (UPDATE jobs SET owner = $1, owner_epoch = $2 FROM pick WHERE jobs.name = pick.name
			RETURNING jobs.name, jobs.id)
		SELECT (SELECT count(*) FROM renewed)::int, (SELECT count(*) FROM hosts WHERE lease_until > now())::int,
			c.name, c.id FROM (SELECT 1) one LEFT JOIN claimed c ON true`
	releaseSQL = `UPDATE hosts SET lease_until = now(), active_jobs = 0
		WHERE name = $1 AND epoch = $2 AND lease_until >= now()`
	holderSQL = `SELECT epoch, advertise, version, pid, machine, proc_start, extract(epoch FROM now() - heartbeat_at)::float8,
		extract(epoch FROM lease_until - now())::float8 FROM hosts WHERE name = $1`
)

// joinFleet takes host d.host's lease on d, or fails with ErrLocked naming
// the ProcMan that holds it, having changed nothing. db is the store's pool.
func joinFleet(ctx context.Context, d database, cfg Config, db *bun.DB) (*hostLease, error) {
	pc := d.pg.Copy()
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	pc.RuntimeParams["application_name"] = fmt.Sprintf("procman pid %d on %s", os.Getpid(), d.host)
	self, _ := osproc.ReadStat(os.Getpid())
	l := &hostLease{cfg: pc, db: db, host: d.host, advertise: cfg.Advertise, version: version(),
		machine: thisMachine(), start: self.Start, lease: cfg.Lease, grace: cfg.Grace, log: cfg.Logger, done: make(chan struct{}),
		fenced: make(chan struct{}), change: make(chan struct{})}
	conn, err := l.connect(ctx)
	if err != nil {
		return nil, d.scrub(fmt.Errorf("open database %s: %w", d.name, err))
	}
	sent := time.Now()
	epoch, err := l.join(ctx, conn)
	if err != nil {
		closeConn(conn)
		return nil, d.scrub(fmt.Errorf("open database %s: %w", d.name, err))
	}
	l.epoch, l.lastEpoch, l.sentAt = epoch, epoch, sent
	keepCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.keep(keepCtx, conn)
	return l, nil
}

// timeout bounds each statement of the lease: a beat must end well before
// the lease it renews does.
func (l *hostLease) timeout() time.Duration { return l.lease / 2 }

func (l *hostLease) connect(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	// The fleet's notifications (mirror.go) come on this connection too,
	// which waits on its socket anyway.
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

// join takes the name if no live ProcMan holds it, and returns the new epoch.
// A holder on this machine whose process is gone (killed, crashed) is known
// dead at once: its name is taken without waiting for its lease to end, as a
// restart after a crash would want.
func (l *hostLease) join(ctx context.Context, conn *pgx.Conn) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	epoch, err := l.joinUnless(ctx, conn, 0)
	if !errors.Is(err, pgx.ErrNoRows) {
		return epoch, err
	}
	h, err := l.holder(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("%w: host %s is held by another ProcMan", ErrLocked, l.host)
	}
	if !h.gone() {
		return 0, h.err(l.host)
	}
	l.log.Info("the ProcMan that held this host's name is gone: taking it before its lease ends",
		"host", l.host, "pid", h.pid, "epoch", h.epoch)
	epoch, err = l.joinUnless(ctx, conn, h.epoch)
	if errors.Is(err, pgx.ErrNoRows) { // another ProcMan took it meanwhile
		return 0, fmt.Errorf("%w: host %s was just taken by another ProcMan", ErrLocked, l.host)
	}
	return epoch, err
}

// joinUnless runs joinSQL; pgx.ErrNoRows means the name is held.
func (l *hostLease) joinUnless(ctx context.Context, conn *pgx.Conn, gone int64) (int64, error) {
	var epoch int64
	err := conn.QueryRow(ctx, joinSQL, l.host, l.advertise, l.version, os.Getpid(), l.machine, int64(l.start),
		l.lease.Milliseconds(), gone).Scan(&epoch)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("join as host %s: %w", l.host, err)
	}
	return epoch, err
}

// holding is the ProcMan that holds a name, as its row says.
type holding struct {
	epoch          int64
	advertise, ver string
	pid            int
	machine        string
	start          uint64
	ago, left      float64 // seconds since its heartbeat, and until its lease ends
	mine           string  // this ProcMan's machine
}

func (l *hostLease) holder(ctx context.Context, conn *pgx.Conn) (holding, error) {
	h := holding{mine: l.machine}
	var start int64
	err := conn.QueryRow(ctx, holderSQL, l.host).Scan(&h.epoch, &h.advertise, &h.ver, &h.pid, &h.machine, &start, &h.ago, &h.left)
	h.start = uint64(start)
	return h, err
}

// gone: the holder ran on this machine, and its process has ended.
func (h holding) gone() bool {
	if h.machine == "" || h.machine != h.mine {
		return false
	}
	st, ok := osproc.ReadStat(h.pid)
	return !ok || !st.Alive() || st.Start != h.start
}

// err is the error of a join refused: it names the holder.
func (h holding) err(host string) error {
	who := fmt.Sprintf("pid %d", h.pid)
	if h.advertise != "" {
		who += " at " + h.advertise
	}
	secs := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)).Round(time.Millisecond) }
	return fmt.Errorf("%w: host %s is held by the ProcMan of %s (version %s), last heartbeat %s ago, lease ends in %s",
		ErrLocked, host, who, h.ver, secs(h.ago), secs(h.left))
}

// thisMachine names this machine and pid namespace, within which a pid and
// its start time name one process: the kernel's boot id, and the namespace's
// inode. "" where they cannot be read: no holder is then known dead early.
func thisMachine() string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(boot)) + " " + ns
}

// keep beats until release, then releases the lease.
func (l *hostLease) keep(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	every := l.lease / 5
	for {
		conn = l.await(ctx, conn, time.Now().Add(every))
		if ctx.Err() != nil {
			l.end(conn)
			return
		}
		if !l.frozen.Load() && !l.asleep.Load() {
			conn = l.beat(ctx, conn)
		}
	}
}

// await returns at until, or when ctx ends, or when conn is lost (it is
// then closed, and nil returned). Waiting for a notification reads the
// socket, so a session the server ends is noticed at once.
func (l *hostLease) await(ctx context.Context, conn *pgx.Conn, until time.Time) *pgx.Conn {
	wait, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	l.mu.Lock()
	l.wake = cancel // a poke ends the wait early: a beat claims what there is to claim
	if l.poked {
		cancel()
	}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.wake, l.poked = nil, false
		l.mu.Unlock()
	}()
	if conn == nil {
		<-wait.Done()
		return nil
	}
	for {
		n, err := conn.WaitForNotification(wait)
		if n != nil { // also one that came with a beat's answer
			l.mu.Lock()
			notified := l.fleet.notified
			l.mu.Unlock()
			if notified != nil {
				notified(n.Payload)
			}
		}
		switch {
		case wait.Err() != nil || pgconn.Timeout(err):
			return conn
		case err == nil:
			continue
		}
		closeConn(conn)
		l.failed(fmt.Errorf("its connection ended: %w", err))
		l.mu.Lock()
		onLost := l.onLost
		l.mu.Unlock()
		if onLost != nil {
			onLost()
		}
		return nil
	}
}

// beat renews the lease, or joins again once fenced; it returns the
// connection, or nil once it has closed it.
func (l *hostLease) beat(ctx context.Context, conn *pgx.Conn) *pgx.Conn {
	l.mu.Lock()
	held, last, hooks := l.epoch != 0, l.sentAt, l.fleet
	l.mu.Unlock()
	if held && time.Since(last) > l.lease && hooks.lapsed != nil {
		// Past the lease by this host's clock (it slept, or beats failed):
		// another host may claim its floating jobs now. Before anything else.
		hooks.lapsed("the lease ran out by this host's clock")
	}
	if conn == nil {
		c, err := l.connect(ctx)
		if err != nil {
			l.failed(err)
			return nil
		}
		conn = c
		if hooks.reconnected != nil { // notifications sent meanwhile are lost: read the rows
			hooks.reconnected()
		}
	}
	sent := time.Now()
	l.mu.Lock()
	epoch, active := l.epoch, l.activeJobs
	l.mu.Unlock()
	if epoch == 0 {
		epoch, err := l.join(ctx, conn)
		if err != nil {
			l.failed(err)
			if !errors.Is(err, ErrLocked) {
				closeConn(conn)
				return nil
			}
			return conn
		}
		l.joined(epoch, sent)
		if hooks.joined != nil {
			hooks.joined(epoch)
		}
		return conn
	}
	n := int(l.claimed.Load())
	if active != nil {
		n += active()
	}
	rctx, cancel := context.WithTimeout(ctx, l.timeout())
	defer cancel()
	renewed, live, claims, err := l.renew(rctx, conn, epoch, n)
	switch {
	case err != nil:
		closeConn(conn)
		l.failed(fmt.Errorf("renew: %w", err))
		return nil
	case !renewed:
		l.fence(epoch)
		if hooks.lapsed != nil {
			hooks.lapsed("a renewal was answered: lapsed")
		}
	default:
		l.renewed(sent)
		if hooks.renewed != nil {
			hooks.renewed(epoch)
		}
		if len(claims) > 0 && hooks.claimed != nil {
			l.claimed.Add(int64(len(claims)))
			hooks.claimed(epoch, claims)
		}
		if live != l.live && hooks.hostsChanged != nil { // a host came or went
			hooks.hostsChanged()
		}
		l.live = live
	}
	return conn
}

// renew runs beatSQL: whether the lease was renewed, and the jobs claimed.
func (l *hostLease) renew(ctx context.Context, conn *pgx.Conn, epoch int64, active int) (bool, int, []claim, error) {
	l.beats.Add(1)
	rows, err := conn.Query(ctx, beatSQL, l.host, epoch, l.lease.Milliseconds(), active, l.grace.Milliseconds())
	if err != nil {
		return false, 0, nil, err
	}
	defer rows.Close()
	renewed, live := false, 0
	var claims []claim
	for rows.Next() {
		var n int
		var name, id *string
		if err := rows.Scan(&n, &live, &name, &id); err != nil {
			return false, 0, nil, err
		}
		renewed = n > 0
		if name != nil && id != nil {
			claims = append(claims, claim{name: *name, id: *id})
		}
	}
	return renewed, live, claims, rows.Err()
}

// fence notes that epoch has lost the name: its lease lapsed, or another
// ProcMan took the name since.
func (l *hostLease) fence(epoch int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Error("host lease lapsed: this epoch is fenced; joining the fleet again", "host", l.host, "epoch", epoch,
		"last_renewed", time.Since(l.sentAt).Round(time.Millisecond))
	l.epoch = 0
	close(l.fenced)
	l.changedLocked()
}

// changedLocked tells the self-fencing watch (floating.go) that the lease changed.
func (l *hostLease) changedLocked() {
	close(l.change)
	l.change = make(chan struct{})
}

// clock is what self-fencing reckons by: when the last renewal that
// succeeded was sent, the epoch it renewed (0 while fenced), and a channel
// closed at the next change of either.
func (l *hostLease) clock() (time.Time, int64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sentAt, l.epoch, l.change
}

// pokeBeat has the heartbeat beat now, not at its time: a floating job may
// be there to claim.
func (l *hostLease) pokeBeat() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.poked = true
	if l.wake != nil {
		l.wake()
	}
}

func (l *hostLease) joined(epoch int64, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Warn("host joined the fleet again", "host", l.host, "epoch", epoch, "fenced_epoch", l.lastEpoch)
	l.epoch, l.lastEpoch, l.sentAt, l.failErr = epoch, epoch, sent, nil
	l.fenced = make(chan struct{})
	l.changedLocked()
}

// failed notes a beat that failed, and logs it: at first, then every failLogEvery.
func (l *hostLease) failed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch {
	case l.failErr == nil:
		l.failAt, l.loggedAt = now, now
		l.log.Error("host lease not renewed; retrying, jobs go on", "host", l.host, "err", err)
	case now.Sub(l.loggedAt) >= failLogEvery:
		l.loggedAt = now
		l.log.Error("host lease still not renewed; retrying", "host", l.host,
			"for", now.Sub(l.failAt).Round(time.Second), "err", err)
	}
	l.failErr = err
}

func (l *hostLease) renewed(sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr != nil {
		l.log.Warn("host lease renewed again", "host", l.host, "failed_for", time.Since(l.failAt).Round(time.Millisecond))
		l.failErr = nil
	}
	l.sentAt = sent
	l.changedLocked()
}

// end releases the lease, so that the next ProcMan of this name joins at
// once, and closes the connection. It is bounded: a database that does not
// answer leaves the lease to end by itself.
func (l *hostLease) end(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	epoch := l.epoch
	l.mu.Unlock()
	if epoch == 0 {
		if conn != nil {
			closeConn(conn)
		}
		return
	}
	if conn == nil {
		c, err := l.connect(ctx)
		if err != nil {
			l.log.Warn("host lease not released; it ends by itself", "host", l.host, "in", l.lease, "err", err)
			return
		}
		conn = c
	}
	if _, err := conn.Exec(ctx, releaseSQL, l.host, epoch); err != nil {
		l.log.Warn("host lease not released; it ends by itself", "host", l.host, "in", l.lease, "err", err)
	}
	closeConn(conn)
}

// setOnLost has f called whenever the heartbeat's connection is lost. It
// waits on its socket, so it hears first of a server that ends every session
// (a restart): f lets the store drop its own idle connections, which would
// each fail the next statement given them.
func (l *hostLease) setOnLost(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onLost = f
}

// claimsAdopted says that n jobs the heartbeat claimed are adopted: their
// runners count them as active from now on.
func (l *hostLease) claimsAdopted(n int) { l.claimed.Add(-int64(n)) }

// setActiveJobs gives the count each heartbeat reports.
func (l *hostLease) setActiveJobs(f func() int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.activeJobs = f
}

// current is the epoch held (0 while fenced) and the channel closed when it is fenced.
func (l *hostLease) current() (int64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.fenced
}

func (l *hostLease) epochNow() int64 {
	e, _ := l.current()
	return e
}

// held is nil while the lease is renewed; else it says why not (health.go).
func (l *hostLease) held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.epoch == 0 && l.failErr != nil:
		return fmt.Errorf("host %s: the lease of epoch %d lapsed, and joining again failed: %w", l.host, l.lastEpoch, l.failErr)
	case l.epoch == 0:
		return fmt.Errorf("host %s: the lease of epoch %d lapsed; joining the fleet again", l.host, l.lastEpoch)
	case l.failErr != nil:
		return fmt.Errorf("host lease of %s not renewed for %s, retrying: %w",
			l.host, time.Since(l.failAt).Round(time.Millisecond), l.failErr)
	}
	return nil
}

// release ends the heartbeat, having released the lease.
func (l *hostLease) release() error {
	l.cancel()
	<-l.done
	return nil
}

// hosts reads every host's row.
func (l *hostLease) hosts(ctx context.Context) ([]Host, error) {
	var out []Host
	err := l.db.NewRaw(`SELECT name, epoch, lease_until > now() AS alive, advertise, version, pid, started_at,
		heartbeat_at, lease_until, active_jobs FROM hosts ORDER BY name`).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("hosts: %w", err)
	}
	for i := range out {
		h := &out[i]
		h.StartedAt, h.HeartbeatAt, h.LeaseUntil = h.StartedAt.UTC(), h.HeartbeatAt.UTC(), h.LeaseUntil.UTC()
	}
	return out, nil
}

// closeConn closes a connection, waiting a moment at most for the server to
// hear of it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
