package procman

// The words of ProcMan's records and events, each a string type whose
// values are stored and sent as they are, with a function listing them all
// (for metrics, documentation and clients). State, and its transitions, are
// in state.go.

// Trigger says what started a run.
type Trigger string

const (
	TriggerManual   Trigger = "manual"   // Start
	TriggerReboot   Trigger = "reboot"   // the reboot schedule, at Open or Create
	TriggerRestart  Trigger = "restart"  // Restart
	TriggerRetry    Trigger = "retry"    // a continuous job's automatic restart
	TriggerSchedule Trigger = "schedule" // the job's cron schedule
	// TriggerResume: Open, because the continuous job was wanted running when
	// the last Manager on the database ended (see Config.NoResume).
	TriggerResume Trigger = "resume"
)

// Triggers lists every Trigger.
func Triggers() []Trigger {
	return []Trigger{TriggerManual, TriggerReboot, TriggerRestart, TriggerRetry, TriggerSchedule, TriggerResume}
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
)

// Outcomes lists every Outcome.
func Outcomes() []Outcome {
	return []Outcome{OutcomeExited, OutcomeStopped, OutcomeKilled, OutcomeFailedToStart, OutcomeUnknown, OutcomeSkipped}
}

// EventKind says what an Event is about.
type EventKind string

const (
	// EventState: a job changed state (From, To).
	EventState EventKind = "state"
	// EventSkipped: a schedule tick of a job did not run, because its previous
	// run was still going (Reason says why); recorded as a run with outcome skipped.
	EventSkipped EventKind = "skipped"
	// EventSignal: a signal was sent to a job's running run on request
	// (Manager.Signal): Signal names it, PID is the run's process group.
	EventSignal EventKind = "signal"
	// EventLagged: the subscriber fell behind and Dropped events were lost for it.
	EventLagged EventKind = "lagged"
)

// EventKinds lists every EventKind.
func EventKinds() []EventKind { return []EventKind{EventState, EventSkipped, EventSignal, EventLagged} }

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
