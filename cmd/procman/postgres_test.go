package main

// The binary on PostgreSQL: the README's quick start with the database given
// each way, its password nowhere in what ProcMan prints, and the server
// restarted under a running ProcMan.

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Mk-Chan/procman/internal/pgtest"
)

// pg serves the tests' databases; pgRestarts is restarted by one of them.
var pg, pgRestarts pgtest.Lazy

// secretPW is the password of the tests' connection strings: pgtest's server
// trusts every local connection, so any password logs in.
const secretPW = "s3cret-Pa55word"

// withPassword puts secretPW into a pgtest DSN.
func withPassword(dsn string) string {
	return strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+secretPW+"@", 1)
}

// The README's quick start against PostgreSQL, with the URL given by -db, in
// a file for -db-file, and in $PROCMAN_DB: every answer as the README shows
// it, the password in no line ProcMan writes, and $PROCMAN_DB in no job's
// environment.
func TestREADMEQuickStartOnPostgres(t *testing.T) {
	for _, how := range []string{"-db", "-db-file", "PROCMAN_DB"} {
		t.Run(strings.TrimPrefix(how, "-"), func(t *testing.T) {
			dsn := withPassword(pg.DB(t))
			dir := newDir(t)
			args, env := []string{"-logs", filepath.Join(dir, "logs"), "0"}, []string(nil)
			switch how {
			case "-db":
				args = append([]string{"-db", dsn}, args...)
			case "-db-file":
				file := filepath.Join(dir, "db.conf")
				if err := os.WriteFile(file, []byte(dsn+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"-db-file", file}, args...)
			default:
				env = []string{"PROCMAN_DB=" + dsn}
			}
			base, cmd := startBinaryWith(t, dir, env, args...)
			quickStart(t, dir, base)
			createJob(t, base, map[string]any{"name": "env", "type": "one_time", "command": `echo "db=$PROCMAN_DB"`})
			startJob(t, base, "env")
			poll(t, 10*time.Second, "env exited", func() bool { return jobState(t, base, "env").State == "exited" })
			if log := getText(t, base+"/job/env/logs"); log != "db=\n" {
				t.Errorf("a job's environment: %q, want no PROCMAN_DB", log)
			}
			stopAndCheck(t, cmd, dir)
			stderr := stderrOf(cmd)
			if strings.Contains(stderr, secretPW) {
				t.Errorf("the password is in ProcMan's stderr:\n%s", stderr)
			}
			if !strings.Contains(stderr, "db=postgres://postgres@127.0.0.1:") {
				t.Errorf("the open line does not name the database:\n%s", stderr)
			}
			if warned := strings.Contains(stderr, "process list"); warned != (how == "-db") {
				t.Errorf("warned of the password on the command line: %v, want %v:\n%s", warned, how == "-db", stderr)
			}
		})
	}
}

// quickStart runs the README's quick start (its curl examples up to the REST
// API section) against base, checking each answer as TestREADMEExamples does.
func quickStart(t *testing.T, dir, base string) {
	t.Helper()
	n := 0
	for _, ex := range readmeExamples(t)[:3] {
		if ex.kind != "curl" || !strings.Contains(ex.cmd, "/job/") {
			t.Fatalf("the README's quick start changed: %q", ex.cmd)
		}
		c := strings.ReplaceAll(ex.cmd, "http://localhost:10000", base)
		checkAnswer(t, ex, runExample(t, dir, c+` -s -w '\n%{http_code}'`))
		if n++; n <= 2 {
			poll(t, 10*time.Second, "hello logged", func() bool { return helloLogs(t, dir) == n })
		}
	}
}

// getText answers GET url's body.
func getText(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v: %s", url, resp.StatusCode, err, b)
	}
	return string(b)
}

