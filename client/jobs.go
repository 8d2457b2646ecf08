package client

import (
	"context"
	"io"
	"net/http"

	"github.com/Mk-Chan/procman"
)

// List returns every job's definition with its state, sorted by name
// (GET /jobs).
func (c *Client) List(ctx context.Context) ([]procman.Entry, error) {
	var out []procman.Entry
	return out, c.call(ctx, request{method: http.MethodGet, path: "/jobs"}, &out)
}

// States returns the status of every job, sorted by name (GET /jobs/states).
func (c *Client) States(ctx context.Context) ([]procman.Status, error) {
	var out []procman.Status
	return out, c.call(ctx, request{method: http.MethodGet, path: "/jobs/states"}, &out)
}

// Get returns a job's saved definition (GET /job/{name}).
func (c *Client) Get(ctx context.Context, name string) (procman.Job, error) {
	var out procman.Job
	return out, c.call(ctx, request{method: http.MethodGet, path: jobPath(name, "")}, &out)
}

// Create creates a job and returns its definition as saved (POST /job/create).
func (c *Client) Create(ctx context.Context, j procman.Job) (procman.Job, error) {
	return c.saveJob(ctx, request{method: http.MethodPost, path: "/job/create", body: j})
}

// CreateJSON creates a job from a definition in JSON, sent as it is:
// ProcMan judges every field of it, fields this client does not know
// included (POST /job/create).
func (c *Client) CreateJSON(ctx context.Context, def []byte) (procman.Job, error) {
	return c.saveJob(ctx, request{method: http.MethodPost, path: "/job/create", body: def})
}

// Replace saves a new definition for a job; j.Name may be empty (PUT
// /job/replace/{name}). A running job keeps its definition until it is next
// started.
func (c *Client) Replace(ctx context.Context, name string, j procman.Job) (procman.Job, error) {
	return c.saveJob(ctx, request{method: http.MethodPut, path: "/job/replace/" + pathSegment(name), body: j})
}

// Update applies a JSON merge patch (RFC 7396) to a job's saved definition
// and returns the result (PATCH /job/{name}): each member replaces its field,
// null sets it back to its default, and env is merged variable by variable.
func (c *Client) Update(ctx context.Context, name string, patch []byte) (procman.Job, error) {
	return c.saveJob(ctx, request{method: http.MethodPatch, path: jobPath(name, ""), body: patch, patch: true})
}

// Delete stops a job and removes it, and returns its last definition
// (DELETE /job/delete/{name}). Its logs stay.
func (c *Client) Delete(ctx context.Context, name string) (procman.Job, error) {
	return c.saveJob(ctx, request{method: http.MethodDelete, path: "/job/delete/" + pathSegment(name)})
}

func (c *Client) saveJob(ctx context.Context, rq request) (procman.Job, error) {
	var out procman.Job
	return out, c.call(ctx, rq, &out)
}

// Start starts a job that is not active and returns its status once the
// first run has been spawned (POST /job/{name}/start).
func (c *Client) Start(ctx context.Context, name string) (procman.Status, error) {
	return c.control(ctx, name, "start")
}

// Stop stops a job and returns its status once none of its processes is left
// (POST /job/{name}/stop).
func (c *Client) Stop(ctx context.Context, name string) (procman.Status, error) {
	return c.control(ctx, name, "stop")
}

// Restart stops a job if it is active and starts it again with its saved
// definition (POST /job/{name}/restart).
func (c *Client) Restart(ctx context.Context, name string) (procman.Status, error) {
	return c.control(ctx, name, "restart")
}

func (c *Client) control(ctx context.Context, name, action string) (procman.Status, error) {
	var out procman.Status
	return out, c.call(ctx, request{method: http.MethodPost, path: jobPath(name, "/"+action)}, &out)
}

// State returns a job's status (GET /job/{name}/state).
func (c *Client) State(ctx context.Context, name string) (procman.Status, error) {
	var out procman.Status
	return out, c.call(ctx, request{method: http.MethodGet, path: jobPath(name, "/state")}, &out)
}

// Health reports whether ProcMan can keep its records: nil while its
// database takes writes, else an *Error saying why (GET /healthz).
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
}

// Metrics returns ProcMan's metrics in Prometheus's text format (GET /metrics).
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: "/metrics"})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}
