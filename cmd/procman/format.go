package main

// How the client shows ProcMan's answers: tables, status lines, durations,
// times and colours. Every field of a job or a status passes through
// printable (escape.go) on its way to the terminal.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/Mk-Chan/procman"
)

// statusLine is a status on one line: "web: running, pid 123".
func (c *cli) statusLine(st procman.Status) string {
	s := printable(st.Name) + ": " + c.paint(printable(string(st.State)), st.State)
	if st.PID > 0 {
		s += ", pid " + pid(st.PID)
	}
	if st.State != procman.StateRunning && st.LastRun != nil {
		s += ", last exit " + printable(lastExit(st.LastRun))
	}
	if st.Error != "" {
		s += "; " + printable(st.Error)
	}
	return s
}

// writeStatus writes a status as "key:\tvalue" lines.
func (c *cli) writeStatus(w io.Writer, st procman.Status) {
	fmt.Fprintf(w, "state:\t%s\n", c.paint(printable(string(st.State)), st.State))
	if !st.Since.IsZero() {
		fmt.Fprintf(w, "since:\t%s (%s ago)\n", clock(st.Since), human(time.Since(st.Since)))
	}
	line := func(key, val string) {
		if val != "" {
			fmt.Fprintf(w, "%s:\t%s\n", key, printable(val))
		}
	}
	line("pid", pid(st.PID))
	line("restarts", strconv.Itoa(st.Restarts))
	if lr := st.LastRun; lr != nil {
		line("last exit", fmt.Sprintf("%s (run %d, %s, ended %s)", lastExit(lr), lr.ID, lr.Outcome, clock(lr.EndedAt)))
	}
	line("error", st.Error)
	line("health", string(st.Health))
	line("health failure", st.HealthFailure)
	if at := st.HealthCheckedAt; at != nil {
		line("health checked", fmt.Sprintf("%s (%s ago)", clock(*at), human(time.Since(*at))))
	}
	line("waiting for", conditions(st.WaitingFor))
	line("log file", st.LogFile)
	if st.NextRun != nil {
		line("next run", clock(*st.NextRun))
	}
}

// writeFields writes a job definition's fields in the order ProcMan sent
// them; each dependency with the state of that job in deps.
func writeFields(w io.Writer, raw []byte, deps map[string]procman.Status) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return fmt.Errorf("unexpected answer: %.200s", raw)
	}
	for dec.More() {
		t, err := dec.Token()
		var v json.RawMessage
		if err == nil {
			err = dec.Decode(&v)
		}
		if err != nil {
			return fmt.Errorf("unexpected answer: %w", err)
		}
		writeField(w, t.(string), v, deps)
	}
	return nil
}

// writeField writes one field; env gets a line per variable, depends_on a
// line per dependency, with that job's state and health now.
func writeField(w io.Writer, key string, v json.RawMessage, deps map[string]procman.Status) {
	var members map[string]string
	if (key != "env" && key != "depends_on") || json.Unmarshal(v, &members) != nil {
		fmt.Fprintf(w, "%s:\t%s\n", printable(key), printable(orDash(jsonString(v))))
		return
	}
	label := key + ":"
	for _, k := range slices.Sorted(maps.Keys(members)) {
		line := k + "=" + members[k]
		if key == "depends_on" {
			line += " (" + depState(deps, k) + ")"
		}
		fmt.Fprintf(w, "%s\t%s\n", label, printable(line))
		label = ""
	}
}

// depState is what a dependency is now: "running, healthy", "exited 0".
func depState(deps map[string]procman.Status, name string) string {
	st, ok := deps[name]
	switch {
	case !ok:
		return "no such job"
	case st.State == procman.StateExited && st.LastRun != nil:
		return "exited " + lastExit(st.LastRun)
	case st.Health != "":
		return string(st.State) + ", " + string(st.Health)
	}
	return string(st.State)
}

// conditions lists dependencies with their conditions: "db=healthy, migrate=completed".
func conditions(m map[string]procman.Condition) string {
	var s []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s = append(s, k+"="+string(m[k]))
	}
	return strings.Join(s, ", ")
}

