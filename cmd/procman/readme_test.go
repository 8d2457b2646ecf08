package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeCurls returns every curl command in the README's sh code blocks, in
// order, each with its continuation lines joined as the shell would see them.
func readmeCurls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	inSh, cur := false, ""
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			inSh = true
		case strings.HasPrefix(line, "```"):
			inSh = false
		case !inSh:
		case cur != "":
			cur += "\n" + line
		case strings.HasPrefix(line, "curl "):
			cur = line
		}
		if cur != "" && !strings.HasSuffix(cur, "\\") && !strings.HasSuffix(cur, "{") && strings.Count(cur, "'")%2 == 0 {
			cmds = append(cmds, cur)
			cur = ""
		}
	}
	return cmds
}

// TestREADMECurlExamples runs the README's curl lines, as written but for the
// port, against the built binary, and checks what they promise.
func TestREADMECurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is needed to test the README examples (apt-get install curl)")
	}
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	cmds := readmeCurls(t)
	if len(cmds) < 12 {
		t.Fatalf("found only %d curl examples in the README", len(cmds))
	}
	for i, c := range cmds {
		c = strings.ReplaceAll(c, "http://localhost:10000", base)
		c = strings.ReplaceAll(c, "localhost:10000", strings.TrimPrefix(base, "http://"))
		if strings.Contains(c, "/restart") { // the history examples read two lines of the run it ends
			poll(t, 10*time.Second, "two lines from web", func() bool { return webLines(dir) >= 2 })
		}
		out := runExample(t, dir, c)
		switch {
		case strings.Contains(c, "/events"):
			if !strings.HasPrefix(out, ": procman events\n") {
				t.Errorf("example %d: %q is not an event stream:\n%s", i, out, c)
			}
		case strings.Contains(c, "follow=1"):
			if !regexp.MustCompile(`^(\d\d:\d\d:\d\d\n)+$`).MatchString(out) {
				t.Errorf("example %d: follow printed %q:\n%s", i, out, c)
			}
		case strings.Contains(c, "/logs"):
			if !regexp.MustCompile(`^\d\d:\d\d:\d\d\n\d\d:\d\d:\d\d\n$`).MatchString(out) {
				t.Errorf("example %d: logs printed %q:\n%s", i, out, c)
			}
		default:
			checkJSON(t, i, c, out)
		}
		if i == 0 { // the quick start's create: the reboot job has run once
			poll(t, 10*time.Second, "first hello", func() bool { return helloLogs(t, dir) == 1 })
		}
		if i == 1 { // start: a second log file with the same content
			poll(t, 10*time.Second, "second hello", func() bool { return helloLogs(t, dir) == 2 })
		}
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

func checkJSON(t *testing.T, i int, c, out string) {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("example %d printed no JSON (%v):\n%s\n%s", i, err, c, out)
	}
	obj, _ := v.(map[string]any)
	_, isErr := obj["error"]
	if wantErr := strings.Contains(c, `"rebot"`) || strings.Contains(c, "nope"); isErr != wantErr {
		t.Fatalf("example %d: error answer %v, want %v:\n%s\n%s", i, isErr, wantErr, c, out)
	}
}

// webLines counts the lines of the web job's newest log.
func webLines(dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "web", "*.log"))
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
