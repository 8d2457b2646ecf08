// Package probe asks whether a service answers: by running a command
// (Exec), by a GET to a URL (HTTP) or by opening a TCP connection (TCP).
// Each probe is one short attempt, bounded by a timeout, that reports nil
// when the service passed and otherwise an error saying why, in words fit
// for a person. It knows nothing of jobs: ProcMan decides when to probe and
// what a failure means.
//
// An exec probe's processes are started through an osproc.Reaper, as the
// leader of a group of their own: the whole group is killed at the timeout,
// and whatever the command leaves running once its shell exits is killed
// then, so a probe leaves neither a process nor a zombie behind. Its output
// goes to a pipe read into a small buffer (MaxOutput), never to a file.
//
// Every file but this one is built for Linux only.
package probe