// newTable is a tabwriter for aligned columns.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// stateColors are the ANSI colours of states; every code has two digits, so
// that painted cells keep their columns aligned.
var stateColors = map[procman.State]string{
	procman.StateRunning:  "32", // green
	procman.StateError:    "31", // red
	procman.StateRetrying: "33", // yellow
	procman.StateUnknown:  "33",
}

// paint colours s as state when stdout is a terminal. Other states, and the
// header (state ""), get the default colour: escape codes of the same length
// in every row of a column keep tabwriter's alignment.
func (c *cli) paint(s string, state procman.State) string {
	if !c.color {
		return s
	}
	code, ok := stateColors[state]
	if !ok {
		code = "39"
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// healthColors are the ANSI colours of health, as stateColors.
var healthColors = map[procman.Health]string{
	procman.HealthHealthy:   "32",
	procman.HealthUnhealthy: "31",
}

// paintHealth colours a health (or "-", or the header) as paint colours a state.
func (c *cli) paintHealth(s string) string {
	if !c.color {
		return s
	}
	code, ok := healthColors[procman.Health(s)]
	if !ok {
		code = "39"
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func pid(p int) string {
	if p <= 0 {
		return ""
	}
	return strconv.Itoa(p)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// uptime is how long a running job has run.
func uptime(st procman.Status) string {
	if st.State != procman.StateRunning || st.Since.IsZero() {
		return "-"
	}
	return human(time.Since(st.Since))
}

// lastExit is how the last finished run ended: "0", "sig terminated", "failed_to_start".
func lastExit(lr *procman.LastRun) string {
	switch {
	case lr == nil:
		return "-"
	case lr.ExitCode != nil:
		return strconv.Itoa(*lr.ExitCode)
	case lr.Signal != "":
		return "sig " + lr.Signal
	}
	return string(lr.Outcome)
}

// human is a duration in its two largest units: "45s", "3m05s", "2h10m", "4d03h".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", d/time.Second)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, d%time.Hour/time.Minute)
	}
	return fmt.Sprintf("%dd%02dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
}

// clock is a time in the local zone, to the second.
func clock(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }

func runDuration(r procman.Run) string {
	if r.EndedAt == nil {
		return human(time.Since(r.StartedAt))
	}
	return human(r.EndedAt.Sub(r.StartedAt))
}

func runOutcome(r procman.Run) string {
	switch {
	case r.EndedAt == nil:
		return "running"
	case r.Pruned:
		return string(r.Outcome) + " (log pruned)"
	}
	return orDash(string(r.Outcome))
}

func runExit(r procman.Run) string {
	switch {
	case r.ExitCode != nil:
		return strconv.Itoa(*r.ExitCode)
	case r.Signal != "":
		return "sig " + r.Signal
	}
	return "-"
}

// eventLine is "2026-11-25 19:25:03.781 web running -> stopping pid=27612".
func (c *cli) eventLine(ev procman.Event) string {
	parts := []string{ev.Time.Local().Format("2006-01-02 15:04:05.000")}
	if ev.Job != "" {
		parts = append(parts, printable(ev.Job))
	}
	if ev.Type == procman.EventState {
		parts = append(parts, printable(string(ev.From)), "->", c.paint(printable(string(ev.To)), ev.To))
	} else {
		parts = append(parts, printable(string(ev.Type)))
	}
	kv := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+printable(v))
		}
	}
	kv("pid", pid(ev.PID))
	if ev.ExitCode != nil {
		kv("exit_code", strconv.Itoa(*ev.ExitCode))
	}
	kv("signal", ev.Signal)
	if ev.Reason != "" {
		kv("reason", strconv.Quote(ev.Reason))
	}
	if ev.Dropped > 0 {
		kv("dropped", strconv.Itoa(ev.Dropped))
	}
	return strings.Join(parts, " ")
}

// jsonString is a JSON string's value, or the JSON itself if it is no string.
func jsonString(b json.RawMessage) string {
	var s string
	if json.Unmarshal(b, &s) != nil {
		return string(b)
	}
	return s
}
