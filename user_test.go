package procman

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needRoot skips a test that switches users: only root may.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running jobs as another user needs root")
	}
}

// nobody returns the host's "nobody" user.
func nobody(t *testing.T) *user.User {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	return u
}

// otherGroup returns a group that is not u's primary group.
func otherGroup(t *testing.T, u *user.User) *user.Group {
	t.Helper()
	for _, name := range []string{"users", "daemon", "nogroup", "nobody", "root"} {
		if g, err := user.LookupGroup(name); err == nil && g.Gid != u.Gid {
			return g
		}
	}
	t.Skip("no group besides nobody's own")
	return nil
}

// runOnce creates and runs a one_time job to its end and returns its output.
func (w *world) runOnce(j Job) string {
	w.t.Helper()
	j.Type = OneTime
	w.create(j)
	w.start(j.Name)
	st := w.waitFor(j.Name, StateExited, StateError)
	if st.State != StateExited || st.ExitCode == nil || *st.ExitCode != 0 {
		w.t.Fatalf("%s: %+v; log: %q", j.Name, st, readFile(w.t, st.LogFile))
	}
	return readFile(w.t, st.LogFile)
}

// fieldErr checks that err is an ErrInvalid *FieldError on field whose message holds want.
func fieldErr(t *testing.T, what string, err error, field, want string) {
	t.Helper()
	var fe *FieldError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.Field != field || !strings.Contains(fe.Msg, want) {
		t.Errorf("%s: %v, want an invalid %q mentioning %q", what, err, field, want)
	}
}

func TestUserRunsJobAsThatUser(t *testing.T) {
	needRoot(t)
	u := nobody(t)
	w := setup(t)
	cmd := `id -u; id -g; id -G; echo "$HOME $USER $LOGNAME"`
	want := u.Uid + "\n" + u.Gid + "\n" + u.Gid + "\n" + u.HomeDir + " nobody nobody\n"
	for _, spec := range []string{"nobody", u.Uid} {
		name := "as-" + spec
		if got := w.runOnce(Job{Name: name, Command: cmd, User: spec}); got != want {
			t.Errorf("user %q: output %q, want %q (root's groups must be dropped)", spec, got, want)
		}
		// The child wrote through ProcMan's descriptor: the file stays root's.
		logs := w.logFiles(name)
		fi, err := os.Stat(logs[len(logs)-1])
		if err != nil {
			t.Fatal(err)
		}
		if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != 0 {
			t.Errorf("user %q: log file owned by uid %d, want 0", spec, uid)
		}
	}
	// The job's env overrides what the user brings.
	got := w.runOnce(Job{Name: "env", Command: `echo "$HOME $USER"`, User: "nobody", Env: map[string]string{"HOME": "/srv"}})
	if got != "/srv nobody\n" {
		t.Errorf("env over user: %q", got)
	}
	if j, _ := w.m.Get("env"); j.User != "nobody" {
		t.Errorf("Get: user %q", j.User)
	}
}

func TestUserWithGroup(t *testing.T) {
	needRoot(t)
	u := nobody(t)
	g := otherGroup(t, u)
	w := setup(t)
	for i, spec := range []string{"nobody:" + g.Name, u.Uid + ":" + g.Gid} {
		out := strings.Fields(w.runOnce(Job{Name: "g" + string(rune('a'+i)), Command: "id -u; id -g; id -G", User: spec}))
		if len(out) < 3 || out[0] != u.Uid || out[1] != g.Gid {
			t.Fatalf("user %q: uid, gid, groups = %q, want %s, %s", spec, out, u.Uid, g.Gid)
		}
		// The given group becomes the primary one; the user keeps its own groups.
		if groups := out[2:]; !slices.Contains(groups, g.Gid) || !slices.Contains(groups, u.Gid) ||
			(g.Gid != "0" && slices.Contains(groups, "0")) {
			t.Errorf("user %q: groups %q, want %s and %s, not root's", spec, groups, g.Gid, u.Gid)
		}
	}
}

