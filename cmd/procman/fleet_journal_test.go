package main

// The journal of a job's runs across the fleet: each run appends
//
//	start HOST PID UNIX-NANOS
//
// when it starts and, from its shell's EXIT trap,
//
//	end HOST PID UNIX-NANOS
//
// when it ends (stopped by a signal: TERM, INT or HUP; or by itself). A run
// killed by SIGKILL (its ProcMan SIGKILLed, the guardian killing its group)
// writes no end; the test, once it sees the pid gone, appends
//
//	gone HOST PID UNIX-NANOS
//
// for it (cluster.noteGone), later than the run really ended: the check then
// takes the run to be longer than it was, so it may find an overlap a few
// milliseconds too eagerly, but never misses one. A run with neither line is
// running still, and lasts forever as far as the check goes. All hosts of
// these tests run on one machine, so their clocks are one.
//
// A run stopped within a few milliseconds of its spawn, before its shell
// has journaled its start, is not seen: it ran nothing either. One stopped
// while it writes its start line may leave it torn, which the check
// reports. So a test waits for a run's start line (cluster.waitJournaled)
// before it stops the run.

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// journalScript is the job command's script: "sh journal.sh JOB [SECONDS]"
// (a run lasts SECONDS, default an hour, unless stopped). It
// journals into dir/journal/JOB, and names the host by $FLEET_HOST, which
// each host's binary is given and its jobs inherit.
func journalScript(dir string) string {
	return `# One run of a job, journaled: see fleet_journal_test.go.
j=` + filepath.Join(dir, "journal") + `/$1
stamp() { echo "$1 $FLEET_HOST $$ $(date +%s%N)" >> "$j"; }
mkdir -p ` + filepath.Join(dir, "journal") + `
trap 'exit 0' TERM INT HUP
trap '[ -z "$started" ] || stamp end' EXIT
stamp start
started=1
sleep ${2:-3600} &
wait
`
}

// journalRun is one run, as its journal tells it.
type journalRun struct {
	host       string
	pid        int
	start, end time.Time // end: time.Unix(0, MaxInt64) while open
	open       bool      // no end line, no gone line: running
	seen       bool      // its end is when the test saw it gone
}

// parseJournal reads a journal's runs in the order they started.
func parseJournal(text string) ([]journalRun, error) {
	var runs []journalRun
	openAt := map[string]int{} // host and pid of a run without its end, to its index
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		var pid int
		var ns int64
		var err error
		if len(f) == 4 {
			if pid, err = strconv.Atoi(f[2]); err == nil {
				ns, err = strconv.ParseInt(f[3], 10, 64)
			}
		}
		if len(f) != 4 || err != nil {
			return runs, fmt.Errorf("line %d: %q: want WORD HOST PID UNIX-NANOS", i+1, line)
		}
		key, at := f[1]+" "+f[2], time.Unix(0, ns)
		k, isOpen := openAt[key]
		switch {
		case f[0] == "start" && isOpen:
			return runs, fmt.Errorf("line %d: %q: pid %d on %s started again before its end", i+1, line, pid, f[1])
		case f[0] == "start":
			openAt[key] = len(runs)
			runs = append(runs, journalRun{host: f[1], pid: pid, start: at, end: time.Unix(0, math.MaxInt64), open: true})
		case (f[0] == "end" || f[0] == "gone") && isOpen:
			delete(openAt, key)
			runs[k].end, runs[k].open, runs[k].seen = at, false, f[0] == "gone"
		case f[0] == "gone":
			// its end line came first, between the test's read and its look at the pid
		default:
			return runs, fmt.Errorf("line %d: %q: an end of no run", i+1, line)
		}
	}
	return runs, nil
}

// overlaps describes each two runs that were at once, on two hosts or on
// one (one ProcMan never runs a job twice at once either).
func overlaps(runs []journalRun) []string {
	var out []string
	s := slices.SortedFunc(slices.Values(runs), func(a, b journalRun) int { return a.start.Compare(b.start) })
	for i, a := range s {
		for _, b := range s[i+1:] {
			if b.start.Before(a.end) {
				out = append(out, a.String()+" and "+b.String())
			}
		}
	}
	return out
}

func (r journalRun) String() string {
	end := "running"
	switch {
	case r.seen:
		end = "seen gone at " + r.end.Format("15:04:05.000000")
	case !r.open:
		end = "ended at " + r.end.Format("15:04:05.000000")
	}
	return fmt.Sprintf("pid %d on %s started at %s, %s", r.pid, r.host, r.start.Format("15:04:05.000000"), end)
}

// The checker finds two runs at once, whatever the hosts, and only those:
// runs one after another (even a killed one, seen gone before the next
// start), an overlap on two hosts, a killed run seen gone only after a
// later start, a run still going when another starts, a run on one host
// restarted into itself.
func TestJournalChecker(t *testing.T) {
	for _, tc := range []struct {
		name, journal string
		overlaps      int
		err           string
	}{
		{"one after another", "start A 10 100\nend A 10 200\nstart B 20 300\nend B 20 400\nstart A 11 500\n", 0, ""},
		{"killed, seen gone before the next start", "start B 20 100\nstart A 10 300\ngone B 20 250\n", 0, ""},
		{"at once on two hosts", "start A 10 100\nstart B 20 150\nend A 10 200\nend B 20 300\n", 1, ""},
		{"killed, seen gone after the next start", "start B 20 100\nstart A 10 300\ngone B 20 350\n", 1, ""},
		{"killed, never seen gone", "start B 20 100\nstart A 10 300\nend A 10 400\n", 1, ""},
		{"three at once", "start A 10 100\nstart B 20 110\nstart C 30 120\n", 3, ""},
		{"twice at once on one host", "start A 10 100\nstart A 11 150\nend A 10 200\nend A 11 300\n", 1, ""},
		{"touching, not overlapping", "start A 10 100\nend A 10 200\nstart B 20 200\n", 0, ""},
		{"gone after its own end", "start A 10 100\nend A 10 200\ngone A 10 250\n", 0, ""},
		{"an end of no run", "end A 10 100\n", 0, "an end of no run"},
		{"a pid started twice", "start A 10 100\nstart A 10 200\n", 0, "started again before its end"},
		{"a torn line", "start A 10\n", 0, "want WORD HOST PID UNIX-NANOS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runs, err := parseJournal(tc.journal)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := overlaps(runs); len(got) != tc.overlaps {
				t.Errorf("overlaps %q, want %d", got, tc.overlaps)
			}
		})
	}
}
