package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/testcert"
)

// tlsServer starts procman over HTTPS with a certificate for localhost,
// 127.0.0.1 and procman.test from a throwaway CA, and returns its https://
// address.
func tlsServer(t *testing.T, dir string, env []string, args ...string) (base string, ca *testcert.CA, cmd *exec.Cmd) {
	t.Helper()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := ca.Issue(cert, key, 2, "localhost", "127.0.0.1", "procman.test"); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"-db", filepath.Join(dir, "procman.db"), "-logs", filepath.Join(dir, "logs"),
		"-tls-cert", cert, "-tls-key", key}, args...)
	base, cmd = startBinaryWith(t, dir, env, append(args, "0")...)
	if !strings.Contains(stderrOf(cmd), "tls=true") {
		t.Fatalf("no tls=true in the listening line:\n%s", stderrOf(cmd))
	}
	return strings.Replace(base, "http://", "https://", 1), ca, cmd
}

func caClient(t *testing.T, caFile string, h2 bool) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, ForceAttemptHTTP2: h2,
		TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// ProcMan serves HTTPS with -tls-cert and -tls-key; the CLI reaches it with
// an https:// address and the CA in -ca-file or $PROCMAN_CA_FILE.
func TestTLS(t *testing.T) {
	dir := newDir(t)
	token := "tls-test-token-0123456789abcdef"
	base, ca, _ := tlsServer(t, dir, []string{"PROCMAN_TOKEN=" + token})
	tokenEnv := "PROCMAN_TOKEN=" + token
	if r := runCLI(t, []string{tokenEnv}, "add", "-addr", base, "-ca-file", ca.File, "web", "--", "sleep 1000"); r.code != 0 {
		t.Fatalf("add over https: exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	if r := runCLI(t, []string{tokenEnv, "PROCMAN_ADDR=" + base, "PROCMAN_CA_FILE=" + ca.File}, "ls"); r.code != 0 || row(t, r.stdout, "web")[3] != "stopped" {
		t.Errorf("ls with $PROCMAN_CA_FILE: exit code %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	pmFails(t, []string{tokenEnv}, 1, "-ca-file or $PROCMAN_CA_FILE", "ls", "-addr", base)
	pmFails(t, []string{tokenEnv}, 2, "-ca-file is for an https:// address", "ls", "-addr", strings.Replace(base, "https", "http", 1), "-ca-file", ca.File)
	pmFails(t, []string{tokenEnv}, 1, "HTTP request to an HTTPS server", "ls", "-addr", strings.Replace(base, "https", "http", 1))

	// curl, as the README shows it, and HTTP/2; the certificate's names are allowed hosts.
	port := base[strings.LastIndex(base, ":")+1:]
	out, err := exec.Command("curl", "-sS", "--cacert", ca.File, "--resolve", "procman.test:"+port+":127.0.0.1",
		"-H", "Authorization: Bearer "+token, "https://procman.test:"+port+"/jobs").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"name":"web"`) {
		t.Errorf("curl https://procman.test: %v\n%s", err, out)
	}
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	resp, err := caClient(t, ca.File, true).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" {
		t.Errorf("healthz over HTTP/2: %d %s", resp.StatusCode, resp.Proto)
	}
}

// A renewed certificate is served from the next handshake, without a restart
// (which would stop every job); one that does not load leaves the last good one.
func TestTLSCertificateRenewal(t *testing.T) {
	dir := newDir(t)
	base, ca, cmd := tlsServer(t, dir, nil)
	serial := func() int64 {
		t.Helper()
		conn, err := tls.Dial("tcp", strings.TrimPrefix(base, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if s := serial(); s != 2 {
		t.Fatalf("serial %d, want 2", s)
	}
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 2 {
		t.Errorf("after a broken renewal: serial %d, want the old 2", s)
	}
	poll(t, 5*time.Second, "the failed reload logged", func() bool {
		return strings.Contains(stderrOf(cmd), "TLS certificate changed but does not load")
	})
	if err := ca.Issue(cert, key, 3, "localhost", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if s := serial(); s != 3 {
		t.Errorf("after the renewal: serial %d, want 3", s)
	}
	if resp, err := caClient(t, ca.File, false).Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz with the renewed certificate: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestTLSStartupRefusals(t *testing.T) {
	dir := newDir(t)
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("not a certificate"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-tls-cert", cert, "0"}, 2, "give both -tls-cert and -tls-key"},
		{[]string{"-tls-key", cert, "0"}, 2, "give both -tls-cert and -tls-key"},
		{[]string{"-tls-cert", cert, "-tls-key", cert, "0"}, 1, "TLS certificate " + cert},
	} {
		code, out := runToExit(t, dir, nil, append([]string{"-db", filepath.Join(dir, "p.db")}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("procman %v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, out)
		}
	}
}
