package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// example is one command of the README with what the README says it prints.
type example struct {
	kind   string   // "curl" (an sh block), "cli" (a console block's "$ procman ..."), "hup" ("$ kill -HUP ..."), or "file" (below)
	cmd    string   // continuation lines joined as the shell would see them
	answer string   // the "# ..." lines after a curl, without "# "; or a ```json block after it
	lines  []string // the same "# ..." lines, one by one: what a curl piped into grep prints
	output string   // a console command's output lines
	exit   int      // a console command's exit status, when an "echo $?" follows it
	file   string   // a yaml block that begins "# FILE": the file it is, written where the examples run
}

// readmeExamples returns the README's curl commands (in sh blocks) and procman
// commands (in console blocks), in order, each with what the README shows it
// answers.
func readmeExamples(t *testing.T) []example {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []example
	block, cur, echoed := "", "", false
	first, inFile := false, false // the block's first line is next; this yaml block is a file
	last := func() *example { return &out[len(out)-1] }
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case block == "" && strings.HasPrefix(line, "```"):
			block = strings.TrimPrefix(line, "```")
			first, inFile = true, false
			continue
		case strings.HasPrefix(line, "```"):
			block = ""
			continue
		}
		isFirst := first
		first = false
		switch block {
		case "yaml": // a file when its first line is "# NAME.yaml"
			if name, ok := strings.CutPrefix(line, "# "); isFirst && ok && strings.HasSuffix(name, ".yaml") && !strings.Contains(name, " ") {
				out = append(out, example{kind: "file", file: name})
				inFile = true
			} else if inFile {
				last().output += line + "\n"
			}
		case "sh":
			switch {
			case cur != "":
				cur += "\n" + line
			case strings.HasPrefix(line, "curl "):
				cur = line
			case strings.HasPrefix(line, "#") && len(out) > 0 && last().kind == "curl":
				last().answer += strings.TrimSpace(strings.TrimPrefix(line, "#"))
				last().lines = append(last().lines, strings.TrimSpace(strings.TrimPrefix(line, "#")))
			}
			if cur != "" && !strings.HasSuffix(cur, "\\") && !strings.HasSuffix(cur, "{") && strings.Count(cur, "'")%2 == 0 {
				out = append(out, example{kind: "curl", cmd: cur})
				cur = ""
			}
		case "json":
			if len(out) > 0 && last().kind == "curl" {
				last().answer += line + "\n"
			}
		case "console":
			switch {
			case line == "$ echo $?":
				echoed = true
			case strings.HasPrefix(line, "$ kill -HUP "):
				out = append(out, example{kind: "hup", cmd: strings.TrimPrefix(line, "$ ")})
			case strings.HasPrefix(line, "$ procman "):
				out = append(out, example{kind: "cli", cmd: strings.TrimPrefix(line, "$ ")})
			case echoed:
				last().exit, _ = strconv.Atoi(line) // the status of the command before
				echoed = false
			case len(out) > 0 && last().kind == "cli":
				last().output += line + "\n"
			}
		}
	}
	return out
}

// TestREADMEExamples runs the README's curl and procman commands, as written
// but for the address, in order against one ProcMan (the built binary), and
// checks that each answers what the README shows: following the README from
// top to bottom works, and its answers are the real ones.
func TestREADMEExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to test the README examples (apt-get install curl)")
	}
	dir := newDir(t)
	// The README's jobs file section speaks to a ProcMan started with -config.
	if err := os.WriteFile(filepath.Join(dir, "procman.yaml"), []byte("jobs: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base, server := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"),
		"-config", "procman.yaml", "0")
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binPath, filepath.Join(bin, "procman")); err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(t)
	reloadLogged := readmeReloadLog(t)
	curls, clis := 0, 0
	for i, ex := range examples {
		switch ex.kind {
		case "file":
			if err := os.WriteFile(filepath.Join(dir, ex.file), []byte(ex.output), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		case "hup": // to this ProcMan, which logs each reload's outcome
			checkReload(t, server, reloadLogged)
			continue
		}
		if ex.kind == "cli" {
			clis++
			if !strings.HasPrefix(ex.cmd, "procman events") { // a stream, shown from another terminal
				checkCLI(t, ex, runCLIExample(t, dir, bin, base, ex.cmd))
			}
			continue
		}
		c := strings.ReplaceAll(ex.cmd, "http://localhost:10000", base)
		c = strings.ReplaceAll(c, "localhost:10000", strings.TrimPrefix(base, "http://"))
		if strings.Contains(c, "/restart") { // the history examples read two lines of the run it ends
			poll(t, 10*time.Second, "two lines from web", func() bool { return jobLines(dir, "web") >= 2 })
		}
		if strings.Contains(c, "/job/proxy/signal?sig=HUP") { // once its shell says it traps HUP
			poll(t, 10*time.Second, "proxy ready", func() bool { return jobLines(dir, "proxy") >= 1 })
		}
		curls++
		switch {
		case strings.Contains(c, "/events"):
			out := runExample(t, dir, c)
			if !strings.HasPrefix(out, ": procman events\n") {
				t.Errorf("example %d: %q is not an event stream:\n%s", i, out, c)
			}
		case strings.Contains(c, "follow=1"):
			out := runExample(t, dir, c)
			if !regexp.MustCompile(`^(\d\d:\d\d:\d\d\n)+$`).MatchString(out) {
				t.Errorf("example %d: follow printed %q:\n%s", i, out, c)
			}
		case strings.Contains(c, " | grep "): // lines of an answer, as shown
			checkLines(t, ex, runExample(t, dir, c))
		case strings.Contains(c, "/logs"):
			out := runExample(t, dir, c)
			if !regexp.MustCompile(`^\d\d:\d\d:\d\d\n\d\d:\d\d:\d\d\n$`).MatchString(out) {
				t.Errorf("example %d: logs printed %q:\n%s", i, out, c)
			}
		default:
			checkAnswer(t, ex, runExample(t, dir, c+` -s -w '\n%{http_code}'`))
		}
		if curls == 1 { // the quick start's create: the reboot job has run once
			poll(t, 10*time.Second, "first hello", func() bool { return helloLogs(t, dir) == 1 })
		}
		if curls == 2 { // start: a second log file with the same content
			poll(t, 10*time.Second, "second hello", func() bool { return helloLogs(t, dir) == 2 })
		}
	}
	if curls < 12 || clis < 10 {
		t.Fatalf("found only %d curl and %d procman examples in the README", curls, clis)
	}
}

