package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// initChildVar marks the re-executed ProcMan, so that it runs as ProcMan
// instead of becoming an init again.
const initChildVar = "PROCMAN_INIT_CHILD"

// initForwarded are the signals the init passes on to ProcMan: those a
// container runtime or an operator sends to stop it, and the rest a user may
// mean for it. ProcMan then handles each as it would without the init.
var initForwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// runAsInit makes the binary a tiny init, as tini is, when it is PID 1 (in a
// container started without an init). PID 1 inherits every orphan of its PID
// namespace and must reap them, or they stay zombies for good; but a wait for
// any child inside ProcMan would steal the exit statuses os/exec waits for.
// So the init re-executes the binary as its only child, forwards signals to
// it, reaps everything, and exits with the child's code (128+signal if it was
// killed). ProcMan itself then runs as PID 2 with its ordinary semantics.
// When PID 1 exits, the kernel kills whatever is left in the namespace.
//
// handled is false when the binary is not PID 1, or is that child: main then
// runs ProcMan.
func runAsInit() (code int, handled bool) {
	if _, isChild := os.LookupEnv(initChildVar); isChild {
		os.Unsetenv(initChildVar) // so that jobs do not inherit it
		return 0, false
	}
	if os.Getpid() != 1 {
		return 0, false
	}
	// Before the child exists, so that no signal meant for it is missed: the
	// channel holds it until the forwarder runs.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, initForwarded...)
	child, err := os.StartProcess(selfPath(), os.Args, &os.ProcAttr{
		Env:   append(os.Environ(), initChildVar+"=1"),
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		// Its own process group: a Ctrl-C on a terminal (docker run -it) goes
		// to the foreground group, which is the init's; were the child in it
		// too, it would get SIGINT twice, the second of which kills every job
		// at once. Here it gets it once, from the init.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "procman init:", err)
		return 1, true
	}
	for _, v := range secretVars() { // the child has them now; jobs can read PID 1's environ too (environ.go)
		dropFromEnviron(v[0])
	}
	go func() {
		for sig := range sigs {
			child.Signal(sig) // fails only once the child is gone, when no one is left to tell
		}
	}()
	for {
		var ws syscall.WaitStatus
		// Any child: the orphans reparented to PID 1, and ProcMan itself. No
		// os/exec Wait runs in this process, so no status is stolen from one.
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil { // ECHILD cannot happen while the child lives
			fmt.Fprintln(os.Stderr, "procman init: wait:", err)
			return 1, true
		}
		if pid != child.Pid {
			continue // an orphan, now reaped
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return ws.ExitStatus(), true
	}
}

// selfPath is the path of this binary, so that the child is named after it in
// ps, top and pgrep (run as /proc/self/exe, it would be named "exe"); or
// /proc/self/exe, which is this very binary even if its file was replaced.
func selfPath() string {
	const self = "/proc/self/exe"
	p, err := os.Executable()
	if err != nil {
		return self
	}
	a, errA := os.Stat(p)
	b, errB := os.Stat(self)
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		return self
	}
	return p
}
