package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// printTable prints the results as a Markdown table, one row a fleet size.
func printTable(out io.Writer, cfg config, srv *server, results []result) {
	fmt.Fprintln(out, "| hosts | jobs | join p50 / p99 | idle statements/s per host | idle transactions/s per host | sessions per host | memory per host | GET /jobs p50 / p99 (jobs listed) | killed: listed dead p50 / p99 | killed: claimable p50 / p99 | floating jobs moved p50 / p99 |")
	fmt.Fprintln(out, "|---:|---:|---|---:|---:|---:|---:|---|---|---|---|")
	for _, r := range results {
		secs := r.window.Seconds() * float64(r.hosts)
		stmts := "n/a"
		if srv.statements {
			stmts = fmt.Sprintf("%.2f", float64(r.idle.totalStatements())/secs)
		}
		fmt.Fprintf(out, "| %d | %d | %s | %s | %.2f | %.1f | %.1f MiB, %.0f goroutines | %s (%d) | %s (%d killed) | %s | %s |\n",
			r.hosts, r.hosts*r.jobs, pair(r.join), stmts, float64(r.idle.xacts)/secs,
			float64(r.idle.conns)/float64(r.hosts), r.rss/(1<<20), r.goroutines,
			pair(r.list), r.listed, pair(r.dead), len(r.dead), pair(r.claimable), pair(r.moved))
	}
	fmt.Fprintf(out, "\nlease %s (a heartbeat every %s), grace %s; jobs: the fleet's continuous jobs, all running; "+
		"memory: this process's resident memory grown, per host (jobs' processes and each host's guardian apart); "+
		"GET /jobs on one host, %d samples; killed: %d%% of the hosts at once, from the kill\n",
		cfg.lease, cfg.lease/5, cfg.grace, cfg.requests, cfg.killPct)
	for _, r := range results {
		fmt.Fprintf(out, "%d hosts: every job running %s after the first was created\n", r.hosts, fmtDur(r.started))
	}
}

// printStatements lists what the database ran while r's fleet was idle,
// most frequent first.
func printStatements(out io.Writer, r result) {
	if r.idle.statements == nil {
		return
	}
	secs := r.window.Seconds() * float64(r.hosts)
	fmt.Fprintf(out, "\nstatements run while %d hosts were idle (%s), per host a second:\n\n", r.hosts, fmtDur(r.window))
	fmt.Fprintln(out, "| per host/s | statement |")
	fmt.Fprintln(out, "|---:|---|")
	qs := slices.SortedFunc(maps.Keys(r.idle.statements), func(a, b string) int {
		return cmp.Or(cmp.Compare(r.idle.statements[b], r.idle.statements[a]), cmp.Compare(a, b))
	})
	for _, q := range qs {
		text := strings.Join(strings.Fields(q), " ")
		if len(text) > 120 {
			text = text[:117] + "..."
		}
		fmt.Fprintf(out, "| %.3f | `%s` |\n", float64(r.idle.statements[q])/secs, strings.ReplaceAll(text, "|", `\|`))
	}
}

// pair is "p50 / p99" of ds.
func pair(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	return fmtDur(percentile(ds, 0.5)) + " / " + fmtDur(percentile(ds, 0.99))
}

func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}