// readmeReloadLog is the log line the README says a reload writes (in
// backquotes, "jobs file applied file=..."), as slog's text handler writes it.
func readmeReloadLog(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("`jobs file applied ([^`]+)`").FindSubmatch(b)
	if m == nil {
		t.Fatal("README: no reload log line (`jobs file applied ...`) shown")
	}
	return `msg="jobs file applied" ` + string(m[1])
}

// checkReload sends SIGHUP to the server, waits for the reload's outcome in
// its log, and checks that it is the line the README shows.
func checkReload(t *testing.T, server *exec.Cmd, want string) {
	t.Helper()
	outcomes := func() int {
		log := stderrOf(server)
		return strings.Count(log, `msg="jobs file applied"`) + strings.Count(log, `msg="jobs file not applied`)
	}
	done := outcomes()
	if err := server.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	poll(t, 10*time.Second, "the reload", func() bool { return outcomes() > done })
	var got string
	for _, l := range strings.Split(stderrOf(server), "\n") {
		if strings.Contains(l, `msg="jobs file applied"`) || strings.Contains(l, `msg="jobs file not applied`) {
			got = l // the last outcome: this reload's
		}
	}
	if !strings.HasSuffix(got, want) {
		t.Errorf("README: the reload logged\n\t%s\nthe README shows\n\t%s", got, want)
	}
}

// runExample runs one README command. Streams (curl -N) run for two seconds,
// then are cut off as a reader would with Ctrl-C.
func runExample(t *testing.T, dir, c string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streaming := strings.Contains(c, "curl -N")
	if streaming {
		ctx, cancel = context.WithTimeout(ctx, 2500*time.Millisecond)
		defer cancel()
	}
	sh := exec.CommandContext(ctx, "/bin/sh", "-c", c)
	sh.Dir = dir
	// curl may be the shell's child: end the whole group, or Output waits on its pipe.
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	sh.WaitDelay = 5 * time.Second
	out, err := sh.Output()
	if err != nil && !(streaming && ctx.Err() != nil) {
		t.Fatalf("example failed: %v\n%s", err, c)
	}
	return string(out)
}

// cliResult of a console example: its output and exit status.
func runCLIExample(t *testing.T, dir, bin, base, line string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sh := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	sh.Dir = dir
	sh.Env = cliEnv("PATH="+bin+":"+os.Getenv("PATH"), "PROCMAN_ADDR="+base)
	var stdout, stderr bytes.Buffer
	sh.Stdout, sh.Stderr = &stdout, &stderr
	err := sh.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", line, err)
	}
	return cliResult{stdout.String(), stderr.String(), sh.ProcessState.ExitCode()}
}

