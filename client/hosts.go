package client

import (
	"context"
	"net/http"

	"github.com/Mk-Chan/procman"
)

// Hosts lists every host of the fleet, alive or not (GET /hosts).
func (c *Client) Hosts(ctx context.Context) ([]procman.Host, error) {
	var out []procman.Host
	return out, c.call(ctx, request{method: http.MethodGet, path: "/hosts"}, &out)
}
