package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// WithAllowedHosts adds names that a request's Host header may carry. Always
// allowed are IP addresses, localhost and the names under .localhost: a web
// page can reach ProcMan through a browser by those only if it is ProcMan's
// own page. A name with a leading dot (".example.com") allows the domain and
// every name under it; "*" allows any Host, and so gives up the defence
// against DNS rebinding (see hostCheck). Requests that come over a Unix
// socket are not checked: no browser makes them.
func WithAllowedHosts(names ...string) Option {
	return func(a *api) {
		for _, n := range names {
			n = normalHost(n)
			switch {
			case n == "*":
				a.hosts.any = true
			case strings.HasPrefix(n, "."):
				a.hosts.domains = append(a.hosts.domains, n)
			case n != "":
				a.hosts.names = append(a.hosts.names, n)
			}
		}
	}
}

// hostPolicy is the set of Host names the API answers to.
type hostPolicy struct {
	any     bool
	names   []string // exact names
	domains []string // ".example.com": the domain and the names under it
}

// allows reports whether a Host header (host or host:port) names this server.
func (p *hostPolicy) allows(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normalHost(host)
	if p.any || host == "" { // no Host at all: HTTP/1.0, never a browser
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	for _, n := range p.names {
		if host == n {
			return true
		}
	}
	for _, d := range p.domains {
		if host == d[1:] || strings.HasSuffix(host, d) {
			return true
		}
	}
	return false
}

// normalHost is a host name as it is compared: lower case, without the
// brackets of an IPv6 address or the dot that ends a fully qualified name.
func normalHost(h string) string {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// hostCheck refuses requests whose Host is not one of this server's names.
// That is the defence against DNS rebinding: a page on evil.example makes its
// own name resolve to 127.0.0.1, and the browser then sends the page's
// requests to ProcMan as same-origin ones, with "Host: evil.example". Only
// the Host tells them apart (as in Jupyter and webpack-dev-server).
func hostCheck(p *hostPolicy, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.allows(r.Host) && !overUnixSocket(r) {
			writeError(w, refuse(errForbidden, "Host %q is not a name of this server (a defence against "+
				"DNS rebinding); if it is one, allow it (procman -allowed-host NAME)", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// overUnixSocket reports whether r came over a Unix socket.
func overUnixSocket(r *http.Request) bool {
	_, unix := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
	return unix
}
