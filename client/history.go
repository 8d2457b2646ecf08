package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/Mk-Chan/procman"
)

// Runs returns a job's runs, newest first (GET /job/{name}/runs).
func (c *Client) Runs(ctx context.Context, name string, opts procman.RunsOptions) ([]procman.Run, error) {
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	var out []procman.Run
	return out, c.call(ctx, request{method: http.MethodGet, path: jobPath(name, "/runs"), query: q}, &out)
}

// Run returns one run of a job (GET /job/{name}/runs/{id}).
func (c *Client) Run(ctx context.Context, name string, id int64) (procman.Run, error) {
	var out procman.Run
	path := jobPath(name, "/runs/"+strconv.FormatInt(id, 10))
	return out, c.call(ctx, request{method: http.MethodGet, path: path}, &out)
}

// Logs returns a run's output, as Manager.Logs does (GET /job/{name}/logs):
// the latest run's unless opts.Run names another, from its last opts.Tail
// lines if given, and with opts.Follow read on as the run writes until it
// ends (or ctx does). The caller closes it.
func (c *Client) Logs(ctx context.Context, name string, opts procman.LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opts.Tail != 0 {
		q.Set("tail", strconv.Itoa(opts.Tail))
	}
	if opts.Run != 0 {
		q.Set("run", strconv.FormatInt(opts.Run, 10))
	}
	if opts.Follow {
		q.Set("follow", "1")
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: jobPath(name, "/logs"), query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
