package main

// What jobs cost: procman signal, procman top, and the CPU and MEM columns
// of procman ls.

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func (c *cli) signal(args []string) error {
	pos, err := c.parseArgs(c.flagSet(), args, "NAME", "SIGNAL")
	if err != nil {
		return err
	}
	sig, err := procman.ParseSignal(pos[1])
	if err != nil {
		return usageError{strings.TrimPrefix(err.Error(), procman.ErrInvalid.Error()+": ")}
	}
	st, err := c.api.Signal(c.ctx, pos[0], sig)
	if err != nil {
		return c.failed(err)
	}
	if c.json {
		return c.printJSON(st)
	}
	name := unix.SignalName(sig)
	if name == "" {
		name = "signal " + strconv.Itoa(int(sig))
	}
	fmt.Fprintf(c.stdout, "%s: %s sent to the processes of its run (pid %d)\n", printable(st.Name), name, st.PID)
	return nil
}

// usages reads what the running jobs cost, by name; a ProcMan too old to
// say gives none.
func (c *cli) usages() (map[string]procman.Usage, error) {
	us, err := c.api.Usages(c.ctx, procman.UsageOptions{})
	var answer *client.Error
	if errors.As(err, &answer) && answer.Code == "no_route" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]procman.Usage, len(us))
	for _, u := range us {
		out[u.Job] = u
	}
	return out, nil
}

// cpuMeter turns readings of a job's usage into the share of a CPU it used:
// between two readings of one run, the growth of its CPU time over that of
// its age (as top counts it); at a run's first reading, its CPU time over
// its age (as ps counts %CPU).
type cpuMeter map[string]procman.Usage

func (m cpuMeter) percent(u procman.Usage) float64 {
	prev, seen := m[u.Job]
	m[u.Job] = u
	cpu := u.CPUUserSeconds + u.CPUSystemSeconds
	switch {
	case seen && prev.Run == u.Run && u.AgeSeconds > prev.AgeSeconds:
		return 100 * (cpu - prev.CPUUserSeconds - prev.CPUSystemSeconds) / (u.AgeSeconds - prev.AgeSeconds)
	case u.AgeSeconds > 0:
		return 100 * cpu / u.AgeSeconds
	}
	return 0
}

// topRow is a line of procman top.
type topRow struct {
	st      procman.Status
	usage   procman.Usage
	running bool
	cpu     float64 // percent of one CPU
}

// topRows reads every job's status and the running jobs' usage, sorted by
// CPU, the busiest first, then the jobs that do not run, by name.
func (c *cli) topRows(meter cpuMeter) ([]topRow, error) {
	states, err := c.api.States(c.ctx)
	if err != nil {
		return nil, err
	}
	us, err := c.usages()
	if err != nil {
		return nil, err
	}
	rows := make([]topRow, len(states))
	for i, st := range states {
		rows[i].st = st
		if u, ok := us[st.Name]; ok {
			rows[i].usage, rows[i].running, rows[i].cpu = u, true, meter.percent(u)
		}
	}
	for name := range meter { // a run that ended: its next run starts afresh
		if _, ok := us[name]; !ok {
			delete(meter, name)
		}
	}
	slices.SortStableFunc(rows, func(a, b topRow) int {
		switch {
		case a.running && !b.running:
			return -1
		case b.running && !a.running:
			return 1
		}
		return cmp.Or(cmp.Compare(b.cpu, a.cpu), cmp.Compare(a.st.Name, b.st.Name))
	})
	return rows, nil
}

// topTable writes rows as a table.
func (c *cli) topTable(w io.Writer, rows []topRow) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NAME\tSTATE\tPID\tCPU%\tMEM\tPROCS\tRESTARTS\tUPTIME")
	for _, r := range rows {
		cpu, mem, procs := "-", "-", "-"
		if r.running {
			cpu, mem, procs = fmt.Sprintf("%.1f", r.cpu), bytesHuman(r.usage.RSSBytes), strconv.Itoa(r.usage.Processes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", printable(r.st.Name), printable(string(r.st.State)),
			orDash(pid(r.st.PID)), cpu, mem, procs, r.st.Restarts, uptime(r.st))
	}
	return tw.Flush()
}

