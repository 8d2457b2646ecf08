package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/Mk-Chan/procman/client"
)

// jobObject is a job definition as JSON fields. The client changes only the
// fields it is told to and sends the rest back as it got them; ProcMan checks
// the result.
type jobObject map[string]json.RawMessage

// jobFlag is a flag of add and edit that sets one field of the job; a field
// "health.exec" is the member exec of the object health. parse turns the
// flag's value into the field's JSON value (nil: the value is a string).
type jobFlag struct {
	flag, field, help string
	parse             func(string) (any, error)
}

var jobFlagTable = []jobFlag{
	{"type", "type", "one_time (the default) or continuous", nil},
	{"schedule", "schedule", `reboot, manual, or a cron schedule such as "@every 1m" or "*/5 * * * *"`, nil},
	{"overlap", "overlap", "one_time jobs with a cron schedule: skip, queue or restart", nil},
	{"start-timeout", "start_timeout", "with -depends-on: how long a start may wait for them (e.g. 30s)", nil},
	{"dir", "dir", "working directory", nil},
	{"env-file", "env_file", "file of KEY=VALUE lines read at each start", nil},
	{"user", "user", "run as this user[:group] (ProcMan must run as root)", nil},
	{"stop-signal", "stop_signal", "signal that stops the job: TERM, INT, HUP, QUIT, KILL, USR1, USR2", nil},
	{"stop-timeout", "stop_timeout", "wait after the stop signal before SIGKILL (e.g. 10s)", nil},
	{"restart", "restart", "which ended runs are followed by another: always (continuous) or on-failure", nil},
	{"success-exit-codes", "success_exit_codes", "exit codes that count as success besides 0, comma-separated (e.g. 3,4)", parseCodes},
	{"backoff-initial", "backoff_initial", "first wait after a failed run", nil},
	{"backoff-max", "backoff_max", "longest wait between failed runs", nil},
	{"min-uptime", "min_uptime", "continuous: a run this long was healthy", nil},
	{"max-retries", "max_retries", "failures in a row before giving up; 0: never", parseInt},
	{"health-exec", "health.exec", "health check: a command that exits 0 while the job is well", nil},
	{"health-http", "health.http", "health check: a URL that answers 2xx or 3xx while the job is well", nil},
	{"health-tcp", "health.tcp", "health check: a host:port that accepts connections while the job is well", nil},
	{"health-interval", "health.interval", "time between health checks (default 10s)", nil},
	{"health-timeout", "health.timeout", "bound of one health check (default 5s)", nil},
	{"health-retries", "health.retries", "failed health checks in a row that make the job unhealthy (default 3)", parseInt},
	{"health-start-period", "health.start_period", "time after the start in which failed health checks do not count", nil},
	{"on-unhealthy", "on_unhealthy", "restart (the default for continuous jobs) or ignore", nil},
	{"keep-runs", "keep_runs", "finished runs kept (rows and logs)", parseInt},
	{"max-log-bytes", "max_log_bytes", "cap on the job's logs in total", parseInt},
	{"max-run-log-bytes", "max_run_log_bytes", "cap on the running run's live log file", parseInt},
}

// healthKinds are the members of health of which a check has exactly one.
var healthKinds = []string{"exec", "http", "tcp"}

func parseInt(s string) (any, error) { return strconv.ParseInt(s, 10, 64) }

func parseCodes(s string) (any, error) {
	var codes []int
	for _, w := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil {
			return nil, fmt.Errorf("want exit codes separated by commas, such as 3,4")
		}
		codes = append(codes, c)
	}
	return codes, nil
}

// fieldValue is the value of a jobFlag, as JSON: null for an empty value or
// 0, which sets the field back to its default.
type fieldValue struct {
	parse func(string) (any, error)
	raw   json.RawMessage
}

func (v *fieldValue) String() string {
	if v == nil {
		return ""
	}
	return string(v.raw)
}

func (v *fieldValue) Set(s string) error {
	var val any = s
	if v.parse != nil && s != "" {
		var err error
		if val, err = v.parse(s); err != nil {
			return err
		}
	}
	if s == "" || val == int64(0) {
		v.raw = json.RawMessage("null")
		return nil
	}
	v.raw, _ = json.Marshal(val)
	return nil
}

