package httpapi

import (
	"net/http"
	"time"
)

// NewServer returns an http.Server for h with its timeouts set.
//
// Every request is answered however long its operation takes: a stop waits
// out the job's stop_timeout, which may be longer than any write timeout.
// So WriteTimeout bounds each write of an answer rather than the whole
// request: a client that stops reading is still dropped once a write has
// waited that long (at least seven eighths of it), but a handler may take as
// long as it needs before it writes.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           writeDeadlines(h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      time.Minute,
		IdleTimeout:       30 * time.Second, // an idle connection costs a descriptor; a client reconnects in a moment
	}
}

// writeDeadlines turns the server's WriteTimeout, a deadline for the whole
// request set when it has been read, into one for each write: none while the
// handler works, then the timeout from each write and flush, and from the end
// of the handler for what the server writes after it. The deadline is moved
// only once an eighth of the timeout has passed since it was last set, so
// that a request costs one move, not one per write.
func writeDeadlines(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
		if srv == nil || srv.WriteTimeout <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), timeout: srv.WriteTimeout}
		dw.rc.SetWriteDeadline(time.Time{})
		next.ServeHTTP(dw, r)
		dw.extend()
	})
}

// deadlineWriter moves the write deadline forward before each write.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	set     time.Time // when the deadline was last set; zero: none is
}

func (d *deadlineWriter) extend() {
	now := time.Now()
	if d.set.IsZero() || now.Sub(d.set) > d.timeout/8 {
		d.set = now
		d.rc.SetWriteDeadline(now.Add(d.timeout))
	}
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	d.extend()
	return d.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController.Flush calls.
func (d *deadlineWriter) FlushError() error {
	d.extend()
	return d.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
