package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// bulkResult is one job's line of a bulk action's answer: its status after
// the action, and why the action failed for it, with the code an error
// answer of its own would have had.
type bulkResult struct {
	Name      string         `json:"name"`
	Status    procman.Status `json:"status"`
	Dependent bool           `json:"dependent,omitempty"`
	Error     string         `json:"error,omitempty"`
	Code      string         `json:"code,omitempty"`

	owner *procman.OwnerError // the job's host, when it is another (fanout.go)
}

// bulk serves POST /jobs/start|stop|restart?selector=...|all=1: it answers
// once every chosen job has been acted on, with one result per job.
func (a *api) bulk(act bulkAction) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { a.bulkDo(w, r, act) }
}

// bulkAction is a Manager's bulk action: StartJobs, StopJobs or RestartJobs.
type bulkAction func(*procman.Manager, context.Context, procman.Selector) ([]procman.Result, error)

func (a *api) bulkDo(w http.ResponseWriter, r *http.Request, act bulkAction) {
	sel, err := bulkSelector(r)
	var res []procman.Result
	if err == nil {
		res, err = act(a.m, r.Context(), sel)
	}
	if err != nil {
		a.reply(w, 0, nil, err)
		return
	}
	out := make([]bulkResult, 0, len(res))
	for _, x := range res {
		owner, elsewhere := errors.AsType[*procman.OwnerError](x.Err)
		if elsewhere && r.Header.Get(ForwardedBy) != "" {
			continue // the host that sent this asks the job's own host too
		}
		out = append(out, a.bulkResult(x, owner))
	}
	if r.Header.Get(ForwardedBy) == "" {
		out = a.fwd.fanOut(r, out)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) bulkResult(x procman.Result, owner *procman.OwnerError) bulkResult {
	b := bulkResult{Name: x.Name, Status: x.Status, Dependent: x.Dependent, owner: owner}
	if x.Err != nil {
		status, code := statusOf(x.Err)
		if status == http.StatusInternalServerError {
			a.log.Error("bulk action failed for a job", "job", x.Name, "err", x.Err)
		}
		b.Error, b.Code = x.Err.Error(), code
	}
	return b
}

// bulkSelector reads the jobs a bulk action is for: ?selector=... or
// ?all=1, exactly one of them, so that a request that says neither acts on
// no job rather than on all.
func bulkSelector(r *http.Request) (procman.Selector, error) {
	q := r.URL.Query()
	all := q.Get("all")
	switch {
	case q.Has("selector") && q.Has("all"):
		return procman.Selector{}, refuse(procman.ErrInvalid, "give ?selector=... or ?all=1, not both")
	case q.Has("selector"):
		return procman.ParseSelector(q.Get("selector"))
	case all == "1" || all == "true":
		return procman.AllJobs(), nil
	case q.Has("all"):
		return procman.Selector{}, refuse(procman.ErrInvalid, "all=%q: to act on every job, give all=1", all)
	}
	return procman.Selector{}, refuse(procman.ErrInvalid,
		"%s %s needs ?selector=... (the jobs to act on, e.g. selector=tier%%3Dweb) or ?all=1 (every job)", r.Method, r.URL.Path)
}