// checkCLI compares a console example with what it printed. Times, pids and
// ids differ from run to run, and what a running job has printed or how long
// it ran is a matter of timing, so the README's first line is compared with
// numbers masked, for the commands whose first line does not depend on timing.
func checkCLI(t *testing.T, ex example, got cliResult) {
	t.Helper()
	if got.code != ex.exit {
		t.Errorf("README: %s: exit status %d, the README says %d; stderr: %s", ex.cmd, got.code, ex.exit, got.stderr)
		return
	}
	verb := strings.Fields(ex.cmd)[1]
	if verb == "apply" || verb == "diff" { // a plan holds no time nor pid: all of it, as shown
		if got.stdout != ex.output {
			t.Errorf("README: %s printed\n%s\nthe README shows\n%s", ex.cmd, got.stdout, ex.output)
		}
		return
	}
	if !strings.Contains(" add edit rm start stop restart state signal ls top runs ", " "+verb+" ") {
		return
	}
	want, _, _ := strings.Cut(ex.output, "\n")
	printed, _, _ := strings.Cut(got.stdout+got.stderr, "\n")
	// A table's first line is its header, whose columns are as wide as the
	// widest value under them: the spaces between are not compared.
	digits, spaces := regexp.MustCompile(`\d+`), regexp.MustCompile(` +`)
	norm := func(s string) string { return spaces.ReplaceAllString(digits.ReplaceAllString(s, "N"), " ") }
	if norm(printed) != norm(want) {
		t.Errorf("README: %s printed\n\t%s\nthe README shows\n\t%s", ex.cmd, printed, want)
	}
}

// varying masks what differs between two runs of an example: times (keeping
// their zone's form: "Z" or an offset), pids, ids, what a run cost, log
// file names, invocations and host names.
var varying = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`), "<time UTC>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d`), "<time with offset>"},
	{regexp.MustCompile(`"(pid|pgid|id|proc_start|max_rss_bytes)":\d+`), `"$1":N`},
	{regexp.MustCompile(`"(cpu_user_seconds|cpu_system_seconds|age_seconds|rss_bytes|pss_bytes)":[\d.e+-]+`), `"$1":N`},
	{regexp.MustCompile(`"processes":\d+`), `"processes":N`}, // a shell's loop has a child, or none between two
	{regexp.MustCompile(`(?m)^(procman_job_(?:cpu_seconds_total|memory_bytes)\{[^}]*\}) \S+$`), "$1 N"},
	{regexp.MustCompile(`"[^"]*?(logs/[\w.-]+/)\d+\.log"`), `"${1}N.log"`},
	{regexp.MustCompile(`"invocation":"[A-Z2-7]+"`), `"invocation":"I"`},
	{regexp.MustCompile(`"host":"[^"]*"`), `"host":"H"`},
}

func mask(s string) string {
	for _, v := range varying {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// checkAnswer compares a curl example's answer with the README's: the status
// code it shows ("404 {...}", else a 2xx), and the body with what varies
// masked, where "..." in the README stands for anything.
func checkAnswer(t *testing.T, ex example, out string) {
	t.Helper()
	i := strings.LastIndex(out, "\n") // curl -w '\n%{http_code}' ends the output
	body, code := strings.TrimSpace(out[:max(i, 0)]), out[i+1:]
	want := strings.TrimSpace(ex.answer)
	if want == "" {
		t.Errorf("README: %s: no answer shown", ex.cmd)
		return
	}
	wantCode := "2"
	if c, rest, ok := strings.Cut(want, " "); ok && regexp.MustCompile(`^\d{3}$`).MatchString(c) {
		wantCode, want = c, rest
	}
	if !strings.HasPrefix(code, wantCode) {
		t.Errorf("README: %s: status %s, the README shows %s", ex.cmd, code, wantCode)
	}
	if strings.HasPrefix(want, "{\n") { // an indented ```json block: compare it compact
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(want)); err != nil {
			t.Fatalf("README: the answer of %s is not JSON: %v", ex.cmd, err)
		}
		want = b.String()
	}
	got := mask(body)
	want = mask(want)
	if strings.HasSuffix(ex.cmd, "/job/test/start") { // echo hello may have ended before the answer was written
		gone := regexp.MustCompile(`"state":"(running","pid":N|exited")`)
		got, want = gone.ReplaceAllString(got, `"state":"<running or exited>"`), gone.ReplaceAllString(want, `"state":"<running or exited>"`)
	}
	pattern := strings.ReplaceAll(regexp.QuoteMeta(want), `\.\.\.`, `.*`)
	if !regexp.MustCompile(`^` + pattern + `$`).MatchString(got) {
		t.Errorf("README: %s answers\n\t%s\nthe README shows\n\t%s", ex.cmd, body, want)
	}
}

// checkLines compares what a curl piped into grep printed, line by line,
// with the README's "# ..." lines after it, what varies masked.
func checkLines(t *testing.T, ex example, out string) {
	t.Helper()
	got, want := mask(strings.TrimSpace(out)), mask(strings.Join(ex.lines, "\n"))
	if got != want {
		t.Errorf("README: %s prints\n%s\nthe README shows\n%s", ex.cmd, got, want)
	}
}

// jobLines counts the lines of the job's newest log.
func jobLines(dir, job string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", job, "*.log"))
	if len(files) == 0 {
		return 0
	}
	b, _ := os.ReadFile(files[len(files)-1])
	return strings.Count(string(b), "\n")
}

func helloLogs(t *testing.T, dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "test", "*.log"))
	n := 0
	for _, f := range files {
		if b, _ := os.ReadFile(f); string(b) == "hello\n" {
			n++
		}
	}
	return n
}
