package procman

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Mk-Chan/procman/internal/osproc"
	"github.com/Mk-Chan/procman/internal/probe"
	"github.com/Mk-Chan/procman/internal/runlog"
)

// proc is one run: a process group led by /bin/sh.
type proc struct {
	leader  *osproc.Proc
	pgid    int
	started time.Time
	done    <-chan struct{} // closed when the leader has been waited for
	ended   chan struct{}   // closed when the run is over and recorded (log followers stop)
	row     runRow
	live    *runlog.Live  // its log file, kept under max_run_log_bytes
	rotated chan struct{} // capacity 1: a part was rotated out of the log (retention)

	sup  *supervisor // the activation it belongs to
	next *proc       // the activation's next run, once it began; guarded by runner.mu

	check        *probe.Exec // the job's exec health check, run as the run is; nil if none
	successCodes []int       // exit codes besides 0 that are a success
}

// spawnPrep is what a run needs before its process is forked. Making it reads
// files the job names (env_file, dir, the user database) and creates the log
// file: all of which a strange file or a slow disk may hold up, so it is done
// apart from the supervisor, which can walk away from it (runner.prepare).
type spawnPrep struct {
	cred       *credential
	env        []string
	invocation string
	log        *os.File
	logPath    string
}

// discard closes and removes the log file of a run that will never be.
func (sp *spawnPrep) discard() {
	if sp == nil || sp.log == nil {
		return
	}
	sp.log.Close()
	os.Remove(sp.logPath)
}

// prepareSpawn checks the job's dir and user, reads its env_file and opens the
// run's log file.
func (m *Manager) prepareSpawn(job Job) (*spawnPrep, error) {
	if job.Dir != "" {
		// exec reports a bad working directory as "fork/exec /bin/sh: ...", which
		// blames the shell; name the real culprit.
		if fi, err := os.Stat(job.Dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("dir %q: not a usable directory", job.Dir)
		}
	}
	cred, err := lookupUser(job.User, m.root)
	if err != nil { // the user or group may have gone since the job was saved
		return nil, fmt.Errorf("user %q: %w", job.User, err)
	}
	fileEnv, err := readEnvFile(job)
	if err != nil {
		return nil, err
	}
	f, path, err := openLog(m.jobLogDir(job.Name))
	if err != nil {
		return nil, err
	}
	invocation := newInvocation()
	return &spawnPrep{cred: cred, env: jobEnv(job, invocation, cred, fileEnv), invocation: invocation,
		log: f, logPath: path}, nil
}

// spawn starts the shell in its own process group, writing straight into the
// log file: ProcMan copies no output, and only watches the file's size. The
// log file stays ProcMan's, whoever the job runs as.
func (r *runner) spawn(s *supervisor, job Job, set settings, sp *spawnPrep) (*proc, error) {
	spec := osproc.Spec{Path: "/bin/sh", Args: []string{"-c", job.Command}, Dir: job.Dir, Env: sp.env, Output: sp.log}
	if c := sp.cred; c != nil {
		spec.Cred = &osproc.Credential{UID: c.uid, GID: c.gid, Groups: c.groups}
	}
	leader, err := r.m.kids.StartGroup(spec)
	if err != nil {
		sp.discard()        // no process will ever write to it
		if sp.cred != nil { // most likely the user may not enter dir or run /bin/sh
			return nil, fmt.Errorf("spawn as user %q: %w", job.User, err)
		}
		return nil, fmt.Errorf("spawn: %w", err)
	}
	p := &proc{leader: leader, pgid: leader.Pid, started: time.Now(), done: leader.Done(), sup: s,
		ended: make(chan struct{}), rotated: make(chan struct{}, 1), check: r.execProbe(set, spec), successCodes: set.successCodes}
	// The watcher keeps ProcMan's descriptor, to cut the file's head through
	// it; the child writes through its own copy.
	p.live = r.m.rot.Watch(sp.log, sp.logPath, set.maxRunLogBytes, func() {
		r.parts.rotated()
		select {
		case p.rotated <- struct{}{}:
		default:
		}
		s.wake()
	})
	p.row = runRow{PID: p.pgid, PGID: p.pgid, ProcStart: leader.Start, LogFile: sp.logPath,
		StartedAt: p.started.UTC().Truncate(time.Microsecond), Invocation: sp.invocation}
	watch := r.m.guard.Watch
	if job.Host == HostAny && r.m.floats != nil { // killed by the guardian too if this host cannot renew its lease
		watch = r.m.guard.WatchFenced
	}
	if err := watch(p.pgid); err != nil {
		r.m.log.Error("guardian unavailable; this run is not protected against a ProcMan crash", "job", job.Name, "err", err)
	}
	return p, nil
}

