package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// MinTokenLength is the shortest token the API accepts: a guessable token on an
// API that runs shell commands is no protection.
const MinTokenLength = 20

// requireToken refuses every request but the public ones that does not carry
// "Authorization: Bearer <token>". The comparison takes the same time whatever
// the guess: both sides are hashed to equal length, then compared in constant time.
func requireToken(token string, log *slog.Logger, next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			log.Warn("authentication failed", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="procman"`)
			writeError(w, refuse(errUnauthorized, "missing or wrong token: send Authorization: Bearer <token>"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header. The
// scheme is case-insensitive, and one or more spaces may follow it (RFC 9110,
// 11.4: credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]).
func bearer(header string) (string, bool) {
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimLeft(token, " ")
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

// public paths need no token: the health probe, the dashboard's static
// files (the page asks for the token and sends it with every API call) and
// the OpenAPI document.
func public(path string) bool {
	return path == "/healthz" || path == "/" || strings.HasPrefix(path, "/ui/") || path == "/openapi.yaml"
}

// sameOrigin refuses requests a browser makes on behalf of another site. The
// API's GET control routes (/job/{name}/start) would otherwise let any web
// page start and stop jobs through the browser of someone on this host.
// Clients that are not browsers send neither header and pass.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if crossSite(r) {
			writeError(w, refuse(errForbidden, "cross-origin requests are refused"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func crossSite(r *http.Request) bool {
	fetchSite := r.Header.Get("Sec-Fetch-Site")
	switch fetchSite {
	case "", "same-origin", "none":
	default: // cross-site, same-site
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return fetchSite == "" && !isRead(r) && legacyBrowser(r)
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// legacyBrowser reports whether a request without Sec-Fetch-Site and Origin
// looks like one a browser made for a page. Browsers before Sec-Fetch-Site
// (Safari before 16.4, Firefox before 90) send neither for an <img>, a link,
// a stylesheet or a form, so a page elsewhere could use them to reach a GET
// control route, or POST a form to /job/create. What such requests carry
// instead gives most of them away: a cookie (of another service on this host:
// cookies ignore ports), a Referer naming another page's host, or an Accept
// for a page, a stylesheet or an image. curl, scripts and the CLI send none of
// these. A page that sends its request by script, without a referrer, still
// passes: the README says so, and a token closes that door.
func legacyBrowser(r *http.Request) bool {
	if r.Header.Get("Cookie") != "" {
		return true
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		if u, err := url.Parse(ref); err != nil || u.Host != r.Host {
			return true
		}
	}
	accept := r.Header.Get("Accept")
	return strings.Contains(accept, "text/html") || strings.HasPrefix(accept, "image/") || strings.HasPrefix(accept, "text/css")
}

// accessLog logs one line per request once it is answered (its query too,
// if it has one): at info for
// changes, control and failures, at debug for reads that succeed, which
// dashboards and scripts repeat many times a second and which change nothing.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		level := slog.LevelInfo
		if sw.status < 400 && isRead(r) {
			level = slog.LevelDebug
		}
		if !log.Enabled(r.Context(), level) {
			return
		}
		attrs := []any{"method", r.Method, "path", r.URL.Path}
		if r.URL.RawQuery != "" { // what a request asked for: ?sig=HUP, ?run=3
			attrs = append(attrs, "query", r.URL.RawQuery)
		}
		log.Log(r.Context(), level, "request", append(attrs, "status", sw.status,
			"duration", time.Since(start).Round(time.Microsecond), "remote", r.RemoteAddr)...)
	})
}

// isRead reports whether r only reads: GET /job/{name}/start and its kin change
// things, as the original API defined them.
func isRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch path.Base(r.URL.Path) {
	case "start", "stop", "restart":
		return !strings.HasPrefix(r.URL.Path, "/job/") || strings.Count(r.URL.Path, "/") != 3
	}
	return true
}

// statusWriter records the status code; Unwrap keeps http.ResponseController
// (flushes for log follows and events) working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
