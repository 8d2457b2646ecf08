package main

import (
	"io"
	"net"
	"sync"
)

// A link carries one simulated host's connections to the database, so that
// the host can be killed as the database sees a host that dies: every
// session it holds ends at once (the kernel of a machine whose ProcMan is
// killed closes its sockets), and it never connects again. The Manager
// itself goes on in this process, as a partitioned host would; the others
// see only that its lease is no longer renewed. That needs no hook into the
// Manager, and works on any PostgreSQL the bench is given.
type link struct {
	ln     net.Listener
	target string // the database server, host:port

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{} // both ends of every session carried
	wg    sync.WaitGroup        // the accept loop and every copy
}

// newLink listens on a loopback port and carries what connects there to target.
func newLink(target string) (*link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &link{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	l.wg.Go(l.accept)
	return l, nil
}

// addr is where the host connects: host:port.
func (l *link) addr() string { return l.ln.Addr().String() }

func (l *link) accept() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		if !l.track(c) {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil || !l.track(s) {
			l.drop(c)
			if s != nil {
				s.Close()
			}
			continue
		}
		l.wg.Go(func() { l.pipe(c, s) })
		l.wg.Go(func() { l.pipe(s, c) })
	}
}

// track records c as carried; false once the link is cut.
func (l *link) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cut {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *link) drop(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	c.Close()
}

// pipe copies from src to dst until either ends, then ends both: a session
// is carried whole or not at all.
func (l *link) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	l.drop(dst)
	l.drop(src)
}

// kill ends every session the host holds, and refuses its new ones.
func (l *link) kill() {
	l.mu.Lock()
	l.cut = true
	conns := l.conns
	l.conns = map[net.Conn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// revive lets the host connect again.
func (l *link) revive() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}

// close ends the link and every session on it, and waits for its goroutines.
func (l *link) close() {
	l.ln.Close()
	l.kill()
	l.wg.Wait()
}
