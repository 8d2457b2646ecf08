package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		sh := exec.Command("/bin/sh", "-c", c)
		sh.Dir = dir
		out, err := sh.Output()
		if err != nil {
			t.Fatalf("example %d failed: %v\n%s", i, err, c)
		}
		var v any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("example %d printed no JSON (%v):\n%s\n%s", i, err, c, out)
		}
		obj, _ := v.(map[string]any)
		_, isErr := obj["error"]
		if wantErr := strings.Contains(c, "@daily") || strings.Contains(c, "nope"); isErr != wantErr {
			t.Fatalf("example %d: error answer %v, want %v:\n%s\n%s", i, isErr, wantErr, c, out)
		}
		if i == 0 { // the quick start's create: the reboot job has run once
			poll(t, 10*time.Second, "first hello", func() bool { return helloLogs(t, dir) == 1 })
		}
		if i == 1 { // start: a second log file with the same content
			poll(t, 10*time.Second, "second hello", func() bool { return helloLogs(t, dir) == 2 })
		}
	}
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
