package procman

// The words of ProcMan's records and events, each a string type whose
// values are stored and sent as they are, with a function listing them all
// (for metrics, documentation and clients). State, and its transitions, are
// in state.go.

// Health is what a job's health check says of its running run
// (Status.Health): empty when the job has no check or no run.
type Health string

const (
	// HealthStarting: no check has passed yet, and too few have failed in a
	// row to call the run unhealthy.
	HealthStarting Health = "starting"
	// HealthHealthy: the last check passed.
	HealthHealthy Health = "healthy"
	// HealthUnhealthy: the last retries checks (after the start period) failed.
	HealthUnhealthy Health = "unhealthy"
)

// Healths lists every Health.
func Healths() []Health { return []Health{HealthStarting, HealthHealthy, HealthUnhealthy} }

// Trigger says what started a run.
type Trigger string

const (
	TriggerManual   Trigger = "manual"   // Start
	TriggerReboot   Trigger = "reboot"   // the reboot schedule, at Open or Create
	TriggerRestart  Trigger = "restart"  // Restart
	TriggerRetry    Trigger = "retry"    // an automatic restart, or a one_time job's retry (restart "on-failure")
	TriggerSchedule Trigger = "schedule" // the job's cron schedule
	// TriggerResume: Open, because the continuous job was wanted running when
	// the last Manager on the database ended (see Config.NoResume).
	TriggerResume Trigger = "resume"
	// TriggerDependency: a job that depends on it was started, and it was not active.
	TriggerDependency Trigger = "dependency"
)

// Triggers lists every Trigger.
func Triggers() []Trigger {
	return []Trigger{TriggerManual, TriggerReboot, TriggerRestart, TriggerRetry, TriggerSchedule, TriggerResume,
		TriggerDependency}
}

// Outcome says how a run ended.
type Outcome string

const (
	// OutcomeExited: the run's shell exited by itself (see ExitCode or Signal).
	OutcomeExited Outcome = "exited"
	// OutcomeStopped: ended by the job's stop signal on request.
	OutcomeStopped Outcome = "stopped"
	// OutcomeKilled: ProcMan had to SIGKILL the group (stop timeout passed, or a forced shutdown).
	OutcomeKilled Outcome = "killed"
	// OutcomeFailedToStart: no process ran (bad dir, log folder not writable, ...); see Error.
	OutcomeFailedToStart Outcome = "failed_to_start"
	// OutcomeUnknown: ProcMan ended without shutting down while the run went on.
	OutcomeUnknown Outcome = "unknown"
	// OutcomeSkipped: a schedule tick that did not run because the previous
	// run was still going (overlap "skip", or "queue" with a run already queued).
	OutcomeSkipped Outcome = "skipped"
	// OutcomeUnhealthy: stopped by ProcMan because its health check failed
	// (on_unhealthy "restart"); Error says how. It counts as a failed run.
	OutcomeUnhealthy Outcome = "unhealthy"
)

// Outcomes lists every Outcome.
func Outcomes() []Outcome {
	return []Outcome{OutcomeExited, OutcomeStopped, OutcomeKilled, OutcomeFailedToStart, OutcomeUnknown, OutcomeSkipped,
		OutcomeUnhealthy}
}

// EventKind says what an Event is about.
type EventKind string

const (
	// EventState: a job changed state (From, To).
	EventState EventKind = "state"
	// EventSkipped: a schedule tick of a job did not run, because its previous
	// run was still going (Reason says why); recorded as a run with outcome skipped.
	EventSkipped EventKind = "skipped"
	// EventHealth: the health of a job's running run changed (Status.Health;
	// Reason is the failed check's message when it became unhealthy).
	EventHealth EventKind = "health"
	// EventSignal: a signal was sent to a job's running run on request
	// (Manager.Signal): Signal names it, PID is the run's process group.
	EventSignal EventKind = "signal"
	// EventLagged: the subscriber fell behind and Dropped events were lost for it.
	EventLagged EventKind = "lagged"
	// EventWaiting: a start's wait for the job's dependencies changed:
	// Status.WaitingFor lists the conditions not met yet (none once it is over).
	EventWaiting EventKind = "waiting"
)

// EventKinds lists every EventKind.
func EventKinds() []EventKind {
	return []EventKind{EventState, EventSkipped, EventHealth, EventSignal, EventLagged, EventWaiting}
}

// Overlap says what a one_time job's schedule tick does while the previous
// run still goes.
type Overlap string

const (
	OverlapSkip    Overlap = "skip"    // skip the tick (the default), recorded as a skipped run
	OverlapQueue   Overlap = "queue"   // start again as soon as the run ends (one tick queued at most)
	OverlapRestart Overlap = "restart" // stop the run and start a new one
)

// Overlaps lists every Overlap.
func Overlaps() []Overlap { return []Overlap{OverlapSkip, OverlapQueue, OverlapRestart} }

// Condition is what a job waits for of one of its dependencies (Job.DependsOn)
// before its first run.
type Condition string

const (
	// ConditionStarted: the dependency's run is running (a one_time dependency
	// that has run and exited counts too).
	ConditionStarted Condition = "started"
	// ConditionHealthy: its run is running and passes its health check; a
	// dependency with no health check counts once started.
	ConditionHealthy Condition = "healthy"
	// ConditionCompleted: a one_time dependency's run ended, whatever its exit.
	ConditionCompleted Condition = "completed"
	// ConditionCompletedSuccessfully: a one_time dependency's run succeeded (exit 0).
	ConditionCompletedSuccessfully Condition = "completed_successfully"
)

// Conditions lists every Condition.
func Conditions() []Condition {
	return []Condition{ConditionStarted, ConditionHealthy, ConditionCompleted, ConditionCompletedSuccessfully}
}
