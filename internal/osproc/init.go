//go:build linux

package osproc

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Init is a tiny init, as tini is, for a PID namespace that has none (a
// container started without one). PID 1 inherits every orphan of its
// namespace and must reap them, or they stay zombies for good; but a wait for
// any child would steal the exit statuses that a Reaper waits for. So the
// init runs one program as its only child, passes signals on to it, and
// reaps every process that ends; the program, a process of its own, keeps
// its ordinary semantics. When PID 1 exits, the kernel kills whatever is left
// in the namespace.
type Init struct {
	child *os.Process
	sigs  chan os.Signal
	fwd   chan struct{} // closed when the forwarder has ended
}

// StartInit starts the program at path, with args (its name first) and env,
// as the init's child, and passes the signals fwd on to it from then on.
func StartInit(path string, args, env []string, fwd ...os.Signal) (*Init, error) {
	// Before the child exists, so that no signal meant for it is missed: the
	// channel holds it until the forwarder runs.
	in := &Init{sigs: make(chan os.Signal, 8), fwd: make(chan struct{})}
	signal.Notify(in.sigs, fwd...)
	child, err := os.StartProcess(path, args, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		// Its own process group: a Ctrl-C on a terminal (docker run -it) goes
		// to the foreground group, which is the init's; were the child in it
		// too, it would get SIGINT twice, once from the terminal and once
		// from the init. Here it gets it once, from the init.
		Sys: &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		signal.Stop(in.sigs)
		return nil, fmt.Errorf("init: %w", err)
	}
	in.child = child
	go in.forward()
	return in, nil
}

// forward passes signals on to the child until Wait stops it.
func (in *Init) forward() {
	defer close(in.fwd)
	for sig := range in.sigs {
		in.child.Signal(sig) // fails only once the child is gone, when no one is left to tell
	}
}

// Wait reaps every child that ends, the orphans included, until the init's
// own child does, and returns that child's exit code: 128+n if signal n
// killed it. It stops passing signals on before it returns.
func (in *Init) Wait() (int, error) {
	defer func() {
		signal.Stop(in.sigs) // no more sends after it returns: the channel may close
		close(in.sigs)
		<-in.fwd
	}()
	for {
		var ws unix.WaitStatus
		// Any child: the orphans reparented to the init, and its own. No
		// Reaper waits in this process, so no status is stolen from one.
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil { // ECHILD cannot happen while the child lives
			return 1, fmt.Errorf("init: wait: %w", err)
		}
		if pid != in.child.Pid {
			continue // an orphan, now reaped
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}
