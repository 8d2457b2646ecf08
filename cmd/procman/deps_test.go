package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// starts reads the times a job appended to dir/file, one a line.
func starts(t *testing.T, dir, file string) []int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []int64
	for _, line := range strings.Fields(string(b)) {
		n, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			t.Fatalf("%s: %q", file, line)
		}
		out = append(out, n)
	}
	return out
}

// TestRestartStartsDependenciesFirst: when the binary starts again, the jobs
// that come back (a reboot job, a resumed service) start after their
// dependencies: a database-like service first, then a one_time migration
// that needs it healthy (run again, as a dependency), then the web job "api" that
// needs both, once the migration has succeeded. api comes first by name: the
// service still starts for its own reason (resume), not as api's dependency.
func TestRestartStartsDependenciesFirst(t *testing.T) {
	dir := newDir(t)
	base, cmd := startBinary(t, dir)
	// db is healthy once its shell has written its time: a start waiting for
	// db "started" could begin before that line is written.
	createJob(t, base, map[string]any{"name": "db", "type": "continuous",
		"command": `date +%s%N >> db.times; touch db.$PROCMAN_INVOCATION; exec sleep 1000`,
		"health":  map[string]any{"exec": `test -e db.$PROCMAN_INVOCATION`, "interval": "50ms"}})
	createJob(t, base, map[string]any{"name": "migrate", "type": "one_time", "depends_on": map[string]string{"db": "healthy"},
		"command": `date +%s%N >> migrate.times; sleep 0.2; date +%s%N >> migrate.times`})
	createJob(t, base, map[string]any{"name": "api", "type": "continuous", "schedule": "reboot",
		"depends_on": map[string]string{"db": "healthy", "migrate": "completed_successfully"},
		"command":    `date +%s%N >> api.times; exec sleep 1000`})
	waitRunning(t, base, "api") // created with the reboot schedule: started, with its dependencies
	poll(t, 10*time.Second, "api's first start", func() bool { return len(starts(t, dir, "api.times")) == 1 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st := waitExit(t, cmd, 15*time.Second); st.ExitCode() != 0 {
		t.Fatalf("procman: exit code %d, want 0", st.ExitCode())
	}

	base, _ = startBinary(t, dir)
	waitRunning(t, base, "api")
	poll(t, 10*time.Second, "api's second start", func() bool { return len(starts(t, dir, "api.times")) == 2 })
	db, migrate, api := starts(t, dir, "db.times"), starts(t, dir, "migrate.times"), starts(t, dir, "api.times")
	if len(db) != 2 || len(migrate) != 4 || len(api) != 2 {
		t.Fatalf("starts: db %v, migrate %v, api %v; want each job run again once", db, migrate, api)
	}
	if !(db[1] < migrate[2] && migrate[3] < api[1]) {
		t.Errorf("after the restart: db started at %d, migrate ran from %d to %d, api started at %d; want them in that order",
			db[1], migrate[2], migrate[3], api[1])
	}
	for name, trigger := range map[string]string{"db": "resume", "migrate": "dependency", "api": "reboot"} {
		if rs := jobRuns(t, base, name); len(rs) == 0 || string(rs[0].Trigger) != trigger {
			t.Errorf("%s's last run: %+v, want trigger %s", name, rs, trigger)
		}
	}
}
