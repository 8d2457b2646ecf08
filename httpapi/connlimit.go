package httpapi

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// ConnLimits bound the connections a server holds. Each takes a file
// descriptor, and another while it reads a log: without a bound, idle
// keep-alive connections, which need no token, once took every descriptor
// ProcMan had, and jobs could no longer be started.
type ConnLimits struct {
	// Max is the most connections in all; 0 means a quarter of the
	// process's descriptor limit (RLIMIT_NOFILE), at most 1024, so that at
	// least half of the descriptors stay for jobs and the database whatever
	// the clients do.
	Max int
	// PerClient is the most from one IP address (all of a Unix socket's count
	// as one client); 0 means 128, or Max if that is lower.
	PerClient int
}

// withDefaults fills in the zero fields.
func (cl ConnLimits) withDefaults() ConnLimits {
	if cl.Max <= 0 {
		cl.Max = 1024
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur/4 < uint64(cl.Max) {
			cl.Max = max(1, int(lim.Cur/4))
		}
	}
	if cl.PerClient <= 0 {
		cl.PerClient = min(128, cl.Max)
	}
	return cl
}

// ConnLimiter applies ConnLimits to a server's listeners. When a new
// connection would exceed a limit, the longest-waiting connection that has
// no request under way (idle between requests, or not yet sent one) of the
// same client, or of any client for Max, is closed to make room, as a server
// closes idle connections anyway; if every one is busy, the new connection
// is closed at once.
type ConnLimiter struct {
	limits ConnLimits
	log    *slog.Logger

	mu       sync.Mutex
	conns    map[*limitedConn]struct{}
	byClient map[string]int
	refused  int       // new connections closed since the last warning
	warned   time.Time // when the last refusal was logged
}

// LimitConns returns a limiter for srv and hooks it into srv.ConnState (after
// any hook already there), which tells it which connections are busy. Serve
// on the limiter's Listener of each listener. Refusals are logged on log at
// most every 10 s.
func LimitConns(srv *http.Server, limits ConnLimits, log *slog.Logger) *ConnLimiter {
	l := &ConnLimiter{limits: limits.withDefaults(), log: log,
		conns: map[*limitedConn]struct{}{}, byClient: map[string]int{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		if prev != nil {
			prev(c, s)
		}
		l.track(c, s)
	}
	return l
}

// Limits are the limits in force, defaults filled in.
func (l *ConnLimiter) Limits() ConnLimits { return l.limits }

// Listener returns ln with the limits applied to the connections it accepts.
func (l *ConnLimiter) Listener(ln net.Listener) net.Listener { return &limitedListener{ln, l} }

type limitedListener struct {
	net.Listener
	l *ConnLimiter
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if lc := ll.l.admit(c); lc != nil {
			return lc, nil
		}
	}
}

// limitedConn is one connection the limiter counts.
type limitedConn struct {
	net.Conn
	l       *ConnLimiter
	client  string
	waiting bool      // no request under way: free to close
	since   time.Time // when it began to wait
}

// Close releases the connection's place (once) and closes it.
func (c *limitedConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// admit counts c in, making room if it must, or closes it and returns nil.
func (l *ConnLimiter) admit(c net.Conn) *limitedConn {
	client := clientOf(c)
	l.mu.Lock()
	var victim *limitedConn
	full := false
	if l.byClient[client] >= l.limits.PerClient {
		victim = l.oldestWaiting(client)
		full = victim == nil
	} else if len(l.conns) >= l.limits.Max {
		victim = l.oldestWaiting("")
		full = victim == nil
	}
	if victim != nil {
		l.removeLocked(victim)
	}
	var lc *limitedConn
	warn := false
	if full {
		l.refused++
		if warn = time.Since(l.warned) >= 10*time.Second; warn {
			l.warned = time.Now()
		}
	} else {
		lc = &limitedConn{Conn: c, l: l, client: client, waiting: true, since: time.Now()}
		l.conns[lc] = struct{}{}
		l.byClient[client]++
	}
	refused, open := l.refused, len(l.conns)
	if warn {
		l.refused = 0
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close() // its server goroutine then ends, and closes it again
	}
	if full {
		c.Close()
		if warn {
			l.log.Warn("connection limit reached, every connection busy: new connections closed",
				"client", client, "open", open, "max", l.limits.Max, "per_client", l.limits.PerClient, "refused", refused)
		}
	}
	return lc
}

// oldestWaiting is the connection of client ("": any) that has waited
// longest without a request, or nil.
func (l *ConnLimiter) oldestWaiting(client string) *limitedConn {
	var oldest *limitedConn
	for c := range l.conns {
		if c.waiting && (client == "" || c.client == client) && (oldest == nil || c.since.Before(oldest.since)) {
			oldest = c
		}
	}
	return oldest
}

func (l *ConnLimiter) release(c *limitedConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.conns[c]; ok {
		l.removeLocked(c)
	}
}

func (l *ConnLimiter) removeLocked(c *limitedConn) {
	delete(l.conns, c)
	if l.byClient[c.client]--; l.byClient[c.client] <= 0 {
		delete(l.byClient, c.client)
	}
}

// track records whether a connection has a request under way.
func (l *ConnLimiter) track(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok || lc.l != l {
		return
	}
	l.mu.Lock()
	lc.waiting, lc.since = s == http.StateNew || s == http.StateIdle, time.Now()
	l.mu.Unlock()
}

// clientOf is the client a connection counts against: its IPv4 address, or
// the /64 of its IPv6 address (what one host is usually given).
func clientOf(c net.Conn) string {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		if a.IP.To4() == nil {
			return a.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
		}
		return a.IP.String()
	case *net.UnixAddr:
		return "unix"
	}
	return c.RemoteAddr().String()
}