// sweep ends what a run whose leader exited left behind in its group, so no
// stray outlives its run (as systemd does for a service's control group).
func (r *runner) sweep(p *proc, set settings, force <-chan struct{}) (killed bool, err error) {
	if !r.m.kids.GroupAlive(p.pgid, true) {
		r.m.guard.Forget(p.pgid)
		return false, nil
	}
	r.m.log.Info("run ended with processes left in its group; stopping them", "job", r.name, "pgid", p.pgid)
	return r.terminate(p, set, force)
}

// terminate sends the stop signal to the whole group, SIGKILL after the stop
// timeout (or at once when forced), and returns once no process of the group
// is left. killed reports whether SIGKILL was needed.
func (r *runner) terminate(p *proc, set settings, force <-chan struct{}) (killed bool, err error) {
	osproc.SignalGroup(p.pgid, set.stopSignal)
	grace := time.NewTimer(set.stopTimeout)
	defer grace.Stop()
	if !r.waitRun(p, grace.C, force) {
		osproc.SignalGroup(p.pgid, syscall.SIGKILL)
		t := time.NewTimer(set.killWait)
		defer t.Stop()
		if !r.waitRun(p, t.C, nil) {
			return true, fmt.Errorf("%w (pgid %d, waited %s)", ErrStopFailed, p.pgid, set.killWait)
		}
		killed = true
	}
	r.m.guard.Forget(p.pgid)
	return killed, nil
}

// waitRun waits until the leader has exited and no process of its group is left.
func (r *runner) waitRun(p *proc, deadline <-chan time.Time, force <-chan struct{}) bool {
	select {
	case <-p.done:
	case <-deadline:
		return false
	case <-force:
		return false
	}
	return r.m.kids.WaitGroupGone(p.pgid, deadline, force)
}

// exit reports how the run's leader ended: an exit code, or the signal that
// killed it, or why that is not known (the wait for it failed). All are empty
// while the leader has not been reaped.
func (p *proc) exit() (code *int, signal string, err error) {
	select {
	case <-p.done:
	default:
		return nil, "", nil // it survived SIGKILL
	}
	ws, err := p.leader.Exit()
	switch {
	case err != nil:
		return nil, "", err
	case ws.Signaled():
		return nil, ws.Signal().String(), nil
	case ws.Exited():
		c := ws.ExitStatus()
		return &c, "", nil
	}
	return nil, "", nil
}

// howEnded says how the recorded run ended: "exit code 1", "killed by
// signal terminated".
func (p *proc) howEnded() string {
	switch {
	case p.row.ExitCode != nil:
		return "exit code " + strconv.Itoa(*p.row.ExitCode)
	case p.row.Signal != "":
		return "killed by signal " + p.row.Signal
	}
	return "ended, how is not known"
}

// readSmallFile reads a regular file of at most limit bytes. It opens it
// without blocking and checks what it opened, so that no other kind of file
// (pipe, device, socket, directory) is ever read, even one put in its place.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, fileKind(fi.Mode()))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d allowed", path, fi.Size(), limit)
	}
	// The file may grow as it is read, and some (in /proc) say nothing of their size.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: more than the %d bytes allowed", path, limit)
	}
	return b, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a directory"
	}
	return "mode " + m.String()
}

// jobLogDir is the folder of a job's log files.
func (m *Manager) jobLogDir(job string) string { return filepath.Join(m.cfg.LogDir, job) }

// openLog creates dir/<unix-nanos>.log, never reusing an existing name, not
// readable by others (output may hold secrets). The child appends to it; the
// descriptor is also readable, for the rotation that keeps it small.
func openLog(dir string) (*os.File, string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", fmt.Errorf("log folder: %w", err)
	}
	for t := time.Now().UnixNano(); ; t++ {
		path := filepath.Join(dir, strconv.FormatInt(t, 10)+".log")
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("log file: %w", err)
		}
		return f, path, nil
	}
}

// jobEnv is ProcMan's environment, then HOME, USER and LOGNAME of the job's
// user if it has one, then the job's env_file, then its own variables, and
// last PROCMAN_JOB and PROCMAN_INVOCATION (which let a run, and a later
// ProcMan, recognise its processes: nothing may override them); os/exec keeps
// the last value of a repeated key.
func jobEnv(job Job, invocation string, cred *credential, fileEnv []string) []string {
	// ProcMan's API token is the key to every job: no job gets it.
	out := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PROCMAN_TOKEN=") })
	if cred != nil {
		out = append(out, "HOME="+cred.home, "USER="+cred.name, "LOGNAME="+cred.name)
	}
	out = append(out, fileEnv...)
	for _, k := range slices.Sorted(maps.Keys(job.Env)) {
		out = append(out, k+"="+job.Env[k])
	}
	return append(out, "PROCMAN_JOB="+job.Name, invocationVar+invocation)
}

const invocationVar = "PROCMAN_INVOCATION="

