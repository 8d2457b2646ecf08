package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/Mk-Chan/procman"
)

// Apply sends a document of jobs in format, as it is, to be applied (POST
// /apply): ProcMan reads and checks all of it, and answers the plan, carried
// out unless opts.DryRun. A document with problems is an *Error whose Fields
// list each, with its job, field and line. opts.Source names the document
// (its file's path): the jobs it creates record it, and opts.Prune deletes
// the jobs of that source it no longer has.
func (c *Client) Apply(ctx context.Context, doc []byte, format procman.Format, opts procman.ApplyOptions) (procman.Plan, error) {
	q := url.Values{}
	for k, on := range map[string]bool{"dry_run": opts.DryRun, "prune": opts.Prune, "restart": opts.Restart} {
		if on {
			q.Set(k, "1")
		}
	}
	if opts.Source != "" {
		q.Set("source", opts.Source)
	}
	ct := "application/yaml"
	if format == procman.JSON {
		ct = "application/json"
	}
	var out procman.Plan
	return out, c.call(ctx, request{method: http.MethodPost, path: "/apply", query: q, body: doc, contentType: ct}, &out)
}
