package procman

import "time"

// State is where a job is in its life. States are stored and sent as these strings.
type State string

const (
	// StateStopped: not running; never started, or stopped on request.
	StateStopped State = "stopped"
	// StateStarting: a run is being spawned (log file opened, process forked),
	// or, first, waits for the job's dependencies (Status.WaitingFor).
	StateStarting State = "starting"
	// StateRunning: the run's process is alive.
	StateRunning State = "running"
	// StateRetrying: a run failed and the job waits out its backoff before the
	// next: a continuous job, or a one_time job with restart "on-failure".
	StateRetrying State = "retrying"
	// StateError: the job gave up: max_retries reached, a one_time job could not be
	// spawned or was stopped as unhealthy, or its process group survived
	// SIGKILL. Status.Error says why.
	StateError State = "error"
	// StateStopping: the stop signal was sent; waiting for every process of the group to go.
	StateStopping State = "stopping"
	// StateExited: a one_time run ended by itself, or a continuous job with
	// restart "on-failure" succeeded; Status holds its exit code or signal.
	StateExited State = "exited"
	// StateUnknown: ProcMan cannot know the fate of the job's last run, because an earlier
	// ProcMan ended without shutting down while it ran.
	StateUnknown State = "unknown"
)

// States lists every State, in the order of the README's table.
func States() []State {
	return []State{StateStopped, StateStarting, StateRunning, StateRetrying, StateError, StateStopping,
		StateExited, StateUnknown}
}

// active reports whether a supervisor goroutine owns the job in this state.
func (s State) active() bool {
	switch s {
	case StateStarting, StateRunning, StateRetrying, StateStopping:
		return true
	}
	return false
}

// canTransition is the state machine, in one place. Each case is one row of the
// table in the README: the states a job may move to from `from`.
func canTransition(from, to State) bool {
	switch from {
	case StateStopped, StateExited, StateError, StateUnknown:
		// Start (by hand, by schedule, or at boot).
		return to == StateStarting
	case StateStarting:
		// Spawned; spawn failed (continuous: retry later; one_time or out of
		// retries: error), or a dependency cannot meet its condition (error);
		// stop requested while the run was being prepared or waited for its
		// dependencies.
		return to == StateRunning || to == StateRetrying || to == StateError || to == StateStopped
	case StateRunning:
		// one_time ended, or continuous on-failure succeeded; continuous healthy
		// run ended (restart now); failed (back off, or give up); stop requested,
		// or the run is unhealthy.
		return to == StateExited || to == StateStarting || to == StateRetrying ||
			to == StateError || to == StateStopping
	case StateRetrying:
		// Backoff elapsed; stop requested while waiting (ends at once).
		return to == StateStarting || to == StateStopped
	case StateStopping:
		// Group gone; group survived SIGKILL, or an unhealthy run stopped and
		// out of retries; an unhealthy run stopped, the job backs off.
		return to == StateStopped || to == StateError || to == StateRetrying
	}
	return false
}

// Status is a snapshot of a job's run-time state.
type Status struct {
	Name  string `json:"name"`
	State State  `json:"state"`
	// PID of the current run's leader (the shell); 0 when no process runs.
	PID int `json:"pid,omitempty"`
	// Since is when the job entered State.
	Since time.Time `json:"since"`
	// Restarts counts automatic restarts (retries) since the job was last started by hand.
	Restarts int `json:"restarts"`
	// ExitCode of the last run that exited normally; nil if none did or it was killed by a signal.
	ExitCode *int `json:"exit_code,omitempty"`
	// Signal that ended the last run, such as "terminated"; empty if none.
	Signal string `json:"signal,omitempty"`
	// Error is why the last run failed to start, or why the job is in StateError.
	Error string `json:"error,omitempty"`
	// LogFile is the current (or last) run's log file.
	LogFile string `json:"log_file,omitempty"`
	// LastRun is how the last finished run ended.
	LastRun *LastRun `json:"last_run,omitempty"`
	// NextRun is the next tick of a cron schedule.
	NextRun *time.Time `json:"next_run,omitempty"`

	// Health is what the job's health check says of the run going on:
	// starting, healthy or unhealthy; empty when the job has no check, or
	// while no run is running (or being stopped).
	Health Health `json:"health,omitempty"`
	// HealthFailure is why the run's last check failed: an exec check's exit
	// and the start of its output (4 KiB at most), an http check's status or
	// error, a tcp check's error. Empty once a check passes.
	HealthFailure string `json:"health_failure,omitempty"`
	// HealthCheckedAt is when the run's last check ended.
	HealthCheckedAt *time.Time `json:"health_checked_at,omitempty"`
	// WaitingFor lists, while a start waits for the job's dependencies (in
	// StateStarting), each dependency whose condition is not met yet.
	WaitingFor map[string]Condition `json:"waiting_for,omitempty"`
	// Host is the host that runs the job (see Job.Host); for a floating
	// job, the one that holds it now, "" if none does.
	Host string `json:"host"`
}
