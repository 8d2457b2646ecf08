package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/Mk-Chan/procman"
)

// The HTTP layer's own refusals, mapped by statusOf as the Manager's errors are.
var (
	errUnauthorized = errors.New("unauthorized")
	errForbidden    = errors.New("forbidden")
	errNoRoute      = errors.New("no such route")
	errMethod       = errors.New("method not allowed")
	errMediaType    = errors.New("unsupported media type")
	errUnhealthy    = errors.New("unhealthy")
	errUnreachable  = errors.New("host unreachable") // the host a request was forwarded to did not answer
)

// refusal is an error of a kind (one of the above, or a procman sentinel)
// with a message of its own, and perhaps the error it stems from.
type refusal struct {
	kind, cause error
	msg         string
}

func refuse(kind error, format string, args ...any) error {
	return &refusal{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func (e *refusal) Error() string { return e.msg }

func (e *refusal) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// statuses is the one map from errors to HTTP status codes, and to the code
// every error body carries for programs ("code"), which the client package
// maps back to procman's sentinels. The first entry the error is
// (errors.Is) decides; a body too large is 413, too_large; anything else is
// 500, internal. The README's Errors section lists every code.
var statuses = []struct {
	err    error
	status int
	code   string
}{
	{errUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{errForbidden, http.StatusForbidden, "forbidden"},
	{errNoRoute, http.StatusNotFound, "no_route"},
	{errMethod, http.StatusMethodNotAllowed, "method_not_allowed"},
	{errMediaType, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{procman.ErrInvalid, http.StatusBadRequest, "invalid"},
	{procman.ErrNotFound, http.StatusNotFound, "not_found"},
	{procman.ErrExists, http.StatusConflict, "exists"},
	{procman.ErrRunning, http.StatusConflict, "running"},
	{procman.ErrInUse, http.StatusConflict, "in_use"},
	{procman.ErrNotRunning, http.StatusConflict, "not_running"},
	{procman.ErrStartFailed, http.StatusUnprocessableEntity, "start_failed"},
	{procman.ErrClosed, http.StatusServiceUnavailable, "closed"},
	{procman.ErrLocked, http.StatusServiceUnavailable, "locked"},
	{procman.ErrElsewhere, http.StatusServiceUnavailable, "elsewhere"},
	{errUnreachable, http.StatusBadGateway, "unreachable"},
	{errUnhealthy, http.StatusServiceUnavailable, "unhealthy"},
	{context.Canceled, http.StatusServiceUnavailable, "canceled"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "canceled"},
	{procman.ErrStopFailed, http.StatusInternalServerError, "stop_failed"},
}

// statusOf is the status code and the code of an error answer.
func statusOf(err error) (status int, code string) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge, "too_large"
	}
	for _, s := range statuses {
		if errors.Is(err, s.err) {
			return s.status, s.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

// errorBody is every error answer: the message, its code, and for a refused
// job definition each problem with the field it is about.
type errorBody struct {
	Error  string                `json:"error"`
	Code   string                `json:"code"`
	Errors []*procman.FieldError `json:"errors,omitempty"`
}

// writeError answers err, and returns the status code it answered with.
func writeError(w http.ResponseWriter, err error) int {
	status, code := statusOf(err)
	writeJSON(w, status, errorBody{Error: err.Error(), Code: code, Errors: procman.FieldErrors(err)})
	return status
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, refuse(errMethod, "method not allowed; use %s", allow))
}
