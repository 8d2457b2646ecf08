// Package osproc is how ProcMan handles processes on Linux: it forks them
// under a gate that keeps an adopting reaper from stealing their exit
// statuses, waits for them, signals and counts process groups, keeps a
// guardian process that kills the groups it is told of if ProcMan dies, and
// finds what a crashed ProcMan left behind. It knows nothing of jobs: the
// procman package decides what to start, when to stop and what an end means.
package osproc
