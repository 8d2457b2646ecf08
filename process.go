package procman

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// proc is one run: a process group led by /bin/sh.
type proc struct {
	cmd     *exec.Cmd
	pgid    int
	started time.Time
	done    chan struct{} // closed when the leader has been waited for
	ended   chan struct{} // closed when the run is over and recorded (log followers stop)
	row     runRow
}

// spawn opens the run's log file and starts the shell in its own process
// group, writing straight into the file: ProcMan copies no output.
func (r *runner) spawn(job Job) (*proc, error) {
	if job.Dir != "" {
		// exec reports a bad working directory as "fork/exec /bin/sh: ...", which
		// blames the shell; name the real culprit.
		if fi, err := os.Stat(job.Dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dir %q: not a usable directory", job.Dir)
		}
	}
	f, path, err := openLog(r.m.cfg.LogDir, job.Name)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child holds its own copy
	invocation := newInvocation()
	cmd := exec.Command("/bin/sh", "-c", job.Command)
	cmd.Dir = job.Dir
	cmd.Env = jobEnv(job, invocation)
	cmd.Stdout, cmd.Stderr = f, f
	// Pdeathsig is bound to the OS thread that forks, which Go never retires
	// while it runs ordinary goroutines; the guardian covers the rest of the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn: %w", err)
	}
	p := &proc{cmd: cmd, pgid: cmd.Process.Pid, started: time.Now(),
		done: make(chan struct{}), ended: make(chan struct{})}
	p.row = runRow{PID: p.pgid, PGID: p.pgid, LogFile: path, StartedAt: p.started.UTC().Truncate(time.Microsecond), Invocation: invocation}
	if st, ok := readStat(strconv.Itoa(p.pgid)); ok {
		p.row.ProcStart = st.start
	}
	if err := r.m.guard.watch(p.pgid); err != nil {
		r.m.log.Error("guardian unavailable; this run is not protected against a ProcMan crash", "job", job.Name, "err", err)
	}
	go func() { // ends when the leader exits; exactly one Wait per process
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// sweep ends what a run whose leader exited left behind in its group, so no
// stray outlives its run (as systemd does for a service's control group).
func (r *runner) sweep(p *proc, set settings, force <-chan struct{}) (killed bool, err error) {
	if !groupAlive(p.pgid) {
		r.m.guard.forget(p.pgid)
		return false, nil
	}
	r.m.log.Info("run ended with processes left in its group; stopping them", "job", r.name, "pgid", p.pgid)
	return r.terminate(p, set, force)
}

// terminate sends the stop signal to the whole group, SIGKILL after the stop
// timeout (or at once when forced), and returns once no process of the group
// is left. killed reports whether SIGKILL was needed.
func (r *runner) terminate(p *proc, set settings, force <-chan struct{}) (killed bool, err error) {
	signalGroup(p.pgid, set.stopSignal)
	grace := time.NewTimer(set.stopTimeout)
	defer grace.Stop()
	if !waitRun(p, grace.C, force) {
		signalGroup(p.pgid, syscall.SIGKILL)
		t := time.NewTimer(set.killWait)
		defer t.Stop()
		if !waitRun(p, t.C, nil) {
			return true, fmt.Errorf("%w (pgid %d, waited %s)", ErrStopFailed, p.pgid, set.killWait)
		}
		killed = true
	}
	r.m.guard.forget(p.pgid)
	return killed, nil
}

// waitRun waits until the leader has exited and no process of its group is left.
func waitRun(p *proc, deadline <-chan time.Time, force <-chan struct{}) bool {
	select {
	case <-p.done:
	case <-deadline:
		return false
	case <-force:
		return false
	}
	return waitGroupGone(p.pgid, deadline, force)
}

// exit reports how the run's leader ended: an exit code, or the signal that
// killed it. Both are empty while the leader has not been reaped.
func (p *proc) exit() (code *int, signal string) {
	select {
	case <-p.done:
	default:
		return nil, "" // it survived SIGKILL
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return nil, ws.Signal().String()
	}
	c := p.cmd.ProcessState.ExitCode()
	return &c, ""
}

// openLog creates LogDir/<job>/<unix-nanos>.log, never reusing an existing name.
func openLog(dir, job string) (*os.File, string, error) {
	dir = filepath.Join(dir, job)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", fmt.Errorf("log folder: %w", err)
	}
	for t := time.Now().UnixNano(); ; t++ {
		path := filepath.Join(dir, strconv.FormatInt(t, 10)+".log")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("log file: %w", err)
		}
		return f, path, nil
	}
}

// jobEnv is ProcMan's environment, then PROCMAN_JOB and PROCMAN_INVOCATION
// (which let a run, and a later ProcMan, recognise its processes), then the
// job's own variables; os/exec keeps the last value of a repeated key.
func jobEnv(job Job, invocation string) []string {
	out := append(os.Environ(), "PROCMAN_JOB="+job.Name, invocationVar+invocation)
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		out = append(out, k+"="+job.Env[k])
	}
	return out
}

const invocationVar = "PROCMAN_INVOCATION="

// newInvocation returns a random ID for one run, as systemd's INVOCATION_ID.
func newInvocation() string {
	return rand.Text()
}
