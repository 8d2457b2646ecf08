package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodToken = "0123456789abcdef0123456789abcdef"

// runToExit runs the binary and returns its exit code and stderr; it must end within 15 s.
func runToExit(t *testing.T, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("procman %v did not exit:\n%s", args, out)
	}
	if err == nil {
		return 0, string(out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

func TestStartupRefusals(t *testing.T) {
	dir := newDir(t)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("too-short\n"), 0o600)
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"short token file", nil, []string{"-token-file", short, "0"}, "at least 20"},
		{"short token env", []string{"PROCMAN_TOKEN=abc"}, []string{"0"}, "at least 20"},
		{"missing token file", nil, []string{"-token-file", filepath.Join(dir, "nope"), "0"}, "token file"},
		{"open address without token", nil, []string{"-addr", "0.0.0.0", "0"}, "-insecure-no-auth"},
		{"socket in a missing folder", nil, []string{"-socket", filepath.Join(dir, "no", "s")}, "socket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runToExit(t, dir, tc.env, append([]string{"-db", filepath.Join(dir, "p.db")}, tc.args...)...)
			if code == 0 || !strings.Contains(out, tc.want) {
				t.Errorf("exit %d, want non-zero with %q:\n%s", code, tc.want, out)
			}
		})
	}
}

func get(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTokenFromEnvironmentAndAccessLog(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinaryWith(t, dir, []string{"PROCMAN_TOKEN=" + goodToken},
		"-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"), "-addr", "0.0.0.0", "0")
	base = strings.Replace(base, "0.0.0.0", "127.0.0.1", 1) // listening everywhere: reach it on loopback
	if code := get(t, httpClient, base+"/jobs", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", code)
	}
	if code := get(t, httpClient, base+"/jobs", goodToken); code != http.StatusOK {
		t.Fatalf("token: %d", code)
	}
	if code := get(t, httpClient, base+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
	poll(t, 5*time.Second, "access log", func() bool {
		s := stderrOf(cmd)
		return strings.Contains(s, "msg=request method=GET path=/jobs status=401") &&
			strings.Contains(s, "msg=\"authentication failed\" remote=")
	})
}

func TestInsecureNoAuthIsTheWayOut(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"),
		"-addr", "0.0.0.0", "-insecure-no-auth", "0")
	base = strings.Replace(base, "0.0.0.0", "127.0.0.1", 1)
	if code := get(t, httpClient, base+"/jobs", ""); code != http.StatusOK {
		t.Fatalf("insecure: %d", code)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := newDir(t)
	sockDir, err := os.MkdirTemp("", "pm") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sockDir)
	sock := filepath.Join(sockDir, "procman.sock")
	addr, cmd := startBinaryWith(t, dir, nil, "-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"), "-socket", sock)
	if addr != "unix:"+sock {
		t.Fatalf("listening on %s", addr)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket %v %v", fi.Mode(), err)
	}
	uc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	if code := get(t, uc, "http://procman/jobs", ""); code != http.StatusOK {
		t.Fatalf("over the socket: %d", code)
	}
	// A second ProcMan must not take a live socket over.
	code, out := runToExit(t, dir, nil, "-db", filepath.Join(dir, "p2.db"), "-socket", sock)
	if code == 0 || !strings.Contains(out, "another server is listening") {
		t.Fatalf("second server on a live socket: exit %d\n%s", code, out)
	}
	cmd.Process.Kill() // a crash leaves the socket file behind
	waitExit(t, cmd, 10*time.Second)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket file gone after a crash: %v", err)
	}
	dir2 := newDir(t)
	if addr, _ := startBinaryWith(t, dir2, nil, "-db", filepath.Join(dir2, "p.db"), "-socket", sock); addr != "unix:"+sock {
		t.Fatalf("stale socket not replaced: %s", addr)
	}
	if code := get(t, uc, "http://procman/jobs", ""); code != http.StatusOK {
		t.Fatalf("over the replaced socket: %d", code)
	}
}

// curlCode runs curl with args and returns the HTTP status it got.
func curlCode(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("curl", append([]string{"-s", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).Output()
	if err != nil {
		t.Fatalf("curl %v: %v", args, err)
	}
	return string(out)
}

// The DNS rebinding of the report, replayed with curl against the binary:
// refused, unless the name is given with -allowed-host. The machine's own
// name is allowed.
func TestDNSRebindingAgainstTheBinary(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	port := base[strings.LastIndex(base, ":")+1:]
	job := `{"name":"pwn","command":"touch pwned","type":"one_time","schedule":"reboot"}`
	rebound := func(base, name string) string {
		return curlCode(t, "-H", "Host: "+name+":"+port, "-H", "Origin: http://"+name+":"+port,
			"-H", "Sec-Fetch-Site: same-origin", "-X", "POST", base+"/job/create", "-d", job)
	}
	if code := rebound(base, "evil.example"); code != "403" {
		t.Errorf("rebound create: %s, want 403", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("the rebound job ran")
	}
	if hostname, err := os.Hostname(); err == nil {
		if code := curlCode(t, "-H", "Host: "+hostname+":"+port, base+"/jobs"); code != "200" {
			t.Errorf("Host %s (the machine's name): %s, want 200", hostname, code)
		}
	}
	dir2 := newDir(t)
	base2, _ := startBinaryWith(t, dir2, nil, "-db", filepath.Join(dir2, "p.db"), "-logs", filepath.Join(dir2, "logs"),
		"-allowed-host", "procman.example,evil.example", "0")
	port = base2[strings.LastIndex(base2, ":")+1:]
	if code := rebound(base2, "evil.example"); code != "201" {
		t.Errorf("create with -allowed-host evil.example: %s, want 201", code)
	}
}

// $PROCMAN_TOKEN, once read, is gone from ProcMan's environment: jobs do not
// inherit it, and /proc/<procman>/environ, which jobs of the same user can
// read, no longer shows it.
func TestTokenLeavesTheEnvironment(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinaryWith(t, dir, []string{"PROCMAN_TOKEN=" + goodToken, "PROCMAN_OTHER=kept"},
		"-db", filepath.Join(dir, "p.db"), "-logs", filepath.Join(dir, "logs"), "0")
	environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(environ), goodToken) || !strings.Contains(string(environ), "PROCMAN_OTHER=kept\x00") {
		t.Errorf("/proc/%d/environ: %q", cmd.Process.Pid, environ)
	}
	if code := get(t, httpClient, base+"/jobs", goodToken); code != http.StatusOK {
		t.Fatalf("the token no longer works: %d", code)
	}
	req, _ := http.NewRequest("POST", base+"/job/create", strings.NewReader(
		`{"name":"peek","type":"one_time","command":"cat /proc/$PPID/environ > parent.env; env > own.env"}`))
	req.Header.Set("Authorization", "Bearer "+goodToken)
	resp, err := httpClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", resp, err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest("POST", base+"/job/peek/start", nil)
	req.Header.Set("Authorization", "Bearer "+goodToken)
	if resp, err = httpClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, f := range []string{"parent.env", "own.env"} {
		var b []byte
		poll(t, 10*time.Second, f, func() bool {
			b, _ = os.ReadFile(filepath.Join(dir, f))
			return strings.Contains(string(b), "PROCMAN_OTHER=kept")
		})
		if strings.Contains(string(b), goodToken) {
			t.Errorf("the job read the token in %s", f)
		}
	}
}
