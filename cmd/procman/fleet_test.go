package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/internal/testcert"
)

// Two binaries on one PostgreSQL database under one -host: the second is
// refused, naming the first; another name joins, and procman hosts shows both,
// and the first as not alive once it has stopped. Its restart joins at once.
func TestHostFlagRefusesASecondInstance(t *testing.T) {
	dsn := pg.DB(t)
	dirs := map[string]string{"alpha": newDir(t), "beta": newDir(t), "alpha again": newDir(t)}
	args := func(host string) []string {
		return []string{"-db", dsn, "-logs", filepath.Join(dirs[host], "logs"), "-host", host,
			"-advertise", "http://" + host + ".example:10000", "0"}
	}
	_, a := startBinaryWith(t, dirs["alpha"], nil, args("alpha")...)

	code, stderr, took := faultRun(t, dirs["alpha again"], args("alpha")...)
	faultWantRefusal(t, code, stderr, "postgres://postgres@127.0.0.1:", took)
	wantContains(t, "the second alpha's stderr", stderr, "host alpha is held by the ProcMan of",
		fmt.Sprintf("pid %d at http://alpha.example:10000", a.Process.Pid), "last heartbeat")

	base, b := startBinaryWith(t, dirs["beta"], nil, args("beta")...)
	table := pm(t, base, "hosts")
	t.Logf("procman hosts:\n%s", table)
	if r := row(t, table, "alpha"); r[1] != "yes" || r[2] != "1" {
		t.Errorf("alpha's row: %q, want alive at epoch 1", r)
	}
	if r := row(t, table, "beta"); r[1] != "*" || r[2] != "yes" {
		t.Errorf("beta's row: %q, want marked as the one answering, alive", r)
	}

	stopAndCheck(t, a, dirs["alpha"])
	var hosts []procman.Host
	if err := json.Unmarshal([]byte(pm(t, base, "hosts", "-o", "json")), &hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "alpha" || hosts[0].Alive || !hosts[1].Alive || !hosts[1].This {
		t.Fatalf("procman hosts -o json after alpha stopped: %+v", hosts)
	}
	_, a = startBinaryWith(t, dirs["alpha"], nil, args("alpha")...) // at once: its lease was released
	if r := row(t, pm(t, base, "hosts"), "alpha"); r[1] != "yes" || r[2] != "2" {
		t.Errorf("alpha's row after its restart: %q, want alive at epoch 2", r)
	}
	if !strings.Contains(stderrOf(b), "procman open") {
		t.Errorf("beta's stderr:\n%s", stderrOf(b))
	}
	stopAndCheck(t, a, dirs["alpha"])
	stopAndCheck(t, b, dirs["beta"])
}

// The advertised URL derived from the listening address: none for loopback
// or a port picked at random, the machine's name for a wildcard.
func TestAdvertisedFromTheListenAddress(t *testing.T) {
	name, _ := os.Hostname()
	for _, tc := range []struct {
		addr string
		tls  bool
		want string
	}{
		{"127.0.0.1:10000", false, ""}, {"[::1]:10000", false, ""}, {"localhost:10000", false, ""},
		{"10.0.0.5:10000", false, "http://10.0.0.5:10000"}, {"[fd00::5]:443", true, "https://[fd00::5]:443"},
		{"node1.example:10000", false, "http://node1.example:10000"},
		{"0.0.0.0:10000", false, "http://" + name + ":10000"}, {":10000", true, "https://" + name + ":10000"},
		{"10.0.0.5:0", false, ""}, {"", false, ""},
	} {
		if got := advertised(tc.addr, tc.tls); got != tc.want {
			t.Errorf("advertised(%q, %v) = %q, want %q", tc.addr, tc.tls, got, tc.want)
		}
	}
}

// procman ls has a HOST column once the database holds more than one host,
// naming the host that runs each job; a ProcMan alone has none.
func TestLsHostColumn(t *testing.T) {
	dsn := pg.DB(t)
	dirs := map[string]string{"alpha": newDir(t), "beta": newDir(t)}
	args := func(host string) []string {
		return []string{"-db", dsn, "-logs", filepath.Join(dirs[host], "logs"), "-host", host, "0"}
	}
	baseA, a := startBinaryWith(t, dirs["alpha"], nil, args("alpha")...)
	pm(t, baseA, "add", "a1", "--", "true")
	if table := pm(t, baseA, "ls"); strings.Contains(table, "HOST") {
		t.Errorf("procman ls of a ProcMan alone has a HOST column:\n%s", table)
	}
	baseB, b := startBinaryWith(t, dirs["beta"], nil, args("beta")...)
	pm(t, baseB, "add", "b1", "--", "true")
	table := pm(t, baseB, "ls")
	t.Logf("procman ls:\n%s", table)
	if f := strings.Fields(strings.SplitN(table, "\n", 2)[0]); len(f) < 2 || f[0] != "NAME" || f[1] != "HOST" {
		t.Errorf("procman ls in a fleet of two: header %q, want NAME HOST ...", f)
	}
	for name, host := range map[string]string{"a1": "alpha", "b1": "beta"} {
		if r := row(t, table, name); r[1] != host {
			t.Errorf("%s's row: %q, want host %s", name, r, host)
		}
	}
	stopAndCheck(t, a, dirs["alpha"])
	stopAndCheck(t, b, dirs["beta"])
}

// The server's -ca-file is the CAs trusted for the https:// URLs other
// hosts advertise; a file without a certificate is refused at start. The
// host of the advertised URL is one of the names the API answers to.
func TestServerCAFile(t *testing.T) {
	t.Setenv("PROCMAN_CA_FILE", "")
	dir := t.TempDir()
	ca, err := testcert.NewCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	flags := func(extra ...string) (options, error) {
		return serverOptions(append([]string{"-db", filepath.Join(dir, "procman.db"), "-advertise", "http://node1.example:10000"}, append(extra, "0")...),
			io.Discard, io.Discard)
	}
	o, err := flags("-ca-file", ca.File)
	if err != nil || o.fleetTLS == nil || o.fleetTLS.RootCAs == nil || o.fleetTLS.InsecureSkipVerify {
		t.Fatalf("-ca-file %s: %+v, %v", ca.File, o.fleetTLS, err)
	}
	if !slices.Contains(o.allowedHosts, "node1.example") {
		t.Errorf("allowed Host names %q lack the advertised node1.example", o.allowedHosts)
	}
	if o, err := flags(); err != nil || o.fleetTLS != nil {
		t.Errorf("no -ca-file: %+v, %v; want the system's CAs", o.fleetTLS, err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	for _, f := range []string{notPEM, filepath.Join(dir, "missing.pem")} {
		if _, err := flags("-ca-file", f); err == nil || !strings.Contains(err.Error(), "-ca-file") {
			t.Errorf("-ca-file %s: %v, want a refusal naming -ca-file", f, err)
		}
	}
}
