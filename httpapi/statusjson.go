package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/Mk-Chan/procman"
)

// A job's status is the answer of the busiest route (GET /job/{name}/state)
// and of every control request. encoding/json spent more on reflecting
// over it than the rest of the handler; appendStatus writes the same bytes
// (statusjson_test.go holds it to json's output, field by field) with no
// reflection. What it cannot write as json would (a string that needs
// escaping, a time json refuses) it leaves to json.

// appendStatus appends st as encoding/json writes it (HTML left unescaped),
// or reports false.
func appendStatus(b []byte, st *procman.Status) ([]byte, bool) {
	ok := true
	str := func(key, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = append(b, key...)
		b, ok = appendQuoted(b, v, ok)
	}
	str(`{"name":`, st.Name, false)
	str(`,"state":`, string(st.State), false)
	if st.PID != 0 {
		b = strconv.AppendInt(append(b, `,"pid":`...), int64(st.PID), 10)
	}
	b, ok = appendTime(append(b, `,"since":`...), st.Since, ok)
	b = strconv.AppendInt(append(b, `,"restarts":`...), int64(st.Restarts), 10)
	if st.ExitCode != nil {
		b = strconv.AppendInt(append(b, `,"exit_code":`...), int64(*st.ExitCode), 10)
	}
	str(`,"signal":`, st.Signal, true)
	str(`,"error":`, st.Error, true)
	str(`,"log_file":`, st.LogFile, true)
	if lr := st.LastRun; lr != nil {
		b = strconv.AppendInt(append(b, `,"last_run":{"id":`...), lr.ID, 10)
		str(`,"outcome":`, string(lr.Outcome), false)
		if lr.ExitCode != nil {
			b = strconv.AppendInt(append(b, `,"exit_code":`...), int64(*lr.ExitCode), 10)
		}
		str(`,"signal":`, lr.Signal, true)
		b, ok = appendTime(append(b, `,"ended_at":`...), lr.EndedAt, ok)
		if lr.Success {
			b = append(b, `,"success":true`...)
		}
		b = append(b, '}')
	}
	if st.NextRun != nil {
		b, ok = appendTime(append(b, `,"next_run":`...), *st.NextRun, ok)
	}
	str(`,"health":`, string(st.Health), true)
	str(`,"health_failure":`, st.HealthFailure, true)
	if st.HealthCheckedAt != nil {
		b, ok = appendTime(append(b, `,"health_checked_at":`...), *st.HealthCheckedAt, ok)
	}
	if len(st.WaitingFor) > 0 {
		w, err := marshal(st.WaitingFor) // rare, and json sorts the keys
		ok = ok && err == nil
		b = append(append(b, `,"waiting_for":`...), bytes.TrimSuffix(w, []byte("\n"))...)
	}
	str(`,"host":`, st.Host, false)
	return append(b, '}', '\n'), ok
}

// appendBulk appends a bulk action's results as encoding/json writes them,
// or reports false: the answer to a stop of every job holds every job's
// status.
func appendBulk(b []byte, out []bulkResult) ([]byte, bool) {
	if out == nil {
		return append(b, "null\n"...), true
	}
	ok := true
	b = append(b, '[')
	for i := range out {
		x := &out[i]
		if i > 0 {
			b = append(b, ',')
		}
		b, ok = appendQuoted(append(b, `{"name":`...), x.Name, ok)
		b, ok = appendStatusIn(append(b, `,"status":`...), &x.Status, ok)
		if x.Dependent {
			b = append(b, `,"dependent":true`...)
		}
		if x.Error != "" {
			b, ok = appendQuoted(append(b, `,"error":`...), x.Error, ok)
		}
		if x.Code != "" {
			b, ok = appendQuoted(append(b, `,"code":`...), x.Code, ok)
		}
		b = append(b, '}')
	}
	return append(b, ']', '\n'), ok
}

// appendStatusIn appends st as a value within a larger document: with no
// newline after it.
func appendStatusIn(b []byte, st *procman.Status, ok bool) ([]byte, bool) {
	b, stOK := appendStatus(b, st)
	return b[:len(b)-1], ok && stOK
}

// appendQuoted appends s quoted, when it needs no escaping; ok stays true
// only then.
func appendQuoted(b []byte, s string, ok bool) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), ok
}

// appendTime appends t as time.Time's MarshalJSON does, for the years it
// accepts.
func appendTime(b []byte, t time.Time, ok bool) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), ok
}

// encodeJSON is v as writeJSON sends it: compact, HTML unescaped, and a
// newline.
func encodeJSON(v any) []byte {
	switch v := v.(type) {
	case procman.Status:
		if b, ok := appendStatus(make([]byte, 0, 256), &v); ok {
			return b
		}
	case []bulkResult:
		if b, ok := appendBulk(make([]byte, 0, 256*len(v)+2), v); ok {
			return b
		}
	}
	b, _ := marshal(v) // the values answered are all encodable
	return b
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}
