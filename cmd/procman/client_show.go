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

func (c *cli) ls(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	states, err := c.api.States(c.ctx)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(states)
	}
	entries, err := c.api.List(c.ctx)
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
	slices.SortFunc(states, func(a, b procman.Status) int { return cmp.Compare(a.Name, b.Name) })
	waiting := slices.ContainsFunc(states, func(st procman.Status) bool { return len(st.WaitingFor) > 0 })
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "NAME\tTYPE\tSCHEDULE\t%s\t%s\tPID\tUPTIME\tCPU\tMEM\tRESTARTS\tLAST EXIT", c.paint("STATE", ""), c.paintHealth("HEALTH"))
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s", printable(st.Name), printable(orDash(string(j.Type))),
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

func (c *cli) start(args []string) error   { return c.control(args, (*client.Client).Start) }
func (c *cli) stop(args []string) error    { return c.control(args, (*client.Client).Stop) }
func (c *cli) restart(args []string) error { return c.control(args, (*client.Client).Restart) }

// controlFunc is a start, a stop or a restart.
type controlFunc = func(*client.Client, context.Context, string) (procman.Status, error)

// control starts, stops or restarts a job and prints its status after it.
func (c *cli) control(args []string, do controlFunc) error {
	name, err := c.parseName(c.flagSet(), args)
	if err != nil {
		return err
	}
	return c.act(name, do)
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
