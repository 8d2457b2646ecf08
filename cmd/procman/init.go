package main

import (
	"fmt"
	"os"
	"syscall"

	"github.com/Mk-Chan/procman/internal/osproc"
)

// initChildVar marks the re-executed ProcMan, so that it runs as ProcMan
// instead of becoming an init again.
const initChildVar = "PROCMAN_INIT_CHILD"

// initForwarded are the signals the init passes on to ProcMan: those a
// container runtime or an operator sends to stop it, and the rest a user may
// mean for it. ProcMan then handles each as it would without the init.
var initForwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP,
	syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// runAsInit makes the binary a tiny init (osproc.Init), as tini is, when it
// is PID 1 (in a container started without an init): it re-executes the
// binary as its only child, forwards signals to it, reaps everything, and
// exits with the child's code (128+signal if it was killed). ProcMan itself
// then runs as PID 2 with its ordinary semantics.
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
	in, err := osproc.StartInit(selfPath(), os.Args, append(os.Environ(), initChildVar+"=1"), initForwarded...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "procman", err)
		return 1, true
	}
	for _, v := range secretVars() { // the child has them now; jobs can read PID 1's environ too (environ.go)
		dropFromEnviron(v[0])
	}
	code, err = in.Wait()
	if err != nil {
		fmt.Fprintln(os.Stderr, "procman", err)
	}
	return code, true
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
