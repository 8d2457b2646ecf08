package procman

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error the Manager returns wraps at most one of them;
// check with errors.Is.
var (
	// ErrNotFound: no job has that name, or the job has no such run or log.
	ErrNotFound = errors.New("not found")
	// ErrExists: a job with that name already exists.
	ErrExists = errors.New("job already exists")
	// ErrInvalid: a job definition or argument was rejected; the message names the field.
	ErrInvalid = errors.New("invalid")
	// ErrRunning: the job is active (starting, running, retrying or stopping) and the
	// request needs it inactive.
	ErrRunning = errors.New("job is already running")
	// ErrNotRunning: the request needs a running run (a signal, its usage)
	// and the job has none: it is not active, or between two runs.
	ErrNotRunning = errors.New("job is not running")
	// ErrClosed: the Manager has been shut down.
	ErrClosed = errors.New("manager is shut down")
	// ErrStopFailed: a process group survived SIGKILL; the job is left in
	// StateError. Shutdown's error wraps it when such a run's shell was still
	// there, no longer waited for.
	ErrStopFailed = errors.New("process group did not exit after SIGKILL")
	// ErrLocked: Open found the database held by another Manager, in this
	// process or another; the message names the holder's pid.
	ErrLocked = errors.New("database is in use by another ProcMan")
	// ErrStartFailed: Start or Restart could not spawn the job's first run (bad
	// dir, env_file or user, log folder not writable, ...), or a dependency
	// could not meet its condition; the message says why.
	ErrStartFailed = errors.New("the run failed to start")
	// ErrInUse: Delete of a job that other jobs depend on; the message names them.
	ErrInUse = errors.New("other jobs depend on it")
	// ErrElsewhere: the job runs on another host of the fleet, which alone
	// controls it; the error is an *OwnerError naming that host.
	ErrElsewhere = errors.New("job runs on another host")
)

// FieldError names the job field that failed validation. It wraps ErrInvalid.
// A problem of a document of jobs (ParseDocument, Manager.Apply) also names
// the job, unless it is the document's own, and the line it is on, when the
// document came from a file.
type FieldError struct {
	Job   string `json:"job,omitempty"`
	Field string `json:"field,omitempty"`
	Line  int    `json:"line,omitempty"`
	Msg   string `json:"message"`
}

func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Job != "":
		fmt.Fprintf(&b, "invalid job %q", e.Job)
	case e.Line > 0:
		b.WriteString("invalid document")
	default:
		b.WriteString("invalid job")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	if e.Field != "" {
		b.WriteString(": " + e.Field)
	}
	return b.String() + ": " + e.Msg
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// FieldErrors lists the *FieldError values in err's tree (Validate joins one
// per problem), in order.
func FieldErrors(err error) []*FieldError {
	if fe, ok := err.(*FieldError); ok {
		return []*FieldError{fe}
	}
	var out []*FieldError
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
	case interface{ Unwrap() error }:
		out = FieldErrors(u.Unwrap())
	}
	return out
}