func (c *cli) top(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	if c.json {
		us, err := c.api.Usages(c.ctx, procman.UsageOptions{})
		if err != nil {
			return c.failed(err)
		}
		return c.printJSON(us)
	}
	out, ok := c.stdout.(*os.File)
	if !ok || !term.IsTerminal(int(out.Fd())) {
		rows, err := c.topRows(cpuMeter{})
		if err != nil {
			return c.failed(err)
		}
		return c.topTable(c.stdout, rows)
	}
	return c.topLive(out)
}

// topLive redraws the table every second on the terminal's alternate
// screen, until q or Ctrl-C (the keyboard is read raw, a key at a time, when
// stdin is the terminal) or SIGINT or SIGTERM.
func (c *cli) topLive(out *os.File) error {
	in := int(os.Stdin.Fd())
	keys := term.IsTerminal(in)
	if keys {
		old, err := term.MakeRaw(in)
		if err != nil {
			return err
		}
		defer term.Restore(in, old)
	}
	io.WriteString(out, "\x1b[?1049h\x1b[?25l") // the alternate screen, the cursor hidden
	defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")
	meter := cpuMeter{}
	for {
		rows, err := c.topRows(meter)
		if c.ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return c.failed(err)
		}
		width, height, _ := term.GetSize(int(out.Fd()))
		var table bytes.Buffer
		c.topTable(&table, rows)
		io.WriteString(out, topFrame(rows, table.String(), width, height))
		if c.waitKey(in, keys, time.Second) {
			return nil
		}
	}
}

// topFrame is one screen: a title, then as many lines of the table as fit,
// each cut to the terminal's width. Lines end in \r\n: a raw terminal adds no \r.
func topFrame(rows []topRow, table string, width, height int) string {
	running := 0
	for _, r := range rows {
		if r.running {
			running++
		}
	}
	lines := append([]string{fmt.Sprintf("procman top: %d jobs, %d running, %s (q quits)", len(rows), running,
		time.Now().Format("15:04:05")), ""}, strings.Split(strings.TrimRight(table, "\n"), "\n")...)
	if height > 0 && len(lines) > height {
		lines = lines[:height]
	}
	for i, l := range lines {
		if width > 0 && len(l) > width {
			lines[i] = l[:width]
		}
	}
	return "\x1b[H" + strings.Join(lines, "\x1b[K\r\n") + "\x1b[K\x1b[J"
}

// waitKey waits for d, and reports whether the user asked to quit
// meanwhile: q, Q or Ctrl-C on the keyboard, or a signal.
func (c *cli) waitKey(in int, keys bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	buf := make([]byte, 64)
	for left := d; left > 0; left = time.Until(deadline) {
		if c.ctx.Err() != nil {
			return true
		}
		slice := min(left, 100*time.Millisecond) // a signal is noticed within it
		if !keys {
			time.Sleep(slice)
			continue
		}
		fds := []unix.PollFd{{Fd: int32(in), Events: unix.POLLIN}}
		if n, err := unix.Poll(fds, int(slice.Milliseconds())+1); err != nil || n == 0 {
			continue
		}
		n, err := unix.Read(in, buf)
		switch {
		case err == unix.EINTR || err == unix.EAGAIN:
		case err != nil || n == 0: // the terminal is gone
			return true
		case bytes.ContainsAny(buf[:n], "qQ\x03"):
			return true
		}
	}
	return false
}

// bytesHuman is a size in binary units, as top shows them: 512K, 4.1M, 1.25G.
func bytesHuman(n int64) string {
	switch {
	case n < 1<<10:
		return strconv.FormatInt(n, 10) + "B"
	case n < 1<<20:
		return fmt.Sprintf("%.0fK", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
}

// cpuTime is a CPU time: 0.05s, 12.3s, 3m05s.
func cpuTime(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%.2fs", s)
	case s < 60:
		return fmt.Sprintf("%.1fs", s)
	}
	return human(time.Duration(s * float64(time.Second)))
}
