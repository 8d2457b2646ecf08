package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/Mk-Chan/procman"
)

func (c *cli) logs(args []string) error {
	fs := c.flagSet()
	follow := fs.Bool("f", false, "follow the output as it is written, into the job's next runs, until it comes to rest (with -run: until that run ends)")
	tail := fs.Int("n", 0, "only the last N lines")
	run := fs.Int64("run", 0, "this run (see procman runs NAME) instead of the latest")
	name, err := c.parseName(fs, args)
	if err != nil {
		return err
	}
	if *tail < 0 || *run < 0 {
		return usagef("-n and -run take a positive number")
	}
	rc, err := c.api.Logs(c.ctx, name, procman.LogOptions{Run: *run, Tail: *tail, Follow: *follow})
	if err != nil {
		return c.failed(err)
	}
	defer rc.Close()
	_, err = io.Copy(c.stdout, rc)
	return c.streamEnd(err)
}

// streamEnd is how a stream that ended with err ends the command: an
// interruption (Ctrl-C) is its normal end, not an error.
func (c *cli) streamEnd(err error) error {
	if err == nil || c.ctx.Err() != nil {
		return nil
	}
	return c.connError(err)
}

func (c *cli) runs(args []string) error {
	fs := c.flagSet()
	n := fs.Int("n", 0, "how many runs, newest first (default 20, at most 1000)")
	name, err := c.parseName(fs, args)
	if err != nil {
		return err
	}
	if *n < 0 {
		return usagef("-n takes a positive number")
	}
	runs, err := c.api.Runs(c.ctx, name, procman.RunsOptions{Limit: *n})
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(runs)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "ID\tTRIGGER\tSTARTED\tDURATION\tPID\tCPU\tPEAK MEM\tOUTCOME\tEXIT")
	for _, r := range runs {
		cpu, peak := "-", "-"
		if r.CPUUserSeconds != nil && r.CPUSystemSeconds != nil {
			cpu = cpuTime(*r.CPUUserSeconds + *r.CPUSystemSeconds)
		}
		if r.MaxRSSBytes != nil {
			peak = bytesHuman(*r.MaxRSSBytes)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, printable(string(r.Trigger)), clock(r.StartedAt), runDuration(r),
			orDash(pid(r.PID)), cpu, peak, printable(runOutcome(r)), printable(runExit(r)))
	}
	return tw.Flush()
}

func (c *cli) events(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	events, err := c.api.Events(c.ctx)
	if err != nil {
		return c.failed(err)
	}
	for ev, err := range events.All() {
		if err != nil {
			return c.streamEnd(err)
		}
		if err := c.printEvent(ev); err != nil {
			return err
		}
	}
	if c.ctx.Err() != nil {
		return nil
	}
	return errors.New("ProcMan closed the event stream (it is shutting down)")
}

// printEvent prints one event: as JSON, one a line (-o json), or as a line of text.
func (c *cli) printEvent(ev procman.Event) error {
	if c.json {
		return c.printJSON(ev)
	}
	_, err := fmt.Fprintln(c.stdout, c.eventLine(ev)) // its fields are made printable there
	return err
}
