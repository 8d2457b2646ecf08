package main

import (
	"context"
	"fmt"
	"time"

	"github.com/Mk-Chan/procman"
)

// measureBulkStop times one POST /jobs/stop?all=1 with every continuous job
// running, until its answer, which comes once no process of any job is
// left; then it starts them again, for the shutdown after it, and returns
// their new statuses.
func (r *runner) measureBulkStop(ctx context.Context, in *instance, running []procman.Status) ([]procman.Status, error) {
	groups := make(map[int]bool, len(running))
	for _, s := range running {
		groups[s.PID] = true
	}
	t0 := time.Now()
	res, err := in.api.StopJobs(ctx, procman.AllJobs())
	took := time.Since(t0).Seconds()
	if err != nil {
		return nil, fmt.Errorf("bulk stop: %w", err)
	}
	for _, x := range res {
		if x.Err != nil {
			return nil, fmt.Errorf("bulk stop: %s: %w", x.Name, x.Err)
		}
	}
	left, err := liveInGroups(groups)
	if err != nil {
		return nil, err
	}
	if left > 0 {
		return nil, fmt.Errorf("bulk stop answered with %d job processes still alive", left)
	}
	r.printf("POST /jobs/stop?all=1: %d results (%d running jobs), answered after %.2f s, no job process left\n",
		len(res), r.cfg.running, took)
	r.below(fmt.Sprintf("bulk stop of %d running (POST /jobs/stop?all=1)", r.cfg.running), took, 5, "s", 2)
	err = r.parallel(ctx, r.cfg.running, func(ctx context.Context, i int) error {
		_, err := in.api.Start(ctx, runName(i))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("starting the continuous jobs again: %w", err)
	}
	return r.waitAllRunning(ctx, in)
}