func TestUserUnknownOrMalformedIsRefused(t *testing.T) {
	needRoot(t)
	w := setup(t)
	ctx := ctxT(t)
	for _, tc := range []struct{ spec, want string }{
		{"no-such-user-pm", `no user "no-such-user-pm"`},
		{"4000000000", `no user "4000000000"`},
		{"nobody:no-such-group-pm", `no group "no-such-group-pm"`},
		{"nobody:", "want a user name or uid"},
		{":0", "want a user name or uid"},
		{"no body", "want a user name or uid"},
		{"a:b:c", "want a user name or uid"},
	} {
		err := w.m.Create(ctx, Job{Name: "x", Command: "true", Type: OneTime, User: tc.spec})
		fieldErr(t, "create "+tc.spec, err, "user", tc.want)
	}
	if _, err := w.m.Get("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("a refused job was saved: %v", err)
	}
	w.create(Job{Name: "y", Command: "true", Type: OneTime})
	err := w.m.Replace(ctx, "y", Job{Command: "true", Type: OneTime, User: "no-such-user-pm"})
	fieldErr(t, "replace", err, "user", `no user "no-such-user-pm"`)
	// Validate alone checks the form, without looking the user up.
	fieldErr(t, "validate", Job{Name: "v", Command: "true", Type: OneTime, User: "nobody:"}.Validate(), "user", "want")
}

func TestUserNeedsRoot(t *testing.T) {
	w := setup(t)
	ctx := ctxT(t)
	w.m.root = false // as if ProcMan ran as an ordinary user
	const why = "running jobs as another user needs ProcMan to run as root"
	fieldErr(t, "create", w.m.Create(ctx, Job{Name: "a", Command: "true", Type: OneTime, User: "nobody"}), "user", why)
	w.create(Job{Name: "b", Command: "echo plain", Type: OneTime})
	fieldErr(t, "replace", w.m.Replace(ctx, "b", Job{Command: "true", Type: OneTime, User: "root"}), "user", why)
	if got := w.runOnce(Job{Name: "c", Command: "echo plain"}); got != "plain\n" {
		t.Errorf("a job without user: %q", got)
	}
}

func TestUserResolvedAtStart(t *testing.T) {
	needRoot(t)
	w := setup(t)
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, User: "nobody", BackoffInitial: dur(time.Minute)})
	w.create(Job{Name: "once", Command: "true", Type: OneTime, User: "nobody", EnvFile: "/etc/hostname"})
	// A stored user that no longer resolves: the runs fail to start, saying why.
	w.m.root = false
	w.startFails("svc")
	if st := w.waitFor("svc", StateRetrying); !strings.Contains(st.Error, `user "nobody": running jobs as another user needs ProcMan to run as root`) {
		t.Errorf("svc: %+v", st)
	}
	w.stop("svc")
	w.startFails("once")
	st := w.waitFor("once", StateError)
	runs := w.runs("once")
	if len(runs) != 1 || runs[0].Outcome != OutcomeFailedToStart || runs[0].Error != st.Error || !strings.Contains(st.Error, "needs ProcMan to run as root") {
		t.Errorf("once: %+v, runs %+v", st, runs)
	}
	w.m.root = true

	// Both fields survive a restart of ProcMan.
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	w.m = w.open(Config{DBPath: filepath.Join(w.dir, "procman.db"), LogDir: filepath.Join(w.dir, "logs"), Logger: slog.New(w.logs)})
	if j, err := w.m.Get("once"); err != nil || j.User != "nobody" || j.EnvFile != "/etc/hostname" {
		t.Errorf("after reopen: %+v %v", j, err)
	}
	j, err := DecodeJob([]byte(`{"name":"d","command":"true","type":"one_time","user":"nobody:nogroup","env_file":"x.env"}`))
	if err != nil || j.User != "nobody:nogroup" || j.EnvFile != "x.env" {
		t.Errorf("DecodeJob: %+v %v", j, err)
	}
}

