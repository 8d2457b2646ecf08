package procman

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The lock of a host on a PostgreSQL database: a session-level advisory lock,
// keyed by the host's name (advisory locks belong to one database already),
// held by a connection of its own for the Manager's lifetime. The server
// releases it when that session ends, however it ends: a ProcMan that dies
// leaves nothing held once the server sees its connection close.
//
// When the connection drops while ProcMan runs (the server restarted, the
// network failed), the lock is gone with it. ProcMan goes on supervising and
// tries to take the lock again, with backoff, until it does; meanwhile Ping
// (and /healthz) reports it not held, saying why, including who took it if
// another ProcMan of the same host did (that one then takes this one's open
// runs for a crash's leftovers, as it would after a crash).

const (
	// lockCheckEvery is how often the lock's otherwise silent connection is
	// pinged: a server that ends the session (a restart) is noticed at once,
	// one that vanished without a word (a network cut) within this and
	// lockPingTimeout.
	lockCheckEvery  = 10 * time.Second
	lockPingTimeout = 5 * time.Second
	// lockRetryMax caps the wait between two attempts to take a lost lock again.
	lockRetryMax = 5 * time.Second
	// migrationLockName names the advisory lock migrations take (store_migrate.go).
	migrationLockName = "procman: schema migrations"
)

// advisoryKey is the 64-bit key of the advisory lock called name.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

func hostLockKey(host string) int64 { return advisoryKey("procman: host " + host) }

// pgLock holds a host's lock on a PostgreSQL database; its goroutine (keep)
// owns the connection and takes the lock again when the connection is lost.
type pgLock struct {
	cfg    *pgx.ConnConfig // application_name names this ProcMan to a second one
	key    int64
	host   string
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when keep has returned and closed its connection

	mu       sync.Mutex
	onLost   func()    // called when the connection is lost (setOnLost)
	lostErr  error     // why the lock is not held; nil while it is
	lostAt   time.Time // since when
	loggedAt time.Time
}

// lockPostgres takes host d.host's lock on d, or fails with ErrLocked naming
// the session that holds it.
func lockPostgres(ctx context.Context, d database, log *slog.Logger) (*pgLock, error) {
	cfg := d.pg.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = fmt.Sprintf("procman pid %d on %s", os.Getpid(), d.host)
	l := &pgLock{cfg: cfg, key: hostLockKey(d.host), host: d.host, log: log, done: make(chan struct{})}
	conn, err := l.take(ctx)
	if err != nil {
		return nil, d.scrub(fmt.Errorf("open database %s: %w", d.name, err))
	}
	keepCtx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.keep(keepCtx, conn)
	return l, nil
}

// take connects and takes the lock, without waiting for another holder.
func (l *pgLock) take(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ConnectTimeout+lockPingTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	// The server drops a session whose client vanished (a power cut) once
	// keepalives go unanswered, in about 25 s, not after its default 2 hours:
	// until then the dead session would hold the host's lock.
	if _, err := conn.Exec(ctx, "SET tcp_keepalives_idle = 10; SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3"); err != nil {
		closeConn(conn)
		return nil, err
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
		closeConn(conn)
		return nil, err
	}
	if !got {
		holder := l.holder(ctx, conn)
		closeConn(conn)
		return nil, fmt.Errorf("%w: the lock of host %s is held by %s", ErrLocked, l.host, holder)
	}
	return conn, nil
}

// holder describes the session holding the lock, as the server knows it.
func (l *pgLock) holder(ctx context.Context, conn *pgx.Conn) string {
	var pid int
	var app, addr string
	err := conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), '')
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND l.classid::int8 = $1 AND l.objid::int8 = $2`,
		int64(uint64(l.key)>>32), int64(uint32(l.key))).Scan(&pid, &app, &addr)
	if err != nil {
		return "another session"
	}
	s := fmt.Sprintf("%q (server process %d", app, pid)
	if addr != "" {
		s += ", from " + addr
	}
	return s + ")"
}

// keep watches the lock's connection until release, and takes the lock again
// whenever the connection is lost.
func (l *pgLock) keep(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	for {
		err := l.watch(ctx, conn)
		closeConn(conn) // the server releases the lock, if it still has the session
		if ctx.Err() != nil {
			return
		}
		l.lost(fmt.Errorf("the connection holding it ended: %w", err))
		l.mu.Lock()
		onLost := l.onLost
		l.mu.Unlock()
		if onLost != nil {
			onLost()
		}
		if conn = l.retake(ctx); conn == nil {
			return
		}
	}
}

// watch returns when the connection fails, or ctx ends. Waiting for a
// notification reads the socket, so a session the server ends is noticed at
// once; a ping now and then notices a server that went silent.
func (l *pgLock) watch(ctx context.Context, conn *pgx.Conn) error {
	for {
		wait, cancel := context.WithTimeout(ctx, lockCheckEvery)
		err := conn.PgConn().WaitForNotification(wait)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err == nil: // a notification: none is listened for
			continue
		case !pgconn.Timeout(err):
			return err
		}
		ping, cancel := context.WithTimeout(ctx, lockPingTimeout)
		err = conn.Ping(ping)
		cancel()
		if err != nil {
			return err
		}
	}
}

// retake tries to take the lock until it does (it returns the connection) or
// ctx ends (nil).
func (l *pgLock) retake(ctx context.Context) *pgx.Conn {
	bo := backoff.NewExponentialBackOff(backoff.WithInitialInterval(100*time.Millisecond),
		backoff.WithMaxInterval(lockRetryMax), backoff.WithMaxElapsedTime(0))
	for {
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := l.take(ctx)
		if err == nil {
			l.regained()
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		l.lost(err)
	}
}

// lost notes that the lock is not held, and logs it: at first, then every
// failLogEvery.
func (l *pgLock) lost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	switch {
	case l.lostErr == nil:
		l.lostAt, l.loggedAt = now, now
		l.log.Error("database lock lost; taking it again, jobs go on", "host", l.host, "err", err)
	case now.Sub(l.loggedAt) >= failLogEvery:
		l.loggedAt = now
		l.log.Error("database lock still not held; taking it again", "host", l.host,
			"for", now.Sub(l.lostAt).Round(time.Second), "err", err)
	}
	l.lostErr = err
}

func (l *pgLock) regained() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log.Warn("database lock held again", "host", l.host, "lost_for", time.Since(l.lostAt).Round(time.Millisecond))
	l.lostErr = nil
}

// setOnLost has f called whenever the lock's connection is lost. This
// connection waits on its socket, so it hears first of a server that ends
// every session (a restart): f lets the store drop its own idle connections,
// which would each fail the next statement given them.
func (l *pgLock) setOnLost(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onLost = f
}

func (l *pgLock) held() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lostErr == nil {
		return nil
	}
	return fmt.Errorf("database lock of host %s not held for %s, taking it again: %w",
		l.host, time.Since(l.lostAt).Round(time.Millisecond), l.lostErr)
}

// release ends the hold: the connection closes, and the server releases the lock.
func (l *pgLock) release() error {
	l.cancel()
	<-l.done
	return nil
}

// closeConn closes a connection, waiting a moment at most for the server to
// hear of it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
