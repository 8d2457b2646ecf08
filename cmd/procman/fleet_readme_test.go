package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The README's fleet walk-through, in its bash blocks (which
// TestREADMEExamples, reading sh and console blocks, leaves alone), run
// command by command on three real binaries on a throwaway PostgreSQL.

const walkthroughHeading = "### A walk-through: three hosts on one machine"

// walkStep is one command of the walk-through and the output shown after it.
type walkStep struct {
	cmd  string
	want []string
}

// walkthrough reads the walk-through's commands from the README.
func walkthrough(t *testing.T) []walkStep {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, text, ok := strings.Cut(string(b), walkthroughHeading+"\n")
	if !ok {
		t.Fatalf("README: no %q", walkthroughHeading)
	}
	text, _, _ = strings.Cut(text, "\n### ")
	var steps []walkStep
	inBlock := false
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "```bash":
			inBlock = true
		case strings.HasPrefix(line, "```"):
			inBlock = false
		case !inBlock:
		case strings.HasPrefix(line, "# ") && len(steps) > 0:
			steps[len(steps)-1].want = append(steps[len(steps)-1].want, strings.TrimPrefix(line, "# "))
		default:
			steps = append(steps, walkStep{cmd: line})
		}
	}
	return steps
}

// walkFields is a line of output as the walk-through compares it: its
// fields, each with a digit in it (a pid, a time, an epoch, a size)
// standing for any number.
func walkFields(line string) string {
	f := strings.Fields(line)
	for i, w := range f {
		if strings.ContainsAny(w, "0123456789") {
			f[i] = "N"
		}
	}
	return strings.Join(f, " ")
}

func sameOutput(want []string, got string) bool {
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != len(want) {
		return false
	}
	for i := range want {
		if walkFields(want[i]) != walkFields(lines[i]) {
			return false
		}
	}
	return true
}

// The README's walk-through, as written but for the ports (free ones), the
// database (the test's) and the lease and grace (2 s and 1 s, appended to
// each host's command, for a failover within seconds): each command
// succeeds and prints what the README shows, numbers aside. A read (ls,
// hosts) is repeated until it does, within fleetWait: the fleet takes a
// moment to notice a change, and a lease to notice a death.
func TestFleetREADMEWalkthrough(t *testing.T) {
	steps := walkthrough(t)
	dsn := pgFleet.DB(t)
	dir := newDir(t)
	ports := map[string]string{}
	port := regexp.MustCompile(`\b1000[1-9]\b`)
	local := func(s string) string {
		return port.ReplaceAllStringFunc(s, func(p string) string {
			if ports[p] == "" {
				ports[p] = strconv.Itoa(freePort(t))
			}
			return ports[p]
		})
	}
	var hosts []*node
	servers, clients := 0, 0
	for i, s := range steps {
		line := local(s.cmd)
		args := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "DB="):
		case strings.HasPrefix(line, "procman -host "):
			args = append(args[1:len(args)-2], "-lease", fleetLease.String(), "-grace", fleetGrace.String(), args[len(args)-2])
			for k, a := range args {
				switch {
				case a == `"$DB"`:
					args[k] = dsn
				case strings.HasPrefix(a, "logs/"):
					args[k] = filepath.Join(dir, a)
				}
			}
			n := &node{name: args[1]}
			n.base, n.cmd = startBinaryWith(t, dir, nil, args...)
			hosts = append(hosts, n)
			servers++
		case strings.HasPrefix(line, "kill -9 %"):
			k, _ := strconv.Atoi(strings.TrimPrefix(line, "kill -9 %"))
			if k < 1 || k > len(hosts) {
				t.Fatalf("step %d: %q: no such host", i, s.cmd)
			}
			if err := hosts[k-1].cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			waitExit(t, hosts[k-1].cmd, 5*time.Second)
			hosts[k-1].base = ""
		case strings.HasPrefix(line, "curl "):
			out := runExample(t, dir, line+` -s -w '\n%{http_code}'`)
			if !strings.HasSuffix(out, "\n201") && !strings.HasSuffix(out, "\n200") {
				t.Fatalf("step %d: %s: %s", i, s.cmd, out)
			}
		case strings.HasPrefix(line, "procman "):
			clients++
			read := args[1] == "ls" || args[1] == "hosts"
			var got cliResult
			deadline := time.Now().Add(fleetWait)
			for {
				got = runCLI(t, nil, args[1:]...)
				if got.code == 0 && sameOutput(s.want, got.stdout) || !read || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond) // a poll of the fleet's view, not a synchronisation
			}
			if got.code != 0 || !sameOutput(s.want, got.stdout) {
				t.Fatalf("step %d: %s: exit %d, printed\n%s%s\nwant (numbers aside)\n%s", i, s.cmd, got.code, got.stdout, got.stderr,
					strings.Join(s.want, "\n"))
			}
		default:
			t.Fatalf("step %d: %q: the walk-through test does not know this command", i, s.cmd)
		}
	}
	if servers != 3 || clients < 4 {
		t.Fatalf("the walk-through has %d hosts and %d procman commands, want 3 and at least 4", servers, clients)
	}
	for _, n := range hosts { // every host shares dir, the jobs' working folder
		if n.base != "" {
			if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, n := range hosts {
		if st := waitExit(t, n.cmd, 15*time.Second); n.base != "" && st.ExitCode() != 0 {
			t.Errorf("host %s: exit code %d after SIGTERM, want 0", n.name, st.ExitCode())
		}
	}
	assertNoProcsIn(t, dir, time.Now().Add(time.Second))
}