func writeEnv(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnvFile(t *testing.T) {
	w := setup(t)
	path := filepath.Join(w.dir, "app.env")
	writeEnv(t, path, "# a comment\n\n   \n  # indented comment\nexport A=1\nB=\"two words\"\nC='single'\n"+
		"D=x=y\n  E = spaced  \nF=crlf\r\nG=\"unbalanced\nH='mixed\"\nI=\nJ=first\nJ=second\nOVER=file\nexport\tK=tab\n")
	cmd := `printf '%s|' "$A" "$B" "$C" "$D" "$E" "$F" "$G" "$H" "$I" "$J" "$OVER" "$K"`
	want := `1|two words|single|x=y|spaced|crlf|"unbalanced|'mixed"||second|env|tab|`
	got := w.runOnce(Job{Name: "abs", Command: cmd, EnvFile: path, Env: map[string]string{"OVER": "env"}})
	if got != want {
		t.Errorf("env_file: got %q\nwant %q", got, want)
	}
	// A relative path is taken from the job's dir.
	if got := w.runOnce(Job{Name: "rel", Command: `echo "$A $OVER"`, Dir: w.dir, EnvFile: "app.env"}); got != "1 file\n" {
		t.Errorf("relative env_file: %q", got)
	}
	// The file is read at every start.
	writeEnv(t, path, "A=changed\n")
	w.start("rel")
	if st := w.waitFor("rel", StateExited); readFile(t, st.LogFile) != "changed \n" {
		t.Errorf("re-read env_file: %q", readFile(t, st.LogFile))
	}
}

func TestEnvFileMissingFailsTheStart(t *testing.T) {
	w := setup(t)
	missing := filepath.Join(w.dir, "missing.env")
	// Accepted at create: the file may appear before the job starts.
	w.create(Job{Name: "once", Command: "true", Type: OneTime, EnvFile: missing})
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous, EnvFile: missing, BackoffInitial: dur(time.Minute)})
	w.startFails("once")
	st := w.waitFor("once", StateError)
	if !strings.Contains(st.Error, missing) || st.LastRun == nil || st.LastRun.Outcome != OutcomeFailedToStart {
		t.Errorf("once: %+v", st)
	}
	if runs := w.runs("once"); len(runs) != 1 || runs[0].Outcome != OutcomeFailedToStart || !strings.Contains(runs[0].Error, missing) {
		t.Errorf("once runs: %+v", runs)
	}
	w.startFails("svc")
	if st := w.waitFor("svc", StateRetrying); !strings.Contains(st.Error, missing) {
		t.Errorf("svc: %+v", st)
	}
	w.stop("svc")
	// Once the file is there, the job runs.
	writeEnv(t, missing, "X=here\n")
	ctx := ctxT(t)
	if err := w.m.Replace(ctx, "once", Job{Command: `echo "$X"`, Type: OneTime, EnvFile: missing}); err != nil {
		t.Fatal(err)
	}
	w.start("once")
	if st := w.waitFor("once", StateExited, StateError); st.State != StateExited || readFile(t, st.LogFile) != "here\n" {
		t.Errorf("once with its file: %+v", st)
	}
}

func TestEnvFileMalformedLine(t *testing.T) {
	w := setup(t)
	for _, tc := range []struct{ name, content, want string }{
		{"noeq", "A=1\n# fine\nSECRETWORD\n", "line 3: no '='"},
		{"nokey", "\n =value\n", "line 2: empty variable name"},
		{"space", "A B=1\n", "line 1: variable name with a space"},
	} {
		path := filepath.Join(w.dir, tc.name+".env")
		writeEnv(t, path, tc.content)
		w.create(Job{Name: tc.name, Command: "true", Type: OneTime, EnvFile: path})
		w.startFails(tc.name)
		st := w.waitFor(tc.name, StateError)
		if !strings.Contains(st.Error, "env_file "+path+": "+tc.want) {
			t.Errorf("%s: error %q, want the file and %q", tc.name, st.Error, tc.want)
		}
		if strings.Contains(st.Error, "SECRETWORD") {
			t.Errorf("%s: the error shows the file's content: %q", tc.name, st.Error)
		}
	}
}

// An env_file that is not a small regular file fails the start at once,
// naming the problem: a named pipe would block the start (and every stop
// behind it) until something writes to it, /dev/zero never ends.
func TestEnvFileMustBeASmallRegularFile(t *testing.T) {
	w := setup(t)
	fifo := filepath.Join(w.dir, "fifo.env")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(w.dir, "big.env")
	if err := os.WriteFile(big, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, MaxEnvFileBytes+1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"fifo", fifo, "not a regular file (a named pipe)"},
		{"big", big, "1048577 bytes, more than the 1048576 allowed"},
		{"zero", "/dev/zero", "not a regular file (a device)"},
		{"dir", w.dir, "not a regular file (a directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.create(Job{Name: tc.name, Command: "true", Type: OneTime, EnvFile: tc.file})
			done := make(chan error, 1)
			go func() { done <- w.m.Start(context.Background(), tc.name) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("Start with env_file %s did not return", tc.file)
			}
			if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: %v, want ErrStartFailed saying %q", err, tc.want)
			}
			if st := w.waitFor(tc.name, StateError); st.LastRun == nil || st.LastRun.Outcome != OutcomeFailedToStart {
				t.Errorf("status %+v", st)
			}
			if err := w.m.Delete(ctxT(t), tc.name); err != nil {
				t.Errorf("Delete: %v", err)
			}
		})
	}
}
