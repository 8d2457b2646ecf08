package httpapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/Mk-Chan/procman"
)

// In a fleet, every host's API steers every job: a request for a job another
// host runs (the Manager answers it with a *procman.OwnerError) is sent on
// to that host's advertised URL, with the caller's token (the hosts of a
// fleet share one), and answered with what the owner answers, streams
// included. Logs stay on the host that wrote them; a follow streams from
// there through this host.

// ForwardedBy is the header of a request that one host sends another on a
// caller's behalf; it names the sender. A request that carries it is never
// sent on again: two hosts that disagree about who owns a job (one of them a
// moment behind the database) would otherwise pass it between them forever.
const ForwardedBy = "Procman-Forwarded-By"

// forwardedHeaders are the request headers a forwarded request keeps; the
// rest (cookies, Origin, the browser's) are this host's business.
var forwardedHeaders = []string{"Authorization", "Accept", "Content-Type", "Last-Event-ID"}

// dialTimeout bounds connecting to another host: one that is down answers
// at once (connection refused), one cut off by the network would otherwise
// hold the caller for the system's TCP timeout.
const dialTimeout = 5 * time.Second

// forwarder sends requests to the other hosts of the fleet.
type forwarder struct {
	m         *procman.Manager
	log       *slog.Logger
	transport *http.Transport
	self      atomic.Pointer[string] // this host's name, once known
}

// WithFleetTLS sets the TLS configuration of requests to other hosts whose
// advertised URL is https:// (RootCAs: the authorities their certificates
// are checked against; nil: the system's). Every such certificate is
// verified: no option turns that off.
func WithFleetTLS(cfg *tls.Config) Option {
	return func(a *api) { a.fwd.transport.TLSClientConfig = cfg.Clone() }
}

func newForwarder(m *procman.Manager) *forwarder {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil // hosts reach each other directly, not through a proxy meant for the outside world
	t.DialContext = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	t.MaxIdleConnsPerHost = 16
	return &forwarder{m: m, transport: t}
}

// forward answers r, a request for a job that another host owns, with the
// owner's answer, or with why it cannot.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, owner *procman.OwnerError) {
	target, err := f.target(r, owner)
	if err != nil {
		writeError(w, err)
		return
	}
	f.proxy(target, owner.Host).ServeHTTP(w, r)
}

// target is the owner's URL, unless the request cannot go there: it has
// been forwarded already, or the owner advertises no URL (or the job is on
// no host).
func (f *forwarder) target(r *http.Request, owner *procman.OwnerError) (*url.URL, error) {
	if by := r.Header.Get(ForwardedBy); by != "" {
		return nil, &refusal{kind: procman.ErrElsewhere, cause: owner,
			msg: fmt.Sprintf("%v; host %q sent this request here, and a request is forwarded once only", owner, by)}
	}
	if owner.URL == "" {
		msg := owner.Error()
		if owner.Host != "" {
			msg += ", which advertises no URL to reach it by (procman -advertise)"
		}
		return nil, &refusal{kind: procman.ErrElsewhere, cause: owner, msg: msg}
	}
	u, err := url.Parse(owner.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, &refusal{kind: procman.ErrElsewhere, cause: owner, msg: fmt.Sprintf("%v, whose advertised URL %q is not usable", owner, owner.URL)}
	}
	return u, nil
}

// proxy sends a request on to target, the API of host, and copies its
// answer back as it comes: a follow of a log, or a stream of events, is
// flushed with every write.
func (f *forwarder) proxy(target *url.URL, host string) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header = f.header(pr.In)
		},
		Transport:     f.transport,
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(f.log.Handler(), slog.LevelWarn), // a stream from the owner that broke off
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil { // the caller went away (or gave up) first
				writeError(w, r.Context().Err())
				return
			}
			writeError(w, &refusal{kind: errUnreachable, cause: err,
				msg: fmt.Sprintf("the job's host %q did not answer at %s: %v", host, target.Redacted(), err)})
		},
	}
}

// header is what a forwarded request carries of the caller's headers, and
// the name of this host.
func (f *forwarder) header(in *http.Request) http.Header {
	out := make(http.Header, len(forwardedHeaders)+2)
	for _, k := range forwardedHeaders {
		if v := in.Header.Values(k); len(v) > 0 {
			out[k] = v
		}
	}
	out.Set(ForwardedBy, f.selfName(in.Context()))
	out.Set("User-Agent", "procman (forwarded)")
	return out
}

// selfName is this host's name, as the fleet knows it.
func (f *forwarder) selfName(ctx context.Context) string {
	if p := f.self.Load(); p != nil {
		return *p
	}
	hosts, err := f.m.Hosts(ctx)
	if err != nil {
		return "?"
	}
	for _, h := range hosts {
		if h.This {
			f.self.Store(&h.Name)
			return h.Name
		}
	}
	return "?"
}
