package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
)

// orAllJobs is the selector given with -l, or every job when none was.
func orAllJobs(selector string) (procman.Selector, error) {
	if selector == "" {
		return procman.AllJobs(), nil
	}
	sel, err := procman.ParseSelector(selector)
	if err != nil {
		return sel, usagef("-l: %v", err)
	}
	return sel, nil
}

func (c *cli) ls(args []string) error {
	fs := c.flagSet()
	selector := fs.String("l", "", "only the jobs this label selector chooses, e.g. tier=web,!canary")
	if _, err := c.parseArgs(fs, args); err != nil {
		return err
	}
	sel, err := orAllJobs(*selector)
	if err != nil {
		return err
	}
	states, err := c.api.StatesOf(c.ctx, sel)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(states)
	}
	entries, err := c.api.ListOf(c.ctx, sel)
	if err != nil {
		return c.failed(err)
	}
	defs := map[string]procman.Job{}
	for _, e := range entries {
		defs[e.Name] = e.Job
	}
	us, err := c.usages()
	if err != nil {
		return c.failed(err)
	}
	fleet, err := c.inFleet()
	if err != nil {
		return c.failed(err)
	}
	slices.SortFunc(states, func(a, b procman.Status) int { return cmp.Compare(a.Name, b.Name) })
	waiting := slices.ContainsFunc(states, func(st procman.Status) bool { return len(st.WaitingFor) > 0 })
	tw := newTable(c.stdout)
	fmt.Fprint(tw, "NAME\t")
	if fleet {
		fmt.Fprint(tw, "HOST\t")
	}
	fmt.Fprintf(tw, "TYPE\tSCHEDULE\t%s\t%s\tPID\tUPTIME\tCPU\tMEM\tRESTARTS\tLAST EXIT", c.paint("STATE", ""), c.paintHealth("HEALTH"))
	if waiting { // a column only while a start waits: most of the time none does
		fmt.Fprint(tw, "\tWAITING FOR")
	}
	fmt.Fprintln(tw)
	for _, st := range states {
		j := defs[st.Name]
		cpu, mem := "-", "-"
		if u, ok := us[st.Name]; ok {
			cpu, mem = fmt.Sprintf("%.1f%%", cpuMeter{}.percent(u)), bytesHuman(u.RSSBytes)
		}
		fmt.Fprintf(tw, "%s\t", printable(st.Name))
		if fleet {
			fmt.Fprintf(tw, "%s\t", printable(orDash(st.Host)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", printable(orDash(string(j.Type))),
			printable(orDash(j.Schedule)), c.paint(printable(string(st.State)), st.State),
			c.paintHealth(printable(orDash(string(st.Health)))), orDash(pid(st.PID)), uptime(st),
			cpu, mem, st.Restarts, printable(lastExit(st.LastRun)))
		if waiting {
			fmt.Fprintf(tw, "\t%s", printable(orDash(conditions(st.WaitingFor))))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// inFleet reports whether the ProcMan asked shares its database with other
// hosts: a listing then says which host runs each job.
func (c *cli) inFleet() (bool, error) {
	hosts, err := c.api.Hosts(c.ctx)
	return len(hosts) > 1, err
}

func (c *cli) show(args []string) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	job, err := c.api.Get(c.ctx, name)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(job)
	}
	st, err := c.api.State(c.ctx, name)
	if err != nil {
		return c.failed(err)
	}
	def, err := json.Marshal(job) // its fields in ProcMan's order, those it leaves out left out
	if err != nil {
		return err
	}
	deps := map[string]procman.Status{}
	if len(job.DependsOn) > 0 {
		states, err := c.api.States(c.ctx)
		if err != nil {
			return c.failed(err)
		}
		for _, d := range states {
			deps[d.Name] = d
		}
	}
	tw := newTable(c.stdout)
	if err := writeFields(tw, def, deps); err != nil {
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
	st, err := c.api.State(c.ctx, name)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(st)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "name:\t%s\n", printable(st.Name))
	c.writeStatus(tw, st)
	return tw.Flush()
}

func (c *cli) start(args []string) error {
	return c.control(args, (*client.Client).Start, (*client.Client).StartJobs)
}
func (c *cli) stop(args []string) error {
	return c.control(args, (*client.Client).Stop, (*client.Client).StopJobs)
}
func (c *cli) restart(args []string) error {
	return c.control(args, (*client.Client).Restart, (*client.Client).RestartJobs)
}

// controlFunc is a start, a stop or a restart; bulkFunc, one of many jobs.
type (
	controlFunc = func(*client.Client, context.Context, string) (procman.Status, error)
	bulkFunc    = func(*client.Client, context.Context, procman.Selector) ([]procman.Result, error)
)

// control starts, stops or restarts a job, or the jobs of -l or -all, and
// prints the status of each after it.
func (c *cli) control(args []string, do controlFunc, bulk bulkFunc) error {
	fs := c.flagSet()
	selector := fs.String("l", "", "act on the jobs this label selector chooses, e.g. tier=web (instead of NAME)")
	all := fs.Bool("all", false, "act on every job (instead of NAME)")
	pos, rest, err := c.parse(fs, args)
	if err != nil {
		return err
	}
	pos = append(pos, rest...)
	switch {
	case *selector != "" && *all:
		return usagef("give -l or -all, not both")
	case (*selector != "" || *all) && len(pos) > 0:
		return usagef("give NAME, or -l or -all, not both")
	case *all:
		return c.actOnMany(procman.AllJobs(), bulk)
	case *selector != "":
		sel, err := procman.ParseSelector(*selector)
		if err != nil {
			return usagef("-l: %v", err)
		}
		return c.actOnMany(sel, bulk)
	case len(pos) == 0:
		return usagef("missing NAME (or -l SELECTOR, or -all)")
	case len(pos) > 1:
		return usagef("unexpected argument %q", pos[1])
	}
	return c.act(pos[0], do)
}

// actOnMany runs a bulk action and prints a line per job: its status, or
// why the action failed for it.
func (c *cli) actOnMany(sel procman.Selector, bulk bulkFunc) error {
	res, err := bulk(c.api, c.ctx, sel)
	if err != nil {
		return c.failed(err)
	}
	failed := 0
	lines := make([]bulkLine, len(res))
	for i, r := range res {
		lines[i] = bulkLine{Name: r.Name, Status: r.Status, Dependent: r.Dependent}
		if r.Err != nil {
			failed++
			lines[i].Error = r.Err.Error()
			if e, ok := r.Err.(*client.Error); ok {
				lines[i].Code = e.Code
			}
		}
	}
	if c.json {
		if err := c.printJSON(lines); err != nil {
			return err
		}
	} else {
		for _, l := range lines {
			line := c.statusLine(l.Status)
			if l.Error != "" {
				line = printable(l.Name) + ": failed: " + printable(l.Error)
			}
			if l.Dependent {
				line += " (depends on a job selected)"
			}
			fmt.Fprintln(c.stdout, line)
		}
		if len(lines) == 0 {
			fmt.Fprintln(c.stdout, "no job matches")
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d jobs failed", failed, len(res))
	}
	return nil
}

// bulkLine is a job's line of a bulk action, as the API writes it.
type bulkLine struct {
	Name      string         `json:"name"`
	Status    procman.Status `json:"status"`
	Dependent bool           `json:"dependent,omitempty"`
	Error     string         `json:"error,omitempty"`
	Code      string         `json:"code,omitempty"`
}

// act starts, stops or restarts the job and prints its status after it.
func (c *cli) act(name string, do controlFunc) error {
	st, err := do(c.api, c.ctx, name)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(st)
	}
	fmt.Fprintln(c.stdout, c.statusLine(st))
	return nil
}
