package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

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
	q := url.Values{}
	if *tail > 0 {
		q.Set("tail", strconv.Itoa(*tail))
	}
	if *run > 0 {
		q.Set("run", strconv.FormatInt(*run, 10))
	}
	if *follow {
		q.Set("follow", "1")
	}
	return c.stream(jobPath(name, "/logs")+query(q), func(r io.Reader) error {
		_, err := io.Copy(c.stdout, r)
		return err
	})
}

// stream GETs path and hands the answer to read. An interruption (Ctrl-C)
// is the normal end of a stream, not an error.
func (c *cli) stream(path string, read func(io.Reader) error) error {
	resp, err := c.send(http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	err = read(resp.Body)
	if c.ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return c.connError(err)
	}
	return nil
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
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
	q := url.Values{}
	if *n > 0 {
		q.Set("limit", strconv.Itoa(*n))
	}
	var runs []procman.Run
	raw, err := c.get(jobPath(name, "/runs")+query(q), &runs)
	if err != nil || c.json {
		return orRaw(c, raw, err)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "ID\tTRIGGER\tSTARTED\tDURATION\tPID\tOUTCOME\tEXIT")
	for _, r := range runs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, printable(string(r.Trigger)), clock(r.StartedAt), runDuration(r),
			orDash(pid(r.PID)), printable(runOutcome(r)), printable(runExit(r)))
	}
	return tw.Flush()
}

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

func (c *cli) events(args []string) error {
	if _, err := c.parseArgs(c.flagSet(), args); err != nil {
		return err
	}
	ended := false
	err := c.stream("/events", func(r io.Reader) error {
		err := readSSE(r, c.printEvent)
		ended = err == nil
		return err
	})
	if err == nil && ended && c.ctx.Err() == nil {
		return errors.New("ProcMan closed the event stream (it is shutting down)")
	}
	return err
}

// readSSE calls fn with the data of each Server-Sent Event until r ends.
// Comments (": heartbeat") and event names are skipped: the data says it all.
func readSSE(r io.Reader, fn func(data string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "data:"); ok {
			data = append(data, strings.TrimPrefix(d, " "))
		} else if line == "" && len(data) > 0 {
			if err := fn(strings.Join(data, "\n")); err != nil {
				return err
			}
			data = data[:0]
		}
	}
	return sc.Err()
}

// printEvent prints one event: the JSON as it came (-o json), or a line.
func (c *cli) printEvent(data string) error {
	if c.json {
		_, err := fmt.Fprintln(c.stdout, string(jsonSafe([]byte(data))))
		return err
	}
	var ev procman.Event
	if err := json.Unmarshal([]byte(data), &ev); err != nil {
		return fmt.Errorf("unexpected event %q: %w", data, err)
	}
	_, err := fmt.Fprintln(c.stdout, c.eventLine(ev)) // its fields are made printable there
	return err
}

// eventLine is "2026-11-25 19:25:03.781 web running -> stopping pid=27612".
func (c *cli) eventLine(ev procman.Event) string {
	parts := []string{ev.Time.Local().Format("2006-01-02 15:04:05.000")}
	if ev.Job != "" {
		parts = append(parts, printable(ev.Job))
	}
	if ev.Type == "state" {
		parts = append(parts, printable(string(ev.From)), "->", c.paint(printable(string(ev.To)), ev.To))
	} else {
		parts = append(parts, printable(ev.Type))
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
