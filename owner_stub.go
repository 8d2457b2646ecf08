package procman

import (
	"errors"
	"fmt"
)

// ErrElsewhere: the job runs on another host of the fleet (an *OwnerError says which).
var ErrElsewhere = errors.New("job runs on another host")

// OwnerError is the answer of a control of a job that another host owns.
type OwnerError struct {
	Job, Host, URL string
}

func (e *OwnerError) Error() string {
	if e.Host == "" {
		return fmt.Sprintf("job %q is floating and on no live host now", e.Job)
	}
	return fmt.Sprintf("job %q runs on host %q", e.Job, e.Host)
}

func (e *OwnerError) Unwrap() error { return ErrElsewhere }

// Location is where a job runs.
type Location struct {
	Host, URL string
	Local     bool
}
