package main

import (
	"fmt"
	"time"
)

// hosts lists every host of the fleet: procman hosts. The heartbeat's age is
// by this machine's clock.
func (c *cli) hosts(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	hosts, err := c.api.Hosts(c.ctx)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(hosts)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "NAME\tALIVE\tEPOCH\tHEARTBEAT\tACTIVE JOBS\tVERSION\tPID\tADVERTISE\n")
	for _, h := range hosts {
		name := printable(h.Name)
		if h.This {
			name += " *"
		}
		alive := "no"
		if h.Alive {
			alive = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s ago\t%d\t%s\t%d\t%s\n", name, alive, h.Epoch,
			human(max(time.Since(h.HeartbeatAt), 0)), h.ActiveJobs, printable(orDash(h.Version)), h.PID,
			printable(orDash(h.Advertise)))
	}
	return tw.Flush()
}
