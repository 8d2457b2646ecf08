// Package httpapi serves a procman.Manager over the REST API of the original
// ProcMan README. It decodes requests, calls the Manager and encodes answers;
// it has no behaviour of its own.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
}

// New returns the API handler for m.
//
// httprouter cannot hold /job/create beside /job/:name, so the fixed routes of
// the original API that share a shape with a job route (/job/create,
// /job/replace/:name, /job/delete/:name) are told apart by method: only POST
// creates, only PUT replaces, only DELETE deletes.
func New(m *procman.Manager, opts ...Option) http.Handler {
	a := &api{m: m, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(a)
	}
	r := httprouter.New()
	r.HandleOPTIONS = false // no CORS preflight answers: browsers on other sites get nothing
	r.GET("/healthz", a.healthz)
	r.GET("/jobs", a.list)
	r.GET("/jobs/states", a.states)
	r.GET("/job/:name", a.get)
	r.POST("/job/:name", a.create) // /job/create
	r.GET("/job/:name/:action", a.action)
	r.POST("/job/:name/:action", a.action)
	r.PUT("/job/:name/:action", a.replace)   // /job/replace/{name}
	r.DELETE("/job/:name/:action", a.remove) // /job/delete/{name}
	r.GET("/job/:name/:action/:id", a.run)   // /job/{name}/runs/{id}
	r.GET("/events", a.events)
	r.Handler(http.MethodGet, "/metrics", promhttp.HandlerFor(m.Metrics(), promhttp.HandlerOpts{}))
	r.GET("/", uiRedirect)                              // the web dashboard (ui.go)
	r.Handler(http.MethodGet, "/ui/*file", uiHandler()) // its files, embedded from ui/
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	r.PanicHandler = func(w http.ResponseWriter, req *http.Request, v any) {
		a.log.Error("panic in handler", "path", req.URL.Path, "panic", v)
		writeError(w, http.StatusInternalServerError, "internal error")
	}
	var h http.Handler = r
	if a.token != "" {
		if err := CheckToken(a.token); err != nil {
			panic("httpapi: " + err.Error())
		}
		h = requireToken(a.token, a.log, h)
	}
	return accessLog(a.log, sameOrigin(h))
}

// NewServer returns an http.Server for h with timeouts set. Control requests
// may wait for a job's stop timeout, so the write timeout is generous.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
}

// healthz answers 200 while the database answers; it needs no token, so that
// probes and load balancers can use it.
func (a *api) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if err := a.m.Ping(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// list answers every job definition with its state added: what a client
// polling a fleet needs in one request.
func (a *api) list(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(a.m.AppendEntriesJSON(nil), '\n'))
}

func (a *api) states(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, a.m.States())
}

func (a *api) get(w http.ResponseWriter, _ *http.Request, p httprouter.Params) {
	j, err := a.m.Get(p.ByName("name"))
	a.reply(w, http.StatusOK, j, err)
}

func (a *api) create(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if p.ByName("name") != "create" {
		methodNotAllowed(w, "GET")
		return
	}
	j, err := decodeJob(w, r)
	if err == nil {
		err = a.m.Create(accepted(r), j)
	}
	a.reply(w, http.StatusCreated, j, err)
}

func (a *api) replace(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if p.ByName("name") != "replace" {
		a.wrongMethod(w, p)
		return
	}
	name := p.ByName("action")
	j, err := decodeJob(w, r)
	if err == nil {
		if j.Name == "" {
			j.Name = name
		}
		err = a.m.Replace(accepted(r), name, j)
	}
	a.reply(w, http.StatusOK, j, err)
}

func (a *api) remove(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	if p.ByName("name") != "delete" {
		a.wrongMethod(w, p)
		return
	}
	name := p.ByName("action")
	j, err := a.m.Get(name)
	if err == nil {
		err = a.m.Delete(accepted(r), name)
	}
	a.reply(w, http.StatusOK, j, err)
}

// action serves /job/{name}/start|stop|restart|state.
func (a *api) action(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name, ctx := p.ByName("name"), accepted(r)
	var err error
	switch act := p.ByName("action"); act {
	case "start":
		err = a.m.Start(ctx, name)
	case "stop":
		err = a.m.Stop(ctx, name)
	case "restart":
		err = a.m.Restart(ctx, name)
	case "state":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
			return
		}
	case "runs", "logs":
		if r.Method != http.MethodGet {
			methodNotAllowed(w, "GET")
		} else if act == "runs" {
			a.runs(w, r, name)
		} else {
			a.logs(w, r, name)
		}
		return
	default:
		a.wrongMethod(w, p)
		return
	}
	if err != nil {
		a.reply(w, 0, nil, err)
		return
	}
	st, err := a.m.State(name)
	a.reply(w, http.StatusOK, st, err)
}

// wrongMethod answers a path that exists for another method with 405, and
// anything else with 404.
func (a *api) wrongMethod(w http.ResponseWriter, p httprouter.Params) {
	switch {
	case p.ByName("name") == "replace":
		methodNotAllowed(w, "PUT")
	case p.ByName("name") == "delete":
		methodNotAllowed(w, "DELETE")
	case slices.Contains([]string{"start", "stop", "restart"}, p.ByName("action")):
		methodNotAllowed(w, "GET, POST")
	case slices.Contains([]string{"state", "runs", "logs"}, p.ByName("action")):
		methodNotAllowed(w, "GET")
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such route: unknown action %q", p.ByName("action")))
	}
}

// accepted is the context for a change the API has accepted: a client that
// goes away must not leave it half done (a restart that stopped but never started).
func accepted(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "method not allowed; use "+allow)
}

func decodeJob(w http.ResponseWriter, r *http.Request) (procman.Job, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return procman.Job{}, err
	}
	return procman.DecodeJob(body)
}

// reply writes v with code, or the error mapped to its status code.
func (a *api) reply(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		code := statusOf(err)
		if code == http.StatusInternalServerError {
			a.log.Error("request failed", "err", err)
		}
		writeError(w, code, err.Error())
		return
	}
	writeJSON(w, code, v)
}

// statusOf is the one place that maps errors to HTTP status codes.
func statusOf(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, procman.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, procman.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, procman.ErrExists), errors.Is(err, procman.ErrRunning):
		return http.StatusConflict
	case errors.Is(err, procman.ErrStartFailed):
		return http.StatusUnprocessableEntity
	case errors.Is(err, procman.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// writeJSON writes v as compact JSON and a newline: indenting took a third of
// the time of a GET /jobs. (jq makes it readable.)
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
