package httpapi

import "github.com/Mk-Chan/procman"

// Waiting is how many connections the limiter holds with no request under
// way: tests wait on it, since a server marks a connection idle only after
// the client may already have read the answer.
func (l *ConnLimiter) Waiting() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for c := range l.conns {
		if c.waiting {
			n++
		}
	}
	return n
}

// ErrorCodes are the codes of statusOf's map, too_large and internal included.
func ErrorCodes() []string {
	codes := []string{"too_large", "internal"}
	for _, s := range statuses {
		codes = append(codes, s.code)
	}
	return codes
}

// Routes is every route of the API m would serve: method and path.
func Routes(m *procman.Manager) [][2]string {
	var out [][2]string
	for _, rt := range (&api{m: m}).routes() {
		out = append(out, [2]string{rt.method, rt.path})
	}
	return out
}
