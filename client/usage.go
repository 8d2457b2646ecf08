package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"

	"github.com/Mk-Chan/procman"
	"golang.org/x/sys/unix"
)

// Signal sends sig to every process of the job's running run and returns
// the job's status (POST /job/{name}/signal): an error wrapping
// procman.ErrNotRunning if it has none.
func (c *Client) Signal(ctx context.Context, name string, sig syscall.Signal) (procman.Status, error) {
	var out procman.Status
	q := url.Values{"sig": {sigParam(sig)}}
	return out, c.call(ctx, request{method: http.MethodPost, path: jobPath(name, "/signal"), query: q}, &out)
}

// sigParam names sig as ProcMan's log then shows it: HUP, or its number
// where stop_signal has no name for it.
func sigParam(sig syscall.Signal) string {
	name := strings.TrimPrefix(unix.SignalName(sig), "SIG")
	if s, err := procman.ParseSignal(name); err == nil && s == sig {
		return name
	}
	return strconv.Itoa(int(sig))
}

// Usage returns what the job's running run costs now, its PSS included
// (GET /job/{name}/usage): an error wrapping procman.ErrNotRunning if it has
// none.
func (c *Client) Usage(ctx context.Context, name string) (procman.Usage, error) {
	var out procman.Usage
	return out, c.call(ctx, request{method: http.MethodGet, path: jobPath(name, "/usage")}, &out)
}

// Usages returns what every running job costs now, sorted by name
// (GET /jobs/usage); with opts.PSS, their PSS too.
func (c *Client) Usages(ctx context.Context, opts procman.UsageOptions) ([]procman.Usage, error) {
	q := url.Values{}
	if opts.PSS {
		q.Set("pss", "1")
	}
	var out []procman.Usage
	return out, c.call(ctx, request{method: http.MethodGet, path: "/jobs/usage", query: q}, &out)
}