// newInvocation returns a random ID for one run, as systemd's INVOCATION_ID.
func newInvocation() string {
	return rand.Text()
}

// credential is who a job's processes run as: its user field, resolved.
type credential struct {
	uid, gid uint32
	groups   []uint32 // supplementary groups
	name     string   // login name, for USER and LOGNAME
	home     string
}

// checkUser refuses, at create and replace, a user field this Manager cannot
// honour: ProcMan is not root, or the user or group does not exist. The user is
// looked up again at every start, as it may change or go.
func (m *Manager) checkUser(j Job) error {
	if _, err := lookupUser(j.User, m.root); err != nil {
		if _, ok := errors.AsType[*FieldError](err); ok {
			return err
		}
		return invalid("user", "%v", err)
	}
	return nil
}

// lookupUser resolves a user field, "user[:group]" with names or numeric ids,
// in the host's user and group databases: nil for an empty field. The job gets
// the user's groups, and the given group as primary group if there is one.
// root says whether ProcMan can switch users at all.
func lookupUser(spec string, root bool) (*credential, error) {
	name, group, err := splitUser(spec)
	if err != nil || spec == "" {
		return nil, err
	}
	if !root {
		return nil, fmt.Errorf("running jobs as another user needs ProcMan to run as root (it runs as uid %d)", os.Geteuid())
	}
	u, err := user.Lookup(name)
	if _, ok := errors.AsType[user.UnknownUserError](err); ok && isID(name) {
		u, err = user.LookupId(name)
	}
	if err != nil {
		_, unknownName := errors.AsType[user.UnknownUserError](err)
		_, unknownID := errors.AsType[user.UnknownUserIdError](err)
		if unknownName || unknownID {
			return nil, fmt.Errorf("no user %q on this host", name)
		}
		return nil, fmt.Errorf("look up user %q: %w", name, err)
	}
	c := &credential{name: u.Username, home: cmp.Or(u.HomeDir, "/")}
	if c.uid, err = parseID(u.Uid); err != nil {
		return nil, fmt.Errorf("user %q: uid %q: %w", name, u.Uid, err)
	}
	gid := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if _, ok := errors.AsType[user.UnknownGroupError](err); ok && isID(group) {
			g, err = user.LookupGroupId(group)
		}
		if err != nil {
			_, unknownName := errors.AsType[user.UnknownGroupError](err)
			_, unknownID := errors.AsType[user.UnknownGroupIdError](err)
			if unknownName || unknownID {
				return nil, fmt.Errorf("no group %q on this host", group)
			}
			return nil, fmt.Errorf("look up group %q: %w", group, err)
		}
		gid = g.Gid
	}
	if c.gid, err = parseID(gid); err != nil {
		return nil, fmt.Errorf("gid %q: %w", gid, err)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of user %q: %w", u.Username, err)
	}
	c.groups = []uint32{c.gid}
	for _, id := range ids {
		n, err := parseID(id)
		if err != nil {
			return nil, fmt.Errorf("groups of user %q: gid %q: %w", u.Username, id, err)
		}
		if !slices.Contains(c.groups, n) {
			c.groups = append(c.groups, n)
		}
	}
	return c, nil
}

func isID(s string) bool {
	_, err := parseID(s)
	return err == nil
}

func parseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err
}

// MaxEnvFileBytes is the largest env_file ProcMan reads; a larger one makes
// the run fail to start.
const MaxEnvFileBytes = 1 << 20

// readEnvFile reads the job's env_file as "KEY=VALUE" entries, in file order:
// blank lines and '#' comments are skipped, an "export " prefix and one pair of
// matching single or double quotes around the value are removed; nothing else
// (no escapes, no ${VAR} expansion, no trailing comments). A relative path is
// taken from the job's dir. Errors name the file, and the line, never its content.
//
// Only a regular file of at most MaxEnvFileBytes is read, opened without
// blocking: a named pipe would hold the start up until something writes to it,
// and /dev/zero never ends.
func readEnvFile(job Job) ([]string, error) {
	if job.EnvFile == "" {
		return nil, nil
	}
	path := job.EnvFile
	if !filepath.IsAbs(path) && job.Dir != "" {
		path = filepath.Join(job.Dir, path)
	}
	b, err := readSmallFile(path, MaxEnvFileBytes)
	if err != nil {
		return nil, fmt.Errorf("env_file: %w", err)
	}
	var out []string
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimSpace(rest)
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		bad := ""
		switch {
		case !ok:
			bad = "no '=': want KEY=VALUE"
		case k == "":
			bad = "empty variable name before '='"
		case strings.ContainsAny(k, " \t"):
			bad = "variable name with a space"
		case strings.ContainsRune(line, 0):
			bad = "NUL byte"
		}
		if bad != "" {
			return nil, fmt.Errorf("env_file %s: line %d: %s", path, i+1, bad)
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}
