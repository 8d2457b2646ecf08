package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/Mk-Chan/procman"
)

func (c *cli) ls(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	var states []procman.Status
	raw, err := c.get("/jobs/states", &states)
	if err != nil || c.json {
		return orRaw(c, raw, err)
	}
	var jobs []procman.Job
	if _, err := c.get("/jobs", &jobs); err != nil {
		return err
	}
	defs := map[string]procman.Job{}
	for _, j := range jobs {
		defs[j.Name] = j
	}
	slices.SortFunc(states, func(a, b procman.Status) int { return cmp.Compare(a.Name, b.Name) })
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "NAME\tTYPE\tSCHEDULE\t%s\tPID\tUPTIME\tRESTARTS\tLAST EXIT\n", c.paint("STATE", ""))
	for _, st := range states {
		j := defs[st.Name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", printable(st.Name), printable(orDash(string(j.Type))),
			printable(orDash(j.Schedule)), c.paint(printable(string(st.State)), st.State), orDash(pid(st.PID)), uptime(st),
			st.Restarts, printable(lastExit(st.LastRun)))
	}
	return tw.Flush()
}

func (c *cli) show(args []string) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	raw, err := c.get(jobPath(name, ""), nil)
	if err != nil || c.json {
		return orRaw(c, raw, err)
	}
	var st procman.Status
	if _, err := c.get(jobPath(name, "/state"), &st); err != nil {
		return err
	}
	tw := newTable(c.stdout)
	if err := writeFields(tw, raw); err != nil {
		return err
	}
	c.writeStatus(tw, st)
	return tw.Flush()
}

func (c *cli) state(args []string) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	var st procman.Status
	raw, err := c.get(jobPath(name, "/state"), &st)
	if err != nil || c.json {
		return orRaw(c, raw, err)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "name:\t%s\n", printable(st.Name))
	c.writeStatus(tw, st)
	return tw.Flush()
}

func (c *cli) start(args []string) error   { return c.control(args, "start") }
func (c *cli) stop(args []string) error    { return c.control(args, "stop") }
func (c *cli) restart(args []string) error { return c.control(args, "restart") }

// control POSTs a start, stop or restart and prints the job's status after it.
func (c *cli) control(args []string, action string) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	return c.act(name, action)
}

// act POSTs the action and prints the job's status after it.
func (c *cli) act(name, action string) error {
	raw, err := c.call(http.MethodPost, jobPath(name, "/"+action), nil)
	if err != nil || c.json {
		return orRaw(c, raw, err)
	}
	var st procman.Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("unexpected answer from %s: %w", c.where, err)
	}
	fmt.Fprintln(c.stdout, c.statusLine(st))
	return nil
}

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
	line("log file", st.LogFile)
	if st.NextRun != nil {
		line("next run", clock(*st.NextRun))
	}
}

// writeFields writes a job definition's fields in the order ProcMan sent them.
func writeFields(w io.Writer, raw []byte) error {
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
		writeField(w, t.(string), v)
	}
	return nil
}

// writeField writes one field; env gets a line per variable.
func writeField(w io.Writer, key string, v json.RawMessage) {
	var env map[string]string
	if key != "env" || json.Unmarshal(v, &env) != nil {
		fmt.Fprintf(w, "%s:\t%s\n", printable(key), printable(orDash(jsonString(v))))
		return
	}
	label := key + ":"
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(w, "%s\t%s=%s\n", label, printable(k), printable(env[k]))
		label = ""
	}
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
