package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/Mk-Chan/procman/client"
)

// jobObject is a job definition as JSON fields. The client changes only the
// fields it is told to and sends the rest back as it got them; ProcMan checks
// the result.
type jobObject map[string]json.RawMessage

// jobFlag is a flag of add and edit that sets one field of the job.
type jobFlag struct{ flag, field, help string }

var jobStringFlags = []jobFlag{
	{"type", "type", "one_time (the default) or continuous"},
	{"schedule", "schedule", `reboot, manual, or a cron schedule such as "@every 1m" or "*/5 * * * *"`},
	{"overlap", "overlap", "one_time jobs with a cron schedule: skip, queue or restart"},
	{"dir", "dir", "working directory"},
	{"env-file", "env_file", "file of KEY=VALUE lines read at each start"},
	{"user", "user", "run as this user[:group] (ProcMan must run as root)"},
	{"stop-signal", "stop_signal", "signal that stops the job: TERM, INT, HUP, QUIT, KILL, USR1, USR2"},
	{"stop-timeout", "stop_timeout", "wait after the stop signal before SIGKILL (e.g. 10s)"},
	{"backoff-initial", "backoff_initial", "continuous: first wait after a failed run"},
	{"backoff-max", "backoff_max", "continuous: longest wait between failed runs"},
	{"min-uptime", "min_uptime", "continuous: a run this long was healthy"},
}

var jobIntFlags = []jobFlag{
	{"max-retries", "max_retries", "continuous: consecutive failures before giving up; 0: never"},
	{"keep-runs", "keep_runs", "finished runs kept (rows and logs)"},
	{"max-log-bytes", "max_log_bytes", "cap on the job's logs in total"},
	{"max-run-log-bytes", "max_run_log_bytes", "cap on the running run's live log file"},
}

// envFlag collects repeated -env K=V or -unset-env K flags.
type envFlag struct {
	vals  []string
	unset bool
}

func (e *envFlag) String() string { return strings.Join(e.vals, " ") }

func (e *envFlag) Set(s string) error {
	k, _, hasEq := strings.Cut(s, "=")
	switch {
	case e.unset && (s == "" || hasEq):
		return fmt.Errorf("want a variable name, got %q", s)
	case !e.unset && (k == "" || !hasEq):
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	e.vals = append(e.vals, s)
	return nil
}

// jobFlags are the flags of add and edit.
type jobFlags struct {
	fs         *flag.FlagSet
	env, unset envFlag
}

func addJobFlags(fs *flag.FlagSet) *jobFlags {
	jf := &jobFlags{fs: fs, unset: envFlag{unset: true}}
	for _, f := range jobStringFlags {
		fs.String(f.flag, "", f.help)
	}
	for _, f := range jobIntFlags {
		fs.Int64(f.flag, 0, f.help)
	}
	fs.Var(&jf.env, "env", "KEY=VALUE added to the job's environment (repeatable)")
	fs.Var(&jf.unset, "unset-env", "KEY removed from the job's environment (repeatable)")
	return jf
}

// given reports whether any job flag is on the command line.
func (jf *jobFlags) given() bool {
	given := len(jf.env.vals)+len(jf.unset.vals) > 0
	jf.fs.Visit(func(f *flag.Flag) {
		_, isJob := jobField(f.Name)
		given = given || isJob
	})
	return given
}

// apply sets the fields of the job flags on the command line.
func (jf *jobFlags) apply(job jobObject) error {
	for field, v := range jf.fields() {
		if string(v) == "null" {
			delete(job, field) // back to the default
		} else {
			job[field] = v
		}
	}
	if len(jf.env.vals)+len(jf.unset.vals) == 0 {
		return nil
	}
	return jf.applyEnv(job)
}

// fields are the fields the job flags on the command line set, as JSON: null
// for an empty value or 0, which sets a field back to its default.
func (jf *jobFlags) fields() jobObject {
	out := jobObject{}
	jf.fs.Visit(func(f *flag.Flag) {
		field, ok := jobField(f.Name)
		if !ok {
			return
		}
		v := f.Value.(flag.Getter).Get()
		if v == "" || v == int64(0) {
			out[field] = json.RawMessage("null")
		} else {
			out[field], _ = json.Marshal(v)
		}
	})
	return out
}

// patch is the JSON merge patch (RFC 7396) of the job flags: ProcMan applies
// it to the saved definition, so that a change made meanwhile by someone else
// is kept. -env and -unset-env change those variables alone.
func (jf *jobFlags) patch() jobObject {
	p := jf.fields()
	if len(jf.env.vals)+len(jf.unset.vals) > 0 {
		env := map[string]*string{}
		for _, kv := range jf.env.vals {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = &v
		}
		for _, k := range jf.unset.vals {
			env[k] = nil
		}
		p["env"], _ = json.Marshal(env)
	}
	return p
}

func jobField(flagName string) (string, bool) {
	for _, f := range slices.Concat(jobStringFlags, jobIntFlags) {
		if f.flag == flagName {
			return f.field, true
		}
	}
	return "", false
}

func (jf *jobFlags) applyEnv(job jobObject) error {
	env := map[string]string{}
	if b, ok := job["env"]; ok && string(b) != "null" {
		if err := json.Unmarshal(b, &env); err != nil {
			return fmt.Errorf("the job's env: %w", err)
		}
	}
	for _, kv := range jf.env.vals {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for _, k := range jf.unset.vals {
		delete(env, k)
	}
	if len(env) == 0 {
		delete(job, "env")
		return nil
	}
	job["env"], _ = json.Marshal(env)
	return nil
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
	if err := jf.apply(job); err != nil {
		return err
	}
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
