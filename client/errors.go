package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/Mk-Chan/procman"
)

// Error is an error answer of ProcMan.
type Error struct {
	// Status is the HTTP status code; 0 for the error of one job in the
	// answer of a bulk action (Result.Err), whose own status was 200.
	Status int
	// Code says what went wrong, for programs: "not_found", "exists",
	// "running", "in_use", "invalid", ... (the README's Errors section lists them).
	// Empty when the answer came from something other than ProcMan, such as
	// a proxy.
	Code string
	// Message says what went wrong, for people.
	Message string
	// Fields are the problems of a refused job definition, each with its field.
	Fields []*procman.FieldError
}

func (e *Error) Error() string {
	if e.Status == 0 {
		return e.Message
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
}

// Unwrap makes errors.Is(err, procman.ErrNotFound) and its kin hold when the
// code is that of one of procman's sentinel errors, and lets
// procman.FieldErrors(err) list Fields.
func (e *Error) Unwrap() []error {
	var errs []error
	if s := sentinel(e.Code); s != nil {
		errs = append(errs, s)
	}
	for _, f := range e.Fields {
		errs = append(errs, f)
	}
	return errs
}

// sentinel is the procman error a code stands for, if any.
func sentinel(code string) error {
	switch code {
	case "invalid":
		return procman.ErrInvalid
	case "not_found":
		return procman.ErrNotFound
	case "exists":
		return procman.ErrExists
	case "running":
		return procman.ErrRunning
	case "in_use":
		return procman.ErrInUse
	case "not_running":
		return procman.ErrNotRunning
	case "closed":
		return procman.ErrClosed
	case "start_failed":
		return procman.ErrStartFailed
	case "stop_failed":
		return procman.ErrStopFailed
	case "locked":
		return procman.ErrLocked
	case "elsewhere":
		return procman.ErrElsewhere
	}
	return nil
}

// readError reads an error answer: {"error": "...", "code": "...",
// "errors": [...]} from ProcMan, or whatever else sent it.
func readError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Error  string                `json:"error"`
		Code   string                `json:"code"`
		Errors []*procman.FieldError `json:"errors"`
	}
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(b, &body) == nil && body.Error != "" {
		e.Message, e.Code, e.Fields = body.Error, body.Code, body.Errors
	} else if e.Message = strings.TrimSpace(string(b)); e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}
