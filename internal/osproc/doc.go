// Package osproc is how ProcMan handles processes on Linux. It knows nothing
// of jobs: the procman package decides what to start, when to stop and what
// an end means; osproc starts, waits, signals, counts and cleans up.
//
// # Starting and waiting
//
// A Reaper starts every child (StartGroup: the leader of a new process group,
// with a parent-death signal and, if asked, another user's credentials) under
// a fork gate, and waits for each one from the start (Proc): one goroutine
// waits for them all, on an epoll set of their pidfds that Go's netpoller
// watches, so that a running process holds no goroutine. With adopt, the
// Reaper also makes this process a child subreaper and reaps every orphan of
// its children on SIGCHLD; the gate is what keeps that reaping from stealing
// the exit status of a child it started. Close gives up the waits still under
// way (ErrAbandoned) and ends every goroutine of the Reaper.
//
// # Groups
//
// SignalGroup signals a whole group; GroupAlive and WaitGroupGone say when it
// has no live member left, with kill(-pgid, 0) and, for the zombies someone
// else has yet to reap, a census of /proc that every stop shares. ReadStat,
// Procs and GroupMembers read /proc for the rest of ProcMan and its tests.
//
// # Never an orphan
//
// A Guardian is an awk process, told every group to protect, that kills them
// all when its pipe from this process closes: when this process dies, even by
// SIGKILL. It is replaced at once if it dies itself. KillLeftovers ends what
// an earlier process left of a group, sparing processes that only reuse its
// pid or pgid.
//
// # PID 1
//
// Init is the tiny init the binary becomes when it is PID 1 of a container:
// one child, signals passed on, every process reaped.
//
// Every file but this one is built for Linux only.
package osproc
