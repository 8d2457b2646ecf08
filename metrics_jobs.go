package procman

import "time"

// jobCounters are what the per-job series count since Open; guarded by runner.mu.
type jobCounters struct {
	restarts int           // automatic restarts (Status.Restarts resets at a start by hand)
	cpuDone  time.Duration // CPU of the runs that ended
	cpuShown float64       // the largest procman_job_cpu_seconds_total shown: it never goes back
}
