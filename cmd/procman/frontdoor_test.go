package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serverFlagNames are the flags the server's help lists.
func serverFlagNames(t *testing.T) []string {
	t.Helper()
	r := runCLI(t, nil, "-h")
	_, server, ok := strings.Cut(r.stdout, "\nserver flags")
	if r.code != 0 || !ok {
		t.Fatalf("procman -h: exit code %d, no server flags:\n%s", r.code, r.stdout)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(server, -1) {
		names = append(names, m[1])
	}
	if len(names) < 10 {
		t.Fatalf("only %d server flags in:\n%s", len(names), server)
	}
	return names
}

// procman -h shows the client's commands and the server's flags, and the
// README's list of the binary's flags is complete.
func TestHelpShowsClientAndServer(t *testing.T) {
	r := runCLI(t, nil, "-h")
	for _, name := range commandNames() {
		if !regexp.MustCompile(`(?m)^  ` + name + `\b`).MatchString(r.stdout) {
			t.Errorf("procman -h lacks the command %s:\n%s", name, r.stdout)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## The binary\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, name := range serverFlagNames(t) {
		if !strings.Contains(section, "  -"+name+" ") {
			t.Errorf("the README's section The binary lacks the flag -%s", name)
		}
	}
}

// Flags may come before the command: procman -addr X ls.
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	if r := runCLI(t, nil, "-addr", base, "add", "web", "--", "sleep 1000"); r.code != 0 {
		t.Fatalf("procman -addr X add: exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, nil, "-addr", base, "ls"); r.code != 0 || row(t, r.stdout, "web")[3] != "stopped" {
		t.Errorf("procman -addr X ls: exit code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runCLI(t, nil, "-o", "json", "-addr="+base, "state", "web"); r.code != 0 || !strings.Contains(r.stdout, `"state":"stopped"`) {
		t.Errorf("procman -o json -addr=X state web: exit code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pmFails(t, nil, 2, "flag provided but not defined: -db", "-db", "x.db", "ls")
}

// The server takes -addr host:port, without the port argument.
func TestServerListensOnAddrHostPort(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"),
		"-addr", "127.0.0.1:0")
	if code := get(t, httpClient, base+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}

func TestVersionLine(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{
		{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}}
	if got, want := versionOf(bi), "procman v1.2.0 (revision 0123456789ab, modified; go1.26.8 linux/amd64)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	bi.Settings = bi.Settings[:2]
	if got, want := versionOf(bi), "procman v1.2.0 (no VCS revision; go1.26.8 linux/amd64)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	r := runCLI(t, nil, "-version")
	if r.code != 0 || !regexp.MustCompile(`^procman \S+ \(.*go1\.\d+.*\)\n$`).MatchString(r.stdout) || r.stderr != "" {
		t.Errorf("procman -version: exit code %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// SIGHUP is logged and ignored: ProcMan and its jobs go on, and jobs do not
// inherit it as ignored. SIGTERM still stops ProcMan gracefully.
func TestSIGHUPIsIgnored(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	createJob(t, base, map[string]any{"name": "web", "type": "continuous",
		"command": `grep SigIgn /proc/self/status > sigign; exec sleep 1000`})
	startJob(t, base, "web")
	pid := waitRunning(t, base, "web")
	for range 2 {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	poll(t, 10*time.Second, "the SIGHUP log line", func() bool { return strings.Contains(stderrOf(cmd), "SIGHUP ignored") })
	if st := jobState(t, base, "web"); st.State != "running" || st.PID != pid {
		t.Errorf("after SIGHUP: %+v, want running as pid %d", st, pid)
	}
	var b []byte
	poll(t, 10*time.Second, "the job's SigIgn line", func() bool {
		b, _ = os.ReadFile(filepath.Join(dir, "sigign"))
		return strings.HasSuffix(string(b), "\n")
	})
	mask, err := strconv.ParseUint(strings.TrimSpace(strings.TrimPrefix(string(b), "SigIgn:")), 16, 64)
	if err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	if mask&(1<<(syscall.SIGHUP-1)) != 0 {
		t.Errorf("the job ignores SIGHUP (SigIgn %x)", mask)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if st := waitExit(t, cmd, 15*time.Second); st.ExitCode() != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", st.ExitCode())
	}
	wantLogs(t, stderrOf(cmd), "job=web from=stopping to=stopped")
}

// -log-level debug adds the requests that only read; warn drops info lines.
func TestLogLevel(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"),
		"-log-level", "debug", "0")
	get(t, httpClient, base+"/jobs", "")
	poll(t, 5*time.Second, "a debug line", func() bool {
		return strings.Contains(stderrOf(cmd), "level=DEBUG msg=request method=GET path=/jobs status=200")
	})

	sockDir, err := os.MkdirTemp("", "pm") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "s")
	quiet := startQuiet(t, dir, "-db", filepath.Join(dir, "q.db"), "-logs", filepath.Join(dir, "logs"), "-log-level", "warn", "-socket", sock)
	uc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	poll(t, 15*time.Second, "the socket to answer", func() bool {
		resp, err := uc.Get("http://procman/job/nope/start") // a failure: logged at info
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	quiet.Process.Signal(syscall.SIGTERM)
	waitExit(t, quiet, 15*time.Second)
	if s := stderrOf(quiet); strings.Contains(s, "level=INFO") {
		t.Errorf("info lines with -log-level warn:\n%s", s)
	}
}

// startQuiet starts procman with args and returns at once, without waiting
// for a listening line it may not log. Cleanup stops it if the test did not.
func startQuiet(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env, cmd.Dir = os.Environ(), dir
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	run, _ := watchOutput(cmd, r)
	t.Cleanup(func() { stopBinary(t, cmd, run) })
	return cmd
}