// mapFlag collects a repeated flag that sets members of an object field
// (KEY=VALUE, or KEY alone for KEY=bare when bare is set), or, with unset,
// removes them (KEY).
type mapFlag struct {
	vals  []string
	unset bool
	bare  string
}

func (e *mapFlag) String() string { return strings.Join(e.vals, " ") }

func (e *mapFlag) Set(s string) error {
	k, _, hasEq := strings.Cut(s, "=")
	switch {
	case e.unset && (s == "" || hasEq):
		return fmt.Errorf("want a name, got %q", s)
	case !e.unset && k == "":
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	case !e.unset && !hasEq && e.bare == "":
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	case !e.unset && !hasEq:
		s += "=" + e.bare
	}
	e.vals = append(e.vals, s)
	return nil
}

// mapField is an object field with its two repeatable flags: one sets
// members, the other removes them.
type mapField struct{ set, unset, field, bare, setHelp, unsetHelp string }

var mapFields = []mapField{
	{"env", "unset-env", "env", "", "KEY=VALUE added to the job's environment (repeatable)",
		"KEY removed from the job's environment (repeatable)"},
	{"depends-on", "no-depends-on", "depends_on", "started",
		"NAME or NAME=CONDITION (started, healthy, completed, completed_successfully): a job this one needs (repeatable)",
		"NAME: a job this one no longer needs (repeatable)"},
	{"label", "unset-label", "labels", "", "KEY=VALUE: a label of the job, for selectors (repeatable)",
		"KEY: a label removed from the job (repeatable)"},
}

// jobFlags are the flags of add and edit.
type jobFlags struct {
	fs   *flag.FlagSet
	maps map[string][2]*mapFlag // field -> its set and unset flags
}

func addJobFlags(fs *flag.FlagSet) *jobFlags {
	jf := &jobFlags{fs: fs, maps: map[string][2]*mapFlag{}}
	for _, f := range jobFlagTable {
		fs.Var(&fieldValue{parse: f.parse}, f.flag, f.help)
	}
	for _, m := range mapFields {
		set, unset := &mapFlag{bare: m.bare}, &mapFlag{unset: true}
		fs.Var(set, m.set, m.setHelp)
		fs.Var(unset, m.unset, m.unsetHelp)
		jf.maps[m.field] = [2]*mapFlag{set, unset}
	}
	return jf
}

// given reports whether any job flag is on the command line.
func (jf *jobFlags) given() bool { return len(jf.patch()) > 0 }

// apply sets the fields of the job flags on the command line, as ProcMan
// applies the same patch to a saved definition.
func (jf *jobFlags) apply(job jobObject) {
	for field, v := range jf.patch() {
		if merged := mergeJSON(job[field], v); string(merged) == "null" {
			delete(job, field) // back to the default
		} else {
			job[field] = merged
		}
	}
}

// patch is the JSON merge patch (RFC 7396) of the job flags on the command
// line: ProcMan applies it to the saved definition, so that a change made
// meanwhile by someone else is kept. -env and -unset-env change those
// variables alone, -depends-on and -no-depends-on those dependencies, and
// the -health flags those settings of the check.
func (jf *jobFlags) patch() jobObject {
	p, health := jobObject{}, jobObject{}
	jf.fs.Visit(func(f *flag.Flag) {
		v, ok := f.Value.(*fieldValue)
		if !ok {
			return
		}
		for _, jfl := range jobFlagTable {
			if jfl.flag != f.Name {
				continue
			}
			if member, ok := strings.CutPrefix(jfl.field, "health."); ok {
				health[member] = v.raw
			} else {
				p[jfl.field] = v.raw
			}
		}
	})
	if len(health) > 0 {
		p["health"] = healthPatch(health)
	}
	for field, fl := range jf.maps {
		if len(fl[0].vals)+len(fl[1].vals) == 0 {
			continue
		}
		m := map[string]*string{}
		for _, kv := range fl[0].vals {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = &v
		}
		for _, k := range fl[1].vals {
			m[k] = nil
		}
		p[field], _ = json.Marshal(m)
	}
	return p
}

