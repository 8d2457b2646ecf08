package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/Mk-Chan/procman"
)

// ListOf returns the definitions with their states of the jobs sel
// chooses, sorted by name (GET /jobs?selector=...).
func (c *Client) ListOf(ctx context.Context, sel procman.Selector) ([]procman.Entry, error) {
	var out []procman.Entry
	return out, c.call(ctx, request{method: http.MethodGet, path: "/jobs", query: listQuery(sel)}, &out)
}

// StatesOf returns the status of every job sel chooses, sorted by name
// (GET /jobs/states?selector=...).
func (c *Client) StatesOf(ctx context.Context, sel procman.Selector) ([]procman.Status, error) {
	var out []procman.Status
	return out, c.call(ctx, request{method: http.MethodGet, path: "/jobs/states", query: listQuery(sel)}, &out)
}

func listQuery(sel procman.Selector) url.Values {
	if sel.IsAll() {
		return nil
	}
	return url.Values{"selector": {sel.String()}}
}

// StartJobs starts every job sel chooses that is not active, dependencies
// first, and returns one result per job once all are done (POST
// /jobs/start). procman.AllJobs() chooses every job; the zero Selector is
// refused.
func (c *Client) StartJobs(ctx context.Context, sel procman.Selector) ([]procman.Result, error) {
	return c.bulk(ctx, "start", sel)
}

// StopJobs stops every job sel chooses, and first the active jobs that
// depend on them (their results say Dependent), and returns one result per
// job once all are done (POST /jobs/stop).
func (c *Client) StopJobs(ctx context.Context, sel procman.Selector) ([]procman.Result, error) {
	return c.bulk(ctx, "stop", sel)
}

// RestartJobs restarts every job sel chooses, dependencies first, and
// returns one result per job once all are done (POST /jobs/restart).
func (c *Client) RestartJobs(ctx context.Context, sel procman.Selector) ([]procman.Result, error) {
	return c.bulk(ctx, "restart", sel)
}

func (c *Client) bulk(ctx context.Context, action string, sel procman.Selector) ([]procman.Result, error) {
	var q url.Values
	switch {
	case sel.IsZero():
		return nil, fmt.Errorf("%w selector: none given; to act on every job, say so with procman.AllJobs()", procman.ErrInvalid)
	case sel.IsAll():
		q = url.Values{"all": {"1"}}
	default:
		q = url.Values{"selector": {sel.String()}}
	}
	var lines []struct {
		Name      string         `json:"name"`
		Status    procman.Status `json:"status"`
		Dependent bool           `json:"dependent"`
		Error     string         `json:"error"`
		Code      string         `json:"code"`
	}
	if err := c.call(ctx, request{method: http.MethodPost, path: "/jobs/" + action, query: q}, &lines); err != nil {
		return nil, err
	}
	out := make([]procman.Result, len(lines))
	for i, l := range lines {
		out[i] = procman.Result{Name: l.Name, Status: l.Status, Dependent: l.Dependent}
		if l.Error != "" {
			out[i].Err = &Error{Code: l.Code, Message: l.Error}
		}
	}
	return out, nil
}
