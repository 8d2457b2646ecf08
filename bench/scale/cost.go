package main

import (
	"context"
	"fmt"
)

// measureCost samples the two readings of what jobs cost, one request at a
// time, with every continuous job running: GET /jobs/usage (one pass over
// /proc for all of them) and a /metrics scrape (the per-job series, made
// from such a pass too).
func (r *runner) measureCost(ctx context.Context, in *instance) error {
	n := min(jobsSamples, r.cfg.requests)
	usage, err := r.sample(ctx, n, func(int) string { return in.base + "/jobs/usage" })
	if err != nil {
		return err
	}
	scrape, err := r.sample(ctx, n, func(int) string { return in.base + "/metrics" })
	if err != nil {
		return err
	}
	r.latency(fmt.Sprintf("GET /jobs/usage (%d running)", r.cfg.running), usage, 100)
	r.latency(fmt.Sprintf("GET /metrics (%d running)", r.cfg.running), scrape, 100)
	return nil
}
