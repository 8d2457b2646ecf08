// Package httpapi serves a procman.Manager over the REST API of the original
// ProcMan README. It decodes requests, calls the Manager and encodes answers;
// it has no behaviour of its own.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// MaxBodyBytes caps a request body; a larger one is answered 413.
const MaxBodyBytes = 1 << 20

// Option configures the handler.
type Option func(*api)

// WithLogger receives the access log (one line per request), failed
// authentications and server faults.
func WithLogger(l *slog.Logger) Option { return func(a *api) { a.log = l } }

// WithToken requires "Authorization: Bearer <token>" on every route but
// /healthz. New panics on a token shorter than MinTokenLength: check it first
// (CheckToken) to report a clear error.
func WithToken(token string) Option { return func(a *api) { a.token = token } }

// CheckToken reports whether token is long enough to be used.
func CheckToken(token string) error {
	if len(token) < MinTokenLength {
		return fmt.Errorf("the token has %d characters; use at least %d (e.g. openssl rand -hex 32)", len(token), MinTokenLength)
	}
	return nil
}

type api struct {
	m     *procman.Manager
	log   *slog.Logger
	token string
	hosts hostPolicy
	jobs  jobList    // GET /jobs (list.go)
	fwd   *forwarder // requests for other hosts' jobs (forward.go)
	table []route    // every route (methods.go)
}

// New returns the API handler for m: the routes of routes (methods.go).
func New(m *procman.Manager, opts ...Option) http.Handler {
	a := &api{m: m, log: slog.New(slog.DiscardHandler), jobs: jobList{m: m}, fwd: newForwarder(m)}
	for _, o := range opts {
		o(a)
	}
	a.fwd.log = a.log
	a.table = a.routes()
	r := httprouter.New()
	r.HandleOPTIONS = false // no CORS preflight answers: browsers on other sites get nothing
	for _, g := range groups(a.table) {
		r.Handle(g.method, g.pattern, a.dispatch(g.routes))
	}
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, refuse(errNoRoute, "no such route"))
	})
	r.MethodNotAllowed = http.HandlerFunc(a.wrongMethod) // httprouter's Allow would list methods that do not work
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		if v == http.ErrAbortHandler { // a forwarded stream broke off: so must this one
			panic(v)
		}
		a.log.Error("panic in handler", "path", req.URL.Path, "panic", v)
		writeError(w, errors.New("internal error"))
	}
	var h http.Handler = oneSegmentNames(r)
	if a.token != "" {
		if err := CheckToken(a.token); err != nil {
			panic("httpapi: " + err.Error())
		}
		h = requireToken(a.token, a.log, h)
	}
	return accessLog(a.log, hostCheck(&a.hosts, sameOrigin(h)))
}

// healthz answers 200 while the database answers; it needs no token, so that
// probes and load balancers can use it.
func (a *api) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := a.m.Ping(r.Context()); err != nil {
		writeError(w, &refusal{kind: errUnhealthy, cause: err, msg: err.Error()}) // 503, unless shut down
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) states(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	sel, err := listSelector(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.m.StatesOf(sel))
}

func (a *api) get(w http.ResponseWriter, _ *http.Request, p httprouter.Params) {
	j, err := a.m.Get(p.ByName("name"))
	a.reply(w, http.StatusOK, j, err)
}

func (a *api) create(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	j, err := decodeJob(w, r)
	if err == nil {
		err = a.m.Create(r.Context(), j)
	}
	a.reply(w, http.StatusCreated, j, err)
}

// mergePatchType is the media type of a JSON merge patch (RFC 7396).
const mergePatchType = "application/merge-patch+json"

// update applies a JSON merge patch to a job's definition: PATCH /job/{name}.
func (a *api) update(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	switch ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct {
	case mergePatchType, "application/json", "":
	default:
		w.Header().Set("Accept-Patch", mergePatchType)
		writeError(w, refuse(errMediaType, "a PATCH body must be a JSON merge patch (Content-Type: %s), not %q", mergePatchType, ct))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	var j procman.Job
	if err == nil {
		j, err = a.m.Update(r.Context(), p.ByName("name"), procman.MergePatch(body))
	}
	a.reply(w, http.StatusOK, j, err)
}

func (a *api) replace(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name := p.ByName("name")
	j, err := decodeJob(w, r)
	if err == nil {
		if j.Name == "" {
			j.Name = name
		}
		err = a.m.Replace(r.Context(), name, j)
	}
	a.reply(w, http.StatusOK, j, err)
}

func (a *api) remove(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name := p.ByName("name")
	j, err := a.m.Get(name)
	if err == nil {
		err = a.m.Delete(r.Context(), name)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, http.StatusOK, j, nil)
}

// control is a control route, /job/{name}/start|stop|restart: op, then the
// job's status.
func (a *api) control(op func(*procman.Manager, context.Context, string) error) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
		if err := op(a.m, r.Context(), p.ByName("name")); err != nil {
			a.fail(w, r, err)
			return
		}
		a.state(w, r, p)
	}
}

// stop serves /job/{name}/stop: the job's status, and the dependents the
// stop stopped first, if any.
func (a *api) stop(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	dependents, err := a.m.StopWithDependents(r.Context(), p.ByName("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.m.State(p.ByName("name"))
	if len(dependents) > 0 {
		a.reply(w, http.StatusOK, stopAnswer{st, dependents}, err)
		return
	}
	a.reply(w, http.StatusOK, st, err)
}

func (a *api) state(w http.ResponseWriter, _ *http.Request, p httprouter.Params) {
	st, err := a.m.State(p.ByName("name"))
	a.reply(w, http.StatusOK, st, err)
}

// stopAnswer is a stop's answer: the job's status, and the dependents the
// stop stopped first, if any.
type stopAnswer struct {
	procman.Status
	StoppedDependents []string `json:"stopped_dependents"`
}

// handle is h as an httprouter.Handle.
func handle(h http.Handler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { h.ServeHTTP(w, r) }
}

func decodeJob(w http.ResponseWriter, r *http.Request) (procman.Job, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return procman.Job{}, err
	}
	return procman.DecodeJob(body)
}

// reply writes v with code, or the error with the status code statusOf
// gives it (errors.go).
func (a *api) reply(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		if writeError(w, err) == http.StatusInternalServerError {
			a.log.Error("request failed", "err", err)
		}
		return
	}
	writeJSON(w, code, v)
}

// fail answers a request that err refused; a request for a job that
// another host owns is that host's to answer (forward.go).
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if owner, ok := errors.AsType[*procman.OwnerError](err); ok {
		a.fwd.forward(w, r, owner)
		return
	}
	a.reply(w, 0, nil, err)
}

// writeJSON writes v as compact JSON and a newline: indenting took a third of
// the time of a GET /jobs. (jq makes it readable.) "<" stays "<": the answer
// is JSON, sent as such and never sniffed (nosniff), not HTML to escape. The
// headers are set as the canonical keys they are: Header.Set's
// canonicalising was a few percent of a state query.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b := encodeJSON(v)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	w.Write(b)
}

// oneSegmentNames refuses a path with an encoded '/' in it. The router matches
// the decoded path, where /job/victim%2Fstop would become /job/victim/stop: a
// link to a job of that name would stop another job. No job name holds a '/'.
func oneSegmentNames(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
			writeError(w, refuse(errNoRoute, "no such route: a path segment holds an encoded '/'"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