// A database whose server cannot be reached: the binary exits at once,
// naming the database without its password.
func TestUnreachablePostgres(t *testing.T) {
	dir := newDir(t)
	dsn := "postgres://procman:" + secretPW + "@127.0.0.1:1/procman?connect_timeout=2"
	code, stderr, took := faultRun(t, dir, "-db", dsn, "-logs", filepath.Join(dir, "logs"), "0")
	faultWantRefusal(t, code, stderr, "postgres://procman@127.0.0.1:1/procman", took)
	if strings.Contains(stderr, secretPW) {
		t.Errorf("the password is in ProcMan's stderr:\n%s", stderr)
	}
}

// PostgreSQL restarted under a running binary: supervision goes on, /healthz
// says 503 while the server is down and 200 once it is back, and every run
// started meanwhile is then in the history.
func TestPostgresRestartedUnderTheBinary(t *testing.T) {
	srv := pgRestarts.Server(t)
	dir := newDir(t)
	base, cmd := startBinaryWith(t, dir, nil, "-db", pgRestarts.DB(t), "-logs", filepath.Join(dir, "logs"), "0")
	createJob(t, base, map[string]any{"name": "crash", "type": "continuous", "command": "exit 1",
		"backoff_initial": "50ms", "backoff_max": "50ms", "min_uptime": "1h"})
	createJob(t, base, map[string]any{"name": "svc", "type": "continuous", "command": "sleep 1000"})
	startJob(t, base, "svc")
	startJob(t, base, "crash")
	if code, _ := getStatus(t, base+"/healthz"); code != http.StatusOK {
		t.Fatalf("healthz before the restart: %d", code)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	up := false
	t.Cleanup(func() {
		if !up {
			srv.Start()
		}
	})
	restarts := func() int { return jobState(t, base, "crash").Restarts }
	before := restarts()
	poll(t, 4*time.Second, "5 restarts of crash while the server is down", func() bool { return restarts() >= before+5 })
	if code, took := getStatus(t, base+"/healthz"); code != http.StatusServiceUnavailable || took > 2*time.Second {
		t.Errorf("healthz while the server is down: %d after %s, want 503 within 2s", code, took.Round(time.Millisecond))
	}
	for _, name := range []string{"svc", "crash"} {
		if code, took := getStatus(t, base+"/job/"+name+"/stop"); code != http.StatusOK || took > 2*time.Second {
			t.Errorf("stop while the server is down: %d after %s, want 200 within 2s", code, took.Round(time.Millisecond))
		}
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	up = true
	poll(t, 15*time.Second, "healthz 200 once the server is back", func() bool {
		code, _ := getStatus(t, base+"/healthz")
		return code == http.StatusOK
	})
	started := runsStarted(t, base)
	recorded := 0
	for _, name := range []string{"crash", "svc"} {
		rs := jobRuns(t, base, name)
		for i, r := range rs {
			if r.EndedAt == nil {
				t.Errorf("run %d of %s has no end recorded", r.ID, name)
			}
			if want := int64(len(rs) - i); r.ID != want {
				t.Errorf("run %d of %s where run %d should be: a run is missing", r.ID, name, want)
			}
		}
		recorded += len(rs)
	}
	if recorded != started || started < 7 {
		t.Errorf("%d runs in the history, %d started", recorded, started)
	}
	stopAndCheck(t, cmd, dir)
}

// -db and -db-file name one database: both at once is bad usage, and an
// empty or missing file is refused before anything opens.
func TestDatabaseFlags(t *testing.T) {
	dir := newDir(t)
	empty := filepath.Join(dir, "empty.conf")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-db", filepath.Join(dir, "a.db"), "-db-file", empty, "0"}, 2, "give -db or -db-file, not both"},
		{[]string{"-db-file", empty, "0"}, 1, "is empty"},
		{[]string{"-db-file", filepath.Join(dir, "missing.conf"), "0"}, 1, "no such file"},
	} {
		r := runCLI(t, nil, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("procman %q: exit %d, stderr %q; want exit %d saying %q", tc.args, r.code, r.stderr, tc.code, tc.want)
		}
	}
}
