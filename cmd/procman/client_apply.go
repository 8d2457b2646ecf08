package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
)

// errChanged is apply -exit-code's answer when the plan changes something:
// exit status 2, as terraform plan -detailed-exitcode, for CI to ask "is the
// host what the file says?".
var errChanged = exitStatus(2)

// exitStatus is an exit status with nothing more to say.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func (c *cli) apply(args []string) error { return c.applyDocument(args, false) }

// diff is apply -dry-run.
func (c *cli) diff(args []string) error { return c.applyDocument(args, true) }

// applyDocument sends the file to ProcMan, which reads, checks and applies
// it (or only plans, dry), and prints the plan.
func (c *cli) applyDocument(args []string, dry bool) error {
	fs := c.flagSet()
	file := fs.String("f", "", "the document of jobs: a YAML file, or JSON (.json); - for stdin (with -source)")
	source := fs.String("source", "", "the document's name, which the jobs it creates record and -prune goes by (default: the -f path as given)")
	var opts procman.ApplyOptions
	if !dry {
		fs.BoolVar(&opts.DryRun, "dry-run", false, "only show the plan: change nothing (procman diff)")
	}
	fs.BoolVar(&opts.Prune, "prune", false, "stop and delete the jobs of this source that the file no longer has (never one made by hand)")
	fs.BoolVar(&opts.Restart, "restart", false, "restart the changed jobs that are running, so that they run the new definition now")
	exitCode := fs.Bool("exit-code", false, "exit 2 when the plan changes something, 0 when not (for CI)")
	if _, err := c.parseArgs(fs, args); err != nil {
		return err
	}
	opts.DryRun = opts.DryRun || dry
	data, format, err := readDocument(*file)
	if err != nil {
		return err
	}
	opts.Source = *source
	if opts.Source == "" && *file != "-" {
		opts.Source = *file
	}
	if opts.Source == "" {
		return usagef("-f - (stdin) needs -source NAME: the name its jobs record")
	}
	plan, err := c.api.Apply(c.ctx, data, format, opts)
	if err != nil {
		return c.documentFailed(*file, err)
	}
	if c.json {
		if err := c.printJSON(plan); err != nil {
			return err
		}
	} else {
		c.printPlan(plan)
	}
	if *exitCode && plan.Changed() {
		return errChanged
	}
	return nil
}

func readDocument(path string) ([]byte, procman.Format, error) {
	var data []byte
	var err error
	switch path {
	case "":
		return nil, "", usagef("missing -f FILE: the document of jobs")
	case "-":
		data, err = io.ReadAll(os.Stdin)
	default:
		data, err = os.ReadFile(path)
	}
	return data, procman.FormatOf(path), err
}

// documentFailed prints each problem of a refused document on a line of
// its own, as compilers do: FILE:LINE: job "web": command: ...
func (c *cli) documentFailed(file string, err error) error {
	var answer *client.Error
	if !errors.As(err, &answer) || len(answer.Fields) == 0 {
		return c.failed(err)
	}
	for _, fe := range answer.Fields {
		var where []string
		if fe.Line > 0 {
			where = append(where, fmt.Sprintf("%s:%d", file, fe.Line))
		} else {
			where = append(where, file)
		}
		if fe.Job != "" {
			where = append(where, fmt.Sprintf("job %q", fe.Job))
		}
		if fe.Field != "" {
			where = append(where, fe.Field)
		}
		fmt.Fprintf(c.stderr, "%s: %s\n", printable(strings.Join(where, ": ")), printable(fe.Msg))
	}
	n := len(answer.Fields)
	return fmt.Errorf("%d %s in %s; nothing changed", n, map[bool]string{true: "problem", false: "problems"}[n == 1], file)
}

// printPlan prints a plan as terraform plan does: + created, ~ updated with
// each changed field's old and new value, - deleted, then a summary.
func (c *cli) printPlan(p procman.Plan) {
	mark := func(sign, color, name string) string {
		s := sign + " " + printable(name)
		if c.color {
			s = "\x1b[" + color + "m" + s + "\x1b[0m"
		}
		return s
	}
	for _, name := range p.Created {
		fmt.Fprintln(c.stdout, mark("+", "32", name))
	}
	for _, u := range p.Updated {
		fields := make([]string, len(u.Fields))
		for i, f := range u.Fields {
			fields[i] = f.Field
		}
		fmt.Fprintf(c.stdout, "%s: %s\n", mark("~", "33", u.Name), strings.Join(fields, ", "))
		for _, f := range u.Fields {
			fmt.Fprintf(c.stdout, "    %s: %s -> %s\n", f.Field, planValue(f.Old), planValue(f.New))
		}
	}
	for _, name := range p.Deleted {
		fmt.Fprintln(c.stdout, mark("-", "31", name))
	}
	counts := fmt.Sprintf("%d to create, %d to update, %d to delete, %d unchanged",
		len(p.Created), len(p.Updated), len(p.Deleted), len(p.Unchanged))
	switch {
	case p.DryRun && len(p.Restarted) > 0:
		fmt.Fprintf(c.stdout, "Plan: %s; %s would restart. Nothing changed (dry run).\n", counts, printable(strings.Join(p.Restarted, ", ")))
	case p.DryRun:
		fmt.Fprintf(c.stdout, "Plan: %s. Nothing changed (dry run).\n", counts)
	default:
		done := fmt.Sprintf("%d created, %d updated, %d deleted, %d unchanged", len(p.Created), len(p.Updated), len(p.Deleted), len(p.Unchanged))
		if len(p.Restarted) > 0 {
			done += "; restarted " + printable(strings.Join(p.Restarted, ", "))
		}
		fmt.Fprintf(c.stdout, "Applied: %s.\n", done)
	}
}

// planValue is a field's value as JSON, or (default) when not set.
func planValue(v []byte) string {
	if len(v) == 0 {
		return "(default)"
	}
	return printable(string(v))
}

// export writes every job as a document that apply takes back unchanged.
func (c *cli) export(args []string) error {
	fs := c.flagSet()
	selector := fs.String("l", "", "only the jobs this label selector chooses, e.g. tier=web")
	if _, err := c.parseArgs(fs, args); err != nil {
		return err
	}
	sel, err := orAllJobs(*selector)
	if err != nil {
		return err
	}
	entries, err := c.api.ListOf(c.ctx, sel)
	if err != nil {
		return c.failed(err)
	}
	doc := procman.Document{Jobs: make([]procman.Job, len(entries))}
	for i, e := range entries {
		doc.Jobs[i] = e.Job
	}
	text, err := doc.Marshal(c.exportFormat)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(text)
	return err
}