// healthPatch is the patch of the health check: a kind of check given (exec,
// http or tcp) replaces the job's, and one given empty removes the check.
func healthPatch(h jobObject) json.RawMessage {
	for _, k := range healthKinds {
		if string(h[k]) == "null" {
			return json.RawMessage("null")
		}
	}
	for _, k := range healthKinds {
		if h[k] == nil {
			continue
		}
		for _, other := range healthKinds {
			if h[other] == nil {
				h[other] = json.RawMessage("null")
			}
		}
	}
	b, _ := json.Marshal(h)
	return b
}

// mergeJSON is RFC 7396's MergePatch(target, patch), as ProcMan applies a
// PATCH: add applies the job flags to a job file the same way.
func mergeJSON(target, patch json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(patch, &p) != nil || p == nil {
		return patch // not an object: it replaces the target
	}
	var t map[string]json.RawMessage
	if json.Unmarshal(target, &t) != nil || t == nil {
		t = map[string]json.RawMessage{}
	}
	for k, v := range p {
		if m := mergeJSON(t[k], v); string(m) == "null" {
			delete(t, k)
		} else {
			t[k] = m
		}
	}
	if len(t) == 0 {
		return json.RawMessage("null") // an object left empty: the field's default
	}
	out, _ := json.Marshal(t)
	return out
}

func (c *cli) add(args []string) error {
	fs := c.flagSet()
	file := fs.String("f", "", "read the job from this JSON file (- for stdin); NAME, job flags and -- CMD change it")
	start := fs.Bool("start", false, "start the job once it is created")
	jf := addJobFlags(fs)
	pos, cmdline, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	job, err := readJobFile(*file)
	if err != nil {
		return err
	}
	if err := setNameAndCommand(job, pos, cmdline, *file == ""); err != nil {
		return err
	}
	jf.apply(job)
	def, err := json.Marshal(job)
	if err != nil {
		return err
	}
	created, err := c.api.CreateJSON(c.ctx, def) // as it is: ProcMan judges every field
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		if err := c.printJSON(created); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.stdout, "created %s (%s)\n", printable(created.Name), printable(string(created.Type)))
	}
	if !*start {
		return nil
	}
	return c.act(created.Name, (*client.Client).Start) // -o json: the status follows the job, one answer a line
}

// setNameAndCommand puts NAME and the words after -- into the job; without a
// file both are required.
func setNameAndCommand(job jobObject, pos, cmdline []string, required bool) error {
	switch {
	case len(pos) > 1:
		return usagef("unexpected argument %q: put the job's command after --", pos[1])
	case len(pos) == 1:
		job["name"], _ = json.Marshal(pos[0])
	case required:
		return usagef("missing NAME")
	}
	if len(cmdline) > 0 {
		job["command"], _ = json.Marshal(strings.Join(cmdline, " "))
	} else if required {
		return usagef("missing the command: procman add NAME [flags] -- CMD...")
	}
	return nil
}

// readJobFile reads a job definition from path ("-": stdin); "" gives an empty one.
func readJobFile(path string) (jobObject, error) {
	job := jobObject{}
	if path == "" {
		return job, nil
	}
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &job); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	return job, nil
}

func (c *cli) edit(args []string) error {
	fs := c.flagSet()
	jf := addJobFlags(fs)
	pos, cmdline, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return usagef("want one NAME, then the changes")
	case len(cmdline) == 0 && !jf.given():
		return usagef("nothing to change: give job flags or -- CMD")
	}
	patch := jf.patch()
	if len(cmdline) > 0 {
		patch["command"], _ = json.Marshal(strings.Join(cmdline, " "))
	}
	b, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	job, err := c.api.Update(c.ctx, pos[0], b)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(job)
	}
	name := printable(pos[0])
	fmt.Fprintf(c.stdout, "updated %s (from its next start; procman restart %s applies it now)\n", name, name)
	return nil
}

func (c *cli) rm(args []string) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	job, err := c.api.Delete(c.ctx, name)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(job)
	}
	fmt.Fprintf(c.stdout, "deleted %s (its logs stay)\n", printable(name))
	return nil
}
